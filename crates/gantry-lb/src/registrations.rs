//! What other services ask of ELBv2 directly (the ECS service controller registering its tasks): a target group's
//! facts, one target's state, and registering and deregistering one target, through the same code as the API.

use gantry_model::{Arn, Scope};
use gantry_store::Store;

use crate::api::target_group_users;
use crate::api::targets::{self, TargetInput, TargetsInput};
use crate::errors::{LbError, Result};
use crate::service::LbService;

/// A target group as another service sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupFacts {
    pub target_type: String,
    /// Some listener or rule forwards to it.
    pub in_use: bool,
}

fn scope_of(arn: &str) -> Result<Scope> {
    let a = Arn::parse(arn).ok_or(LbError::TargetGroupNotFound)?;
    Ok(Scope::new(a.region, a.account))
}

impl<S: Store> LbService<S> {
    pub fn target_group_facts(&self, region: &str, arn: &str) -> Option<TargetGroupFacts> {
        let tg = self.target_group_by_arn(region, arn).ok()?;
        Some(TargetGroupFacts {
            target_type: tg.target_group.target_type.clone(),
            in_use: !target_group_users(self, region, arn).is_empty(),
        })
    }

    /// The target's state as DescribeTargetHealth says it (`healthy`, `initial`, `draining`, ...); `None` when
    /// it is not registered.
    pub fn target_state(&self, region: &str, arn: &str, id: &str, port: u16) -> Option<String> {
        let tg = self.target_group_by_arn(region, arn).ok()?;
        let t = tg.targets.iter().find(|t| t.id == id && t.port == port)?;
        let in_use = !target_group_users(self, region, arn).is_empty();
        Some(targets::target_health(self, &tg, in_use, t).0)
    }

    fn input(arn: &str, id: &str, port: u16) -> TargetsInput {
        TargetsInput {
            target_group_arn: arn.to_string(),
            targets: vec![TargetInput {
                id: id.to_string(),
                port: Some(port as u32),
                availability_zone: None,
            }],
        }
    }

    pub async fn register_target(&self, arn: &str, id: &str, port: u16) -> Result<()> {
        targets::register(self, &scope_of(arn)?, Self::input(arn, id, port)).await?;
        self.data_plane.refresh();
        Ok(())
    }

    pub async fn deregister_target(&self, arn: &str, id: &str, port: u16) -> Result<()> {
        targets::deregister(self, &scope_of(arn)?, Self::input(arn, id, port)).await?;
        self.data_plane.refresh();
        Ok(())
    }
}
