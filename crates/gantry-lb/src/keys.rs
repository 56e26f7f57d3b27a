//! Store keys and ARNs of the ELBv2 resources. A listener's and a rule's keys are under their load balancer's name,
//! so that deleting a load balancer deletes them by prefix; every key can be made from the resource's ARN.

use gantry_model::{Arn, Scope};

pub const SERVICE: &str = "elasticloadbalancing";

pub fn load_balancer(region: &str, name: &str) -> String {
    format!("/elbv2/{region}/loadbalancers/{name}")
}

pub fn load_balancers(region: &str) -> String {
    format!("/elbv2/{region}/loadbalancers/")
}

pub fn target_group(region: &str, name: &str) -> String {
    format!("/elbv2/{region}/targetgroups/{name}")
}

pub fn target_groups(region: &str) -> String {
    format!("/elbv2/{region}/targetgroups/")
}

pub fn listeners(region: &str, lb: &str) -> String {
    format!("/elbv2/{region}/listeners/{lb}/")
}

pub fn all_listeners(region: &str) -> String {
    format!("/elbv2/{region}/listeners/")
}

pub fn listener(region: &str, lb: &str, id: &str) -> String {
    format!("/elbv2/{region}/listeners/{lb}/{id}")
}

pub fn rules(region: &str, lb: &str, listener: &str) -> String {
    format!("/elbv2/{region}/rules/{lb}/{listener}/")
}

pub fn rules_of_load_balancer(region: &str, lb: &str) -> String {
    format!("/elbv2/{region}/rules/{lb}/")
}

pub fn rule(region: &str, lb: &str, listener: &str, id: &str) -> String {
    format!("/elbv2/{region}/rules/{lb}/{listener}/{id}")
}

/// 16 hex digits, as ELBv2 ids are.
pub fn new_id() -> String {
    gantry_model::new_id()[16..].to_string()
}

/// `app` or `net`, as in the ARNs of load balancers of that type.
pub fn type_prefix(kind: &str) -> &'static str {
    if kind == "network" {
        "net"
    } else {
        "app"
    }
}

pub fn load_balancer_arn(scope: &Scope, kind: &str, name: &str, id: &str) -> String {
    scope.arn(
        SERVICE,
        &format!("loadbalancer/{}/{name}/{id}", type_prefix(kind)),
    )
}

pub fn target_group_arn(scope: &Scope, name: &str, id: &str) -> String {
    scope.arn(SERVICE, &format!("targetgroup/{name}/{id}"))
}

/// What an ARN of this service names, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceArn {
    LoadBalancer {
        region: String,
        name: String,
        id: String,
    },
    TargetGroup {
        region: String,
        name: String,
        id: String,
    },
    Listener {
        region: String,
        lb: String,
        lb_id: String,
        id: String,
    },
    Rule {
        region: String,
        lb: String,
        lb_id: String,
        listener: String,
        id: String,
    },
}

impl ResourceArn {
    pub fn parse(arn: &str) -> Option<ResourceArn> {
        let a = Arn::parse(arn)?;
        if a.service != SERVICE {
            return None;
        }
        let region = a.region;
        let parts: Vec<&str> = a.resource.split('/').collect();
        let ok = |s: &&str| !s.is_empty();
        if !parts.iter().all(ok) {
            return None;
        }
        let typed = |t: &str| t == "app" || t == "net";
        Some(match parts.as_slice() {
            ["loadbalancer", t, name, id] if typed(t) => ResourceArn::LoadBalancer {
                region,
                name: name.to_string(),
                id: id.to_string(),
            },
            ["targetgroup", name, id] => ResourceArn::TargetGroup {
                region,
                name: name.to_string(),
                id: id.to_string(),
            },
            ["listener", t, lb, lb_id, id] if typed(t) => ResourceArn::Listener {
                region,
                lb: lb.to_string(),
                lb_id: lb_id.to_string(),
                id: id.to_string(),
            },
            ["listener-rule", t, lb, lb_id, listener, id] if typed(t) => ResourceArn::Rule {
                region,
                lb: lb.to_string(),
                lb_id: lb_id.to_string(),
                listener: listener.to_string(),
                id: id.to_string(),
            },
            _ => return None,
        })
    }
}

/// The listener's ARN under its load balancer's: `listener/app/{name}/{lb id}/{id}`.
pub fn listener_arn(load_balancer_arn: &str, id: &str) -> String {
    format!(
        "{}/{id}",
        load_balancer_arn.replacen(":loadbalancer/", ":listener/", 1)
    )
}

/// The rule's ARN under its listener's: `listener-rule/app/{name}/{lb id}/{listener id}/{id}`.
pub fn rule_arn(listener_arn: &str, id: &str) -> String {
    format!(
        "{}/{id}",
        listener_arn.replacen(":listener/", ":listener-rule/", 1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_parse_back() {
        let scope = Scope::new("us-east-1", "000000000000");
        let lb = load_balancer_arn(&scope, "application", "web", "0123456789abcdef");
        assert_eq!(
            lb,
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"
        );
        let l = listener_arn(&lb, "aa");
        let r = rule_arn(&l, "bb");
        assert_eq!(
            ResourceArn::parse(&r),
            Some(ResourceArn::Rule {
                region: "us-east-1".into(),
                lb: "web".into(),
                lb_id: "0123456789abcdef".into(),
                listener: "aa".into(),
                id: "bb".into()
            })
        );
        assert!(matches!(
            ResourceArn::parse(&l),
            Some(ResourceArn::Listener { .. })
        ));
        let tg = target_group_arn(&scope, "tg", "01");
        assert!(matches!(
            ResourceArn::parse(&tg),
            Some(ResourceArn::TargetGroup { .. })
        ));
        assert_eq!(
            ResourceArn::parse("arn:aws:ecs:us-east-1:0:cluster/x"),
            None
        );
        assert_eq!(ResourceArn::parse("nonsense"), None);
        assert_eq!(
            ResourceArn::parse("arn:aws:elasticloadbalancing:r:0:loadbalancer/app//x"),
            None
        );
        assert_eq!(new_id().len(), 16);
    }
}
