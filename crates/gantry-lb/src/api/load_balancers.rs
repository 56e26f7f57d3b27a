//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer, their attributes, security groups, subnets and
//! address type.

use std::net::Ipv4Addr;

use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::page::page;
use super::validate;
use crate::attributes;
use crate::errors::{LbError, Result};
use crate::keys;
use crate::model::{
    AvailabilityZone, LoadBalancer, LoadBalancerAddress, LoadBalancerRecord, LoadBalancerState, Tag,
};
use crate::service::{answer, encode, LbService};

/// The VPC a load balancer is in until Gantry has VPCs of its own.
pub const DEFAULT_VPC: &str = "vpc-00000000000000001";

/// Route 53 zone ids of ELB names, as AWS answers them in us-east-1.
fn hosted_zone(kind: &str) -> &'static str {
    if kind == "network" {
        "Z26RNL4JYFTOTI"
    } else {
        "Z35SXDOTRQ7X7K"
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct SubnetMapping {
    pub subnet_id: Option<String>,
    pub allocation_id: Option<String>,
    #[serde(rename = "PrivateIPv4Address")]
    pub private_ipv4_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    pub name: String,
    #[serde(default)]
    pub subnets: Option<Vec<String>>,
    #[serde(default)]
    pub subnet_mappings: Option<Vec<SubnetMapping>>,
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub ip_address_type: Option<String>,
    #[serde(default)]
    pub customer_owned_ipv4_pool: Option<String>,
}

/// The zones of the subnets as given; without any, two subnets of the default VPC (a and b).
fn zones(region: &str, subnets: &[String]) -> Vec<AvailabilityZone> {
    let letters = "abcdef";
    if subnets.is_empty() {
        return ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, l)| AvailabilityZone {
                zone_name: format!("{region}{l}"),
                subnet_id: format!("subnet-0000000000000000{}", i + 1),
                load_balancer_addresses: None,
            })
            .collect();
    }
    subnets
        .iter()
        .enumerate()
        .map(|(i, s)| AvailabilityZone {
            zone_name: format!("{region}{}", &letters[i % 6..i % 6 + 1]),
            subnet_id: s.clone(),
            load_balancer_addresses: None,
        })
        .collect()
}

/// The load balancer as answered: every zone lists the address its listeners bind, which is where a network load
/// balancer is reached (its TCP listeners are not behind the DNS names' shared HTTP sockets).
fn shown(record: &LoadBalancerRecord) -> LoadBalancer {
    let mut lb = record.load_balancer.clone();
    let addresses = vec![LoadBalancerAddress {
        ip_address: Some(record.address.clone()),
    }];
    for z in &mut lb.availability_zones {
        z.load_balancer_addresses = Some(addresses.clone());
    }
    lb
}

impl<S: Store> LbService<S> {
    /// The lowest address of the configured range no load balancer has.
    fn free_address(&self, region_lbs: &[LoadBalancerRecord]) -> Result<String> {
        let first = u32::from(self.config.first_address);
        (0..self.config.address_count)
            .map(|i| Ipv4Addr::from(first.saturating_add(i)).to_string())
            .find(|a| !region_lbs.iter().any(|lb| &lb.address == a))
            .ok_or_else(|| {
                LbError::TooMany(
                    "TooManyLoadBalancers",
                    format!(
                        "All {} load balancer addresses are in use (see --lb-addresses)",
                        self.config.address_count
                    ),
                )
            })
    }
}

pub async fn create<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: CreateInput,
) -> Result<Value> {
    validate::name(&input.name, "Load balancer")?;
    if input.name.starts_with("internal-") {
        return Err(LbError::Validation(
            "Load balancer names cannot begin with 'internal-'".into(),
        ));
    }
    let kind = input.kind.unwrap_or_else(|| "application".into());
    validate::one_of(&kind, "type", &["application", "network", "gateway"])?;
    if kind == "gateway" {
        return Err(LbError::Validation(
            "Gateway load balancers are not supported by Gantry".into(),
        ));
    }
    let scheme = input.scheme.unwrap_or_else(|| "internet-facing".into());
    validate::one_of(&scheme, "scheme", &["internet-facing", "internal"])?;
    let ip_type = input.ip_address_type.unwrap_or_else(|| "ipv4".into());
    validate::one_of(
        &ip_type,
        "ipAddressType",
        &["ipv4", "dualstack", "dualstack-without-public-ipv4"],
    )?;
    if input.customer_owned_ipv4_pool.is_some() {
        return Err(LbError::Validation(
            "CustomerOwnedIpv4Pool is not supported by Gantry".into(),
        ));
    }
    let mut subnets = input.subnets.unwrap_or_default();
    for m in input.subnet_mappings.unwrap_or_default() {
        if m.allocation_id.is_some() || m.private_ipv4_address.is_some() {
            return Err(LbError::Validation(
                "Subnet mappings with an AllocationId or PrivateIPv4Address are not supported by Gantry".into(),
            ));
        }
        subnets.extend(m.subnet_id);
    }
    if kind == "network"
        && input
            .security_groups
            .as_ref()
            .is_some_and(|g| !g.is_empty())
    {
        // Network load balancers have accepted security groups since 2023; kept as given like ALB's.
    }
    let tags = input.tags.unwrap_or_default();
    validate::tags(&tags)?;
    if tags.len() > validate::MAX_TAGS {
        return Err(LbError::TooManyTags(format!(
            "A resource can have at most {} tags",
            validate::MAX_TAGS
        )));
    }

    let _w = svc.writes.lock().await;
    let region = &scope.region;
    let key = keys::load_balancer(region, &input.name);
    if let Some(existing) = svc.get::<LoadBalancerRecord>(&key) {
        // Creating it again with the same settings returns it, as ELBv2 does.
        let same = existing.load_balancer.kind == kind && existing.load_balancer.scheme == scheme;
        if same {
            return Ok(json!({"LoadBalancers": [answer(&shown(&existing))]}));
        }
        return Err(LbError::DuplicateLoadBalancerName(input.name));
    }
    let existing = svc.load_balancers(region);
    let address = svc.free_address(&existing)?;
    let id = keys::new_id();
    let arn = keys::load_balancer_arn(scope, &kind, &input.name, &id);
    // The DNS name carries a number from the id, as AWS's do; `internal-` for internal ones.
    let number = u64::from_str_radix(&id[..10], 16).unwrap_or(0) % 10_000_000_000;
    let prefix = if scheme == "internal" {
        "internal-"
    } else {
        ""
    };
    let dns_name = format!(
        "{prefix}{}-{number}.{region}.{}",
        input.name, svc.config.dns_suffix
    );
    // As on AWS: the VPC of the subnets, and an ALB without security groups gets its VPC's default group.
    let vpc = svc.vpc_of(region, &subnets);
    let security_groups = match (kind.as_str(), input.security_groups) {
        ("application", None) => Some(vpc.iter().map(|(_, g)| g.clone()).collect()),
        ("application", given) => given,
        (_, given) => given.filter(|g| !g.is_empty()),
    };
    let lb = LoadBalancer {
        load_balancer_arn: arn,
        dns_name,
        canonical_hosted_zone_id: hosted_zone(&kind).into(),
        created_time: gantry_model::time::iso8601_now(),
        load_balancer_name: input.name.clone(),
        scheme,
        vpc_id: vpc.map_or_else(|| DEFAULT_VPC.into(), |(v, _)| v),
        state: LoadBalancerState {
            code: "active".into(),
            reason: None,
        },
        availability_zones: zones(region, &subnets),
        security_groups,
        kind: kind.clone(),
        ip_address_type: ip_type,
    };
    let record = LoadBalancerRecord {
        load_balancer: lb,
        attributes: attributes::load_balancer_defaults(&kind),
        tags,
        address,
    };
    svc.commit(Txn::new().put(key, encode(&record))).await?;
    svc.groups_changed();
    // AWS answers `provisioning` and becomes active later; Gantry is active at once (listeners bind when created).
    let mut created = shown(&record);
    created.state.code = "provisioning".into();
    Ok(json!({"LoadBalancers": [answer(&created)]}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeInput {
    pub load_balancer_arns: Option<Vec<String>>,
    pub names: Option<Vec<String>>,
    pub marker: Option<String>,
    pub page_size: Option<u32>,
}

pub fn describe<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: DescribeInput,
) -> Result<Value> {
    let arns = input.load_balancer_arns.unwrap_or_default();
    let names = input.names.unwrap_or_default();
    if !arns.is_empty() && !names.is_empty() {
        return Err(LbError::Validation(
            "Load balancer names and load balancer ARNs cannot be specified at the same time"
                .into(),
        ));
    }
    let all = svc.load_balancers(&scope.region);
    let chosen: Vec<LoadBalancerRecord> = if !arns.is_empty() {
        arns.iter()
            .map(|a| svc.load_balancer_by_arn(&scope.region, a))
            .collect::<Result<_>>()?
    } else if !names.is_empty() {
        names
            .iter()
            .map(|n| {
                all.iter()
                    .find(|lb| &lb.load_balancer.load_balancer_name == n)
                    .cloned()
                    .ok_or(LbError::LoadBalancerNotFound)
            })
            .collect::<Result<_>>()?
    } else {
        all
    };
    let p = page(chosen, input.marker.as_deref(), input.page_size)?;
    let lbs: Vec<Value> = p.items.iter().map(|r| answer(&shown(r))).collect();
    Ok(json!({"LoadBalancers": lbs, "NextMarker": p.next_marker}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnInput {
    pub load_balancer_arn: String,
}

pub async fn delete<S: Store>(svc: &LbService<S>, scope: &Scope, input: ArnInput) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let lb = match svc.load_balancer_by_arn(&scope.region, &input.load_balancer_arn) {
        Ok(lb) => lb,
        // Deleting one that is gone succeeds, as ELBv2 does.
        Err(LbError::LoadBalancerNotFound) => return Ok(json!({})),
        Err(e) => return Err(e),
    };
    if attributes::flag(&lb.attributes, "deletion_protection.enabled") {
        return Err(LbError::OperationNotPermitted(format!(
            "Load balancer '{}' cannot be deleted because deletion protection is enabled",
            input.load_balancer_arn
        )));
    }
    let region = &scope.region;
    let name = &lb.load_balancer.load_balancer_name;
    let txn = Txn::new()
        .delete(keys::load_balancer(region, name))
        .delete_prefix(keys::listeners(region, name))
        .delete_prefix(keys::rules_of_load_balancer(region, name));
    svc.commit(txn).await?;
    svc.groups_changed();
    Ok(json!({}))
}

pub fn describe_attributes<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ArnInput,
) -> Result<Value> {
    let lb = svc.load_balancer_by_arn(&scope.region, &input.load_balancer_arn)?;
    Ok(attributes::answer(&lb.attributes))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyAttributesInput {
    pub load_balancer_arn: String,
    pub attributes: Vec<attributes::Attribute>,
}

pub async fn modify_attributes<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ModifyAttributesInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let mut lb = svc.load_balancer_by_arn(&scope.region, &input.load_balancer_arn)?;
    let changes = attributes::pairs(input.attributes)?;
    attributes::modify_load_balancer(&lb.load_balancer.kind, &mut lb.attributes, &changes)?;
    put(svc, scope, &lb).await?;
    Ok(attributes::answer(&lb.attributes))
}

async fn put<S: Store>(svc: &LbService<S>, scope: &Scope, lb: &LoadBalancerRecord) -> Result<()> {
    let key = keys::load_balancer(&scope.region, &lb.load_balancer.load_balancer_name);
    svc.commit(Txn::new().put(key, encode(lb))).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetSecurityGroupsInput {
    pub load_balancer_arn: String,
    pub security_groups: Vec<String>,
}

pub async fn set_security_groups<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: SetSecurityGroupsInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let mut lb = svc.load_balancer_by_arn(&scope.region, &input.load_balancer_arn)?;
    lb.load_balancer.security_groups = Some(input.security_groups.clone());
    put(svc, scope, &lb).await?;
    svc.groups_changed();
    Ok(json!({"SecurityGroupIds": input.security_groups}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetSubnetsInput {
    pub load_balancer_arn: String,
    #[serde(default)]
    pub subnets: Option<Vec<String>>,
    #[serde(default)]
    pub subnet_mappings: Option<Vec<SubnetMapping>>,
}

pub async fn set_subnets<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: SetSubnetsInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let mut lb = svc.load_balancer_by_arn(&scope.region, &input.load_balancer_arn)?;
    let mut subnets = input.subnets.unwrap_or_default();
    subnets.extend(
        input
            .subnet_mappings
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.subnet_id),
    );
    lb.load_balancer.availability_zones = zones(&scope.region, &subnets);
    put(svc, scope, &lb).await?;
    Ok(
        json!({"AvailabilityZones": answer(&shown(&lb).availability_zones), "IpAddressType": lb.load_balancer.ip_address_type}),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetIpAddressTypeInput {
    pub load_balancer_arn: String,
    pub ip_address_type: String,
}

pub async fn set_ip_address_type<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: SetIpAddressTypeInput,
) -> Result<Value> {
    validate::one_of(
        &input.ip_address_type,
        "ipAddressType",
        &["ipv4", "dualstack", "dualstack-without-public-ipv4"],
    )?;
    let _w = svc.writes.lock().await;
    let mut lb = svc.load_balancer_by_arn(&scope.region, &input.load_balancer_arn)?;
    lb.load_balancer.ip_address_type = input.ip_address_type.clone();
    put(svc, scope, &lb).await?;
    Ok(json!({"IpAddressType": input.ip_address_type}))
}
