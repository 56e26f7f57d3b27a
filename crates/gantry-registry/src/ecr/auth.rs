//! GetAuthorizationToken: the `docker login` credentials (`AWS:<token>`, base64) for this registry. The registry
//! checks them on every `/v2/` request (`api::auth`).

use base64::Engine;
use gantry_model::agent::RegistryCredentials;
use gantry_store::Store;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{EcrError, EcrService};

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

/// The registry host of an image reference when it names one (`host[:port]/...`), as docker reads references: the
/// first component is a host when it holds a `.` or `:` or is `localhost`.
fn image_host(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

impl<S: Store> EcrService<S> {
    /// A login for pulling `image` when it comes from this registry (reached over loopback on the server's port),
    /// so that ECS tasks pull from it without the user logging in; `None` for any other image.
    pub fn pull_credentials(&self, image: &str) -> Option<RegistryCredentials> {
        let host = image_host(image)?;
        let port = self.config.port.to_string();
        let own = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|h| host.strip_prefix(h).and_then(|p| p.strip_prefix(':')) == Some(port.as_str()));
        if !own {
            return None;
        }
        let (token, _) = self.registry.issue_token(TOKEN_LIFETIME_SECS);
        Some(RegistryCredentials {
            server: host.to_string(),
            username: "AWS".to_string(),
            password: token,
        })
    }

    pub(crate) fn get_authorization_token(
        &self,
        _input: GetAuthorizationTokenInput,
    ) -> Result<Value, EcrError> {
        let (token, expires_at) = self.registry.issue_token(TOKEN_LIFETIME_SECS);
        Ok(json!({ "authorizationData": [{
            "authorizationToken": encode_token(&token),
            "expiresAt": expires_at,
            "proxyEndpoint": format!("http://{}", self.host()),
        }]}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_hosts_are_read_as_docker_does() {
        assert_eq!(image_host("localhost:4566/web:1"), Some("localhost:4566"));
        assert_eq!(image_host("localhost/web"), Some("localhost"));
        assert_eq!(
            image_host("127.0.0.1:4566/a/b@sha256:00"),
            Some("127.0.0.1:4566")
        );
        assert_eq!(image_host("gantry-test/testapp:latest"), None);
        assert_eq!(image_host("busybox"), None);
    }

    #[test]
    fn token_decodes_to_aws_user() {
        let t = encode_token("abc");
        let raw = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
        assert_eq!(raw, b"AWS:abc");
    }
}
