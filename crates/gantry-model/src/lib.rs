//! Domain types shared by every Gantry crate: clusters, task definitions, tasks, container instances, ARNs, ids,
//! and the agent protocol. The structs serialize exactly as the AWS wire shapes (botocore's service models), so a
//! handler can return them as they are; anything Gantry keeps for itself lives beside them, never inside.
//! This crate knows nothing about storage, HTTP or Docker.

pub mod agent;
pub mod arn;
pub mod ecs;
pub mod json;
pub mod time;

pub use arn::{new_id, Arn, Scope};
pub use ecs::*;
