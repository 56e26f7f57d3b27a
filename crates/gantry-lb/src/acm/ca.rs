//! The local certificate authority that signs requested certificates. It is made on first use and kept in the
//! data directory (`acm/ca.pem`, `acm/ca-key.pem`), so a client trusts it once (`curl --cacert <data-dir>/acm/ca.pem`)
//! and keeps trusting it across restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::PrivatePkcs8KeyDer;

use super::errors::AcmError;

/// How long a requested certificate is valid: ACM's 395 days.
const LEAF_DAYS: i64 = 395;
/// The CA's own validity.
const CA_DAYS: i64 = 3650;

/// A key type a certificate can be requested with, by ACM's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa(usize),
    EcP256,
    EcP384,
}

impl KeyAlgorithm {
    /// ACM's `KeyAlgorithm` names that RequestCertificate takes here.
    pub fn parse(name: &str) -> Result<KeyAlgorithm, AcmError> {
        Ok(match name {
            "RSA_2048" => KeyAlgorithm::Rsa(2048),
            "RSA_3072" => KeyAlgorithm::Rsa(3072),
            "RSA_4096" => KeyAlgorithm::Rsa(4096),
            "EC_prime256v1" => KeyAlgorithm::EcP256,
            "EC_secp384r1" => KeyAlgorithm::EcP384,
            "RSA_1024" => {
                return Err(AcmError::InvalidParameter(
                    "RSA_1024 keys can be imported, not requested".into(),
                ))
            }
            "EC_secp521r1" => {
                return Err(AcmError::Validation(
                    "EC_secp521r1 is not supported by Gantry: load balancers serve RSA, EC_prime256v1 and EC_secp384r1 keys".into(),
                ))
            }
            other => {
                return Err(AcmError::Validation(format!(
                    "Value '{other}' at 'keyAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1, EC_secp521r1, RSA_1024]"
                )))
            }
        })
    }

    /// A new key of this type.
    fn generate(self) -> Result<KeyPair, AcmError> {
        match self {
            KeyAlgorithm::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Rsa(bits) => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
                    .map_err(|e| AcmError::Internal(format!("RSA key generation failed: {e}")))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| AcmError::Internal(format!("RSA key encoding failed: {e}")))?;
                KeyPair::from_pkcs8_der_and_sign_algo(
                    &PrivatePkcs8KeyDer::from(der.as_bytes()),
                    &rcgen::PKCS_RSA_SHA256,
                )
            }
        }
        .map_err(|e| AcmError::Internal(format!("key generation failed: {e}")))
    }
}

/// A certificate the CA signed, with its key, in PEM.
pub struct Issued {
    pub certificate: String,
    pub private_key: String,
}

pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    certificate: String,
}

impl LocalCa {
    /// The CA kept under `dir`, made there when it is missing.
    pub fn open(dir: &Path) -> Result<LocalCa, AcmError> {
        let (cert_path, key_path) = paths(dir);
        if cert_path.exists() && key_path.exists() {
            let read = |p: &Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| AcmError::Internal(format!("{}: {e}", p.display())))
            };
            let certificate = read(&cert_path)?;
            let key = KeyPair::from_pem(&read(&key_path)?)
                .map_err(|e| AcmError::Internal(format!("{}: {e}", key_path.display())))?;
            let issuer = Issuer::from_ca_cert_pem(&certificate, key)
                .map_err(|e| AcmError::Internal(format!("{}: {e}", cert_path.display())))?;
            return Ok(LocalCa {
                issuer,
                certificate,
            });
        }
        let (certificate, key) = new_ca()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| AcmError::Internal(format!("{}: {e}", dir.display())))?;
        // The key first and readable by the owner only; the certificate's presence says both are complete.
        write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&cert_path, certificate.as_bytes(), 0o644)?;
        let issuer = Issuer::from_ca_cert_pem(&certificate, key)
            .map_err(|e| AcmError::Internal(format!("the new CA: {e}")))?;
        tracing::info!(path = %cert_path.display(), "made the local certificate authority for requested certificates");
        Ok(LocalCa {
            issuer,
            certificate,
        })
    }

    /// The CA's certificate in PEM: the chain of what it signs.
    pub fn certificate(&self) -> &str {
        &self.certificate
    }

    /// A certificate for `names` (the first is the subject's common name), valid from now for ACM's 395 days.
    pub fn issue(&self, names: &[String], algorithm: KeyAlgorithm) -> Result<Issued, AcmError> {
        let key = algorithm.generate()?;
        let mut params = CertificateParams::new(names.to_vec())
            .map_err(|e| AcmError::InvalidParameter(format!("Invalid domain name: {e}")))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names[0].as_str());
        params.distinguished_name = dn;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(LEAF_DAYS);
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        params.key_usages = match algorithm {
            KeyAlgorithm::Rsa(_) => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            _ => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| AcmError::Internal(format!("signing failed: {e}")))?;
        Ok(Issued {
            certificate: cert.pem(),
            private_key: key.serialize_pem(),
        })
    }
}

fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.pem"), dir.join("ca-key.pem"))
}

fn new_ca() -> Result<(String, KeyPair), AcmError> {
    let key = KeyAlgorithm::EcP256.generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Gantry");
    dn.push(DnType::CommonName, "Gantry local certificate authority");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(CA_DAYS);
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    let cert = params
        .self_signed(&key)
        .map_err(|e| AcmError::Internal(format!("making the CA failed: {e}")))?;
    Ok((cert.pem(), key))
}

/// 16 random bytes, the first below 0x80 so the serial stays a positive integer.
fn random_serial() -> [u8; 16] {
    let mut s: [u8; 16] = rand::random();
    s[0] &= 0x7f;
    s
}

/// Writes a file whole (temporary file, sync, rename) with the given permissions.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AcmError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| AcmError::Internal(format!("{}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acm::x509;

    #[test]
    fn the_ca_is_kept_and_signs_certificates_that_verify() {
        let dir = std::env::temp_dir().join(format!("gantry-ca-{}", uuid_like()));
        let ca = LocalCa::open(&dir).unwrap();
        let again = LocalCa::open(&dir).unwrap();
        assert_eq!(
            ca.certificate(),
            again.certificate(),
            "reopened, not remade"
        );
        let issued = again
            .issue(
                &["app.example.com".into(), "*.app.example.com".into()],
                KeyAlgorithm::EcP256,
            )
            .unwrap();
        let key = x509::certified_key(
            issued.certificate.as_bytes(),
            issued.private_key.as_bytes(),
            Some(ca.certificate().as_bytes()),
        )
        .unwrap();
        let f = x509::facts(key.cert[0].as_ref()).unwrap();
        assert_eq!(f.domain_name, "app.example.com");
        assert_eq!(f.subject_alternative_names.len(), 2);
        assert!(f.issuer.contains("Gantry local certificate authority"));
        assert_eq!(
            f.extended_key_usages,
            [
                "TLS_WEB_SERVER_AUTHENTICATION",
                "TLS_WEB_CLIENT_AUTHENTICATION"
            ]
        );
        let days = (f.not_after - f.not_before) / 86_400;
        assert_eq!(days, LEAF_DAYS);

        // The chain verifies against the CA as a client's root.
        let mut roots = rustls::RootCertStore::empty();
        let ca_der = x509::certificates(ca.certificate().as_bytes(), "ca").unwrap();
        roots.add(ca_der[0].clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::ring::default_provider().into(),
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        let name = rustls::pki_types::ServerName::try_from("x.app.example.com").unwrap();
        verifier
            .verify_server_cert(
                &key.cert[0],
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rsa_keys_are_made_for_acm_s_default() {
        let dir = std::env::temp_dir().join(format!("gantry-ca-{}", uuid_like()));
        let ca = LocalCa::open(&dir).unwrap();
        let issued = ca
            .issue(&["rsa.example.com".into()], KeyAlgorithm::Rsa(2048))
            .unwrap();
        let key = x509::certified_key(
            issued.certificate.as_bytes(),
            issued.private_key.as_bytes(),
            None,
        )
        .unwrap();
        assert_eq!(
            x509::facts(key.cert[0].as_ref()).unwrap().key_algorithm,
            "RSA_2048"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_acm_refuses_are_refused() {
        assert!(KeyAlgorithm::parse("RSA_1024").is_err());
        assert!(KeyAlgorithm::parse("EC_secp521r1").is_err());
        assert!(KeyAlgorithm::parse("DSA").is_err());
        assert_eq!(
            KeyAlgorithm::parse("RSA_2048").unwrap(),
            KeyAlgorithm::Rsa(2048)
        );
    }

    fn uuid_like() -> String {
        format!("{:016x}", rand::random::<u64>())
    }
}
