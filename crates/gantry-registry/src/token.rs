//! Registry login tokens, as ECR's GetAuthorizationToken hands them out: opaque to clients, valid until an expiry,
//! checked without a lookup. A token is `base64url(v1.{expires_at}.{nonce})` `.` `base64url(hmac_sha256(key, ..))`,
//! with a key created once per data directory, so tokens survive restarts (and admin resets) of the server.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{self, Write};
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

const KEY_LEN: usize = 32;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("authentication required")]
    Missing,
    #[error("the authorization token is malformed")]
    Malformed,
    #[error("the authorization token is not valid for this registry")]
    BadSignature,
    #[error("the authorization token has expired")]
    Expired,
}

/// Issues and checks tokens with one secret key.
pub struct TokenAuthority {
    key: [u8; KEY_LEN],
}

impl TokenAuthority {
    /// The authority of `{registry_dir}/token-key`, creating the key (readable by the owner only) when missing.
    pub fn open(registry_dir: &Path) -> io::Result<TokenAuthority> {
        let path = registry_dir.join("token-key");
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(key) = <[u8; KEY_LEN]>::try_from(bytes.as_slice()) {
                return Ok(TokenAuthority { key });
            }
        }
        let key: [u8; KEY_LEN] = rand_key();
        std::fs::create_dir_all(registry_dir)?;
        let staged = registry_dir.join(format!("token-key.{}", uuid::Uuid::new_v4()));
        let mut f = open_private(&staged)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::rename(&staged, &path)?;
        Ok(TokenAuthority { key })
    }

    /// An authority with the given key (tests).
    pub fn with_key(key: [u8; KEY_LEN]) -> TokenAuthority {
        TokenAuthority { key }
    }

    /// A new token valid until `expires_at` (epoch seconds).
    pub fn issue(&self, expires_at: u64) -> String {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let payload = format!("v1.{expires_at}.{nonce}");
        format!(
            "{}.{}",
            B64.encode(&payload),
            B64.encode(self.mac(payload.as_bytes()))
        )
    }

    /// Checks a token at time `now`; returns its expiry.
    pub fn verify(&self, token: &str, now: u64) -> Result<u64, TokenError> {
        let (payload, mac) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let mac = B64.decode(mac).map_err(|_| TokenError::Malformed)?;
        let mut check = HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length");
        check.update(&payload);
        // Constant-time comparison.
        check
            .verify_slice(&mac)
            .map_err(|_| TokenError::BadSignature)?;
        let text = std::str::from_utf8(&payload).map_err(|_| TokenError::Malformed)?;
        let mut parts = text.split('.');
        let (Some("v1"), Some(expiry)) = (parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let expires_at: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(expires_at)
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length");
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

/// 32 random bytes from two v4 UUIDs (the OS random source, through a crate the registry already has).
fn rand_key() -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let a = TokenAuthority::with_key([7; KEY_LEN]);
        let t = a.issue(1000);
        assert_eq!(a.verify(&t, 999), Ok(1000));
        assert_eq!(a.verify(&t, 1000), Err(TokenError::Expired));
        assert_ne!(a.issue(1000), t, "tokens are unique");
    }

    #[test]
    fn forged_and_garbled_tokens_are_refused() {
        let a = TokenAuthority::with_key([7; KEY_LEN]);
        let other = TokenAuthority::with_key([8; KEY_LEN]);
        assert_eq!(
            a.verify(&other.issue(1000), 1),
            Err(TokenError::BadSignature)
        );
        // A payload with a later expiry under the old signature.
        let t = a.issue(1000);
        let (_, mac) = t.split_once('.').unwrap();
        let forged = format!("{}.{mac}", B64.encode("v1.99999999999.x"));
        assert_eq!(a.verify(&forged, 1), Err(TokenError::BadSignature));
        for bad in ["", "abc", "a.b.c", "!!.??", "."] {
            assert!(a.verify(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_is_kept_across_opens() {
        let dir = std::env::temp_dir().join(format!("gantry-token-{}", uuid::Uuid::new_v4()));
        let a = TokenAuthority::open(&dir).unwrap();
        let t = a.issue(u64::MAX);
        let b = TokenAuthority::open(&dir).unwrap();
        assert!(b.verify(&t, 1).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("token-key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
