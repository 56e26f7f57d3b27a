//! CreateSubnet, DescribeSubnets, DeleteSubnet.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{filtered, tag_set, tags_for, TagSpecification};
use crate::cidr::Cidr;
use crate::errors::{Result, VpcError};
use crate::filters::{tag_values, Filter, Filterable};
use crate::model::SubnetRecord;
use crate::service::{encode, keys, new_id, VpcService};
use gantry_store::{Store, Txn};

#[derive(Debug, Default, Deserialize)]
pub struct CreateSubnetInput {
    #[serde(rename = "VpcId")]
    pub vpc_id: Option<String>,
    #[serde(rename = "CidrBlock")]
    pub cidr_block: Option<String>,
    #[serde(rename = "AvailabilityZone")]
    pub availability_zone: Option<String>,
    #[serde(rename = "AvailabilityZoneId")]
    pub availability_zone_id: Option<String>,
    #[serde(rename = "Ipv6CidrBlock")]
    pub ipv6_cidr_block: Option<String>,
    #[serde(rename = "Ipv6Native")]
    pub ipv6_native: Option<bool>,
    #[serde(rename = "TagSpecification", default)]
    pub tag_specifications: Vec<TagSpecification>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeSubnetsInput {
    #[serde(rename = "SubnetId", default)]
    pub subnet_ids: Vec<String>,
    #[serde(rename = "Filter", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i32>,
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteSubnetInput {
    #[serde(rename = "SubnetId")]
    pub subnet_id: Option<String>,
}

/// A subnet with the count of addresses its network interfaces have not taken.
pub(crate) struct Listed {
    subnet: SubnetRecord,
    available: u64,
}

impl Filterable for Listed {
    fn filter_values(&self, name: &str) -> Vec<String> {
        let s = &self.subnet;
        if let Some(v) = tag_values(&s.tags, name) {
            return v;
        }
        let one = |v: &str| vec![v.to_string()];
        match name {
            "subnet-id" => one(&s.subnet_id),
            "vpc-id" => one(&s.vpc_id),
            "cidr-block" | "cidr" | "cidrBlock" => one(&s.cidr_block),
            "availability-zone" | "availabilityZone" => one(&s.availability_zone),
            "availability-zone-id" => one(&super::zones::zone_id(&s.availability_zone)),
            "default-for-az" | "defaultForAz" => one(&s.default_for_az.to_string()),
            "map-public-ip-on-launch" => one(&s.map_public_ip_on_launch.to_string()),
            "available-ip-address-count" => vec![self.available.to_string()],
            "state" => one("available"),
            _ => vec![],
        }
    }
}

const FILTERS: &[&str] = &[
    "subnet-id",
    "vpc-id",
    "cidr-block",
    "cidr",
    "cidrBlock",
    "availability-zone",
    "availabilityZone",
    "availability-zone-id",
    "default-for-az",
    "defaultForAz",
    "map-public-ip-on-launch",
    "available-ip-address-count",
    "state",
    "owner-id",
    "tag-key",
    "tag-value",
];

fn render(l: &Listed, region: &str, owner: &str) -> Value {
    let s = &l.subnet;
    json!({
        "subnetId": s.subnet_id,
        "subnetArn": format!("arn:aws:ec2:{region}:{owner}:subnet/{}", s.subnet_id),
        "vpcId": s.vpc_id,
        "ownerId": owner,
        "state": "available",
        "cidrBlock": s.cidr_block,
        "availableIpAddressCount": l.available,
        "availabilityZone": s.availability_zone,
        "availabilityZoneId": super::zones::zone_id(&s.availability_zone),
        "defaultForAz": s.default_for_az,
        "mapPublicIpOnLaunch": s.map_public_ip_on_launch,
        "assignIpv6AddressOnCreation": false,
        "ipv6CidrBlockAssociationSet": [],
        "ipv6Native": false,
        "enableDns64": false,
        "privateDnsNameOptionsOnLaunch": {
            "hostnameType": "ip-name",
            "enableResourceNameDnsARecord": false,
            "enableResourceNameDnsAAAARecord": false,
        },
        "tagSet": tag_set(&s.tags),
    })
}

impl<S: Store> VpcService<S> {
    /// How many addresses of `subnet` no network interface holds.
    pub fn available_addresses(&self, region: &str, subnet: &SubnetRecord) -> u64 {
        let size = Cidr::parse(&subnet.cidr_block).map_or(0, |c| c.usable_count());
        let taken = self
            .list::<crate::model::NetworkInterfaceRecord>(&keys::network_interfaces(region))
            .iter()
            .filter(|n| n.subnet_id == subnet.subnet_id)
            .count() as u64;
        size.saturating_sub(taken)
    }

    fn listed(&self, region: &str, subnet: SubnetRecord) -> Listed {
        let available = self.available_addresses(region, &subnet);
        Listed { subnet, available }
    }
}

pub async fn create<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: CreateSubnetInput,
) -> Result<Value> {
    if input.ipv6_cidr_block.is_some() || input.ipv6_native == Some(true) {
        return Err(VpcError::InvalidParameterCombination(
            "IPv6 subnets are not supported by Gantry".into(),
        ));
    }
    let vpc_id = input.vpc_id.ok_or(VpcError::MissingParameter("VpcId"))?;
    let text = input
        .cidr_block
        .ok_or(VpcError::MissingParameter("CidrBlock"))?;
    let cidr = Cidr::parse(&text).ok_or_else(|| {
        VpcError::InvalidParameterValue(format!(
            "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
        ))
    })?;
    let zones = super::zones::zone_names(region);
    let zone = match (input.availability_zone, input.availability_zone_id) {
        (Some(z), _) => z,
        (None, Some(id)) => zones
            .iter()
            .find(|z| super::zones::zone_id(z) == id)
            .cloned()
            .ok_or_else(|| VpcError::InvalidAvailabilityZone(id, zones.join(", ")))?,
        // EC2 picks a zone; the first is as good as any.
        (None, None) => zones[0].clone(),
    };
    if !zones.contains(&zone) {
        return Err(VpcError::InvalidAvailabilityZone(zone, zones.join(", ")));
    }
    let tags = tags_for(&input.tag_specifications, "subnet")?;
    let _w = svc.writes.lock().await;
    let vpc = svc.vpc(region, &vpc_id)?;
    let vpc_cidr =
        Cidr::parse(&vpc.cidr_block).ok_or_else(|| VpcError::VpcRange(vpc.cidr_block.clone()))?;
    if !(16..=28).contains(&cidr.prefix) || !vpc_cidr.covers(&cidr) {
        return Err(VpcError::SubnetRange(text));
    }
    let clash = svc
        .subnets(region)
        .into_iter()
        .filter(|s| s.vpc_id == vpc_id)
        .any(|s| Cidr::parse(&s.cidr_block).is_some_and(|c| c.overlaps(&cidr)));
    if clash {
        return Err(VpcError::SubnetConflict(text));
    }
    let subnet = SubnetRecord {
        subnet_id: new_id("subnet"),
        vpc_id,
        cidr_block: cidr.to_string(),
        availability_zone: zone,
        default_for_az: false,
        map_public_ip_on_launch: false,
        tags,
    };
    svc.commit(Txn::new().put(
        format!("{}{}", keys::subnets(region), subnet.subnet_id),
        encode(&subnet),
    ))
    .await?;
    let listed = svc.listed(region, subnet);
    Ok(json!({"subnet": render(&listed, region, &svc.account)}))
}

pub fn describe<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DescribeSubnetsInput,
) -> Result<Value> {
    let subnets = if input.subnet_ids.is_empty() {
        svc.subnets(region)
    } else {
        input
            .subnet_ids
            .iter()
            .map(|id| svc.subnet(region, id))
            .collect::<Result<Vec<_>>>()?
    };
    let listed: Vec<Listed> = subnets.into_iter().map(|s| svc.listed(region, s)).collect();
    let (items, next) = filtered(
        listed,
        &input.filters,
        FILTERS,
        input.max_results,
        input.next_token.as_deref(),
        |l| render(l, region, &svc.account),
    )?;
    Ok(json!({"subnetSet": items, "nextToken": next}))
}

pub async fn delete<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DeleteSubnetInput,
) -> Result<Value> {
    let id = input
        .subnet_id
        .ok_or(VpcError::MissingParameter("SubnetId"))?;
    let _w = svc.writes.lock().await;
    let subnet = svc.subnet(region, &id)?;
    let in_use = svc
        .list::<crate::model::NetworkInterfaceRecord>(&keys::network_interfaces(region))
        .iter()
        .any(|n| n.subnet_id == subnet.subnet_id);
    if in_use {
        return Err(VpcError::DependencyViolation("subnet", id));
    }
    svc.commit(Txn::new().delete(format!("{}{}", keys::subnets(region), subnet.subnet_id)))
        .await?;
    Ok(Value::Null)
}
