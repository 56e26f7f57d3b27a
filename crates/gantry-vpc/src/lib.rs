//! The EC2 VPC subset (the `ec2` protocol): VPCs, subnets, security groups and their rules, availability zones,
//! tags and filters, kept in the store. Every account has a default VPC with a subnet in each of three zones and a
//! default security group, made on the first start. What a network means on the host (bridges, addresses, packet
//! filters) belongs to the code that runs awsvpc tasks, which reads these records; this crate knows nothing of
//! ECS or of the load balancers.

pub mod api;
pub mod cidr;
pub mod errors;
pub mod filters;
pub mod firewall;
pub mod interfaces;
pub mod model;
pub mod permissions;
mod service;

pub use service::VpcService;
