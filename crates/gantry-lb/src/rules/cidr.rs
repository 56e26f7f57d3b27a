//! CIDR blocks for the source-ip condition: parsing as ELBv2 accepts them and testing an address against them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A parsed `address/prefix` block, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn address(&self) -> IpAddr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in the block. An IPv4-mapped IPv6 client (`::ffff:a.b.c.d`, what a dual-stack socket
    /// reports for an IPv4 peer) is compared as the IPv4 address it stands for.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    // A shift by 32 overflows, so a /0 is its own case.
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// Why a string is not a CIDR block (the caller words the AWS error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrParseError;

impl FromStr for Cidr {
    type Err = CidrParseError;

    /// `address/prefix` with the prefix required ("The IP address must be specified in CIDR format"); host bits
    /// below the prefix are accepted and ignored, as they are when matching.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = s.split_once('/').ok_or(CidrParseError)?;
        // `u8::from_str` accepts a leading '+', which no CIDR notation has.
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
            return Err(CidrParseError);
        }
        let prefix: u8 = prefix.parse().map_err(|_| CidrParseError)?;
        let address = if address.contains(':') {
            IpAddr::V6(Ipv6Addr::from_str(address).map_err(|_| CidrParseError)?)
        } else {
            IpAddr::V4(Ipv4Addr::from_str(address).map_err(|_| CidrParseError)?)
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(CidrParseError);
        }
        Ok(Cidr { address, prefix })
    }
}
