//! The values of the stickiness cookies: which target (or target group) a client stays on, sealed. The payload is
//! encrypted with a keystream from HMAC-SHA256 and authenticated with another HMAC, under a key made when the
//! process starts, so a client can neither read the target's address nor forge one (AWS's cookies are opaque and
//! encrypted too); after a restart old cookies are refused and sessions just start again.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const NONCE: usize = 12;
const TAG: usize = 16;
/// Payload kinds, so a group cookie can never be taken for a target cookie.
const KIND_TARGET: u8 = 1;
const KIND_GROUP: u8 = 2;

type HmacSha256 = Hmac<Sha256>;

pub struct Sealer {
    mac: HmacSha256,
}

impl Default for Sealer {
    fn default() -> Sealer {
        Sealer::new(&rand::random::<[u8; 32]>())
    }
}

/// The first bytes of a target group ARN's digest: names it in a cookie without spelling it out.
fn group_id(arn: &str) -> [u8; 8] {
    let d = Sha256::digest(arn.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    id
}

impl Sealer {
    pub fn new(key: &[u8]) -> Sealer {
        Sealer {
            mac: HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    fn mac(&self, label: u8, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(&[label]);
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// XORs `data` with the keystream of `nonce` (HMAC in counter mode).
    fn crypt(&self, nonce: &[u8], data: &mut [u8]) {
        for (i, chunk) in data.chunks_mut(32).enumerate() {
            let block = self.mac(b's', &[nonce, &[i as u8]]);
            for (b, k) in chunk.iter_mut().zip(block) {
                *b ^= k;
            }
        }
    }

    fn seal(&self, mut payload: Vec<u8>) -> String {
        let nonce: [u8; NONCE] = rand::random();
        self.crypt(&nonce, &mut payload);
        let tag = self.mac(b't', &[&nonce, &payload]);
        let mut out = Vec::with_capacity(NONCE + payload.len() + TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&payload);
        out.extend_from_slice(&tag[..TAG]);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// The payload of a value this process sealed; `None` for anything else.
    fn open(&self, value: &str) -> Option<Vec<u8>> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(value.trim().trim_matches('"'))
            .ok()?;
        if raw.len() < NONCE + TAG {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE);
        let (payload, tag) = rest.split_at(rest.len() - TAG);
        let mut m = self.mac.clone();
        m.update(b"t");
        m.update(nonce);
        m.update(payload);
        m.verify_truncated_left(tag).ok()?;
        let mut payload = payload.to_vec();
        self.crypt(nonce, &mut payload);
        Some(payload)
    }

    /// A cookie value sending a client to `target` of the group until `expires` (epoch seconds).
    pub fn seal_target(&self, group_arn: &str, target: SocketAddr, expires: u64) -> String {
        let mut p = header(KIND_TARGET, group_arn, expires);
        match target.ip() {
            IpAddr::V4(a) => p.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => p.extend_from_slice(&a.octets()),
        }
        p.extend_from_slice(&target.port().to_be_bytes());
        self.seal(p)
    }

    /// The target a cookie value names in the group, unless it is for another group, expired or not ours.
    pub fn open_target(&self, value: &str, group_arn: &str, now: u64) -> Option<SocketAddr> {
        let p = self.open(value)?;
        let rest = check_header(&p, KIND_TARGET, group_arn, now)?;
        let (ip, port): (IpAddr, &[u8]) = match rest.len() {
            6 => (<[u8; 4]>::try_from(&rest[..4]).ok()?.into(), &rest[4..]),
            18 => (<[u8; 16]>::try_from(&rest[..16]).ok()?.into(), &rest[16..]),
            _ => return None,
        };
        Some(SocketAddr::new(
            ip,
            u16::from_be_bytes(port.try_into().ok()?),
        ))
    }

    /// A cookie value sending a client to the target group `group_arn` until `expires`.
    pub fn seal_group(&self, group_arn: &str, expires: u64) -> String {
        self.seal(header(KIND_GROUP, group_arn, expires))
    }

    /// Which of `groups` a cookie value names, unless expired or not ours.
    pub fn open_group(&self, value: &str, groups: &[&str], now: u64) -> Option<usize> {
        let p = self.open(value)?;
        groups
            .iter()
            .position(|g| check_header(&p, KIND_GROUP, g, now).is_some_and(|rest| rest.is_empty()))
    }
}

/// kind, group id, expiry.
fn header(kind: u8, group_arn: &str, expires: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    p.push(kind);
    p.extend_from_slice(&group_id(group_arn));
    p.extend_from_slice(&expires.to_be_bytes());
    p
}

/// What follows a header of this kind, group and a time not past.
fn check_header<'p>(p: &'p [u8], kind: u8, group_arn: &str, now: u64) -> Option<&'p [u8]> {
    if p.len() < 17 || p[0] != kind || p[1..9] != group_id(group_arn) {
        return None;
    }
    let expires = u64::from_be_bytes(p[9..17].try_into().ok()?);
    (expires >= now).then_some(&p[17..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_cookies_round_trip_and_refuse_the_rest() {
        let s = Sealer::new(b"k");
        let addr: SocketAddr = "127.0.0.1:32768".parse().unwrap();
        let v = s.seal_target("tg-a", addr, 1000);
        assert_eq!(s.open_target(&v, "tg-a", 999), Some(addr));
        assert_eq!(s.open_target(&v, "tg-a", 1000), Some(addr));
        // Expired, another group, another key, tampered, garbage.
        assert_eq!(s.open_target(&v, "tg-a", 1001), None);
        assert_eq!(s.open_target(&v, "tg-b", 999), None);
        assert_eq!(Sealer::new(b"other").open_target(&v, "tg-a", 999), None);
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&v)
            .unwrap();
        raw[NONCE] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(s.open_target(&tampered, "tg-a", 999), None);
        for junk in ["", "x", "!!!", "AAAA", &"A".repeat(200)] {
            assert_eq!(s.open_target(junk, "tg-a", 0), None);
        }
        // IPv6 too; the address is not in clear and two seals differ.
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(
            s.open_target(&s.seal_target("tg-a", v6, 5), "tg-a", 5),
            Some(v6)
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&v)
            .unwrap();
        assert!(!raw.windows(4).any(|w| w == [127, 0, 0, 1]));
        assert_ne!(v, s.seal_target("tg-a", addr, 1000));
    }

    #[test]
    fn group_cookies_name_one_of_the_groups() {
        let s = Sealer::new(b"k");
        let v = s.seal_group("tg-b", 50);
        assert_eq!(s.open_group(&v, &["tg-a", "tg-b"], 10), Some(1));
        assert_eq!(s.open_group(&v, &["tg-a"], 10), None);
        assert_eq!(s.open_group(&v, &["tg-b"], 51), None);
        // A target cookie is not a group cookie, nor the reverse.
        let t = s.seal_target("tg-b", "10.0.0.1:80".parse().unwrap(), 50);
        assert_eq!(s.open_group(&t, &["tg-b"], 10), None);
        assert_eq!(s.open_target(&v, "tg-b", 10), None);
    }
}
