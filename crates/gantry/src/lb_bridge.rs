//! Connects ECS and ELBv2 without either knowing the other: ECS registers its service tasks through
//! [`gantry_ecs::load_balancing::LoadBalancing`], and ELBv2 finds the address of an `instance` target (a container
//! instance's EC2 id) through [`gantry_lb::InstanceResolver`].

use std::net::IpAddr;
use std::sync::Arc;

use gantry_ecs::load_balancing::{LbFuture, LoadBalancing, TargetGroupFacts, TargetState};
use gantry_ecs::EcsService;
use gantry_lb::{InstanceResolver, LbService};
use gantry_store::Store;

pub struct EcsTargets<S: Store>(pub Arc<LbService<S>>);

impl<S: Store> LoadBalancing for EcsTargets<S> {
    fn target_group(&self, region: &str, arn: &str) -> Option<TargetGroupFacts> {
        let f = self.0.target_group_facts(region, arn)?;
        Some(TargetGroupFacts {
            target_type: f.target_type,
            has_load_balancer: f.in_use,
        })
    }

    fn target_state(&self, region: &str, arn: &str, id: &str, port: u16) -> Option<TargetState> {
        Some(match self.0.target_state(region, arn, id, port)?.as_str() {
            "initial" => TargetState::Initial,
            "healthy" => TargetState::Healthy,
            "unhealthy" => TargetState::Unhealthy,
            "draining" => TargetState::Draining,
            _ => TargetState::Unchecked,
        })
    }

    fn register<'a>(
        &'a self,
        _region: &'a str,
        arn: &'a str,
        id: &'a str,
        port: u16,
    ) -> LbFuture<'a> {
        Box::pin(async move {
            self.0
                .register_target(arn, id, port)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn deregister<'a>(
        &'a self,
        _region: &'a str,
        arn: &'a str,
        id: &'a str,
        port: u16,
    ) -> LbFuture<'a> {
        Box::pin(async move {
            self.0
                .deregister_target(arn, id, port)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

pub struct InstanceAddresses<S: Store>(pub Arc<EcsService<S>>);

impl<S: Store> InstanceResolver for InstanceAddresses<S> {
    fn address(&self, region: &str, instance_id: &str) -> Option<IpAddr> {
        self.0.instance_address(region, instance_id)
    }
}
