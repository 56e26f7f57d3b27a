//! The region around the VPCs: availability zones, account attributes, regions, network interfaces, and the
//! Describe calls for EC2 resources Gantry does not have, which answer empty lists as AWS would for an account
//! without any.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{filtered, tag_set};
use crate::errors::{Result, VpcError};
use crate::filters::{tag_values, Filter, Filterable};
use crate::model::NetworkInterfaceRecord;
use crate::service::{keys, VpcService};
use gantry_store::Store;

/// The region's three zones, `us-east-1a` to `us-east-1c`.
pub fn zone_names(region: &str) -> Vec<String> {
    ["a", "b", "c"]
        .iter()
        .map(|z| format!("{region}{z}"))
        .collect()
}

/// A zone's id as AWS writes them (`us-east-1b` is `use1-az2`): the region's parts' initials and number.
pub fn zone_id(zone: &str) -> String {
    let (region, letter) = zone.split_at(zone.len().saturating_sub(1));
    let short: String = region
        .split('-')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                part.chars().next().map(String::from).unwrap_or_default()
            }
        })
        .collect();
    let index = letter
        .bytes()
        .next()
        .map_or(1, |b| b.saturating_sub(b'a') + 1);
    format!("{short}-az{index}")
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeZonesInput {
    #[serde(rename = "ZoneName", default)]
    pub zone_names: Vec<String>,
    #[serde(rename = "ZoneId", default)]
    pub zone_ids: Vec<String>,
    #[serde(rename = "Filter", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "AllAvailabilityZones")]
    pub all: Option<bool>,
}

struct Zone {
    name: String,
    id: String,
    region: String,
}

impl Filterable for Zone {
    fn filter_values(&self, name: &str) -> Vec<String> {
        match name {
            "zone-name" => vec![self.name.clone()],
            "zone-id" => vec![self.id.clone()],
            "region-name" | "group-name" => vec![self.region.clone()],
            "state" => vec!["available".into()],
            "zone-type" => vec!["availability-zone".into()],
            "opt-in-status" => vec!["opt-in-not-required".into()],
            _ => vec![],
        }
    }
}

pub fn describe_availability_zones(region: &str, input: DescribeZonesInput) -> Result<Value> {
    let zones: Vec<Zone> = zone_names(region)
        .into_iter()
        .map(|name| Zone {
            id: zone_id(&name),
            name,
            region: region.into(),
        })
        .collect();
    for asked in input.zone_names.iter().chain(&input.zone_ids) {
        if !zones.iter().any(|z| &z.name == asked || &z.id == asked) {
            return Err(VpcError::InvalidParameterValue(format!(
                "The zone '{asked}' does not exist."
            )));
        }
    }
    let asked = |z: &Zone| {
        (input.zone_names.is_empty() && input.zone_ids.is_empty())
            || input.zone_names.contains(&z.name)
            || input.zone_ids.contains(&z.id)
    };
    let zones: Vec<Zone> = zones.into_iter().filter(asked).collect();
    let (items, _) = filtered(
        zones,
        &input.filters,
        &[
            "zone-name",
            "zone-id",
            "region-name",
            "group-name",
            "state",
            "zone-type",
            "opt-in-status",
        ],
        None,
        None,
        |z| {
            json!({
                "zoneName": z.name,
                "zoneId": z.id,
                "zoneType": "availability-zone",
                "zoneState": "available",
                "optInStatus": "opt-in-not-required",
                "regionName": z.region,
                "groupName": z.region,
                "networkBorderGroup": z.region,
                "messageSet": [],
            })
        },
    )?;
    Ok(json!({"availabilityZoneInfo": items}))
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeAccountAttributesInput {
    #[serde(rename = "AttributeName", default)]
    pub names: Vec<String>,
}

pub fn describe_account_attributes<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DescribeAccountAttributesInput,
) -> Result<Value> {
    let default_vpc = svc
        .vpcs(region)
        .into_iter()
        .find(|v| v.is_default)
        .map_or_else(|| "none".to_string(), |v| v.vpc_id);
    let all = [
        ("supported-platforms", vec!["VPC".to_string()]),
        ("default-vpc", vec![default_vpc]),
        ("max-instances", vec!["20".into()]),
        ("vpc-max-security-groups-per-interface", vec!["5".into()]),
        ("max-elastic-ips", vec!["5".into()]),
        ("vpc-max-elastic-ips", vec!["5".into()]),
    ];
    for n in &input.names {
        if !all.iter().any(|(name, _)| name == n) {
            return Err(VpcError::InvalidParameterValue(format!(
                "Value ({n}) for parameter attributeName is invalid. Unknown attribute."
            )));
        }
    }
    let items: Vec<Value> = all
        .iter()
        .filter(|(name, _)| input.names.is_empty() || input.names.iter().any(|n| n == name))
        .map(|(name, values)| {
            json!({
                "attributeName": name,
                "attributeValueSet": values.iter().map(|v| json!({"attributeValue": v})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({"accountAttributeSet": items}))
}

/// The region the call is made in: Gantry serves whichever region a client signs for.
pub fn describe_regions(region: &str) -> Value {
    json!({"regionInfo": [{
        "regionName": region,
        "regionEndpoint": format!("ec2.{region}.amazonaws.com"),
        "optInStatus": "opt-in-not-required",
    }]})
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeNetworkInterfacesInput {
    #[serde(rename = "NetworkInterfaceId", default)]
    pub ids: Vec<String>,
    #[serde(rename = "Filter", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i32>,
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
}

impl Filterable for NetworkInterfaceRecord {
    fn filter_values(&self, name: &str) -> Vec<String> {
        if let Some(v) = tag_values(&self.tags, name) {
            return v;
        }
        let one = |v: &str| vec![v.to_string()];
        match name {
            "network-interface-id" => one(&self.network_interface_id),
            "subnet-id" => one(&self.subnet_id),
            "vpc-id" => one(&self.vpc_id),
            "availability-zone" => one(&self.availability_zone),
            "private-ip-address" | "addresses.private-ip-address" => one(&self.private_ip_address),
            "mac-address" => one(&self.mac_address),
            "group-id" => self.groups.clone(),
            "description" => one(&self.description),
            "requester-id" => one(&self.requester_id),
            "interface-type" => one(&self.interface_type),
            "status" => one("in-use"),
            _ => vec![],
        }
    }
}

const ENI_FILTERS: &[&str] = &[
    "network-interface-id",
    "subnet-id",
    "vpc-id",
    "availability-zone",
    "private-ip-address",
    "addresses.private-ip-address",
    "mac-address",
    "group-id",
    "description",
    "requester-id",
    "interface-type",
    "status",
    "tag-key",
    "tag-value",
];

pub fn describe_network_interfaces<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DescribeNetworkInterfacesInput,
) -> Result<Value> {
    let all: Vec<NetworkInterfaceRecord> = svc.list(&keys::network_interfaces(region));
    for id in &input.ids {
        if !all.iter().any(|n| &n.network_interface_id == id) {
            return Err(VpcError::InvalidParameterValue(format!(
                "The networkInterface ID '{id}' does not exist"
            )));
        }
    }
    let groups = svc.security_groups(region);
    let wanted: Vec<NetworkInterfaceRecord> = all
        .into_iter()
        .filter(|n| input.ids.is_empty() || input.ids.contains(&n.network_interface_id))
        .collect();
    let (items, next) = filtered(
        wanted,
        &input.filters,
        ENI_FILTERS,
        input.max_results,
        input.next_token.as_deref(),
        |n| {
            let group_set: Vec<Value> = n
                .groups
                .iter()
                .map(|id| {
                    let name = groups
                        .iter()
                        .find(|g| &g.group_id == id)
                        .map(|g| g.group_name.clone());
                    json!({"groupId": id, "groupName": name})
                })
                .collect();
            let dns = format!("ip-{}.ec2.internal", n.private_ip_address.replace('.', "-"));
            json!({
                "networkInterfaceId": n.network_interface_id,
                "subnetId": n.subnet_id,
                "vpcId": n.vpc_id,
                "availabilityZone": n.availability_zone,
                "description": n.description,
                "ownerId": svc.account,
                "requesterId": n.requester_id,
                "requesterManaged": true,
                "status": "in-use",
                "macAddress": n.mac_address,
                "privateIpAddress": n.private_ip_address,
                "privateDnsName": dns,
                "sourceDestCheck": true,
                "interfaceType": n.interface_type,
                "groupSet": group_set,
                "privateIpAddressesSet": [{"primary": true, "privateIpAddress": n.private_ip_address, "privateDnsName": dns}],
                "ipv6AddressesSet": [],
                "tagSet": tag_set(&n.tags),
            })
        },
    )?;
    Ok(json!({"networkInterfaceSet": items, "nextToken": next}))
}

/// The answer of a Describe call for resources Gantry never has (instances, route tables, gateways, ...): an
/// empty list under the model's name for it.
pub fn nothing_here(action: &str) -> Option<Value> {
    let set = match action {
        "DescribeInstances" => "reservationSet",
        "DescribeRouteTables" => "routeTableSet",
        "DescribeInternetGateways" => "internetGatewaySet",
        "DescribeEgressOnlyInternetGateways" => "egressOnlyInternetGatewaySet",
        "DescribeNatGateways" => "natGatewaySet",
        "DescribeVpcEndpoints" => "vpcEndpointSet",
        "DescribeNetworkAcls" => "networkAclSet",
        "DescribeAddresses" => "addressesSet",
        "DescribeKeyPairs" => "keySet",
        "DescribeImages" => "imagesSet",
        "DescribePrefixLists" => "prefixListSet",
        "DescribeVpcPeeringConnections" => "vpcPeeringConnectionSet",
        "DescribeDhcpOptions" => "dhcpOptionsSet",
        "DescribeLaunchTemplates" => "launchTemplates",
        _ => return None,
    };
    Some(json!({ set: [] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_their_ids() {
        assert_eq!(
            zone_names("eu-west-2"),
            vec!["eu-west-2a", "eu-west-2b", "eu-west-2c"]
        );
        assert_eq!(zone_id("us-east-1b"), "use1-az2");
        assert_eq!(zone_id("eu-west-2a"), "euw2-az1");
        assert_eq!(zone_id("ap-southeast-1c"), "aps1-az3");
    }
}
