//! The packet filter rules that enforce awsvpc tasks' security groups. Pure: what the filter table has (as
//! `iptables -S` prints it) in, an `iptables-restore --noflush` script out, so that every change is one atomic
//! transaction and works out from the kernel's state, whatever this process remembers (after a restart, or with
//! several agents on one host).
//!
//! Layout, in the filter table:
//! - Docker's `DOCKER-USER` (first in FORWARD) jumps to `GANTRY-FORWARD`, then to `GANTRY-VPC`; INPUT jumps to
//!   `GANTRY-INPUT`, OUTPUT to `GANTRY-OUTPUT`.
//! - A task at address A has `GI-A` (what may reach it) and `GE-A` (what it may reach): replies of tracked
//!   connections and what a rule allows RETURN, the rest is dropped. Security groups are stateful, so are these.
//! - `GANTRY-FORWARD` sends traffic from A to `GE-A` and traffic to A to `GI-A`; `GANTRY-INPUT` (a task to the
//!   host) to `GE-A`; `GANTRY-OUTPUT` (the host and its load balancers, told apart by their marks, to a task) to
//!   `GI-A`.
//! - `GANTRY-VPC` accepts what passed between two subnets of one VPC: each subnet is a Docker network of its own,
//!   and Docker drops traffic between its networks.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use gantry_model::agent::{FirewallRule, TaskFirewall};

pub const FORWARD: &str = "GANTRY-FORWARD";
pub const VPC: &str = "GANTRY-VPC";
pub const INPUT: &str = "GANTRY-INPUT";
pub const OUTPUT: &str = "GANTRY-OUTPUT";
const BASE: [&str; 4] = [FORWARD, VPC, INPUT, OUTPUT];
const INGRESS_PREFIX: &str = "GI-";
const EGRESS_PREFIX: &str = "GE-";

/// What the filter table has, from `iptables -S`.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// User-defined chains (`-N`).
    chains: BTreeSet<String>,
    /// Rules (`-A ...`), as printed.
    rules: Vec<String>,
}

impl Current {
    pub fn parse(listing: &str) -> Current {
        let mut c = Current::default();
        for line in listing.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("-N ") {
                c.chains.insert(name.to_string());
            } else if line.starts_with("-A ") {
                c.rules.push(line.to_string());
            }
        }
        c
    }

    fn has_rule(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| r == rule)
    }

    /// The addresses of the tasks that have chains.
    fn tasks(&self) -> BTreeSet<Ipv4Addr> {
        self.chains
            .iter()
            .filter_map(|c| {
                c.strip_prefix(INGRESS_PREFIX)
                    .or_else(|| c.strip_prefix(EGRESS_PREFIX))
            })
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// Where the FORWARD hooks go: Docker's chain for user rules, or FORWARD itself without Docker's.
    fn hook_chain(&self) -> &'static str {
        if self.chains.contains("DOCKER-USER") {
            "DOCKER-USER"
        } else {
            "FORWARD"
        }
    }
}

fn ingress_chain(a: Ipv4Addr) -> String {
    format!("{INGRESS_PREFIX}{a}")
}

fn egress_chain(a: Ipv4Addr) -> String {
    format!("{EGRESS_PREFIX}{a}")
}

/// The rules that send a task's traffic to its chains, as `iptables -S` prints them.
fn jumps(a: Ipv4Addr) -> [String; 4] {
    let (i, e) = (ingress_chain(a), egress_chain(a));
    [
        format!("-A {FORWARD} -s {a}/32 -j {e}"),
        format!("-A {FORWARD} -d {a}/32 -j {i}"),
        format!("-A {INPUT} -s {a}/32 -j {e}"),
        format!("-A {OUTPUT} -d {a}/32 -j {i}"),
    ]
}

fn hooks(current: &Current) -> [String; 4] {
    let fwd = current.hook_chain();
    [
        format!("-A {fwd} -j {FORWARD}"),
        format!("-A {fwd} -j {VPC}"),
        format!("-A INPUT -j {INPUT}"),
        format!("-A OUTPUT -j {OUTPUT}"),
    ]
}

fn vpc_rule(cidr: &str) -> String {
    format!("-A {VPC} -s {cidr} -d {cidr} -i gs-+ -o gs-+ -j ACCEPT")
}

/// The match of one rule's protocol and ports (`ingress`: the ports are the task's, else the peer's).
fn protocol_match(rule: &FirewallRule) -> Option<String> {
    let ports = |p: &str| match (rule.from_port, rule.to_port) {
        (Some(from), Some(to)) if (0..=65535).contains(&from) && (from..=65535).contains(&to) => {
            if from == to {
                Some(format!("-p {p} -m {p} --dport {from}"))
            } else {
                Some(format!("-p {p} -m {p} --dport {from}:{to}"))
            }
        }
        (None, None) => Some(format!("-p {p}")),
        _ => None,
    };
    match rule.protocol.as_str() {
        "-1" => Some(String::new()),
        "tcp" => ports("tcp"),
        "udp" => ports("udp"),
        "icmp" => Some(match (rule.from_port, rule.to_port) {
            (Some(t), Some(c)) if t >= 0 && c >= 0 => {
                format!("-p icmp -m icmp --icmp-type {t}/{c}")
            }
            (Some(t), _) if t >= 0 => format!("-p icmp -m icmp --icmp-type {t}"),
            _ => "-p icmp".to_string(),
        }),
        // EC2 takes nothing else (see gantry-vpc's permissions): allow nothing rather than guess.
        _ => None,
    }
}

/// A task chain's rules: tracked replies and each allowed peer RETURN, the rest is dropped.
fn chain_rules(chain: &str, rules: &[FirewallRule], ingress: bool) -> Vec<String> {
    let mut out = vec![format!(
        "-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    )];
    let peer = if ingress { "-s" } else { "-d" };
    for rule in rules {
        let Some(proto) = protocol_match(rule) else {
            continue;
        };
        let proto = if proto.is_empty() {
            String::new()
        } else {
            format!(" {proto}")
        };
        for cidr in &rule.cidrs {
            out.push(format!("-A {chain} {peer} {cidr}{proto} -j RETURN"));
        }
        // Load balancers connect from the host: their marks say which one (only inbound means anything).
        if ingress {
            for mark in &rule.marks {
                out.push(format!(
                    "-A {chain}{proto} -m mark --mark {mark:#x} -j RETURN"
                ));
            }
        }
    }
    out.push(format!("-A {chain} -j DROP"));
    out
}

/// The script that makes the rules of the task at `address` what `firewall` says, adding what the host lacks
/// (the shared chains, the hooks, the task's jumps, its VPC's rule).
pub fn apply_script(current: &Current, address: Ipv4Addr, firewall: &TaskFirewall) -> String {
    let (i, e) = (ingress_chain(address), egress_chain(address));
    let mut lines = vec!["*filter".to_string()];
    for base in BASE.iter().filter(|b| !current.chains.contains(**b)) {
        lines.push(format!(":{base} - [0:0]"));
    }
    // Declaring a chain that exists flushes it: the task's rules are replaced in the same transaction.
    lines.push(format!(":{i} - [0:0]"));
    lines.push(format!(":{e} - [0:0]"));
    lines.extend(chain_rules(&i, &firewall.ingress, true));
    lines.extend(chain_rules(&e, &firewall.egress, false));
    lines.extend(jumps(address).into_iter().filter(|j| !current.has_rule(j)));
    if !firewall.vpc_cidr.is_empty() && !current.has_rule(&vpc_rule(&firewall.vpc_cidr)) {
        lines.push(vpc_rule(&firewall.vpc_cidr));
    }
    let hooks = hooks(current);
    let fwd = current.hook_chain();
    // The two FORWARD hooks go in together and in order: the VPC's accept must come after the tasks' chains.
    if !(current.has_rule(&hooks[0]) && current.has_rule(&hooks[1])) {
        lines.extend(
            hooks[..2]
                .iter()
                .filter(|h| current.has_rule(h))
                .map(|h| h.replacen("-A ", "-D ", 1)),
        );
        lines.push(format!("-I {fwd} 1 -j {VPC}"));
        lines.push(format!("-I {fwd} 1 -j {FORWARD}"));
    }
    for (chain, target) in [("INPUT", INPUT), ("OUTPUT", OUTPUT)] {
        if !current.has_rule(&format!("-A {chain} -j {target}")) {
            lines.push(format!("-I {chain} 1 -j {target}"));
        }
    }
    lines.push("COMMIT".into());
    lines.join("\n") + "\n"
}

/// The script that removes the rules of the task at `address`: its jumps and chains, its VPC's rule when no task
/// of that VPC is left, and the shared chains and hooks with the last task. `None` when there is nothing to remove.
pub fn remove_script(current: &Current, address: Ipv4Addr) -> Option<String> {
    let own = [ingress_chain(address), egress_chain(address)];
    let own: Vec<&String> = own.iter().filter(|c| current.chains.contains(*c)).collect();
    let left: Vec<Ipv4Addr> = current
        .tasks()
        .into_iter()
        .filter(|a| *a != address)
        .collect();
    let mut lines = Vec::new();
    let delete = |rule: &String| rule.replacen("-A ", "-D ", 1);
    if left.is_empty() {
        // The last task: unhook and flush the shared chains, then delete every chain. (Deleting a jump and
        // flushing its chain in one transaction makes nftables refuse the chain's deletion.)
        lines.extend(
            hooks(current)
                .iter()
                .filter(|h| current.has_rule(h))
                .map(delete),
        );
        let bases: Vec<&str> = BASE
            .iter()
            .copied()
            .filter(|b| current.chains.contains(*b))
            .collect();
        lines.extend(bases.iter().map(|b| format!("-F {b}")));
        for chain in &own {
            lines.push(format!("-F {chain}"));
            lines.push(format!("-X {chain}"));
        }
        lines.extend(bases.iter().map(|b| format!("-X {b}")));
    } else {
        lines.extend(
            jumps(address)
                .iter()
                .filter(|j| current.has_rule(j))
                .map(delete),
        );
        for chain in &own {
            lines.push(format!("-F {chain}"));
            lines.push(format!("-X {chain}"));
        }
        let vpc_prefix = format!("-A {VPC} -s ");
        for rule in current.rules.iter().filter(|r| r.starts_with(&vpc_prefix)) {
            let cidr = rule[vpc_prefix.len()..]
                .split(' ')
                .next()
                .unwrap_or_default();
            if !left.iter().any(|a| contains(cidr, *a)) {
                lines.push(delete(rule));
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    Some(format!("*filter\n{}\nCOMMIT\n", lines.join("\n")))
}

/// Whether `cidr` (`a.b.c.d/n`) holds `address`.
fn contains(cidr: &str, address: Ipv4Addr) -> bool {
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(len)) = (net.parse::<Ipv4Addr>(), len.parse::<u32>()) else {
        return false;
    };
    if len > 32 {
        return false;
    }
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(net) & mask == u32::from(address) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> TaskFirewall {
        TaskFirewall {
            vpc_cidr: "172.31.0.0/16".into(),
            ingress: vec![FirewallRule {
                protocol: "tcp".into(),
                from_port: Some(8080),
                to_port: Some(8080),
                cidrs: vec!["172.31.0.9/32".into()],
                marks: vec![0x4712_3456],
            }],
            egress: vec![FirewallRule {
                protocol: "-1".into(),
                cidrs: vec!["0.0.0.0/0".into()],
                ..Default::default()
            }],
        }
    }

    fn a() -> Ipv4Addr {
        "172.31.0.5".parse().unwrap()
    }

    /// The table after `script`, as `iptables -S` would print it (enough of it for these scripts).
    fn after(current: &Current, script: &str) -> Current {
        let mut c = current.clone();
        for line in script.lines() {
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split(' ').next().unwrap().to_string();
                c.rules.retain(|r| !r.starts_with(&format!("-A {name} ")));
                c.chains.insert(name);
            } else if line.starts_with("-A ") {
                c.rules.push(line.to_string());
            } else if let Some(rest) = line.strip_prefix("-I ") {
                let mut parts = rest.splitn(3, ' ');
                let chain = parts.next().unwrap();
                let _position = parts.next();
                let rule = format!("-A {chain} {}", parts.next().unwrap());
                let at = c
                    .rules
                    .iter()
                    .position(|r| r.starts_with(&format!("-A {chain} ")));
                c.rules.insert(at.unwrap_or(c.rules.len()), rule);
            } else if let Some(rule) = line.strip_prefix("-D ") {
                let rule = format!("-A {rule}");
                c.rules.retain(|r| *r != rule);
            } else if let Some(name) = line.strip_prefix("-X ") {
                c.chains.remove(name);
            } else if let Some(name) = line.strip_prefix("-F ") {
                c.rules.retain(|r| !r.starts_with(&format!("-A {name} ")));
            }
        }
        c
    }

    fn docker_host() -> Current {
        Current::parse(
            "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N DOCKER\n-N DOCKER-USER\n\
             -A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\n",
        )
    }

    #[test]
    fn a_task_gets_its_chains_its_jumps_and_the_hooks() {
        let script = apply_script(&docker_host(), a(), &web());
        assert!(script.starts_with("*filter\n:GANTRY-FORWARD - [0:0]\n"));
        assert!(script.ends_with("COMMIT\n"));
        for line in [
            ":GI-172.31.0.5 - [0:0]",
            "-A GI-172.31.0.5 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
            "-A GI-172.31.0.5 -s 172.31.0.9/32 -p tcp -m tcp --dport 8080 -j RETURN",
            "-A GI-172.31.0.5 -p tcp -m tcp --dport 8080 -m mark --mark 0x47123456 -j RETURN",
            "-A GI-172.31.0.5 -j DROP",
            "-A GE-172.31.0.5 -d 0.0.0.0/0 -j RETURN",
            "-A GANTRY-FORWARD -s 172.31.0.5/32 -j GE-172.31.0.5",
            "-A GANTRY-OUTPUT -d 172.31.0.5/32 -j GI-172.31.0.5",
            "-A GANTRY-VPC -s 172.31.0.0/16 -d 172.31.0.0/16 -i gs-+ -o gs-+ -j ACCEPT",
            "-I DOCKER-USER 1 -j GANTRY-FORWARD",
            "-I INPUT 1 -j GANTRY-INPUT",
        ] {
            assert!(
                script.lines().any(|l| l == line),
                "{line} missing from\n{script}"
            );
        }
        // The tasks' chains come before the VPC's accept in DOCKER-USER.
        let table = after(&docker_host(), &script);
        let hooks: Vec<&String> = table
            .rules
            .iter()
            .filter(|r| r.starts_with("-A DOCKER-USER"))
            .collect();
        assert_eq!(hooks[0], "-A DOCKER-USER -j GANTRY-FORWARD");
        assert_eq!(hooks[1], "-A DOCKER-USER -j GANTRY-VPC");
    }

    #[test]
    fn applying_again_adds_nothing_twice() {
        let once = after(&docker_host(), &apply_script(&docker_host(), a(), &web()));
        let again = apply_script(&once, a(), &web());
        assert!(!again.contains("-I "), "{again}");
        assert!(!again.contains("-A GANTRY-"), "{again}");
        assert!(!again.contains(":GANTRY-"), "{again}");
        let twice = after(&once, &again);
        assert_eq!(twice.rules.len(), once.rules.len());
    }

    #[test]
    fn a_revoked_rule_is_gone_after_the_next_apply() {
        let once = after(&docker_host(), &apply_script(&docker_host(), a(), &web()));
        let mut closed = web();
        closed.ingress.clear();
        let table = after(&once, &apply_script(&once, a(), &closed));
        let ingress: Vec<&String> = table
            .rules
            .iter()
            .filter(|r| r.starts_with("-A GI-172.31.0.5 "))
            .collect();
        assert_eq!(ingress.len(), 2, "{ingress:?}"); // tracked replies, then the drop
    }

    #[test]
    fn the_last_task_takes_everything_with_it() {
        let b: Ipv4Addr = "172.31.16.7".parse().unwrap();
        let one = after(&docker_host(), &apply_script(&docker_host(), a(), &web()));
        let two = after(&one, &apply_script(&one, b, &web()));
        let left = after(&two, &remove_script(&two, a()).unwrap());
        assert!(!left.chains.contains("GI-172.31.0.5"));
        assert!(left.chains.contains("GI-172.31.16.7") && left.chains.contains(FORWARD));
        assert!(left.rules.iter().any(|r| r.starts_with("-A GANTRY-VPC")));
        let none = after(&left, &remove_script(&left, b).unwrap());
        assert_eq!(none.chains, docker_host().chains);
        assert_eq!(none.rules, docker_host().rules);
        assert_eq!(remove_script(&none, b), None);
    }

    #[test]
    fn ports_and_protocols() {
        let rule = |protocol: &str, from, to| FirewallRule {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            ..Default::default()
        };
        assert_eq!(
            protocol_match(&rule("tcp", Some(1), Some(65535))).unwrap(),
            "-p tcp -m tcp --dport 1:65535"
        );
        assert_eq!(
            protocol_match(&rule("udp", Some(53), Some(53))).unwrap(),
            "-p udp -m udp --dport 53"
        );
        assert_eq!(
            protocol_match(&rule("icmp", Some(8), Some(-1))).unwrap(),
            "-p icmp -m icmp --icmp-type 8"
        );
        assert_eq!(
            protocol_match(&rule("icmp", Some(-1), Some(-1))).unwrap(),
            "-p icmp"
        );
        assert_eq!(protocol_match(&rule("-1", None, None)).unwrap(), "");
        assert_eq!(protocol_match(&rule("tcp", Some(90), Some(80))), None);
        assert_eq!(protocol_match(&rule("gre", None, None)), None);
    }

    #[test]
    fn cidr_containment() {
        assert!(contains("172.31.0.0/16", "172.31.200.1".parse().unwrap()));
        assert!(!contains("172.31.0.0/20", "172.31.16.1".parse().unwrap()));
        assert!(contains("0.0.0.0/0", "10.0.0.1".parse().unwrap()));
        assert!(!contains("garbage", "10.0.0.1".parse().unwrap()));
    }
}
