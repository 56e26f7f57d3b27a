//! The TLS configuration of a stored HTTPS or TLS listener: its ACM certificates (the default first), its SSL
//! policy's protocol versions and the ALPN protocols it offers, made once per change of any of them.

use std::sync::Arc;

use gantry_store::Store;
use rustls::ServerConfig;

use crate::acm::CertificateRecord;
use crate::api::certificates::DEFAULT_SSL_POLICY;
use crate::api::limits::SSL_POLICIES;
use crate::dataplane::tls::{self, Named};
use crate::model::ListenerRecord;
use crate::service::LbService;

/// The ALPN protocols a listener offers, in its order of preference.
fn alpn(l: &ListenerRecord, http2: bool) -> &'static [&'static [u8]] {
    if l.listener.protocol == "HTTPS" {
        return if http2 {
            &[b"h2", b"http/1.1"]
        } else {
            &[b"http/1.1"]
        };
    }
    let policy = l.listener.alpn_policy.as_ref().and_then(|p| p.first());
    match policy.map(String::as_str) {
        Some("HTTP1Only") => &[b"http/1.1"],
        Some("HTTP2Only") => &[b"h2"],
        Some("HTTP2Optional") => &[b"http/1.1", b"h2"],
        Some("HTTP2Preferred") => &[b"h2", b"http/1.1"],
        _ => &[],
    }
}

impl<S: Store> LbService<S> {
    /// The configuration TLS connections to the listener get, `None` when none of its certificates can be served.
    /// `fingerprint` receives what it was made from, for the cache to keep.
    pub(crate) fn listener_tls(
        &self,
        region: &str,
        l: &ListenerRecord,
        http2: bool,
        fingerprint: &mut String,
    ) -> Option<Arc<ServerConfig>> {
        let records: Vec<CertificateRecord> = l
            .certificate_arns()
            .filter_map(|arn| self.certificate_record(region, arn))
            .collect();
        let policy = l
            .listener
            .ssl_policy
            .as_deref()
            .unwrap_or(DEFAULT_SSL_POLICY);
        let alpn = alpn(l, http2);
        *fingerprint = format!("{}|{policy}|{alpn:?}", l.listener.listener_arn);
        for r in &records {
            let version = r.imported_at.unwrap_or(r.created_at);
            fingerprint.push_str(&format!("|{}@{version}", r.arn));
        }
        self.data_plane.tls.get_or_make(fingerprint, || {
            let named: Vec<Named> = records
                .iter()
                .filter_map(|r| {
                    let served = r.certified_key().and_then(|key| Ok((r.facts()?, key)));
                    match served {
                        Ok((facts, key)) => Some(Named {
                            names: facts.subject_alternative_names,
                            key: Arc::new(key),
                        }),
                        Err(e) => {
                            tracing::warn!(certificate = %r.arn, error = %e, "certificate cannot be served");
                            None
                        }
                    }
                })
                .collect();
            if named.is_empty() {
                tracing::warn!(listener = %l.listener.listener_arn, "no certificate of the listener can be served");
                return None;
            }
            let protocols = SSL_POLICIES
                .iter()
                .find(|(p, _)| *p == policy)
                .map(|(_, v)| *v)
                .unwrap_or(&["TLSv1.2"]);
            tls::server_config(named, protocols, alpn)
                .inspect_err(|e| tracing::warn!(listener = %l.listener.listener_arn, error = %e, "TLS configuration failed"))
                .ok()
        })
    }
}
