//! AWS Certificate Manager, the part load balancers need: certificates imported (PEM certificate, key, chain) or
//! requested (issued at once, signed by a local CA kept in the data directory), described, listed, tagged and
//! deleted (not while a listener uses them). HTTPS listeners serve them (see `dataplane::tls`).

mod ca;
mod certificates;
mod errors;
mod record;
mod tags;
pub(crate) mod x509;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gantry_aws::{parse_input, AwsError, JsonService, RequestContext, ServiceFuture};
use gantry_model::Scope;
use gantry_store::Store;
use serde_json::Value;

pub use ca::LocalCa;
pub use errors::AcmError;
pub use record::CertificateRecord;
pub(crate) use record::{certificate_key, parse_arn};

use crate::service::LbService;

/// ACM (`CertificateManager`) beside the load balancers whose listeners use its certificates: both change under
/// the load balancers' one write lock, so a certificate cannot be deleted while a listener is being given it.
pub struct AcmService<S: Store> {
    lb: Arc<LbService<S>>,
    ca_dir: PathBuf,
    ca: Mutex<Option<Arc<LocalCa>>>,
}

impl<S: Store> AcmService<S> {
    /// The local CA lives in `ca_dir`, made on the first RequestCertificate.
    pub fn new(lb: Arc<LbService<S>>, ca_dir: PathBuf) -> Arc<AcmService<S>> {
        Arc::new(AcmService {
            lb,
            ca_dir,
            ca: Mutex::new(None),
        })
    }

    fn ca(&self) -> Result<Arc<LocalCa>, AcmError> {
        let mut ca = self.ca.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = &*ca {
            return Ok(c.clone());
        }
        let made = Arc::new(LocalCa::open(&self.ca_dir)?);
        *ca = Some(made.clone());
        Ok(made)
    }

    async fn dispatch(&self, scope: &Scope, op: &str, body: &[u8]) -> Result<Value, AwsError> {
        Ok(match op {
            "ImportCertificate" => certificates::import(self, scope, parse_input(body)?).await?,
            "RequestCertificate" => certificates::request(self, scope, parse_input(body)?).await?,
            "DescribeCertificate" => certificates::describe(self, scope, parse_input(body)?)?,
            "GetCertificate" => certificates::get(self, scope, parse_input(body)?)?,
            "ListCertificates" => certificates::list(self, scope, parse_input(body)?)?,
            "DeleteCertificate" => certificates::delete(self, scope, parse_input(body)?).await?,
            "AddTagsToCertificate" => tags::add(self, scope, parse_input(body)?).await?,
            "RemoveTagsFromCertificate" => tags::remove(self, scope, parse_input(body)?).await?,
            "ListTagsForCertificate" => tags::list(self, scope, parse_input(body)?)?,
            other => return Err(AwsError::unknown_operation(other)),
        })
    }
}

impl<S: Store> JsonService for AcmService<S> {
    fn target_prefix(&self) -> &'static str {
        "CertificateManager"
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        operation: &'a str,
        body: &'a [u8],
    ) -> ServiceFuture<'a> {
        Box::pin(async move { self.dispatch(&ctx.scope, operation, body).await })
    }
}
