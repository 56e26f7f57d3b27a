//! The AWS wire protocols: the edge that routes a request to its service (by `X-Amz-Target` for JSON, by the
//! SigV4 scope and `Action=` for Query), SigV4 verification against the accepted access keys, the JSON 1.0/1.1
//! codec, the Query codec (form parameters in, XML out), the AWS error shapes, request ids and pagination
//! tokens. It knows nothing of what any service does.

mod edge;
mod error;
mod json;
pub mod metrics;
mod pagination;
mod query;
mod sigv4;

pub use edge::{Edge, EdgeConfig, JsonService, RequestContext, ServiceFuture, MAX_BODY_BYTES};
pub use error::AwsError;
pub use json::{parse_input, required, ResponseExt};
pub use pagination::{paginate, Page};
pub use query::{parse_form, FormError, Params, QueryService, XmlStyle};
pub use sigv4::{sign_request_headers, verify, Credentials, SigV4Error, VerifiedRequest};
