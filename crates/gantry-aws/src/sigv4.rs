//! AWS Signature Version 4 verification (header form), from the algorithm in the AWS General Reference.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Accepted access keys: access key id -> secret.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    keys: HashMap<String, String>,
}

impl Credentials {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Credentials {
        Credentials {
            keys: pairs.into_iter().collect(),
        }
    }

    pub fn secret(&self, access_key: &str) -> Option<&str> {
        self.keys.get(access_key).map(String::as_str)
    }

    pub fn access_keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// What a valid signature tells about the request.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedRequest {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")]
    Mismatch,
    #[error(
        "Signature expired: {0} is now earlier or later than 15 minutes from the current time."
    )]
    Expired(String),
}

struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        SigV4Error::Incomplete("Only AWS4-HMAC-SHA256 signatures are supported".into())
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let incomplete = |what: &str| {
        SigV4Error::Incomplete(format!("Authorization header requires '{what}' parameter."))
    };
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed = signed.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped to a valid region and service: {credential}"
        )));
    }
    Ok(Authorization {
        access_key: scope[0],
        date: scope[1],
        region: scope[2],
        service: scope[3],
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// AWS's URI encoding: everything but unreserved characters, `/` kept when `keep_slash`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex_pair) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn header_value(headers: &HeaderMap, name: &str) -> String {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    values.join(",")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Epoch seconds of an `X-Amz-Date` (`20150830T123600Z`).
fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(4..6)?, n(6..8)?);
    Some(days * 86400 + n(9..11)? * 3600 + n(11..13)? * 60 + n(13..15)?)
}

/// Formats epoch seconds as an `X-Amz-Date`.
fn format_amz_date(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil_from_days
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn string_to_sign(
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed: &[&str],
    body: &[u8],
    amz_date: &str,
    scope: &str,
) -> String {
    let canonical_headers: String = signed
        .iter()
        .map(|h| format!("{h}:{}\n", header_value(headers, h)))
        .collect();
    let payload_hash = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => h.to_string(),
        None => hex::encode(Sha256::digest(body)),
    };
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        uri_encode(&percent_decode_path(path), true),
        canonical_query(query),
        signed.join(";"),
    );
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The path as the client meant it: botocore encodes once and the signer encodes again, so we decode once here.
fn percent_decode_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    percent_decode(&path.replace('+', "%2B"))
}

/// Verifies the SigV4 signature of a request against the accepted keys.
pub fn verify(
    credentials: &Credentials,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<VerifiedRequest, SigV4Error> {
    let auth_value = headers.get("authorization").ok_or(SigV4Error::Missing)?;
    let auth = parse_authorization(
        auth_value
            .to_str()
            .map_err(|_| SigV4Error::Incomplete("Authorization header is not ASCII".into()))?,
    )?;
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SigV4Error::Incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into()))?;
    let when = parse_amz_date(amz_date)
        .ok_or_else(|| SigV4Error::Incomplete(format!("Invalid X-Amz-Date: {amz_date}")))?;
    if (now_secs() - when).abs() > 15 * 60 {
        return Err(SigV4Error::Expired(amz_date.to_string()));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(SigV4Error::Incomplete(
            "'Host' must be a signed header".into(),
        ));
    }
    let secret = credentials
        .secret(auth.access_key)
        .ok_or(SigV4Error::UnknownKey)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let sts = string_to_sign(
        method,
        path,
        query,
        headers,
        &auth.signed_headers,
        body,
        amz_date,
        &scope,
    );
    let expected = hex::encode(hmac(
        &signing_key(secret, auth.date, auth.region, auth.service),
        sts.as_bytes(),
    ));
    // Constant-time comparison: the signature is a secret-derived value.
    let matches = expected.len() == auth.signature.len()
        && expected
            .bytes()
            .zip(auth.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !matches {
        return Err(SigV4Error::Mismatch);
    }
    Ok(VerifiedRequest {
        access_key: auth.access_key.to_string(),
        region: auth.region.to_string(),
        service: auth.service.to_string(),
    })
}

/// Signs a request (headers `host`, `x-amz-date`, `authorization` are set). Used by tests and Gantry's own clients.
/// `path` may end in a query string (`/?Action=...`), which is signed too.
pub fn sign_request_headers(
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    method: &Method,
    host: &str,
    path: &str,
    headers: &mut HeaderMap,
    body: &[u8],
) {
    let amz_date = format_amz_date(now_secs());
    let date = &amz_date[..8];
    let set = |headers: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = v.parse() {
            headers.insert(k, v);
        }
    };
    set(headers, "host", host);
    set(headers, "x-amz-date", &amz_date);
    let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    signed.sort();
    signed.dedup();
    let signed_refs: Vec<&str> = signed.iter().map(String::as_str).collect();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let sts = string_to_sign(
        method,
        path,
        query,
        headers,
        &signed_refs,
        body,
        &amz_date,
        &scope,
    );
    let signature = hex::encode(hmac(
        &signing_key(secret, date, region, service),
        sts.as_bytes(),
    ));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={}, Signature={signature}",
        signed.join(";")
    );
    set(headers, "authorization", &auth);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1440938160));
        assert_eq!(format_amz_date(1440938160), "20150830T123600Z");
        assert_eq!(parse_amz_date("garbage"), None);
    }

    /// The example of the AWS General Reference ("Examples of the complete Signature Version 4 signing process").
    #[test]
    fn matches_the_aws_documented_signing_key() {
        let k = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/x-amz-json-1.1".parse().unwrap(),
        );
        h.insert(
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.ListClusters"
                .parse()
                .unwrap(),
        );
        sign_request_headers(
            "test",
            secret,
            "us-east-1",
            "ecs",
            &Method::POST,
            "localhost:4566",
            "/",
            &mut h,
            body,
        );
        h
    }

    #[test]
    fn accepts_good_and_refuses_bad_signatures() {
        let creds = Credentials::new([("test".to_string(), "test".to_string())]);
        let h = signed("test", b"{}");
        let v = verify(&creds, &Method::POST, "/", "", &h, b"{}").unwrap();
        assert_eq!(
            (v.region.as_str(), v.service.as_str()),
            ("us-east-1", "ecs")
        );
        assert_eq!(
            verify(&creds, &Method::POST, "/", "", &h, b"{ }"),
            Err(SigV4Error::Mismatch)
        );
        assert_eq!(
            verify(
                &creds,
                &Method::POST,
                "/",
                "",
                &signed("wrong", b"{}"),
                b"{}"
            ),
            Err(SigV4Error::Mismatch)
        );
        assert_eq!(
            verify(&creds, &Method::POST, "/", "", &HeaderMap::new(), b""),
            Err(SigV4Error::Missing)
        );
        let other = Credentials::new([("other".to_string(), "x".to_string())]);
        assert_eq!(
            verify(&other, &Method::POST, "/", "", &h, b"{}"),
            Err(SigV4Error::UnknownKey)
        );
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        assert_eq!(canonical_query("b=2&a=1&c=x%20y"), "a=1&b=2&c=x%20y");
    }
}
