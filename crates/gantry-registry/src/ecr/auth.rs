//! GetAuthorizationToken: the `docker login` credentials (`AWS:<token>`, base64) for this registry.
//!
//! The token is not checked by the registry yet: any credentials (or none) can push and pull. Checking it is the
//! "Auth" part of issue 3.

use base64::Engine;
use gantry_store::Store;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{EcrError, EcrService};
use crate::meta::now;

/// Tokens are valid for 12 hours, as ECR's.
pub const TOKEN_LIFETIME_SECS: u64 = 12 * 60 * 60;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenInput {
    #[allow(dead_code)]
    registry_ids: Option<Vec<String>>,
}

/// `base64("AWS:" + token)`, as `docker login --username AWS` expects after decoding.
pub fn encode_token(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("AWS:{token}"))
}

impl<S: Store> EcrService<S> {
    pub(crate) fn get_authorization_token(
        &self,
        _input: GetAuthorizationTokenInput,
    ) -> Result<Value, EcrError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        Ok(json!({ "authorizationData": [{
            "authorizationToken": encode_token(&token),
            "expiresAt": now() + TOKEN_LIFETIME_SECS,
            "proxyEndpoint": format!("http://{}", self.host()),
        }]}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_decodes_to_aws_user() {
        let t = encode_token("abc");
        let raw = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
        assert_eq!(raw, b"AWS:abc");
    }
}
