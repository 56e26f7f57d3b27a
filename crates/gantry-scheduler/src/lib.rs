//! Placement: which container instance a task goes to, as pure functions over plain data (a snapshot of the
//! instances and what they have left). No I/O, no store, no clock: callers pass everything in, including the
//! random source, so every decision can be replayed in a test.

mod fit;
mod ports;

pub use fit::{place, Candidate, Demand, Placement, PlacementFailure};
pub use ports::{PortSet, DYNAMIC_PORT_RANGE};
