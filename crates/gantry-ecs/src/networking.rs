//! What ECS needs of the VPC for awsvpc tasks, as a small trait the binary implements over the EC2 service: the
//! facts of the subnets and security groups a task names, making and deleting the task's network interface, and
//! what its security groups allow.
//! Also the checks of `awsvpcConfiguration` and the task's `ElasticNetworkInterface` attachment, as ECS shows it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use gantry_model::agent::TaskFirewall;
use gantry_model::ecs::{AwsVpcConfiguration, NetworkConfiguration, TaskNetwork};
use serde_json::{json, Value};

use crate::error::{invalid, reject_unsupported, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetFacts {
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub cidr_block: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceError {
    /// The subnet has no address left.
    #[error("{0}")]
    NoFreeAddress(String),
    #[error("{0}")]
    Other(String),
}

/// A network interface as made for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub network_interface_id: String,
    pub private_ipv4_address: String,
    pub mac_address: String,
}

pub type NetFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait TaskNetworking: Send + Sync + 'static {
    fn subnet(&self, region: &str, subnet_id: &str) -> Option<SubnetFacts>;
    /// The VPC of a security group, or `None` when it does not exist.
    fn security_group_vpc(&self, region: &str, group_id: &str) -> Option<String>;
    /// The `default` security group of a VPC.
    fn default_security_group(&self, region: &str, vpc_id: &str) -> Option<String>;
    fn create_interface<'a>(
        &'a self,
        region: &'a str,
        subnet_id: &'a str,
        groups: &'a [String],
        description: &'a str,
    ) -> NetFuture<'a, std::result::Result<Interface, InterfaceError>>;
    /// Deleting one already gone is not an error.
    fn delete_interface<'a>(
        &'a self,
        region: &'a str,
        id: &'a str,
    ) -> NetFuture<'a, std::result::Result<(), String>>;
    /// The interfaces ECS made, as `(id, description)`: the description names the attachment.
    fn task_interfaces(&self, region: &str) -> Vec<(String, String)>;
    /// What the security groups of each of the interfaces `ids` allow now, by id, for the agent to enforce;
    /// interfaces that are gone are left out.
    fn interface_firewalls(&self, region: &str, ids: &[&str]) -> HashMap<String, TaskFirewall>;
}

/// ECS's limits on `awsvpcConfiguration`.
const MAX_SUBNETS: usize = 16;
const MAX_SECURITY_GROUPS: usize = 5;

/// Checks `networkConfiguration` against the task definition's network mode and returns the awsvpc
/// configuration the tasks will use (`None` for other modes). `fargate`: the launch type is FARGATE.
pub fn awsvpc_configuration(
    given: Option<&NetworkConfiguration>,
    network_mode: &str,
    fargate: bool,
) -> Result<Option<AwsVpcConfiguration>> {
    if let Some(n) = given {
        reject_unsupported("networkConfiguration", &n.unsupported)?;
    }
    let config = given.and_then(|n| n.awsvpc_configuration.clone());
    if network_mode != "awsvpc" {
        return match config {
            None => Ok(None),
            Some(_) => Err(invalid(
                "Network Configuration is not valid for the given networkMode of this task definition.",
            )),
        };
    }
    let config = config.ok_or_else(|| {
        invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    })?;
    reject_unsupported(
        "networkConfiguration.awsvpcConfiguration",
        &config.unsupported,
    )?;
    if config.subnets.is_empty() {
        return Err(invalid("subnets can not be empty."));
    }
    if config.subnets.len() > MAX_SUBNETS {
        return Err(invalid(format!(
            "awsvpcConfiguration.subnets can have at most {MAX_SUBNETS} subnets."
        )));
    }
    if config.security_groups.len() > MAX_SECURITY_GROUPS {
        return Err(invalid(format!(
            "awsvpcConfiguration.securityGroups can have at most {MAX_SECURITY_GROUPS} security groups."
        )));
    }
    match config.assign_public_ip.as_deref() {
        None | Some("DISABLED") => {}
        Some("ENABLED") if fargate => {}
        Some("ENABLED") => {
            return Err(invalid(
                "Assign public IP is not supported for this launch type.",
            ))
        }
        Some(other) => return Err(invalid(format!("Invalid assignPublicIp: {other}"))),
    }
    Ok(Some(config))
}

/// Checks that the subnets and security groups exist and share one VPC; fills in the VPC's default security group
/// when none is given, as ECS does.
pub fn resolve(
    net: &dyn TaskNetworking,
    region: &str,
    mut config: AwsVpcConfiguration,
) -> Result<(AwsVpcConfiguration, Vec<SubnetFacts>)> {
    let mut subnets = Vec::new();
    for id in &config.subnets {
        let s = net.subnet(region, id).ok_or_else(|| {
            invalid(format!(
                "Error retrieving subnet information for [{id}]: The subnet ID '{id}' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)"
            ))
        })?;
        if subnets.iter().any(|o: &SubnetFacts| o.vpc_id != s.vpc_id) {
            return Err(invalid("The subnets must all belong to the same VPC."));
        }
        subnets.push(s);
    }
    let vpc = subnets[0].vpc_id.clone();
    for id in &config.security_groups {
        let group_vpc = net.security_group_vpc(region, id).ok_or_else(|| {
            invalid(format!(
                "Error retrieving security group information for [{id}]: The security group '{id}' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidGroup.NotFound)"
            ))
        })?;
        if group_vpc != vpc {
            return Err(invalid(format!(
                "Security group {id} and subnet {} belong to different networks.",
                subnets[0].subnet_id
            )));
        }
    }
    if config.security_groups.is_empty() {
        config
            .security_groups
            .extend(net.default_security_group(region, &vpc));
    }
    Ok((config, subnets))
}

/// The order to try subnets in for a task placed in `zone`: the subnets of that zone first, then the others, each
/// group rotated by `turn` so that tasks spread over them.
pub fn subnet_order(subnets: &[SubnetFacts], zone: Option<&str>, turn: usize) -> Vec<usize> {
    let rotate = |mut v: Vec<usize>| {
        if !v.is_empty() {
            let n = turn % v.len();
            v.rotate_left(n);
        }
        v
    };
    let (same, other): (Vec<usize>, Vec<usize>) =
        (0..subnets.len()).partition(|&i| Some(subnets[i].availability_zone.as_str()) == zone);
    let mut order = rotate(same);
    order.extend(rotate(other));
    order
}

/// EC2's private DNS name of an address in `region`.
pub fn private_dns_name(address: &str, region: &str) -> String {
    let host = format!("ip-{}", address.replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{region}.compute.internal")
    }
}

/// The attachment's status for a task in `last_status`: made before the task runs, attached while it runs, deleted
/// once it stopped.
pub fn attachment_status(last_status: &str) -> &'static str {
    use gantry_model::ecs::status;
    match last_status {
        status::STOPPED => "DELETED",
        s if status::rank(s) >= status::rank(status::RUNNING) => "ATTACHED",
        _ => "PRECREATED",
    }
}

/// The task's `ElasticNetworkInterface` attachment as DescribeTasks shows it.
pub fn attachment(n: &TaskNetwork, last_status: &str) -> Value {
    json!({
        "id": n.attachment_id,
        "type": "ElasticNetworkInterface",
        "status": attachment_status(last_status),
        "details": [
            {"name": "subnetId", "value": n.subnet_id},
            {"name": "networkInterfaceId", "value": n.network_interface_id},
            {"name": "macAddress", "value": n.mac_address},
            {"name": "privateDnsName", "value": n.private_dns_name},
            {"name": "privateIPv4Address", "value": n.private_ipv4_address},
        ],
    })
}

/// A container's `networkInterfaces` entry.
pub fn container_interface(n: &TaskNetwork) -> Value {
    json!({"attachmentId": n.attachment_id, "privateIpv4Address": n.private_ipv4_address})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: Value) -> NetworkConfiguration {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_configuration_must_match_the_network_mode() {
        let given = config(json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}}));
        assert!(awsvpc_configuration(Some(&given), "bridge", false).is_err());
        assert_eq!(awsvpc_configuration(None, "bridge", false).unwrap(), None);
        let e = awsvpc_configuration(None, "awsvpc", false).unwrap_err();
        assert!(e.to_string().contains("must be provided"), "{e}");
        let ok = awsvpc_configuration(Some(&given), "awsvpc", false).unwrap();
        assert_eq!(ok.unwrap().subnets, ["subnet-1"]);
        let empty = config(json!({"awsvpcConfiguration": {"subnets": []}}));
        assert!(awsvpc_configuration(Some(&empty), "awsvpc", false).is_err());
        let public = config(
            json!({"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}}),
        );
        assert!(awsvpc_configuration(Some(&public), "awsvpc", false).is_err());
        assert!(awsvpc_configuration(Some(&public), "awsvpc", true).is_ok());
        let groups: Vec<String> = (0..6).map(|i| format!("sg-{i}")).collect();
        let many = config(
            json!({"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": groups}}),
        );
        assert!(awsvpc_configuration(Some(&many), "awsvpc", false).is_err());
        let unknown = config(json!({"awsvpcConfiguration": {"subnets": ["s"], "other": 1}}));
        assert!(awsvpc_configuration(Some(&unknown), "awsvpc", false).is_err());
    }

    fn subnet(id: &str, zone: &str) -> SubnetFacts {
        SubnetFacts {
            subnet_id: id.into(),
            vpc_id: "vpc-1".into(),
            availability_zone: zone.into(),
            cidr_block: "10.0.0.0/24".into(),
        }
    }

    #[test]
    fn subnets_of_the_task_zone_come_first_and_turns_spread() {
        let s = [
            subnet("a1", "a"),
            subnet("b1", "b"),
            subnet("a2", "a"),
            subnet("c1", "c"),
        ];
        assert_eq!(subnet_order(&s, Some("a"), 0), [0, 2, 1, 3]);
        assert_eq!(subnet_order(&s, Some("a"), 1), [2, 0, 3, 1]);
        assert_eq!(subnet_order(&s, None, 1), [1, 2, 3, 0]);
        assert_eq!(subnet_order(&s, Some("z"), 0), [0, 1, 2, 3]);
    }

    #[test]
    fn names_and_statuses_as_ecs_shows_them() {
        assert_eq!(
            private_dns_name("172.31.0.4", "us-east-1"),
            "ip-172-31-0-4.ec2.internal"
        );
        assert_eq!(
            private_dns_name("10.0.0.9", "eu-west-1"),
            "ip-10-0-0-9.eu-west-1.compute.internal"
        );
        assert_eq!(attachment_status("PENDING"), "PRECREATED");
        assert_eq!(attachment_status("RUNNING"), "ATTACHED");
        assert_eq!(attachment_status("DEACTIVATING"), "ATTACHED");
        assert_eq!(attachment_status("STOPPED"), "DELETED");
    }
}
