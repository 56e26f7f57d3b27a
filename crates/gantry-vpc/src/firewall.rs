//! What an interface's security groups allow, resolved for a packet filter: a rule's peer group becomes its
//! members' addresses, and the load balancers in it (which the caller names by their packet marks). Pure: the
//! records in, the rules out.

use std::collections::{BTreeSet, HashMap};

use gantry_model::agent::{FirewallRule, TaskFirewall};

use gantry_store::Store;

use crate::model::{NetworkInterfaceRecord, Peer, SecurityGroupRecord, SecurityGroupRule};
use crate::service::VpcService;

/// A load balancer as a peer: the mark its connections carry and its security groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedSource {
    pub mark: u32,
    pub groups: Vec<String>,
}

/// The rules of the groups `interface` is in, over every group, interface and load balancer of its region.
/// Groups that no longer exist allow nothing.
pub fn resolve(
    vpc_cidr: &str,
    interface: &NetworkInterfaceRecord,
    groups: &[SecurityGroupRecord],
    interfaces: &[NetworkInterfaceRecord],
    load_balancers: &[MarkedSource],
) -> TaskFirewall {
    let own: Vec<&SecurityGroupRecord> = groups
        .iter()
        .filter(|g| interface.groups.contains(&g.group_id))
        .collect();
    let rules = |pick: fn(&SecurityGroupRecord) -> &[SecurityGroupRule]| -> Vec<FirewallRule> {
        let mut out: Vec<FirewallRule> = Vec::new();
        for rule in own.iter().flat_map(|g| pick(g)) {
            let resolved = peer(rule, &interface.vpc_id, interfaces, load_balancers);
            // Rules of several groups that allow the same are one rule.
            if !resolved.cidrs.is_empty() || !resolved.marks.is_empty() {
                if !out.contains(&resolved) {
                    out.push(resolved);
                }
            }
        }
        out
    };
    TaskFirewall {
        vpc_cidr: vpc_cidr.to_string(),
        ingress: rules(|g| &g.ingress),
        egress: rules(|g| &g.egress),
    }
}

impl<S: Store> VpcService<S> {
    /// What the groups of each of the interfaces `ids` allow now, by id; interfaces that are gone (or whose VPC
    /// is) are left out. The region's records are read once for all of them.
    pub fn interface_firewalls(
        &self,
        region: &str,
        ids: &[&str],
        load_balancers: &[MarkedSource],
    ) -> HashMap<String, TaskFirewall> {
        let interfaces = self.network_interfaces(region);
        let groups = self.security_groups(region);
        let vpcs = self.vpcs(region);
        interfaces
            .iter()
            .filter(|i| ids.contains(&i.network_interface_id.as_str()))
            .filter_map(|i| {
                let vpc = vpcs.iter().find(|v| v.vpc_id == i.vpc_id)?;
                let firewall = resolve(&vpc.cidr_block, i, &groups, &interfaces, load_balancers);
                Some((i.network_interface_id.clone(), firewall))
            })
            .collect()
    }
}

/// One rule with its peer as addresses and marks.
fn peer(
    rule: &SecurityGroupRule,
    vpc_id: &str,
    interfaces: &[NetworkInterfaceRecord],
    load_balancers: &[MarkedSource],
) -> FirewallRule {
    let (cidrs, marks) = match &rule.peer {
        Peer::Cidr(c) => (vec![c.clone()], Vec::new()),
        Peer::Group(g) => {
            let members: BTreeSet<String> = interfaces
                .iter()
                .filter(|i| i.vpc_id == vpc_id && i.groups.contains(g))
                .map(|i| format!("{}/32", i.private_ip_address))
                .collect();
            let marks: BTreeSet<u32> = load_balancers
                .iter()
                .filter(|lb| lb.groups.contains(g))
                .map(|lb| lb.mark)
                .collect();
            (members.into_iter().collect(), marks.into_iter().collect())
        }
    };
    FirewallRule {
        protocol: rule.ip_protocol.clone(),
        from_port: rule.from_port,
        to_port: rule.to_port,
        cidrs,
        marks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, ports: Option<(i32, i32)>, peer: Peer) -> SecurityGroupRule {
        SecurityGroupRule {
            rule_id: "sgr-1".into(),
            ip_protocol: protocol.into(),
            from_port: ports.map(|p| p.0),
            to_port: ports.map(|p| p.1),
            peer,
            description: None,
        }
    }

    fn group(id: &str, ingress: Vec<SecurityGroupRule>) -> SecurityGroupRecord {
        SecurityGroupRecord {
            group_id: id.into(),
            group_name: id.into(),
            description: String::new(),
            vpc_id: "vpc-1".into(),
            ingress,
            egress: vec![rule("-1", None, Peer::Cidr("0.0.0.0/0".into()))],
            tags: vec![],
        }
    }

    fn eni(address: &str, groups: &[&str]) -> NetworkInterfaceRecord {
        NetworkInterfaceRecord {
            network_interface_id: format!("eni-{address}"),
            subnet_id: "subnet-1".into(),
            vpc_id: "vpc-1".into(),
            availability_zone: "us-east-1a".into(),
            private_ip_address: address.into(),
            mac_address: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            description: String::new(),
            requester_id: String::new(),
            interface_type: String::new(),
            tags: vec![],
        }
    }

    #[test]
    fn a_peer_group_becomes_its_members_and_its_load_balancers() {
        let web = group(
            "sg-web",
            vec![rule(
                "tcp",
                Some((8080, 8080)),
                Peer::Group("sg-alb".into()),
            )],
        );
        let alb = group("sg-alb", vec![]);
        let task = eni("172.31.0.5", &["sg-web"]);
        let others = [
            task.clone(),
            eni("172.31.0.9", &["sg-alb"]),
            eni("172.31.0.7", &["sg-other"]),
        ];
        let lbs = [
            MarkedSource {
                mark: 7,
                groups: vec!["sg-alb".into()],
            },
            MarkedSource {
                mark: 8,
                groups: vec!["sg-other".into()],
            },
        ];
        let f = resolve("172.31.0.0/16", &task, &[web, alb], &others, &lbs);
        assert_eq!(f.vpc_cidr, "172.31.0.0/16");
        assert_eq!(
            f.ingress,
            [FirewallRule {
                protocol: "tcp".into(),
                from_port: Some(8080),
                to_port: Some(8080),
                cidrs: vec!["172.31.0.9/32".into()],
                marks: vec![7],
            }]
        );
        assert_eq!(f.egress[0].cidrs, ["0.0.0.0/0"]);
    }

    #[test]
    fn an_empty_peer_group_allows_nothing_and_duplicates_are_one_rule() {
        let a = group(
            "sg-a",
            vec![
                rule("tcp", Some((80, 80)), Peer::Group("sg-empty".into())),
                rule("tcp", Some((80, 80)), Peer::Cidr("10.0.0.0/8".into())),
            ],
        );
        let mut b = group(
            "sg-b",
            vec![rule("tcp", Some((80, 80)), Peer::Cidr("10.0.0.0/8".into()))],
        );
        b.egress.clear();
        let task = eni("172.31.0.5", &["sg-a", "sg-b", "sg-gone"]);
        let f = resolve("172.31.0.0/16", &task, &[a, b], &[task.clone()], &[]);
        assert_eq!(f.ingress.len(), 1);
        assert_eq!(f.ingress[0].cidrs, ["10.0.0.0/8"]);
        assert_eq!(f.egress.len(), 1);
    }

    #[test]
    fn members_of_another_vpc_do_not_count() {
        let a = group("sg-a", vec![rule("-1", None, Peer::Group("sg-a".into()))]);
        let task = eni("172.31.0.5", &["sg-a"]);
        let mut elsewhere = eni("10.0.0.5", &["sg-a"]);
        elsewhere.vpc_id = "vpc-2".into();
        let f = resolve(
            "172.31.0.0/16",
            &task,
            &[a],
            &[task.clone(), elsewhere],
            &[],
        );
        assert_eq!(f.ingress[0].cidrs, ["172.31.0.5/32"]);
    }
}
