//! Who may use `/v2/`: a login token from GetAuthorizationToken, sent as HTTP Basic `AWS:<token>` (what
//! `docker login --username AWS` stores) or as a bearer token from the token endpoint `/v2/token`, which docker,
//! skopeo and podman call after the `WWW-Authenticate: Bearer` challenge of a 401.

use crate::errors::{RegistryError, Result};
use crate::meta::now;
use crate::token::TokenError;
use crate::Registry;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use gantry_store::Store;
use std::sync::Arc;

/// The user name ECR's tokens go with.
const USER: &str = "AWS";

/// The credentials of a request, as sent.
#[derive(Debug, PartialEq)]
enum Credentials<'a> {
    None,
    Basic { user: String, password: String },
    Bearer(&'a str),
}

fn credentials(headers: &HeaderMap) -> Result<Credentials<'_>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let value = value.to_str().map_err(|_| TokenError::Malformed)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(TokenError::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| TokenError::Malformed)?;
        let text = String::from_utf8(raw).map_err(|_| TokenError::Malformed)?;
        let (user, password) = text.split_once(':').ok_or(TokenError::Malformed)?;
        return Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Bearer(rest));
    }
    Err(TokenError::Malformed)
}

/// The login token of a request: Basic with user `AWS`, or Bearer. Returns the token's expiry.
fn verified<S: Store>(reg: &Registry<S>, headers: &HeaderMap) -> Result<u64, TokenError> {
    match credentials(headers)? {
        Credentials::None => Err(TokenError::Missing),
        Credentials::Basic { user, password } if user == USER => {
            reg.tokens.verify(&password, now())
        }
        Credentials::Basic { .. } => Err(TokenError::BadSignature),
        Credentials::Bearer(token) => reg.tokens.verify(token, now()),
    }
}

/// Lets the request through when the registry is open or its token is valid.
pub(crate) fn authorize<S: Store>(reg: &Registry<S>, headers: &HeaderMap) -> Result<()> {
    if reg.auth_required() {
        verified(reg, headers)?;
    }
    Ok(())
}

/// Adds the challenge to a 401, pointing at the token endpoint of the host the client used (its `Host` header).
pub(crate) fn add_challenge(res: &mut Response, host: Option<&HeaderValue>) {
    if res.status() != StatusCode::UNAUTHORIZED {
        return;
    }
    let host = host
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let challenge = format!("Bearer realm=\"http://{host}/v2/token\",service=\"{host}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
}

/// `GET /v2/token`: trades the login (Basic `AWS:<token>`) for a bearer token that expires with it. The `scope`
/// and `service` parameters are accepted and not narrowed: a login grants the whole registry, as on ECR.
pub(crate) async fn token<S: Store>(State(reg): State<Arc<Registry<S>>>, req: Request) -> Response {
    let headers = req.headers();
    let expires_at = match verified(&reg, headers) {
        Ok(expiry) => expiry,
        // An open registry hands anonymous clients a token too, so that the flow works either way.
        Err(TokenError::Missing) if !reg.auth_required() => now() + crate::ecr::TOKEN_LIFETIME_SECS,
        Err(e) => {
            let mut res = RegistryError::Unauthorized(e).into_response();
            add_challenge(&mut res, headers.get(header::HOST));
            return res;
        }
    };
    let token = reg.tokens.issue(expires_at);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_at.saturating_sub(now()),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn reads_basic_and_bearer_credentials() {
        assert_eq!(credentials(&HeaderMap::new()), Ok(Credentials::None));
        let basic = base64::engine::general_purpose::STANDARD.encode("AWS:a:b");
        assert_eq!(
            credentials(&headers(&format!("Basic {basic}"))),
            Ok(Credentials::Basic {
                user: "AWS".into(),
                password: "a:b".into()
            })
        );
        assert_eq!(
            credentials(&headers("bearer  tok")),
            Ok(Credentials::Bearer("tok"))
        );
        for bad in ["Basic !!!", "Basic", "Digest x", "Basic bm9jb2xvbg=="] {
            assert_eq!(
                credentials(&headers(bad)),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
