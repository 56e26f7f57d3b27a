//! Security groups on the host: the rules of each awsvpc task in the host's packet filter (`rules`: what they are,
//! `iptables`: putting them there).

pub mod iptables;
pub mod rules;
