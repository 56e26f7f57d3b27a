//! Placement: which container instance a task goes to, as pure functions over plain data (a snapshot of the
//! instances and what they have left). No I/O, no store, no clock: callers pass everything in, including the
//! random source, so every decision can be replayed in a test. Owns the resource fit, the placement strategies
//! (`binpack`, `spread`, `random`), the constraints (`distinctInstance`, `memberOf`) and the cluster query
//! language; knows nothing about the ECS wire format or the store.

mod constraints;
mod error;
mod facts;
mod fit;
mod plan;
mod ports;
pub mod query;
mod strategies;

pub use constraints::{PlacementConstraint, MAX_CONSTRAINTS};
pub use error::InvalidPlacement;
pub use facts::InstanceFacts;
pub use fit::{Candidate, Demand, Placement, PlacementFailure};
pub use plan::{
    attribute_values, plan, plan_daemon, plan_prepared, PlacementRequest, Prepared, Unplaced,
};
pub use ports::{PortSet, DYNAMIC_PORT_RANGE};
pub use strategies::{BinpackField, PlacementStrategy, SpreadField, MAX_STRATEGIES};
