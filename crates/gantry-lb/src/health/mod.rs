//! Target health: the pure state machine (`state`), the table every target group's targets are judged in, and
//! the checker that probes them.

pub mod probe;
pub mod state;
mod table;

pub use state::{Health, Probe, State};
pub use table::{HealthTable, TargetKey};
