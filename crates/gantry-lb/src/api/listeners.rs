//! CreateListener, DescribeListeners, ModifyListener, DeleteListener. A listener is bound on its load balancer's
//! address before it is stored: a port that cannot be opened is an error of the call, not a silent listener.

use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::actions::check_actions;
use super::certificates;
use super::page::page;
use super::validate;
use crate::errors::{LbError, Result};
use crate::keys::{self, ResourceArn};
use crate::model::{Action, Certificate, Listener, ListenerRecord, LoadBalancerRecord, Tag};
use crate::service::{answer, encode, LbService};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    pub load_balancer_arn: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default)]
    pub ssl_policy: Option<String>,
    #[serde(default)]
    pub certificates: Option<Vec<Certificate>>,
    pub default_actions: Vec<Action>,
    #[serde(default)]
    pub alpn_policy: Option<Vec<String>>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
}

/// The protocol a listener of this load balancer may have.
fn check_protocol(lb: &LoadBalancerRecord, protocol: &str) -> Result<()> {
    validate::one_of(
        protocol,
        "protocol",
        &[
            "HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC",
        ],
    )?;
    let allowed: &[&str] = if lb.load_balancer.kind == "network" {
        &["TCP", "TLS", "UDP", "TCP_UDP"]
    } else {
        &["HTTP", "HTTPS"]
    };
    if !allowed.contains(&protocol) {
        return Err(LbError::UnsupportedProtocol(format!(
            "Protocol '{protocol}' is not supported by {} load balancers",
            lb.load_balancer.kind
        )));
    }
    if matches!(protocol, "UDP" | "TCP_UDP") {
        return Err(LbError::UnsupportedProtocol(format!(
            "Protocol '{protocol}' is not supported by Gantry yet (HTTP, HTTPS, TCP and TLS are)"
        )));
    }
    Ok(())
}

/// The TLS settings of a listener of `protocol`: (default certificate, SSL policy, ALPN policy), all `None` for
/// protocols without TLS, where giving any is an error.
type TlsSettings = (
    Option<Vec<Certificate>>,
    Option<String>,
    Option<Vec<String>>,
);

fn tls_settings<S: Store>(
    svc: &LbService<S>,
    region: &str,
    protocol: &str,
    certificates: Option<Vec<Certificate>>,
    ssl_policy: Option<String>,
    alpn_policy: Option<Vec<String>>,
) -> Result<TlsSettings> {
    let alpn = alpn_policy.unwrap_or_default();
    if !certificates::is_tls(protocol) {
        if certificates.as_ref().is_some_and(|c| !c.is_empty()) || ssl_policy.is_some() {
            return Err(LbError::InvalidConfiguration(format!(
                "Certificates and SSL policies are for HTTPS and TLS listeners, not {protocol}"
            )));
        }
        certificates::check_alpn_policy(protocol, &alpn)?;
        return Ok((None, None, None));
    }
    let policy = ssl_policy.unwrap_or_else(|| certificates::DEFAULT_SSL_POLICY.to_string());
    certificates::check_ssl_policy(&policy)?;
    let default = certificates::default_certificate(svc, region, protocol, certificates)?;
    let alpn = certificates::check_alpn_policy(protocol, &alpn)?;
    Ok((Some(default), Some(policy), alpn))
}

pub async fn create<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: CreateInput,
) -> Result<Value> {
    let region = &scope.region;
    let tags = input.tags.unwrap_or_default();
    validate::tags(&tags)?;
    let _w = svc.writes.lock().await;
    let lb = svc.load_balancer_by_arn(region, &input.load_balancer_arn)?;
    let protocol = input
        .protocol
        .ok_or_else(|| LbError::Validation("A listener protocol must be specified".into()))?;
    check_protocol(&lb, &protocol)?;
    let port = validate::port(
        input
            .port
            .ok_or_else(|| LbError::Validation("A listener port must be specified".into()))?,
        "port",
    )?;
    let (certificates, ssl_policy, alpn_policy) = tls_settings(
        svc,
        region,
        &protocol,
        input.certificates,
        input.ssl_policy,
        input.alpn_policy,
    )?;
    check_actions(svc, region, &lb, &input.default_actions, true)?;
    let name = &lb.load_balancer.load_balancer_name;
    let existing: Vec<ListenerRecord> = svc.list(&keys::listeners(region, name));
    if let Some(same) = existing.iter().find(|l| l.listener.port == port) {
        // The same listener again is answered as it is, as ELBv2 does.
        if same.listener.protocol == protocol
            && same.listener.default_actions == normalized(input.default_actions.clone())
            && same.listener.certificates == certificates
            && same.listener.ssl_policy == ssl_policy
        {
            return Ok(json!({"Listeners": [answer(&same.listener)]}));
        }
        return Err(LbError::DuplicateListener(input.load_balancer_arn));
    }
    let id = keys::new_id();
    let listener = Listener {
        listener_arn: keys::listener_arn(&lb.load_balancer.load_balancer_arn, &id),
        load_balancer_arn: lb.load_balancer.load_balancer_arn.clone(),
        port,
        protocol,
        certificates,
        ssl_policy,
        default_actions: normalized(input.default_actions),
        alpn_policy,
    };
    let record = ListenerRecord {
        listener: listener.clone(),
        tags,
        default_rule_id: keys::new_id(),
        default_rule_tags: Vec::new(),
        extra_certificates: Vec::new(),
    };
    svc.data_plane.open(&lb.address, &record).await?;
    let committed = svc
        .commit(Txn::new().put(keys::listener(region, name, &id), encode(&record)))
        .await;
    if let Err(e) = committed {
        svc.data_plane.close(&listener.listener_arn).await;
        return Err(e);
    }
    svc.data_plane.refresh();
    Ok(json!({"Listeners": [answer(&listener)]}))
}

/// Actions in their order: `Order` given or by position, as ELBv2 answers them.
pub fn normalized(mut actions: Vec<Action>) -> Vec<Action> {
    for (i, a) in actions.iter_mut().enumerate() {
        a.order.get_or_insert(i as u32 + 1);
        // A forward to one target group is answered with its ForwardConfig too.
        if a.kind == "forward" && a.forward_config.is_none() {
            if let Some(tg) = &a.target_group_arn {
                a.forward_config = Some(crate::model::ForwardActionConfig {
                    target_groups: Some(vec![crate::model::TargetGroupTuple {
                        target_group_arn: Some(tg.clone()),
                        weight: Some(1),
                    }]),
                    target_group_stickiness_config: Some(
                        crate::model::TargetGroupStickinessConfig {
                            enabled: Some(false),
                            duration_seconds: None,
                        },
                    ),
                });
            }
        }
        if a.kind == "forward" && a.target_group_arn.is_none() {
            let tgs = a
                .forward_config
                .as_ref()
                .and_then(|f| f.target_groups.clone())
                .unwrap_or_default();
            if tgs.len() == 1 {
                a.target_group_arn = tgs[0].target_group_arn.clone();
            }
        }
    }
    actions.sort_by_key(|a| a.order);
    actions
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeInput {
    pub load_balancer_arn: Option<String>,
    pub listener_arns: Option<Vec<String>>,
    pub marker: Option<String>,
    pub page_size: Option<u32>,
}

pub fn describe<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: DescribeInput,
) -> Result<Value> {
    let region = &scope.region;
    let arns = input.listener_arns.unwrap_or_default();
    let chosen: Vec<ListenerRecord> = match (&input.load_balancer_arn, arns.is_empty()) {
        (Some(_), false) => {
            return Err(LbError::Validation(
                "A load balancer ARN and listener ARNs cannot be specified at the same time".into(),
            ))
        }
        (Some(lb), true) => {
            let lb = svc.load_balancer_by_arn(region, lb)?;
            svc.list(&keys::listeners(
                region,
                &lb.load_balancer.load_balancer_name,
            ))
        }
        (None, false) => arns
            .iter()
            .map(|a| svc.listener_by_arn(region, a))
            .collect::<Result<_>>()?,
        (None, true) => {
            return Err(LbError::Validation(
                "A load balancer ARN or listener ARNs must be specified".into(),
            ))
        }
    };
    let p = page(chosen, input.marker.as_deref(), input.page_size)?;
    let list: Vec<Value> = p.items.iter().map(|l| answer(&l.listener)).collect();
    Ok(json!({"Listeners": list, "NextMarker": p.next_marker}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyInput {
    pub listener_arn: String,
    #[serde(default)]
    pub port: Option<u32>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub ssl_policy: Option<String>,
    #[serde(default)]
    pub certificates: Option<Vec<Certificate>>,
    #[serde(default)]
    pub default_actions: Option<Vec<Action>>,
    #[serde(default)]
    pub alpn_policy: Option<Vec<String>>,
}

pub async fn modify<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ModifyInput,
) -> Result<Value> {
    let region = &scope.region;
    let _w = svc.writes.lock().await;
    let mut record = svc.listener_by_arn(region, &input.listener_arn)?;
    let lb = svc.load_balancer_by_arn(region, &record.listener.load_balancer_arn)?;
    let was = record.listener.clone();
    if let Some(p) = input.protocol {
        check_protocol(&lb, &p)?;
        record.listener.protocol = p;
    }
    let protocol = record.listener.protocol.clone();
    // What the call leaves out is kept while the listener stays a TLS one.
    let keep = certificates::is_tls(&protocol) && certificates::is_tls(&was.protocol);
    let (certs, policy, alpn) = tls_settings(
        svc,
        region,
        &protocol,
        input
            .certificates
            .or_else(|| keep.then(|| was.certificates.clone()).flatten()),
        input
            .ssl_policy
            .or_else(|| keep.then(|| was.ssl_policy.clone()).flatten()),
        input
            .alpn_policy
            .or_else(|| keep.then(|| was.alpn_policy.clone()).flatten()),
    )?;
    record.listener.certificates = certs;
    record.listener.ssl_policy = policy;
    record.listener.alpn_policy = alpn;
    if !certificates::is_tls(&protocol) {
        record.extra_certificates.clear();
    }
    let reopen = was.protocol != protocol;
    if let Some(actions) = input.default_actions {
        check_actions(svc, region, &lb, &actions, true)?;
        record.listener.default_actions = normalized(actions);
    }
    let name = &lb.load_balancer.load_balancer_name;
    let moved = match input.port {
        Some(p) => {
            let port = validate::port(p, "port")?;
            let others: Vec<ListenerRecord> = svc.list(&keys::listeners(region, name));
            if others.iter().any(|l| {
                l.listener.port == port && l.listener.listener_arn != record.listener.listener_arn
            }) {
                return Err(LbError::DuplicateListener(
                    lb.load_balancer.load_balancer_arn.clone(),
                ));
            }
            let moved = port != record.listener.port;
            record.listener.port = port;
            moved
        }
        None => false,
    };
    if moved || reopen {
        // The new port is opened before the change is stored; the old one closes after.
        svc.data_plane.reopen(&lb.address, &record).await?;
    }
    let Some(ResourceArn::Listener { id, .. }) = ResourceArn::parse(&record.listener.listener_arn)
    else {
        return Err(LbError::ListenerNotFound);
    };
    svc.commit(Txn::new().put(keys::listener(region, name, &id), encode(&record)))
        .await?;
    svc.data_plane.refresh();
    Ok(json!({"Listeners": [answer(&record.listener)]}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnInput {
    pub listener_arn: String,
}

pub async fn delete<S: Store>(svc: &LbService<S>, scope: &Scope, input: ArnInput) -> Result<Value> {
    let region = &scope.region;
    let _w = svc.writes.lock().await;
    let record = svc.listener_by_arn(region, &input.listener_arn)?;
    let Some(ResourceArn::Listener { lb, id, .. }) =
        ResourceArn::parse(&record.listener.listener_arn)
    else {
        return Err(LbError::ListenerNotFound);
    };
    let txn = Txn::new()
        .delete(keys::listener(region, &lb, &id))
        .delete_prefix(keys::rules(region, &lb, &id));
    svc.commit(txn).await?;
    svc.data_plane.close(&input.listener_arn).await;
    svc.data_plane.refresh();
    Ok(json!({}))
}
