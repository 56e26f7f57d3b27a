//! Elastic Load Balancing v2: the `elasticloadbalancing` Query API (load balancers, target groups, listeners,
//! rules, targets, tags), the health of every registered target and the checks that judge it, and the data plane
//! that really listens on every listener's port and proxies to the targets.
//! It knows nothing of ECS: whoever registers targets does it through the API, and instance targets are found
//! through the [`InstanceResolver`] the binary provides.

pub mod acm;
pub mod api;
mod attributes;
mod controller;
pub mod dataplane;
mod errors;
pub mod health;
mod keys;
mod listener_tls;
mod metrics;
pub mod model;
mod registrations;
pub mod rules;
mod service;

pub use errors::LbError;
pub use registrations::TargetGroupFacts;
pub use service::{InstanceResolver, LbConfig, LbService, VpcLookup};
