//! CreateVpc, DescribeVpcs, DeleteVpc, and the default VPC every region starts with.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{filtered, tag_set, tags_for, TagSpecification};
use crate::cidr::Cidr;
use crate::errors::{Result, VpcError};
use crate::filters::{tag_values, Filter, Filterable};
use crate::model::{SecurityGroupRecord, SubnetRecord, VpcRecord};
use crate::service::{encode, keys, new_id, VpcService};
use gantry_store::{Store, Txn};

/// The default VPC's block and its subnets, one per zone, as AWS makes them.
const DEFAULT_CIDR: &str = "172.31.0.0/16";
const DEFAULT_SUBNETS: [&str; 3] = ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"];

#[derive(Debug, Default, Deserialize)]
pub struct CreateVpcInput {
    #[serde(rename = "CidrBlock")]
    pub cidr_block: Option<String>,
    #[serde(rename = "InstanceTenancy")]
    pub instance_tenancy: Option<String>,
    #[serde(rename = "AmazonProvidedIpv6CidrBlock")]
    pub ipv6: Option<bool>,
    #[serde(rename = "Ipv4IpamPoolId")]
    pub ipam_pool: Option<String>,
    #[serde(rename = "TagSpecification", default)]
    pub tag_specifications: Vec<TagSpecification>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeVpcsInput {
    #[serde(rename = "VpcId", default)]
    pub vpc_ids: Vec<String>,
    #[serde(rename = "Filter", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i32>,
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteVpcInput {
    #[serde(rename = "VpcId")]
    pub vpc_id: Option<String>,
}

impl Filterable for VpcRecord {
    fn filter_values(&self, name: &str) -> Vec<String> {
        if let Some(v) = tag_values(&self.tags, name) {
            return v;
        }
        match name {
            "vpc-id" => vec![self.vpc_id.clone()],
            "cidr" | "cidr-block-association.cidr-block" => vec![self.cidr_block.clone()],
            "is-default" => vec![self.is_default.to_string()],
            "state" => vec!["available".into()],
            "owner-id" => vec![],
            _ => vec![],
        }
    }
}

const FILTERS: &[&str] = &[
    "vpc-id",
    "cidr",
    "cidr-block-association.cidr-block",
    "is-default",
    "state",
    "owner-id",
    "tag-key",
    "tag-value",
];

pub(crate) fn render(v: &VpcRecord, owner: &str) -> Value {
    json!({
        "vpcId": v.vpc_id,
        "ownerId": owner,
        "state": "available",
        "cidrBlock": v.cidr_block,
        "cidrBlockAssociationSet": [{
            "associationId": format!("vpc-cidr-assoc-{}", v.vpc_id.trim_start_matches("vpc-")),
            "cidrBlock": v.cidr_block,
            "cidrBlockState": {"state": "associated"},
        }],
        "dhcpOptionsId": "default",
        "instanceTenancy": v.instance_tenancy,
        "isDefault": v.is_default,
        "tagSet": tag_set(&v.tags),
    })
}

/// A VPC's default security group: all traffic in from its own members, all traffic out.
pub(crate) fn default_group(vpc_id: &str) -> SecurityGroupRecord {
    let group_id = new_id("sg");
    let rule = |peer| crate::model::SecurityGroupRule {
        rule_id: new_id("sgr"),
        ip_protocol: "-1".into(),
        from_port: None,
        to_port: None,
        peer,
        description: None,
    };
    SecurityGroupRecord {
        ingress: vec![rule(crate::model::Peer::Group(group_id.clone()))],
        egress: vec![rule(crate::model::Peer::Cidr("0.0.0.0/0".into()))],
        group_id,
        group_name: "default".into(),
        description: "default VPC security group".into(),
        vpc_id: vpc_id.into(),
        tags: vec![],
    }
}

/// The writes of a new VPC and of its default security group.
fn with_default_group(region: &str, vpc: &VpcRecord) -> Txn {
    let group = default_group(&vpc.vpc_id);
    Txn::new()
        .put(format!("{}{}", keys::vpcs(region), vpc.vpc_id), encode(vpc))
        .put(
            format!("{}{}", keys::security_groups(region), group.group_id),
            encode(&group),
        )
}

pub(crate) async fn create_default<S: Store>(svc: &VpcService<S>, region: &str) -> Result<()> {
    let vpc = VpcRecord {
        vpc_id: new_id("vpc"),
        cidr_block: DEFAULT_CIDR.into(),
        is_default: true,
        instance_tenancy: "default".into(),
        tags: vec![],
    };
    let mut txn = with_default_group(region, &vpc);
    for (cidr, zone) in DEFAULT_SUBNETS.iter().zip(super::zones::zone_names(region)) {
        let s = SubnetRecord {
            subnet_id: new_id("subnet"),
            vpc_id: vpc.vpc_id.clone(),
            cidr_block: cidr.to_string(),
            availability_zone: zone,
            default_for_az: true,
            map_public_ip_on_launch: true,
            tags: vec![],
        };
        txn = txn.put(
            format!("{}{}", keys::subnets(region), s.subnet_id),
            encode(&s),
        );
    }
    svc.commit(txn).await?;
    tracing::info!(region, vpc = %vpc.vpc_id, "made the default VPC");
    Ok(())
}

pub async fn create<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: CreateVpcInput,
) -> Result<Value> {
    if input.ipv6 == Some(true) || input.ipam_pool.is_some() {
        return Err(VpcError::InvalidParameterCombination(
            "IPv6 blocks and IPAM pools are not supported by Gantry: give an IPv4 CidrBlock".into(),
        ));
    }
    let text = input
        .cidr_block
        .ok_or(VpcError::MissingParameter("CidrBlock"))?;
    let cidr = Cidr::parse(&text).ok_or_else(|| {
        VpcError::InvalidParameterValue(format!(
            "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
        ))
    })?;
    if !(16..=28).contains(&cidr.prefix) {
        return Err(VpcError::VpcRange(text));
    }
    let tenancy = input.instance_tenancy.unwrap_or_else(|| "default".into());
    if !matches!(tenancy.as_str(), "default" | "dedicated") {
        return Err(VpcError::InvalidParameterValue(format!(
            "Value ({tenancy}) for parameter instanceTenancy is invalid."
        )));
    }
    let tags = tags_for(&input.tag_specifications, "vpc")?;
    let _w = svc.writes.lock().await;
    let vpc = VpcRecord {
        vpc_id: new_id("vpc"),
        cidr_block: cidr.to_string(),
        is_default: false,
        instance_tenancy: tenancy,
        tags,
    };
    svc.commit(with_default_group(region, &vpc)).await?;
    Ok(json!({"vpc": render(&vpc, &svc.account)}))
}

pub fn describe<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DescribeVpcsInput,
) -> Result<Value> {
    let vpcs = if input.vpc_ids.is_empty() {
        svc.vpcs(region)
    } else {
        input
            .vpc_ids
            .iter()
            .map(|id| svc.vpc(region, id))
            .collect::<Result<Vec<_>>>()?
    };
    let (items, next) = filtered(
        vpcs,
        &input.filters,
        FILTERS,
        input.max_results,
        input.next_token.as_deref(),
        |v| render(v, &svc.account),
    )?;
    Ok(json!({"vpcSet": items, "nextToken": next}))
}

pub async fn delete<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DeleteVpcInput,
) -> Result<Value> {
    let id = input.vpc_id.ok_or(VpcError::MissingParameter("VpcId"))?;
    let _w = svc.writes.lock().await;
    let vpc = svc.vpc(region, &id)?;
    let has_subnets = svc.subnets(region).iter().any(|s| s.vpc_id == vpc.vpc_id);
    let groups: Vec<SecurityGroupRecord> = svc
        .security_groups(region)
        .into_iter()
        .filter(|g| g.vpc_id == vpc.vpc_id)
        .collect();
    // The default security group goes with its VPC; any other group, or a subnet, is a dependency.
    if has_subnets || groups.iter().any(|g| g.group_name != "default") {
        return Err(VpcError::DependencyViolation("vpc", id));
    }
    let mut txn = Txn::new().delete(format!("{}{}", keys::vpcs(region), vpc.vpc_id));
    for g in groups {
        txn = txn.delete(format!("{}{}", keys::security_groups(region), g.group_id));
    }
    svc.commit(txn).await?;
    Ok(Value::Null)
}
