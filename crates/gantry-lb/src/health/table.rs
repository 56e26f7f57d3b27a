//! The health of every registered target, in memory: it is judged anew after a restart (targets start `initial`
//! again, as they do on AWS when a load balancer node is replaced).

use std::collections::HashMap;
use std::sync::Mutex;

use super::state::{Health, Probe};

/// (target group ARN, target id, port).
pub type TargetKey = (String, String, u16);

#[derive(Default)]
pub struct HealthTable {
    targets: Mutex<HashMap<TargetKey, Health>>,
}

impl HealthTable {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<TargetKey, Health>) -> T) -> T {
        let mut guard = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn get(&self, key: &TargetKey) -> Health {
        self.with(|t| t.get(key).cloned().unwrap_or_default())
    }

    pub fn observe(&self, key: TargetKey, probe: Probe, healthy: u32, unhealthy: u32) -> Health {
        self.with(|t| {
            let h = t.entry(key).or_default();
            h.observe(probe, healthy, unhealthy);
            h.clone()
        })
    }

    /// Forgets the targets `keep` says no.
    pub fn retain(&self, keep: impl Fn(&TargetKey) -> bool) {
        self.with(|t| t.retain(|k, _| keep(k)))
    }

    pub fn forget(&self, key: &TargetKey) {
        self.with(|t| t.remove(key));
    }
}
