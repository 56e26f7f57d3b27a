use std::collections::BTreeSet;

use rand::Rng;

/// ECS hands out dynamic host ports from this range (bridge mode, hostPort 0 or absent).
pub const DYNAMIC_PORT_RANGE: std::ops::RangeInclusive<u16> = 49153..=65535;

/// Host ports in use on an instance, per protocol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortSet {
    pub tcp: BTreeSet<u16>,
    pub udp: BTreeSet<u16>,
}

impl PortSet {
    pub fn set(&self, udp: bool) -> &BTreeSet<u16> {
        if udp {
            &self.udp
        } else {
            &self.tcp
        }
    }

    pub fn insert(&mut self, port: u16, udp: bool) -> bool {
        if udp {
            self.udp.insert(port)
        } else {
            self.tcp.insert(port)
        }
    }

    /// A free dynamic port, chosen at random so that restarts do not keep reusing the same one.
    pub fn pick_dynamic(&self, udp: bool, rng: &mut impl Rng) -> Option<u16> {
        let used = self.set(udp);
        let span = (DYNAMIC_PORT_RANGE.end() - DYNAMIC_PORT_RANGE.start()) as u32 + 1;
        let start = rng.gen_range(0..span);
        (0..span)
            .map(|i| DYNAMIC_PORT_RANGE.start() + ((start + i) % span) as u16)
            .find(|p| !used.contains(p))
    }
}
