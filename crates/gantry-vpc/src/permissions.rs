//! Security group permissions as the API writes them (`IpPermissions` grouping a protocol and port range with
//! several CIDR blocks and groups) against the rules kept (one peer each), both ways, with EC2's validation.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::model::{Peer, SecurityGroupRule};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpPermission {
    #[serde(rename = "IpProtocol")]
    pub ip_protocol: Option<String>,
    #[serde(rename = "FromPort")]
    pub from_port: Option<i32>,
    #[serde(rename = "ToPort")]
    pub to_port: Option<i32>,
    #[serde(rename = "IpRanges", default)]
    pub ip_ranges: Vec<IpRange>,
    #[serde(rename = "Groups", default)]
    pub groups: Vec<GroupPair>,
    #[serde(rename = "Ipv6Ranges", default)]
    pub ipv6_ranges: Vec<Value>,
    #[serde(rename = "PrefixListIds", default)]
    pub prefix_list_ids: Vec<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpRange {
    #[serde(rename = "CidrIp")]
    pub cidr_ip: Option<String>,
    #[serde(rename = "Description")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupPair {
    #[serde(rename = "GroupId")]
    pub group_id: Option<String>,
    #[serde(rename = "GroupName")]
    pub group_name: Option<String>,
    #[serde(rename = "Description")]
    pub description: Option<String>,
}

/// A rule before it has an id.
pub type RuleSpec = (String, Option<i32>, Option<i32>, Peer, Option<String>);

/// EC2's name for a protocol given by name or number; `None` for one Gantry does not know.
pub fn protocol(p: &str) -> Option<&'static str> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Some("tcp"),
        "udp" | "17" => Some("udp"),
        "icmp" | "1" => Some("icmp"),
        "-1" | "all" => Some("-1"),
        _ => None,
    }
}

/// The rules `perms` ask for. `group` resolves a group pair to a group id (by id, or by name in the same VPC).
pub fn rules_of(
    perms: &[IpPermission],
    mut group: impl FnMut(&GroupPair) -> Result<String, String>,
) -> Result<Vec<RuleSpec>, String> {
    let mut out = Vec::new();
    for p in perms {
        let raw = p
            .ip_protocol
            .as_deref()
            .ok_or("The request must contain the parameter ipProtocol")?;
        let proto = protocol(raw)
            .ok_or_else(|| format!("Invalid value '{raw}' for IP protocol. Unknown protocol."))?;
        let (from, to) = ports(proto, p.from_port, p.to_port)?;
        if !p.ipv6_ranges.is_empty() || !p.prefix_list_ids.is_empty() {
            return Err("IPv6 ranges and prefix lists are not supported by Gantry".into());
        }
        if p.ip_ranges.is_empty() && p.groups.is_empty() {
            return Err(
                "The request must contain a CIDR block or a security group as its peer".into(),
            );
        }
        for r in &p.ip_ranges {
            let cidr = r
                .cidr_ip
                .as_deref()
                .ok_or("The request must contain the parameter cidrIp")?;
            let parsed = crate::cidr::Cidr::parse(cidr)
                .ok_or_else(|| format!("CIDR block {cidr} is malformed"))?;
            out.push((
                proto.to_string(),
                from,
                to,
                Peer::Cidr(parsed.to_string()),
                r.description.clone(),
            ));
        }
        for g in &p.groups {
            out.push((
                proto.to_string(),
                from,
                to,
                Peer::Group(group(g)?),
                g.description.clone(),
            ));
        }
    }
    Ok(out)
}

/// The port range of a rule: required and within 0-65535 for tcp and udp, ICMP type and code (-1 for any) for
/// icmp, none for every protocol.
fn ports(
    proto: &str,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(Option<i32>, Option<i32>), String> {
    match proto {
        "-1" => Ok((None, None)),
        "icmp" => {
            let (from, to) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&from) || !(-1..=255).contains(&to) {
                return Err(format!(
                    "Invalid value '{from}' for ICMP type or '{to}' for code"
                ));
            }
            Ok((Some(from), Some(to)))
        }
        _ => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(format!(
                    "Invalid value for portRange. Must specify both from and to ports with {}.",
                    proto.to_uppercase()
                ));
            };
            if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
                return Err(format!("Invalid value for portRange. Must be within 0-65535 and from {from} not above to {to}."));
            }
            Ok((Some(from), Some(to)))
        }
    }
}

/// How EC2 names a rule in its duplicate error: `peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW`.
pub fn describe(spec: &RuleSpec) -> String {
    let (proto, from, to, peer, _) = spec;
    let peer = match peer {
        Peer::Cidr(c) => c.clone(),
        Peer::Group(g) => g.clone(),
    };
    let proto = if proto == "-1" {
        "ALL".to_string()
    } else {
        proto.to_uppercase()
    };
    match (from, to) {
        (Some(f), Some(t)) => format!("peer: {peer}, {proto}, from port: {f}, to port: {t}, ALLOW"),
        _ => format!("peer: {peer}, {proto}, ALLOW"),
    }
}

/// The rules grouped back into `IpPermissions` (wire names), one per protocol and port range, in rule order.
pub fn permissions_of(rules: &[SecurityGroupRule], owner: &str) -> Vec<Value> {
    let mut groups: Vec<((String, Option<i32>, Option<i32>), Vec<&SecurityGroupRule>)> = Vec::new();
    for r in rules {
        let key = (r.ip_protocol.clone(), r.from_port, r.to_port);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    groups
        .into_iter()
        .map(|((proto, from, to), members)| {
            let ranges: Vec<Value> = members
                .iter()
                .filter_map(|r| match &r.peer {
                    Peer::Cidr(c) => Some(json!({"cidrIp": c, "description": r.description})),
                    Peer::Group(_) => None,
                })
                .collect();
            let pairs: Vec<Value> = members
                .iter()
                .filter_map(|r| match &r.peer {
                    Peer::Group(g) => {
                        Some(json!({"groupId": g, "userId": owner, "description": r.description}))
                    }
                    Peer::Cidr(_) => None,
                })
                .collect();
            json!({
                "ipProtocol": proto,
                "fromPort": from,
                "toPort": to,
                "groups": pairs,
                "ipRanges": ranges,
                "ipv6Ranges": [],
                "prefixListIds": [],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(
        proto: &str,
        from: Option<i32>,
        to: Option<i32>,
        cidrs: &[&str],
        groups: &[&str],
    ) -> IpPermission {
        IpPermission {
            ip_protocol: Some(proto.into()),
            from_port: from,
            to_port: to,
            ip_ranges: cidrs
                .iter()
                .map(|c| IpRange {
                    cidr_ip: Some(c.to_string()),
                    description: None,
                })
                .collect(),
            groups: groups
                .iter()
                .map(|g| GroupPair {
                    group_id: Some(g.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn by_id(g: &GroupPair) -> Result<String, String> {
        g.group_id.clone().ok_or_else(|| "no id".to_string())
    }

    fn rule(spec: RuleSpec, n: usize) -> SecurityGroupRule {
        let (ip_protocol, from_port, to_port, peer, description) = spec;
        SecurityGroupRule {
            rule_id: format!("sgr-{n}"),
            ip_protocol,
            from_port,
            to_port,
            peer,
            description,
        }
    }

    #[test]
    fn a_permission_becomes_a_rule_per_peer_and_groups_back() {
        let specs = rules_of(
            &[
                perm(
                    "tcp",
                    Some(80),
                    Some(80),
                    &["10.0.0.0/8", "0.0.0.0/0"],
                    &["sg-1"],
                ),
                perm("6", Some(443), Some(443), &["10.0.0.0/8"], &[]),
            ],
            by_id,
        )
        .unwrap();
        assert_eq!(specs.len(), 4);
        assert_eq!(specs[0].0, "tcp");
        assert_eq!(
            describe(&specs[1]),
            "peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW"
        );
        let rules: Vec<_> = specs
            .into_iter()
            .enumerate()
            .map(|(i, s)| rule(s, i))
            .collect();
        let perms = permissions_of(&rules, "000000000000");
        assert_eq!(perms.len(), 2);
        assert_eq!(perms[0]["ipRanges"].as_array().unwrap().len(), 2);
        assert_eq!(perms[0]["groups"][0]["groupId"], "sg-1");
        assert_eq!(perms[1]["fromPort"], 443);
    }

    #[test]
    fn every_protocol_has_no_ports_and_bad_input_is_refused() {
        let all = rules_of(&[perm("-1", Some(5), Some(9), &["0.0.0.0/0"], &[])], by_id).unwrap();
        assert_eq!((all[0].1, all[0].2), (None, None));
        assert_eq!(describe(&all[0]), "peer: 0.0.0.0/0, ALL, ALLOW");
        let icmp = rules_of(&[perm("icmp", None, None, &["0.0.0.0/0"], &[])], by_id).unwrap();
        assert_eq!((icmp[0].1, icmp[0].2), (Some(-1), Some(-1)));
        for bad in [
            perm("tcp", Some(80), None, &["0.0.0.0/0"], &[]),
            perm("tcp", Some(90), Some(80), &["0.0.0.0/0"], &[]),
            perm("udp", Some(0), Some(70000), &["0.0.0.0/0"], &[]),
            perm("gre", None, None, &["0.0.0.0/0"], &[]),
            perm("tcp", Some(80), Some(80), &["10.0.0.1/8"], &[]),
            perm("tcp", Some(80), Some(80), &[], &[]),
        ] {
            assert!(rules_of(&[bad.clone()], by_id).is_err(), "{bad:?}");
        }
    }
}
