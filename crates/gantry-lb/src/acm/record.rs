//! A certificate as stored (its PEM and key, as ACM keeps them), its store key and its ARN.

use gantry_model::Scope;
use serde::{Deserialize, Serialize};

use super::errors::AcmError;
use super::x509::{self, Facts};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub arn: String,
    /// `IMPORTED` or `AMAZON_ISSUED` (signed by the local CA).
    pub kind: String,
    pub certificate: String,
    #[serde(default)]
    pub chain: Option<String>,
    pub private_key: String,
    pub created_at: f64,
    #[serde(default)]
    pub imported_at: Option<f64>,
    #[serde(default)]
    pub issued_at: Option<f64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// RequestCertificate's token: the same token within an hour answers the same certificate.
    #[serde(default)]
    pub idempotency_token: Option<String>,
    #[serde(default)]
    pub validation_method: Option<String>,
    #[serde(default)]
    pub transparency_logging: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl CertificateRecord {
    /// What the certificate says of itself.
    pub fn facts(&self) -> Result<Facts, AcmError> {
        let der = x509::certificates(self.certificate.as_bytes(), "certificate")?;
        x509::facts(der[0].as_ref())
    }

    /// The key and chain as a listener serves them.
    pub fn certified_key(&self) -> Result<rustls::sign::CertifiedKey, AcmError> {
        x509::certified_key(
            self.certificate.as_bytes(),
            self.private_key.as_bytes(),
            self.chain.as_deref().map(str::as_bytes),
        )
    }
}

pub fn certificate_key(region: &str, id: &str) -> String {
    format!("/acm/{region}/certificates/{id}")
}

pub fn certificates(region: &str) -> String {
    format!("/acm/{region}/certificates/")
}

pub fn arn(scope: &Scope, id: &str) -> String {
    format!(
        "arn:aws:acm:{}:{}:certificate/{id}",
        scope.region, scope.account
    )
}

/// The region and id of a certificate ARN; anything else is `InvalidArnException`.
pub fn parse_arn(arn: &str) -> Result<(&str, &str), AcmError> {
    let bad = || AcmError::InvalidArn(arn.to_string());
    let rest = arn.strip_prefix("arn:aws:acm:").ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ':');
    let (Some(region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let id = resource.strip_prefix("certificate/").ok_or_else(bad)?;
    let id_ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if region.is_empty() || account.is_empty() || !id_ok {
        return Err(bad());
    }
    Ok((region, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip_and_junk_is_refused() {
        let scope = Scope::new("eu-west-1", "000000000000");
        let a = arn(&scope, "1f2e3d4c-0000-4000-8000-1234567890ab");
        assert_eq!(
            parse_arn(&a).unwrap(),
            ("eu-west-1", "1f2e3d4c-0000-4000-8000-1234567890ab")
        );
        for bad in [
            "",
            "arn:aws:acm:eu-west-1:000000000000:cert/x",
            "arn:aws:elasticloadbalancing:eu-west-1:0:certificate/ab",
            "arn:aws:acm:eu-west-1:000000000000:certificate/",
            "arn:aws:acm:eu-west-1:000000000000:certificate/../../x",
        ] {
            assert!(parse_arn(bad).is_err(), "{bad}");
        }
    }
}
