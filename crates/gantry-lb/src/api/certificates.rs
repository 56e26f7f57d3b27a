//! The TLS side of HTTPS and TLS listeners: the default certificate and SSL policy they are created with, and
//! AddListenerCertificates, RemoveListenerCertificates, DescribeListenerCertificates for the others, chosen by SNI.

use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::limits::SSL_POLICIES;
use super::page::page;
use crate::acm::CertificateRecord;
use crate::errors::{LbError, Result};
use crate::keys::{self, ResourceArn};
use crate::model::{Certificate, ListenerRecord};
use crate::service::{encode, LbService};

/// The policy of a listener that names none: ELBv2's default for listeners made through the API.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";
/// Certificates a listener may have besides its default (ELBv2's quota).
const MAX_EXTRA_CERTIFICATES: usize = 25;
const ALPN_POLICIES: &[&str] = &[
    "HTTP1Only",
    "HTTP2Only",
    "HTTP2Optional",
    "HTTP2Preferred",
    "None",
];

/// Whether the protocol terminates TLS.
pub fn is_tls(protocol: &str) -> bool {
    matches!(protocol, "HTTPS" | "TLS")
}

/// A known SSL policy name.
pub fn check_ssl_policy(name: &str) -> Result<()> {
    if SSL_POLICIES.iter().any(|(p, _)| *p == name) {
        Ok(())
    } else {
        Err(LbError::SslPolicyNotFound(name.to_string()))
    }
}

/// The ALPN policy of a TLS listener: at most one of ELBv2's names.
pub fn check_alpn_policy(protocol: &str, policy: &[String]) -> Result<Option<Vec<String>>> {
    if policy.is_empty() {
        return Ok(None);
    }
    if protocol != "TLS" {
        return Err(LbError::InvalidConfiguration(
            "ALPN policies are for TLS listeners".into(),
        ));
    }
    if policy.len() > 1 {
        return Err(LbError::Validation("An ALPN policy takes one value".into()));
    }
    if !ALPN_POLICIES.contains(&policy[0].as_str()) {
        return Err(LbError::AlpnPolicyNotFound(policy[0].clone()));
    }
    Ok(Some(policy.to_vec()))
}

impl<S: Store> LbService<S> {
    /// The stored ACM certificate an ARN of this region names.
    pub(crate) fn certificate_record(&self, region: &str, arn: &str) -> Option<CertificateRecord> {
        let (r, id) = crate::acm::parse_arn(arn).ok()?;
        if r != region {
            return None;
        }
        self.get(&crate::acm::certificate_key(region, id))
    }

    /// The ACM certificate an ARN names, usable by a listener of this region.
    pub(crate) fn certificate(&self, region: &str, arn: &str) -> Result<CertificateRecord> {
        let record = self
            .certificate_record(region, arn)
            .ok_or_else(|| LbError::CertificateNotFound(arn.to_string()))?;
        // What cannot be served is refused now, not at the first handshake.
        record.certified_key().map_err(|e| {
            LbError::InvalidConfiguration(format!("Certificate '{arn}' cannot be served: {e}"))
        })?;
        Ok(record)
    }
}

/// The default certificate of a new HTTPS or TLS listener: exactly one, known to ACM.
pub fn default_certificate<S: Store>(
    svc: &LbService<S>,
    region: &str,
    protocol: &str,
    certificates: Option<Vec<Certificate>>,
) -> Result<Vec<Certificate>> {
    let certificates = certificates.unwrap_or_default();
    match certificates.as_slice() {
        [] => Err(LbError::Validation(format!(
            "A certificate must be specified for {protocol} listeners"
        ))),
        [one] => {
            let arn = one
                .certificate_arn
                .as_deref()
                .ok_or_else(|| LbError::Validation("A certificate ARN must be specified".into()))?;
            svc.certificate(region, arn)?;
            Ok(vec![Certificate {
                certificate_arn: Some(arn.to_string()),
                is_default: None,
            }])
        }
        _ => Err(LbError::TooMany(
            "TooManyCertificates",
            "A listener is created with exactly one certificate; add others with AddListenerCertificates"
                .into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeInput {
    pub listener_arn: String,
    pub certificates: Vec<Certificate>,
}

fn arns_of(certificates: &[Certificate]) -> Result<Vec<String>> {
    certificates
        .iter()
        .map(|c| {
            c.certificate_arn
                .clone()
                .ok_or_else(|| LbError::Validation("A certificate ARN must be specified".into()))
        })
        .collect()
}

async fn store_listener<S: Store>(
    svc: &LbService<S>,
    region: &str,
    record: &ListenerRecord,
) -> Result<()> {
    let Some(ResourceArn::Listener { lb, id, .. }) =
        ResourceArn::parse(&record.listener.listener_arn)
    else {
        return Err(LbError::ListenerNotFound);
    };
    svc.commit(Txn::new().put(keys::listener(region, &lb, &id), encode(record)))
        .await?;
    svc.data_plane.refresh();
    Ok(())
}

fn answer_certificates(arns: &[String]) -> Value {
    let list: Vec<Value> = arns
        .iter()
        .map(|a| json!({"CertificateArn": a, "IsDefault": false}))
        .collect();
    json!({"Certificates": list})
}

pub async fn add<S: Store>(svc: &LbService<S>, scope: &Scope, input: ChangeInput) -> Result<Value> {
    let region = &scope.region;
    let arns = arns_of(&input.certificates)?;
    let _w = svc.writes.lock().await;
    let mut record = svc.listener_by_arn(region, &input.listener_arn)?;
    if !is_tls(&record.listener.protocol) {
        return Err(LbError::InvalidConfiguration(format!(
            "Certificates are for HTTPS and TLS listeners, not {}",
            record.listener.protocol
        )));
    }
    for arn in &arns {
        svc.certificate(region, arn)?;
        let default = record.certificate_arns().next() == Some(arn.as_str());
        if !default && !record.extra_certificates.contains(arn) {
            record.extra_certificates.push(arn.clone());
        }
    }
    if record.extra_certificates.len() > MAX_EXTRA_CERTIFICATES {
        return Err(LbError::TooMany(
            "TooManyCertificates",
            format!("A listener can have at most {MAX_EXTRA_CERTIFICATES} certificates besides its default"),
        ));
    }
    store_listener(svc, region, &record).await?;
    Ok(answer_certificates(&arns))
}

pub async fn remove<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: ChangeInput,
) -> Result<Value> {
    let region = &scope.region;
    let arns = arns_of(&input.certificates)?;
    let _w = svc.writes.lock().await;
    let mut record = svc.listener_by_arn(region, &input.listener_arn)?;
    if let Some(default) = record.certificate_arns().next() {
        if arns.iter().any(|a| a == default) {
            return Err(LbError::OperationNotPermitted(
                "The default certificate of a listener cannot be removed; change it with ModifyListener".into(),
            ));
        }
    }
    record.extra_certificates.retain(|c| !arns.contains(c));
    store_listener(svc, region, &record).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInput {
    pub listener_arn: String,
    #[serde(default)]
    pub marker: Option<String>,
    #[serde(default)]
    pub page_size: Option<u32>,
}

pub fn describe<S: Store>(
    svc: &LbService<S>,
    scope: &Scope,
    input: DescribeInput,
) -> Result<Value> {
    let record = svc.listener_by_arn(&scope.region, &input.listener_arn)?;
    let all: Vec<(String, bool)> = record
        .certificate_arns()
        .enumerate()
        .map(|(i, a)| (a.to_string(), i == 0))
        .collect();
    let p = page(all, input.marker.as_deref(), input.page_size)?;
    let list: Vec<Value> = p
        .items
        .iter()
        .map(|(a, default)| json!({"CertificateArn": a, "IsDefault": default}))
        .collect();
    Ok(json!({"Certificates": list, "NextMarker": p.next_marker}))
}
