//! IPv4 CIDR blocks as EC2 uses them: parsing (the address must be the block's first), containment, overlap, and
//! the addresses of a subnet a task can take (AWS keeps the first four and the last one).

use std::fmt;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n` whose host bits are zero.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.split_once('/')?;
        let network: Ipv4Addr = addr.parse().ok()?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 2 {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let cidr = Cidr { network, prefix };
        (u32::from(network) & !cidr.mask() == 0).then_some(cidr)
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.network)
    }

    fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// How many addresses the block has.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    /// Whether `other` lies wholly inside this block.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The addresses a subnet gives out: all but the network address, the next three (router, DNS, reserved)
    /// and the last one, as AWS reserves them.
    pub fn usable(&self) -> impl Iterator<Item = Ipv4Addr> {
        let (first, last) = (self.first() as u64 + 4, self.last() as u64);
        (first..last).map(|a| Ipv4Addr::from(a as u32))
    }

    /// How many addresses [`Cidr::usable`] gives.
    pub fn usable_count(&self) -> u64 {
        self.size().saturating_sub(5)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parses_blocks_whose_host_bits_are_zero() {
        assert_eq!(c("172.31.0.0/16").to_string(), "172.31.0.0/16");
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        for bad in [
            "172.31.0.1/16",
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "10.0.0.0/+8",
            "x/8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = c("172.31.0.0/16");
        assert!(vpc.covers(&c("172.31.16.0/20")));
        assert!(!vpc.covers(&c("172.30.0.0/15")));
        assert!(!vpc.covers(&c("10.0.0.0/24")));
        assert!(c("10.0.0.0/24").overlaps(&c("10.0.0.128/25")));
        assert!(!c("10.0.0.0/25").overlaps(&c("10.0.0.128/25")));
        assert!(vpc.contains("172.31.255.255".parse().unwrap()));
        assert!(!vpc.contains("172.32.0.0".parse().unwrap()));
    }

    #[test]
    fn a_subnet_keeps_five_addresses_back() {
        let s = c("10.0.0.0/28");
        assert_eq!(s.usable_count(), 11);
        let usable: Vec<Ipv4Addr> = s.usable().collect();
        assert_eq!(usable.len(), 11);
        assert_eq!(usable[0], Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(usable[10], Ipv4Addr::new(10, 0, 0, 14));
        assert_eq!(c("172.31.0.0/20").usable_count(), 4091);
    }
}
