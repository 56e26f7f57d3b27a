//! ECS resources in their wire shape (botocore `ecs/2014-11-13`). Optional members are `Option`; `None` and nulls
//! are dropped when encoding (see [`crate::json`]), so the JSON carries only what is set, as AWS does.

mod cluster;
mod common;
mod container_instance;
mod network;
mod service;
mod task;
mod task_definition;

pub use cluster::*;
pub use common::*;
pub use container_instance::*;
pub use network::*;
pub use service::*;
pub use task::*;
pub use task_definition::*;
