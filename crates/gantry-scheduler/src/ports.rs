use std::collections::BTreeSet;

use rand::Rng;

/// ECS hands out dynamic host ports from this range (bridge mode, hostPort 0 or absent).
pub const DYNAMIC_PORT_RANGE: std::ops::RangeInclusive<u16> = 49153..=65535;

/// The part of [`DYNAMIC_PORT_RANGE`] above Linux's default range for the local ports of outgoing connections
/// (32768-60999): a port below can be held by a connection (in TIME_WAIT, say, after a load balancer's busy
/// minute) when Docker binds it, and the container then fails to start. These go first.
pub const PREFERRED_DYNAMIC_PORTS: std::ops::RangeInclusive<u16> = 61000..=65535;

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

    /// A free dynamic port, chosen at random so that restarts do not keep reusing the same one: from
    /// [`PREFERRED_DYNAMIC_PORTS`] while one is free there, else from the whole range.
    pub fn pick_dynamic(&self, udp: bool, rng: &mut impl Rng) -> Option<u16> {
        let used = self.set(udp);
        let pick = |range: &std::ops::RangeInclusive<u16>, rng: &mut dyn rand::RngCore| {
            let span = (range.end() - range.start()) as u32 + 1;
            let start = rng.gen_range(0..span);
            (0..span)
                .map(|i| range.start() + ((start + i) % span) as u16)
                .find(|p| !used.contains(p))
        };
        pick(&PREFERRED_DYNAMIC_PORTS, rng).or_else(|| pick(&DYNAMIC_PORT_RANGE, rng))
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn ports_above_the_kernel_s_local_range_go_first() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut used = PortSet::default();
        for _ in 0..PREFERRED_DYNAMIC_PORTS.len() {
            let p = used.pick_dynamic(false, &mut rng).unwrap();
            assert!(PREFERRED_DYNAMIC_PORTS.contains(&p), "{p}");
            assert!(used.insert(p, false));
        }
        // Those all taken: the rest of ECS's range.
        let p = used.pick_dynamic(false, &mut rng).unwrap();
        assert!(DYNAMIC_PORT_RANGE.contains(&p) && !PREFERRED_DYNAMIC_PORTS.contains(&p));
    }
}
