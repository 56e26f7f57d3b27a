//! Reading certificates: the PEM a user imports (certificate, private key, chain) checked as ACM checks it, and the
//! facts DescribeCertificate answers with, read from the certificate itself.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::errors::AcmError;

/// What a certificate says of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The subject's common name, or its first DNS name when it has none.
    pub domain_name: String,
    /// The DNS names, the domain name first, as ACM lists them.
    pub subject_alternative_names: Vec<String>,
    pub subject: String,
    pub issuer: String,
    /// `0d:4c:...`, as ACM writes serials.
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    /// ACM's name: `RSA_2048`, `EC_prime256v1`, ...
    pub key_algorithm: String,
    /// `SHA256WITHRSA`, `SHA256WITHECDSA`, ...
    pub signature_algorithm: String,
    pub key_usages: Vec<String>,
    pub extended_key_usages: Vec<String>,
}

/// The certificates of a PEM text, in order. Text that is not PEM certificates is refused.
pub fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, AcmError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AcmError::Validation(format!("The {what} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(AcmError::Validation(format!(
            "The {what} contains no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

/// One private key in PEM (PKCS#8, PKCS#1 or SEC1), not encrypted.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, AcmError> {
    if std::str::from_utf8(pem).is_ok_and(|s| s.contains("ENCRYPTED")) {
        return Err(AcmError::Validation(
            "The private key is encrypted; import it without a passphrase".into(),
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        AcmError::Validation(format!(
            "The private key is not a valid PEM private key: {e}"
        ))
    })
}

/// The key and its chain as TLS serves them, the certificate first. The key must be one rustls can sign with and
/// must belong to the certificate.
pub fn certified_key(
    certificate: &[u8],
    private_key_pem: &[u8],
    chain: Option<&[u8]>,
) -> Result<CertifiedKey, AcmError> {
    let mut certs = certificates(certificate, "certificate")?;
    if certs.len() > 1 {
        return Err(AcmError::Validation(
            "The certificate field contains more than one certificate. You can specify only one certificate in this field.".into(),
        ));
    }
    if let Some(chain) = chain {
        certs.extend(certificates(chain, "certificate chain")?);
    }
    let key = private_key(private_key_pem)?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(certs, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => AcmError::Validation(
            "The private key does not match the public key in the certificate".into(),
        ),
        e => AcmError::Validation(format!("The private key is not supported: {e}")),
    })
}

/// The facts of one DER certificate.
pub fn facts(der: &[u8]) -> Result<Facts, AcmError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| AcmError::Validation(format!("The certificate cannot be read: {e}")))?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let domain_name = common_name
        .or_else(|| names.first().cloned())
        .ok_or_else(|| {
            AcmError::Validation(
                "The certificate names no domain (no common name and no DNS name)".into(),
            )
        })?;
    if !names.contains(&domain_name) {
        names.insert(0, domain_name.clone());
    } else if names[0] != domain_name {
        names.retain(|n| n != &domain_name);
        names.insert(0, domain_name.clone());
    }
    let key_algorithm = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => format!("RSA_{}", rsa.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => match ec.key_size() {
            256 => "EC_prime256v1".to_string(),
            384 => "EC_secp384r1".to_string(),
            521 => "EC_secp521r1".to_string(),
            n => format!("EC_{n}"),
        },
        _ => {
            return Err(AcmError::Validation(
                "The certificate's key type is not supported (RSA and EC are)".into(),
            ))
        }
    };
    let mut key_usages = Vec::new();
    if let Ok(Some(ku)) = cert.key_usage() {
        let k = ku.value;
        for (set, name) in [
            (k.digital_signature(), "DIGITAL_SIGNATURE"),
            (k.non_repudiation(), "NON_REPUDIATION"),
            (k.key_encipherment(), "KEY_ENCIPHERMENT"),
            (k.data_encipherment(), "DATA_ENCIPHERMENT"),
            (k.key_agreement(), "KEY_AGREEMENT"),
            (k.key_cert_sign(), "CERTIFICATE_SIGNING"),
            (k.crl_sign(), "CRL_SIGNING"),
            (k.encipher_only(), "ENCIPHER_ONLY"),
            (k.decipher_only(), "DECIPHER_ONLY"),
        ] {
            if set {
                key_usages.push(name.to_string());
            }
        }
    }
    let mut extended_key_usages = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let e = eku.value;
        for (set, name) in [
            (e.any, "ANY"),
            (e.server_auth, "TLS_WEB_SERVER_AUTHENTICATION"),
            (e.client_auth, "TLS_WEB_CLIENT_AUTHENTICATION"),
            (e.code_signing, "CODE_SIGNING"),
            (e.email_protection, "EMAIL_PROTECTION"),
            (e.time_stamping, "TIME_STAMPING"),
            (e.ocsp_signing, "OCSP_SIGNING"),
        ] {
            if set {
                extended_key_usages.push(name.to_string());
            }
        }
    }
    Ok(Facts {
        domain_name,
        subject_alternative_names: names,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key_algorithm,
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
        key_usages,
        extended_key_usages,
    })
}

/// ACM's name of a signature algorithm OID.
fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.5" => "SHA1WITHRSA",
        "1.2.840.113549.1.1.11" => "SHA256WITHRSA",
        "1.2.840.113549.1.1.12" => "SHA384WITHRSA",
        "1.2.840.113549.1.1.13" => "SHA512WITHRSA",
        "1.2.840.10045.4.3.2" => "SHA256WITHECDSA",
        "1.2.840.10045.4.3.3" => "SHA384WITHECDSA",
        "1.2.840.10045.4.3.4" => "SHA512WITHECDSA",
        "1.2.840.113549.1.1.10" => "SHA256WITHRSAPSS",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn reads_the_names_key_and_dates() {
        let (cert, key) = self_signed(&["app.example.com", "www.example.com"]);
        let k = certified_key(cert.as_bytes(), key.as_bytes(), None).unwrap();
        let f = facts(k.cert[0].as_ref()).unwrap();
        assert_eq!(f.domain_name, "app.example.com");
        assert_eq!(
            f.subject_alternative_names,
            vec!["app.example.com", "www.example.com"]
        );
        assert_eq!(f.key_algorithm, "EC_prime256v1");
        assert_eq!(f.signature_algorithm, "SHA256WITHECDSA");
        assert_eq!(f.subject, "CN=app.example.com");
        assert!(f.not_before < f.not_after);
    }

    #[test]
    fn refuses_a_key_of_another_certificate() {
        let (cert, _) = self_signed(&["a.example.com"]);
        let (_, other_key) = self_signed(&["b.example.com"]);
        let e = certified_key(cert.as_bytes(), other_key.as_bytes(), None).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_pem() {
        let (cert, key) = self_signed(&["a.example.com"]);
        assert!(certified_key(b"hello", key.as_bytes(), None).is_err());
        assert!(certified_key(cert.as_bytes(), b"not a key", None).is_err());
        let two = format!("{cert}{cert}");
        let e = certified_key(two.as_bytes(), key.as_bytes(), None).unwrap_err();
        assert!(e.to_string().contains("more than one"), "{e}");
        assert!(certified_key(cert.as_bytes(), key.as_bytes(), Some(b"junk")).is_err());
    }
}
