//! TLS for HTTPS and TLS listeners: a rustls configuration per listener that offers the protocol versions of its
//! SSL policy and ALPN's protocols, and picks the certificate by SNI among the listener's (an exact name before a
//! wildcard; the default certificate when no name matches or the client sent none), as ALB does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// A certificate a listener serves, with the DNS names it is for.
#[derive(Debug)]
pub struct Named {
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
}

/// Which of `certificates` serves `sni`: the first with the exact name, else the first whose wildcard covers it
/// (`*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`).
pub fn choose<'a>(certificates: &'a [Named], sni: &str) -> Option<&'a Named> {
    let sni = sni.trim_end_matches('.').to_ascii_lowercase();
    let exact = certificates
        .iter()
        .find(|c| c.names.iter().any(|n| n.eq_ignore_ascii_case(&sni)));
    exact.or_else(|| {
        let (_, parent) = sni.split_once('.')?;
        certificates.iter().find(|c| {
            c.names.iter().any(|n| {
                n.strip_prefix("*.")
                    .is_some_and(|p| p.eq_ignore_ascii_case(parent))
            })
        })
    })
}

#[derive(Debug)]
struct BySni {
    /// The default first.
    certificates: Vec<Named>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|sni| choose(&self.certificates, sni))
            .or(self.certificates.first());
        chosen.map(|n| n.key.clone())
    }
}

/// The protocol versions of an SSL policy's `TLSv1.2` / `TLSv1.3` names.
fn versions(protocols: &[&str]) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut v = Vec::new();
    if protocols.contains(&"TLSv1.3") {
        v.push(&rustls::version::TLS13);
    }
    if protocols.contains(&"TLSv1.2") {
        v.push(&rustls::version::TLS12);
    }
    v
}

/// A server configuration: `certificates` (the default first), the policy's versions, ALPN's protocols.
pub fn server_config(
    certificates: Vec<Named>,
    protocols: &[&str],
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(protocols))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { certificates }));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Configurations by what they were made from, so a routes rebuild does not parse keys again.
#[derive(Default)]
pub struct Cache {
    configs: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl Cache {
    /// The configuration made from `fingerprint`'s inputs, made by `make` the first time.
    pub fn get_or_make(
        &self,
        fingerprint: &str,
        make: impl FnOnce() -> Option<Arc<ServerConfig>>,
    ) -> Option<Arc<ServerConfig>> {
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = configs.get(fingerprint) {
            return Some(c.clone());
        }
        let made = make()?;
        configs.insert(fingerprint.to_string(), made.clone());
        Some(made)
    }

    /// Forgets the configurations whose fingerprint `keep` does not want.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.configs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(names: &[&str]) -> Named {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap()
                .self_signed(&key)
                .unwrap();
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let key = CertifiedKey::from_der(
            vec![cert.der().clone()],
            der,
            &rustls::crypto::ring::default_provider(),
        )
        .unwrap();
        Named {
            names: names.iter().map(|s| s.to_string()).collect(),
            key: Arc::new(key),
        }
    }

    #[test]
    fn an_exact_name_wins_over_a_wildcard() {
        let certs = vec![
            named(&["*.example.com"]),
            named(&["api.example.com"]),
            named(&["other.org", "www.other.org"]),
        ];
        let pick = |sni: &str| choose(&certs, sni).map(|c| c.names[0].clone());
        assert_eq!(pick("api.example.com").as_deref(), Some("api.example.com"));
        assert_eq!(pick("API.Example.com.").as_deref(), Some("api.example.com"));
        assert_eq!(pick("web.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(pick("www.other.org").as_deref(), Some("other.org"));
        assert_eq!(
            pick("example.com"),
            None,
            "a wildcard covers one label only"
        );
        assert_eq!(pick("a.b.example.com"), None);
        assert_eq!(pick("nothing.net"), None);
    }

    #[test]
    fn the_policy_s_versions_are_offered() {
        assert_eq!(versions(&["TLSv1.3"]).len(), 1);
        assert_eq!(versions(&["TLSv1.2", "TLSv1.3"]).len(), 2);
        let c = server_config(
            vec![named(&["a.example.com"])],
            &["TLSv1.2"],
            &[b"h2", b"http/1.1"],
        )
        .unwrap();
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert!(server_config(vec![named(&["a.example.com"])], &[], &[]).is_err());
    }
}
