//! ImportCertificate, RequestCertificate, DescribeCertificate, GetCertificate, ListCertificates, DeleteCertificate.

use base64::Engine;
use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ca::KeyAlgorithm;
use super::errors::AcmError;
use super::record::{self, CertificateRecord, Tag};
use super::tags::check_tags;
use super::{x509, AcmService};
use crate::keys;
use crate::model::ListenerRecord;

type Result<T> = std::result::Result<T, AcmError>;

/// How long RequestCertificate's idempotency token names the certificate it made.
const IDEMPOTENCY_SECONDS: f64 = 3600.0;

impl<S: Store> AcmService<S> {
    pub(super) fn record(&self, scope: &Scope, arn: &str) -> Result<(String, CertificateRecord)> {
        let (region, id) = record::parse_arn(arn)?;
        let key = record::certificate_key(region, id);
        if region != scope.region {
            return Err(AcmError::NotFound(arn.to_string()));
        }
        let kv = self
            .lb
            .store
            .get(&key)
            .ok_or_else(|| AcmError::NotFound(arn.to_string()))?;
        let r = serde_json::from_slice(&kv.value)
            .map_err(|e| AcmError::Internal(format!("{key}: {e}")))?;
        Ok((key, r))
    }

    pub(super) async fn put(&self, key: String, r: &CertificateRecord) -> Result<()> {
        let bytes = serde_json::to_vec(r).map_err(|e| AcmError::Internal(e.to_string()))?;
        self.lb.store.txn(Txn::new().put(key, bytes)).await?;
        Ok(())
    }

    /// The load balancers whose listeners use the certificate (ACM's `InUseBy`).
    fn users(&self, region: &str, arn: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .lb
            .list::<ListenerRecord>(&keys::all_listeners(region))
            .into_iter()
            .filter(|l| l.certificate_arns().any(|c| c == arn))
            .map(|l| l.listener.load_balancer_arn)
            .collect();
        users.sort();
        users.dedup();
        users
    }
}

/// A blob member: base64 in the JSON protocol.
fn blob(value: &str, member: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| AcmError::Validation(format!("{member} is not valid base64")))
}

fn limit(value: &[u8], member: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max {
        return Err(AcmError::Validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length between 1 and {max}"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportInput {
    #[serde(default)]
    certificate_arn: Option<String>,
    certificate: String,
    private_key: String,
    #[serde(default)]
    certificate_chain: Option<String>,
    #[serde(default)]
    tags: Option<Vec<Tag>>,
}

pub async fn import<S: Store>(
    acm: &AcmService<S>,
    scope: &Scope,
    input: ImportInput,
) -> Result<Value> {
    let certificate = blob(&input.certificate, "certificate")?;
    let private_key = blob(&input.private_key, "privateKey")?;
    let chain = input
        .certificate_chain
        .as_deref()
        .map(|c| blob(c, "certificateChain"))
        .transpose()?;
    limit(&certificate, "certificate", 32_768)?;
    limit(&private_key, "privateKey", 8_192)?;
    if let Some(c) = &chain {
        limit(c, "certificateChain", 2_097_152)?;
    }
    let key = x509::certified_key(&certificate, &private_key, chain.as_deref())?;
    let facts = x509::facts(key.cert[0].as_ref())?;
    let now = gantry_model::time::now();
    if (facts.not_after as f64) < now || (facts.not_before as f64) > now {
        return Err(AcmError::Validation(
            "The certificate is not valid at this time: it is expired or not yet valid".into(),
        ));
    }
    let text = |b: Vec<u8>| {
        String::from_utf8(b).map_err(|_| AcmError::Validation("PEM must be text".into()))
    };
    let (certificate, private_key) = (text(certificate)?, text(private_key)?);
    let chain = chain.map(text).transpose()?;
    let _w = acm.lb.writes.lock().await;
    if let Some(arn) = input.certificate_arn {
        // Re-import: the same ARN, tags and users keep it; listeners serve the new certificate from now on.
        if input.tags.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(AcmError::InvalidParameter(
                "Tags cannot be given when a certificate is re-imported".into(),
            ));
        }
        let (key, mut r) = acm.record(scope, &arn)?;
        if r.kind != "IMPORTED" {
            return Err(AcmError::Validation(format!(
                "Certificate {arn} was not imported: only imported certificates can be re-imported"
            )));
        }
        r.certificate = certificate;
        r.private_key = private_key;
        r.chain = chain;
        r.imported_at = Some(now);
        acm.put(key, &r).await?;
        acm.lb.data_plane.refresh();
        return Ok(json!({"CertificateArn": arn}));
    }
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    let id = uuid::Uuid::new_v4().to_string();
    let r = CertificateRecord {
        arn: record::arn(scope, &id),
        kind: "IMPORTED".into(),
        certificate,
        chain,
        private_key,
        created_at: now,
        imported_at: Some(now),
        issued_at: None,
        tags,
        idempotency_token: None,
        validation_method: None,
        transparency_logging: None,
    };
    acm.put(record::certificate_key(&scope.region, &id), &r)
        .await?;
    Ok(json!({"CertificateArn": r.arn}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateOptions {
    #[serde(default)]
    certificate_transparency_logging_preference: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestInput {
    domain_name: String,
    #[serde(default)]
    validation_method: Option<String>,
    #[serde(default)]
    subject_alternative_names: Option<Vec<String>>,
    #[serde(default)]
    idempotency_token: Option<String>,
    #[serde(default)]
    domain_validation_options: Option<Vec<Value>>,
    #[serde(default)]
    options: Option<CertificateOptions>,
    #[serde(default)]
    certificate_authority_arn: Option<String>,
    #[serde(default)]
    tags: Option<Vec<Tag>>,
    #[serde(default)]
    key_algorithm: Option<String>,
    #[serde(default)]
    managed_by: Option<String>,
}

/// A domain name as ACM takes it: labels of letters, digits and hyphens, an optional leading `*.`, at least two
/// labels.
pub fn check_domain(name: &str, member: &str) -> Result<()> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let labels: Vec<&str> = bare.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.is_empty() || name.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(AcmError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\*\\.)?(((?!-)[A-Za-z0-9-]{{0,62}}[A-Za-z0-9])\\.)+((?!-)[A-Za-z0-9-]{{1,62}}[A-Za-z0-9])"
        )));
    }
    Ok(())
}

pub async fn request<S: Store>(
    acm: &AcmService<S>,
    scope: &Scope,
    input: RequestInput,
) -> Result<Value> {
    check_domain(&input.domain_name, "domainName")?;
    let mut names = vec![input.domain_name.to_ascii_lowercase()];
    let sans = input.subject_alternative_names.unwrap_or_default();
    if sans.len() > 100 {
        return Err(AcmError::Validation(
            "1 validation error detected: Value at 'subjectAlternativeNames' failed to satisfy constraint: Member must have length less than or equal to 100".into(),
        ));
    }
    for n in &sans {
        check_domain(n, "subjectAlternativeNames.member")?;
        let n = n.to_ascii_lowercase();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let method = input.validation_method.unwrap_or_else(|| "DNS".into());
    match method.as_str() {
        "DNS" | "EMAIL" => {}
        "HTTP" => {
            return Err(AcmError::InvalidParameter(
                "HTTP validation is for certificates managed by CloudFront".into(),
            ))
        }
        other => {
            return Err(AcmError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'validationMethod' failed to satisfy constraint: Member must satisfy enum value set: [EMAIL, DNS, HTTP]"
            )))
        }
    }
    if let Some(options) = &input.domain_validation_options {
        for o in options {
            let d = o.get("DomainName").and_then(Value::as_str).unwrap_or("");
            if !names.iter().any(|n| n.eq_ignore_ascii_case(d)) {
                return Err(AcmError::InvalidDomainValidationOptions(format!(
                    "Domain validation option for '{d}' names no domain of the certificate"
                )));
            }
        }
    }
    if input.certificate_authority_arn.is_some() {
        return Err(AcmError::Validation(
            "Private certificate authorities (CertificateAuthorityArn) are not supported by Gantry; requested certificates are signed by its local CA".into(),
        ));
    }
    if input.managed_by.is_some() {
        return Err(AcmError::Validation(
            "ManagedBy (CloudFront) is not supported by Gantry".into(),
        ));
    }
    let transparency = match input.options {
        Some(o) => {
            if o.export.as_deref() == Some("ENABLED") {
                return Err(AcmError::Validation(
                    "Exportable public certificates are not supported by Gantry".into(),
                ));
            }
            match o.certificate_transparency_logging_preference.as_deref() {
                None => None,
                Some(p @ ("ENABLED" | "DISABLED")) => Some(p.to_string()),
                Some(other) => {
                    return Err(AcmError::Validation(format!(
                        "1 validation error detected: Value '{other}' at 'options.certificateTransparencyLoggingPreference' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
                    )))
                }
            }
        }
        None => None,
    };
    if let Some(t) = &input.idempotency_token {
        if t.is_empty()
            || t.len() > 32
            || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(AcmError::Validation(format!(
                "1 validation error detected: Value '{t}' at 'idempotencyToken' failed to satisfy constraint: Member must satisfy regular expression pattern: \\w+"
            )));
        }
    }
    let algorithm = KeyAlgorithm::parse(input.key_algorithm.as_deref().unwrap_or("RSA_2048"))?;
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    let now = gantry_model::time::now();
    if let Some(token) = &input.idempotency_token {
        let same = acm
            .lb
            .list::<CertificateRecord>(&record::certificates(&scope.region))
            .into_iter()
            .find(|r| {
                r.idempotency_token.as_deref() == Some(token)
                    && now - r.created_at < IDEMPOTENCY_SECONDS
                    && r.facts()
                        .is_ok_and(|f| f.subject_alternative_names == names)
            });
        if let Some(r) = same {
            return Ok(json!({"CertificateArn": r.arn}));
        }
    }
    let ca = acm.ca()?;
    let issued = {
        let names = names.clone();
        let ca = ca.clone();
        // An RSA key takes a while to make: off the async threads.
        tokio::task::spawn_blocking(move || ca.issue(&names, algorithm))
            .await
            .map_err(|e| AcmError::Internal(e.to_string()))??
    };
    let id = uuid::Uuid::new_v4().to_string();
    let r = CertificateRecord {
        arn: record::arn(scope, &id),
        kind: "AMAZON_ISSUED".into(),
        certificate: issued.certificate,
        chain: Some(ca.certificate().to_string()),
        private_key: issued.private_key,
        created_at: now,
        imported_at: None,
        issued_at: Some(now),
        tags,
        idempotency_token: input.idempotency_token,
        validation_method: Some(method),
        transparency_logging: Some(transparency.unwrap_or_else(|| "ENABLED".into())),
    };
    let _w = acm.lb.writes.lock().await;
    acm.put(record::certificate_key(&scope.region, &id), &r)
        .await?;
    Ok(json!({"CertificateArn": r.arn}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArnInput {
    certificate_arn: String,
}

/// `ISSUED`, or `EXPIRED` once its time is over.
fn status(facts: &x509::Facts) -> &'static str {
    if (facts.not_after as f64) < gantry_model::time::now() {
        "EXPIRED"
    } else {
        "ISSUED"
    }
}

fn detail(r: &CertificateRecord, in_use_by: Vec<String>) -> Result<Value> {
    let f = r.facts()?;
    let issued = r.kind == "AMAZON_ISSUED";
    let mut d = json!({
        "CertificateArn": r.arn,
        "DomainName": f.domain_name,
        "SubjectAlternativeNames": f.subject_alternative_names,
        "Serial": f.serial,
        "Subject": f.subject,
        "Issuer": if issued { "Gantry".to_string() } else { f.issuer.clone() },
        "CreatedAt": r.created_at,
        "Status": status(&f),
        "NotBefore": f.not_before,
        "NotAfter": f.not_after,
        "KeyAlgorithm": f.key_algorithm,
        "SignatureAlgorithm": f.signature_algorithm,
        "InUseBy": in_use_by,
        "Type": r.kind,
        "KeyUsages": f.key_usages.iter().map(|k| json!({"Name": k})).collect::<Vec<_>>(),
        "ExtendedKeyUsages": f.extended_key_usages.iter().map(|k| json!({"Name": k})).collect::<Vec<_>>(),
        "RenewalEligibility": if issued && !in_use_by.is_empty() { "ELIGIBLE" } else { "INELIGIBLE" },
    });
    if let Some(t) = r.imported_at {
        d["ImportedAt"] = json!(t);
    }
    if let Some(t) = r.issued_at {
        d["IssuedAt"] = json!(t);
    }
    if issued {
        let method = r.validation_method.clone().unwrap_or_else(|| "DNS".into());
        d["DomainValidationOptions"] = f
            .subject_alternative_names
            .iter()
            .map(|name| {
                let base = name.strip_prefix("*.").unwrap_or(name);
                let mut v = json!({
                    "DomainName": name,
                    "ValidationDomain": base,
                    "ValidationStatus": "SUCCESS",
                    "ValidationMethod": method,
                });
                if method == "DNS" {
                    // The record ACM would have asked for; nothing needs to create it here.
                    let token = &r.arn[r.arn.len().saturating_sub(12)..];
                    v["ResourceRecord"] = json!({
                        "Name": format!("_{token}.{base}."),
                        "Type": "CNAME",
                        "Value": format!("_{token}.acm-validations.aws."),
                    });
                } else {
                    v["ValidationEmails"] = json!([format!("admin@{base}")]);
                }
                v
            })
            .collect();
        d["Options"] = json!({
            "CertificateTransparencyLoggingPreference":
                r.transparency_logging.as_deref().unwrap_or("ENABLED"),
            "Export": "DISABLED",
        });
    }
    Ok(d)
}

pub fn describe<S: Store>(acm: &AcmService<S>, scope: &Scope, input: ArnInput) -> Result<Value> {
    let (_, r) = acm.record(scope, &input.certificate_arn)?;
    let users = acm.users(&scope.region, &r.arn);
    Ok(json!({"Certificate": detail(&r, users)?}))
}

pub fn get<S: Store>(acm: &AcmService<S>, scope: &Scope, input: ArnInput) -> Result<Value> {
    let (_, r) = acm.record(scope, &input.certificate_arn)?;
    let mut v = json!({"Certificate": r.certificate});
    if let Some(c) = &r.chain {
        v["CertificateChain"] = json!(c);
    }
    Ok(v)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Filters {
    extended_key_usage: Option<Vec<String>>,
    key_usage: Option<Vec<String>>,
    key_types: Option<Vec<String>>,
    export_option: Option<String>,
    managed_by: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListInput {
    certificate_statuses: Option<Vec<String>>,
    includes: Option<Filters>,
    next_token: Option<String>,
    max_items: Option<i64>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    certificate_key_pair_origins: Option<Vec<String>>,
}

pub fn list<S: Store>(acm: &AcmService<S>, scope: &Scope, input: ListInput) -> Result<Value> {
    let includes = input.includes.unwrap_or_default();
    // As ACM: without a key type filter only RSA_2048 certificates are listed.
    let key_types = includes
        .key_types
        .unwrap_or_else(|| vec!["RSA_2048".to_string()]);
    if let Some(s) = &input.sort_by {
        if s != "CREATED_AT" {
            return Err(AcmError::Validation(format!(
                "1 validation error detected: Value '{s}' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [CREATED_AT]"
            )));
        }
    }
    let descending = match input.sort_order.as_deref() {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(other) => {
            return Err(AcmError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [ASCENDING, DESCENDING]"
            )))
        }
    };
    let mut chosen = Vec::new();
    for r in acm
        .lb
        .list::<CertificateRecord>(&record::certificates(&scope.region))
    {
        let Ok(f) = r.facts() else { continue };
        let st = status(&f);
        let any_in = |wanted: &Option<Vec<String>>, have: &[String]| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|x| x == "ANY" || have.contains(x)))
        };
        let keep = input
            .certificate_statuses
            .as_ref()
            .is_none_or(|s| s.is_empty() || s.iter().any(|x| x == st))
            && key_types.contains(&f.key_algorithm)
            && any_in(&includes.key_usage, &f.key_usages)
            && any_in(&includes.extended_key_usage, &f.extended_key_usages)
            && includes.managed_by.is_none()
            && includes
                .export_option
                .as_deref()
                .is_none_or(|e| e == "DISABLED")
            && input.certificate_key_pair_origins.as_ref().is_none_or(|o| {
                o.iter().any(|x| {
                    x == if r.kind == "IMPORTED" {
                        "CUSTOMER_PROVIDED"
                    } else {
                        "AWS_MANAGED"
                    }
                })
            });
        if keep {
            chosen.push((r, f));
        }
    }
    chosen.sort_by(|a, b| a.0.created_at.total_cmp(&b.0.created_at));
    if descending {
        chosen.reverse();
    }
    let page = gantry_aws::paginate(
        chosen,
        input.next_token.as_deref(),
        input.max_items,
        1000,
        1000,
    )
    .map_err(|e| AcmError::InvalidArgs(e.message))?;
    let summaries: Vec<Value> = page
        .items
        .iter()
        .map(|(r, f)| {
            let in_use = !acm.users(&scope.region, &r.arn).is_empty();
            let mut s = json!({
                "CertificateArn": r.arn,
                "DomainName": f.domain_name,
                "SubjectAlternativeNameSummaries": f.subject_alternative_names,
                "HasAdditionalSubjectAlternativeNames": false,
                "Status": status(f),
                "Type": r.kind,
                "KeyAlgorithm": f.key_algorithm,
                "KeyUsages": f.key_usages,
                "ExtendedKeyUsages": f.extended_key_usages,
                "InUse": in_use,
                "RenewalEligibility": if r.kind == "AMAZON_ISSUED" && in_use { "ELIGIBLE" } else { "INELIGIBLE" },
                "NotBefore": f.not_before,
                "NotAfter": f.not_after,
                "CreatedAt": r.created_at,
                "ExportOption": "DISABLED",
                "CertificateKeyPairOrigin": if r.kind == "IMPORTED" { "CUSTOMER_PROVIDED" } else { "AWS_MANAGED" },
            });
            if let Some(t) = r.imported_at {
                s["ImportedAt"] = json!(t);
            }
            if let Some(t) = r.issued_at {
                s["IssuedAt"] = json!(t);
            }
            s
        })
        .collect();
    let mut v = json!({"CertificateSummaryList": summaries});
    if let Some(t) = page.next_token {
        v["NextToken"] = json!(t);
    }
    Ok(v)
}

pub async fn delete<S: Store>(
    acm: &AcmService<S>,
    scope: &Scope,
    input: ArnInput,
) -> Result<Value> {
    let _w = acm.lb.writes.lock().await;
    let (key, r) = acm.record(scope, &input.certificate_arn)?;
    let users = acm.users(&scope.region, &r.arn);
    if let Some(first) = users.first() {
        return Err(AcmError::InUse(r.arn, first.clone()));
    }
    acm.lb.store.txn(Txn::new().delete(key)).await?;
    Ok(json!({}))
}
