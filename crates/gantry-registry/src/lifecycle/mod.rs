//! ECR lifecycle policies: the policy text parsed and checked as ECR does (`policy`), which images a policy expires
//! (`evaluate`, pure), the images of a repository as the evaluator sees them (`images`), and the job that applies
//! every repository's policy on a schedule (`job`).

pub mod evaluate;
pub mod images;
pub mod job;
pub mod pattern;
pub mod policy;

pub use evaluate::{evaluate, Expiry, Image};
pub use job::{run_once, spawn_lifecycle};
pub use policy::{parse_policy, LifecyclePolicy, PolicyError};
