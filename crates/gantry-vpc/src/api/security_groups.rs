//! Security groups and their rules: Create/Describe/DeleteSecurityGroup, Authorize/RevokeSecurityGroupIngress and
//! Egress, DescribeSecurityGroupRules.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{filtered, tag_set, tags_for, TagSpecification};
use crate::errors::{Result, VpcError};
use crate::filters::{tag_values, Filter, Filterable};
use crate::model::{Peer, SecurityGroupRecord, SecurityGroupRule};
use crate::permissions::{self, GroupPair, IpPermission, IpRange};
use crate::service::{encode, keys, new_id, VpcService};
use gantry_store::{Store, Txn};

#[derive(Debug, Default, Deserialize)]
pub struct CreateInput {
    #[serde(rename = "GroupName")]
    pub group_name: Option<String>,
    #[serde(rename = "GroupDescription")]
    pub description: Option<String>,
    #[serde(rename = "VpcId")]
    pub vpc_id: Option<String>,
    #[serde(rename = "TagSpecification", default)]
    pub tag_specifications: Vec<TagSpecification>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeInput {
    #[serde(rename = "GroupId", default)]
    pub group_ids: Vec<String>,
    #[serde(rename = "GroupName", default)]
    pub group_names: Vec<String>,
    #[serde(rename = "Filter", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i32>,
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteInput {
    #[serde(rename = "GroupId")]
    pub group_id: Option<String>,
    #[serde(rename = "GroupName")]
    pub group_name: Option<String>,
}

/// The input of the four Authorize/Revoke calls: `IpPermissions`, or the older single-rule parameters.
#[derive(Debug, Default, Deserialize)]
pub struct RulesInput {
    #[serde(rename = "GroupId")]
    pub group_id: Option<String>,
    #[serde(rename = "GroupName")]
    pub group_name: Option<String>,
    #[serde(rename = "IpPermissions", default)]
    pub ip_permissions: Vec<IpPermission>,
    #[serde(rename = "IpProtocol")]
    pub ip_protocol: Option<String>,
    #[serde(rename = "FromPort")]
    pub from_port: Option<i32>,
    #[serde(rename = "ToPort")]
    pub to_port: Option<i32>,
    #[serde(rename = "CidrIp")]
    pub cidr_ip: Option<String>,
    #[serde(rename = "SourceSecurityGroupName")]
    pub source_group_name: Option<String>,
    #[serde(rename = "SecurityGroupRuleId", default)]
    pub rule_ids: Vec<String>,
    #[serde(rename = "TagSpecification", default)]
    pub tag_specifications: Vec<TagSpecification>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DescribeRulesInput {
    #[serde(rename = "SecurityGroupRuleId", default)]
    pub rule_ids: Vec<String>,
    #[serde(rename = "Filter", default)]
    pub filters: Vec<Filter>,
    #[serde(rename = "MaxResults")]
    pub max_results: Option<i32>,
    #[serde(rename = "NextToken")]
    pub next_token: Option<String>,
}

impl Filterable for SecurityGroupRecord {
    fn filter_values(&self, name: &str) -> Vec<String> {
        if let Some(v) = tag_values(&self.tags, name) {
            return v;
        }
        match name {
            "group-id" => vec![self.group_id.clone()],
            "group-name" => vec![self.group_name.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            "description" => vec![self.description.clone()],
            _ => vec![],
        }
    }
}

const FILTERS: &[&str] = &[
    "group-id",
    "group-name",
    "vpc-id",
    "description",
    "owner-id",
    "tag-key",
    "tag-value",
];

fn render(g: &SecurityGroupRecord, region: &str, owner: &str) -> Value {
    json!({
        "groupId": g.group_id,
        "groupName": g.group_name,
        "groupDescription": g.description,
        "vpcId": g.vpc_id,
        "ownerId": owner,
        "securityGroupArn": format!("arn:aws:ec2:{region}:{owner}:security-group/{}", g.group_id),
        "ipPermissions": permissions::permissions_of(&g.ingress, owner),
        "ipPermissionsEgress": permissions::permissions_of(&g.egress, owner),
        "tagSet": tag_set(&g.tags),
    })
}

/// One rule as DescribeSecurityGroupRules and Authorize answer it.
fn render_rule(g: &SecurityGroupRecord, r: &SecurityGroupRule, egress: bool, owner: &str) -> Value {
    let (cidr, group) = match &r.peer {
        Peer::Cidr(c) => (Some(c.clone()), None),
        Peer::Group(id) => (None, Some(json!({"groupId": id, "userId": owner}))),
    };
    json!({
        "securityGroupRuleId": r.rule_id,
        "groupId": g.group_id,
        "groupOwnerId": owner,
        "isEgress": egress,
        "ipProtocol": r.ip_protocol,
        "fromPort": r.from_port.unwrap_or(-1),
        "toPort": r.to_port.unwrap_or(-1),
        "cidrIpv4": cidr,
        "referencedGroupInfo": group,
        "description": r.description,
        "tagSet": [],
    })
}

impl<S: Store> VpcService<S> {
    /// The group a call names by id, or by name in the default VPC (as EC2 finds names without a VPC).
    fn named_group(
        &self,
        region: &str,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<SecurityGroupRecord> {
        match (id, name) {
            (Some(id), _) => {
                super::check_id(id, "sg", VpcError::GroupNotFound)?;
                self.security_group(region, id)
            }
            (None, Some(name)) => {
                let default = self.vpcs(region).into_iter().find(|v| v.is_default);
                let vpc = default.map(|v| v.vpc_id).unwrap_or_default();
                self.security_groups(region)
                    .into_iter()
                    .find(|g| g.group_name == name && g.vpc_id == vpc)
                    .ok_or_else(|| VpcError::GroupNameNotFound(name.into(), vpc))
            }
            (None, None) => Err(VpcError::MissingParameter("GroupId")),
        }
    }

    fn put_group(&self, region: &str, g: &SecurityGroupRecord) -> Txn {
        Txn::new().put(
            format!("{}{}", keys::security_groups(region), g.group_id),
            encode(g),
        )
    }
}

pub async fn create<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: CreateInput,
) -> Result<Value> {
    let name = input
        .group_name
        .ok_or(VpcError::MissingParameter("GroupName"))?;
    let description = input
        .description
        .ok_or(VpcError::MissingParameter("GroupDescription"))?;
    if name.is_empty() || name.len() > 255 || description.len() > 255 {
        return Err(VpcError::InvalidParameterValue(
            "Group names and descriptions must be 1 to 255 characters".into(),
        ));
    }
    if name.starts_with("sg-") {
        return Err(VpcError::InvalidParameterValue(
            "Group names may not be in the format sg-*".into(),
        ));
    }
    if name.eq_ignore_ascii_case("default") {
        return Err(VpcError::GroupReserved(name));
    }
    let tags = tags_for(&input.tag_specifications, "security-group")?;
    let _w = svc.writes.lock().await;
    let vpc = match input.vpc_id {
        Some(id) => svc.vpc(region, &id)?,
        None => svc
            .vpcs(region)
            .into_iter()
            .find(|v| v.is_default)
            .ok_or(VpcError::MissingParameter("VpcId"))?,
    };
    if svc
        .security_groups(region)
        .iter()
        .any(|g| g.vpc_id == vpc.vpc_id && g.group_name == name)
    {
        return Err(VpcError::GroupDuplicate(name, vpc.vpc_id));
    }
    // A new group lets everything out and nothing in, as on AWS.
    let group = SecurityGroupRecord {
        group_id: new_id("sg"),
        group_name: name,
        description,
        vpc_id: vpc.vpc_id,
        ingress: vec![],
        egress: vec![SecurityGroupRule {
            rule_id: new_id("sgr"),
            ip_protocol: "-1".into(),
            from_port: None,
            to_port: None,
            peer: Peer::Cidr("0.0.0.0/0".into()),
            description: None,
        }],
        tags,
    };
    svc.commit(svc.put_group(region, &group)).await?;
    Ok(json!({
        "groupId": group.group_id,
        "securityGroupArn": format!("arn:aws:ec2:{region}:{}:security-group/{}", svc.account, group.group_id),
        "tagSet": tag_set(&group.tags),
    }))
}

pub fn describe<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DescribeInput,
) -> Result<Value> {
    let mut groups = Vec::new();
    for id in &input.group_ids {
        groups.push(svc.named_group(region, Some(id), None)?);
    }
    for name in &input.group_names {
        groups.push(svc.named_group(region, None, Some(name))?);
    }
    if input.group_ids.is_empty() && input.group_names.is_empty() {
        groups = svc.security_groups(region);
    }
    let (items, next) = filtered(
        groups,
        &input.filters,
        FILTERS,
        input.max_results,
        input.next_token.as_deref(),
        |g| render(g, region, &svc.account),
    )?;
    Ok(json!({"securityGroupInfo": items, "nextToken": next}))
}

pub async fn delete<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DeleteInput,
) -> Result<Value> {
    let _w = svc.writes.lock().await;
    let g = svc.named_group(
        region,
        input.group_id.as_deref(),
        input.group_name.as_deref(),
    )?;
    if g.group_name == "default" {
        return Err(VpcError::CannotDeleteDefaultGroup(g.group_id));
    }
    let referenced = svc.security_groups(region).iter().any(|other| {
        other.group_id != g.group_id
            && other
                .ingress
                .iter()
                .chain(&other.egress)
                .any(|r| r.peer == Peer::Group(g.group_id.clone()))
    });
    let attached = svc
        .list::<crate::model::NetworkInterfaceRecord>(&keys::network_interfaces(region))
        .iter()
        .any(|n| n.groups.contains(&g.group_id));
    if referenced || attached {
        return Err(VpcError::DependencyViolation("security group", g.group_id));
    }
    svc.commit(Txn::new().delete(format!("{}{}", keys::security_groups(region), g.group_id)))
        .await?;
    Ok(json!({"return": true, "groupId": g.group_id}))
}

/// The permissions a call gives, in either form.
fn permissions_of(input: &RulesInput) -> Result<Vec<IpPermission>> {
    if !input.ip_permissions.is_empty() {
        if input.ip_protocol.is_some()
            || input.cidr_ip.is_some()
            || input.source_group_name.is_some()
        {
            return Err(VpcError::InvalidParameterCombination(
                "The parameter 'ipPermissions' may not be used in combination with 'ipProtocol', 'cidrIp' or 'sourceSecurityGroupName'".into(),
            ));
        }
        return Ok(input.ip_permissions.clone());
    }
    let Some(protocol) = input.ip_protocol.clone() else {
        if input.source_group_name.is_some() {
            return Ok(vec![IpPermission {
                ip_protocol: Some("-1".into()),
                groups: vec![GroupPair {
                    group_name: input.source_group_name.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            }]);
        }
        return Ok(vec![]);
    };
    Ok(vec![IpPermission {
        ip_protocol: Some(protocol),
        from_port: input.from_port,
        to_port: input.to_port,
        ip_ranges: input
            .cidr_ip
            .iter()
            .map(|c| IpRange {
                cidr_ip: Some(c.clone()),
                description: None,
            })
            .collect(),
        groups: input
            .source_group_name
            .iter()
            .map(|n| GroupPair {
                group_name: Some(n.clone()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }])
}

/// The rules of `perms` for a group of `vpc_id`: source groups by id (any of the region's groups in the same VPC)
/// or by name in that VPC.
fn specs<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    vpc_id: &str,
    perms: &[IpPermission],
) -> Result<Vec<permissions::RuleSpec>> {
    let groups = svc.security_groups(region);
    permissions::rules_of(perms, |pair| {
        let found = groups.iter().find(|g| match (&pair.group_id, &pair.group_name) {
            (Some(id), _) => &g.group_id == id,
            (None, Some(name)) => &g.group_name == name && g.vpc_id == vpc_id,
            (None, None) => false,
        });
        match found {
            Some(g) if g.vpc_id == vpc_id => Ok(g.group_id.clone()),
            Some(g) => Err(format!("You have specified two resources that belong to different networks: {} and {vpc_id}", g.group_id)),
            None => Err(format!(
                "The security group '{}' does not exist",
                pair.group_id.clone().or(pair.group_name.clone()).unwrap_or_default()
            )),
        }
    })
    .map_err(|message| match message {
        m if m.contains("does not exist") => VpcError::GroupNotFound(m.split('\'').nth(1).unwrap_or_default().into()),
        m => VpcError::InvalidParameterValue(m),
    })
}

pub async fn authorize<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    ingress: bool,
    input: RulesInput,
) -> Result<Value> {
    let perms = permissions_of(&input)?;
    if perms.is_empty() {
        return Err(VpcError::MissingParameter("IpPermissions"));
    }
    let _w = svc.writes.lock().await;
    let mut g = svc.named_group(
        region,
        input.group_id.as_deref(),
        input.group_name.as_deref(),
    )?;
    let new = specs(svc, region, &g.vpc_id.clone(), &perms)?;
    let rules = if ingress {
        &mut g.ingress
    } else {
        &mut g.egress
    };
    let mut added = Vec::new();
    for spec in new {
        let rule = SecurityGroupRule {
            rule_id: new_id("sgr"),
            ip_protocol: spec.0.clone(),
            from_port: spec.1,
            to_port: spec.2,
            peer: spec.3.clone(),
            description: spec.4.clone(),
        };
        if rules
            .iter()
            .chain(&added)
            .any(|r: &SecurityGroupRule| r.allows() == rule.allows())
        {
            return Err(VpcError::PermissionDuplicate(permissions::describe(&spec)));
        }
        added.push(rule);
    }
    rules.extend(added.iter().cloned());
    svc.commit(svc.put_group(region, &g)).await?;
    let set: Vec<Value> = added
        .iter()
        .map(|r| render_rule(&g, r, !ingress, &svc.account))
        .collect();
    Ok(json!({"return": true, "securityGroupRuleSet": set}))
}

pub async fn revoke<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    ingress: bool,
    input: RulesInput,
) -> Result<Value> {
    let perms = permissions_of(&input)?;
    if perms.is_empty() && input.rule_ids.is_empty() {
        return Err(VpcError::MissingParameter("IpPermissions"));
    }
    let _w = svc.writes.lock().await;
    let mut g = svc.named_group(
        region,
        input.group_id.as_deref(),
        input.group_name.as_deref(),
    )?;
    let gone = specs(svc, region, &g.vpc_id.clone(), &perms)?;
    let rules = if ingress {
        &mut g.ingress
    } else {
        &mut g.egress
    };
    for id in &input.rule_ids {
        if !rules.iter().any(|r| &r.rule_id == id) {
            return Err(VpcError::InvalidParameterValue(format!(
                "The security group rule ID '{id}' does not exist"
            )));
        }
    }
    let before = rules.len();
    let mut revoked = Vec::new();
    let mut unknown = Vec::new();
    for spec in &gone {
        let key = (spec.0.as_str(), spec.1, spec.2, &spec.3);
        match rules.iter().position(|r| r.allows() == key) {
            Some(i) => revoked.push(rules.remove(i)),
            None => unknown.push(spec.clone()),
        }
    }
    let (by_id, kept): (Vec<_>, Vec<_>) = std::mem::take(rules)
        .into_iter()
        .partition(|r| input.rule_ids.contains(&r.rule_id));
    *rules = kept;
    revoked.extend(by_id);
    // EC2 refuses a revoke none of whose rules exist; some of them missing is answered in unknownIpPermissionSet.
    if rules.len() == before {
        return Err(VpcError::PermissionNotFound);
    }
    svc.commit(svc.put_group(region, &g)).await?;
    let unknown_rules: Vec<SecurityGroupRule> = unknown
        .into_iter()
        .map(
            |(ip_protocol, from_port, to_port, peer, description)| SecurityGroupRule {
                rule_id: String::new(),
                ip_protocol,
                from_port,
                to_port,
                peer,
                description,
            },
        )
        .collect();
    // A revoked rule names its peer group by id only (RevokedSecurityGroupRule).
    let revoked_set: Vec<Value> = revoked
        .iter()
        .map(|r| {
            let (cidr, group) = match &r.peer {
                Peer::Cidr(c) => (Some(c), None),
                Peer::Group(id) => (None, Some(id)),
            };
            json!({
                "securityGroupRuleId": r.rule_id,
                "groupId": g.group_id,
                "isEgress": !ingress,
                "ipProtocol": r.ip_protocol,
                "fromPort": r.from_port.unwrap_or(-1),
                "toPort": r.to_port.unwrap_or(-1),
                "cidrIpv4": cidr,
                "referencedGroupId": group,
                "description": r.description,
            })
        })
        .collect();
    Ok(json!({
        "return": true,
        "unknownIpPermissionSet": permissions::permissions_of(&unknown_rules, &svc.account),
        "revokedSecurityGroupRuleSet": revoked_set,
    }))
}

/// One rule with its group, for DescribeSecurityGroupRules's filters.
struct Listed {
    group: SecurityGroupRecord,
    rule: SecurityGroupRule,
    egress: bool,
}

impl Filterable for Listed {
    fn filter_values(&self, name: &str) -> Vec<String> {
        match name {
            "group-id" => vec![self.group.group_id.clone()],
            "security-group-rule-id" => vec![self.rule.rule_id.clone()],
            _ => vec![],
        }
    }
}

pub fn describe_rules<S: Store>(
    svc: &VpcService<S>,
    region: &str,
    input: DescribeRulesInput,
) -> Result<Value> {
    let mut all = Vec::new();
    for g in svc.security_groups(region) {
        for (rules, egress) in [(&g.ingress, false), (&g.egress, true)] {
            for r in rules {
                if input.rule_ids.is_empty() || input.rule_ids.contains(&r.rule_id) {
                    all.push(Listed {
                        group: g.clone(),
                        rule: r.clone(),
                        egress,
                    });
                }
            }
        }
    }
    let (items, next) = filtered(
        all,
        &input.filters,
        &["group-id", "security-group-rule-id", "tag-key", "tag-value"],
        input.max_results,
        input.next_token.as_deref(),
        |l| render_rule(&l.group, &l.rule, l.egress, &svc.account),
    )?;
    Ok(json!({"securityGroupRuleSet": items, "nextToken": next}))
}
