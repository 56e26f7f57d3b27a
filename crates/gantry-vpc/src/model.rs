//! The records kept in the store under `/ec2/{region}/...`, one per resource.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VpcRecord {
    pub vpc_id: String,
    pub cidr_block: String,
    pub is_default: bool,
    pub instance_tenancy: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubnetRecord {
    pub subnet_id: String,
    pub vpc_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    pub tags: Vec<Tag>,
}

/// What a security group rule lets in (ingress) or out (egress): a CIDR block, or the members of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Cidr(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    pub rule_id: String,
    /// `tcp`, `udp`, `icmp` or `-1` (every protocol).
    pub ip_protocol: String,
    /// The port range (icmp: type and code); `None` for `-1`.
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub peer: Peer,
    pub description: Option<String>,
}

impl SecurityGroupRule {
    /// The rule without its id and description: two rules that allow the same are duplicates.
    pub fn allows(&self) -> (&str, Option<i32>, Option<i32>, &Peer) {
        (&self.ip_protocol, self.from_port, self.to_port, &self.peer)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityGroupRecord {
    pub group_id: String,
    pub group_name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: Vec<SecurityGroupRule>,
    pub egress: Vec<SecurityGroupRule>,
    pub tags: Vec<Tag>,
}

/// A network interface (an awsvpc task's ENI).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkInterfaceRecord {
    pub network_interface_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub private_ip_address: String,
    pub mac_address: String,
    pub groups: Vec<String>,
    pub description: String,
    /// Who made it (`amazon-ecs` for tasks' ENIs).
    pub requester_id: String,
    pub interface_type: String,
    pub tags: Vec<Tag>,
}
