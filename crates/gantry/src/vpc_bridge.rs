//! Connects ECS and the VPC without either knowing the other: awsvpc tasks find their subnets and security groups
//! and take their network interfaces through [`gantry_ecs::networking::TaskNetworking`]; what their groups allow
//! counts the load balancers in them, and agents learn of every change to it.

use std::sync::Arc;

use gantry_ecs::networking::{Interface, InterfaceError, NetFuture, SubnetFacts, TaskNetworking};
use gantry_ecs::EcsService;
use gantry_lb::LbService;
use gantry_model::agent::TaskFirewall;
use gantry_store::Store;
use gantry_vpc::errors::VpcError;
use gantry_vpc::firewall::MarkedSource;
use gantry_vpc::interfaces::InterfaceRequest;
use gantry_vpc::VpcService;

pub struct EcsInterfaces<S: Store> {
    pub vpc: Arc<VpcService<S>>,
    pub lb: Arc<LbService<S>>,
}

/// Rings ECS's agents whenever a VPC record changes or a load balancer joins or leaves a security group.
pub fn forward_group_changes<S: Store>(
    vpc: &VpcService<S>,
    lb: &LbService<S>,
    ecs: &Arc<EcsService<S>>,
) {
    let (mut vpc_changes, mut lb_changes) = (vpc.changes(), lb.group_changes());
    let ecs = ecs.clone();
    tokio::spawn(async move {
        loop {
            let open = tokio::select! {
                r = vpc_changes.changed() => r.is_ok(),
                r = lb_changes.changed() => r.is_ok(),
            };
            if !open {
                return;
            }
            ecs.network_changed();
        }
    });
}

impl<S: Store> TaskNetworking for EcsInterfaces<S> {
    fn subnet(&self, region: &str, subnet_id: &str) -> Option<SubnetFacts> {
        let s = self.vpc.subnet(region, subnet_id).ok()?;
        Some(SubnetFacts {
            subnet_id: s.subnet_id,
            vpc_id: s.vpc_id,
            availability_zone: s.availability_zone,
            cidr_block: s.cidr_block,
        })
    }

    fn security_group_vpc(&self, region: &str, group_id: &str) -> Option<String> {
        self.vpc
            .security_group(region, group_id)
            .ok()
            .map(|g| g.vpc_id)
    }

    fn default_security_group(&self, region: &str, vpc_id: &str) -> Option<String> {
        default_group(&self.vpc, region, vpc_id)
    }

    fn create_interface<'a>(
        &'a self,
        region: &'a str,
        subnet_id: &'a str,
        groups: &'a [String],
        description: &'a str,
    ) -> NetFuture<'a, Result<Interface, InterfaceError>> {
        Box::pin(async move {
            let request = InterfaceRequest {
                subnet_id: subnet_id.to_string(),
                group_ids: groups.to_vec(),
                description: description.to_string(),
            };
            match self.vpc.create_task_interface(region, &request).await {
                Ok(eni) => Ok(Interface {
                    network_interface_id: eni.network_interface_id,
                    private_ipv4_address: eni.private_ip_address,
                    mac_address: eni.mac_address,
                }),
                Err(e @ VpcError::InsufficientFreeAddresses(_)) => {
                    Err(InterfaceError::NoFreeAddress(e.to_string()))
                }
                Err(e) => Err(InterfaceError::Other(e.to_string())),
            }
        })
    }

    fn delete_interface<'a>(
        &'a self,
        region: &'a str,
        id: &'a str,
    ) -> NetFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.vpc
                .delete_task_interface(region, id)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn task_interfaces(&self, region: &str) -> Vec<(String, String)> {
        self.vpc
            .network_interfaces(region)
            .into_iter()
            .filter(|n| n.requester_id == "amazon-ecs")
            .map(|n| (n.network_interface_id, n.description))
            .collect()
    }

    fn interface_firewalls(
        &self,
        region: &str,
        ids: &[&str],
    ) -> std::collections::HashMap<String, TaskFirewall> {
        if ids.is_empty() {
            return Default::default();
        }
        let load_balancers: Vec<MarkedSource> = self
            .lb
            .marked_groups(region)
            .into_iter()
            .map(|(mark, groups)| MarkedSource { mark, groups })
            .collect();
        self.vpc.interface_firewalls(region, ids, &load_balancers)
    }
}

/// The id of a VPC's `default` security group.
fn default_group<S: Store>(vpc: &VpcService<S>, region: &str, vpc_id: &str) -> Option<String> {
    vpc.security_groups(region)
        .into_iter()
        .find(|g| g.vpc_id == vpc_id && g.group_name == "default")
        .map(|g| g.group_id)
}

/// Load balancers' VPC and default security group, from the EC2 side.
pub struct LbVpcs<S: Store>(pub Arc<VpcService<S>>);

impl<S: Store> gantry_lb::VpcLookup for LbVpcs<S> {
    fn vpc_of(&self, region: &str, subnets: &[String]) -> Option<(String, String)> {
        let vpc_id = subnets
            .iter()
            .find_map(|s| self.0.subnet(region, s).ok())
            .map(|s| s.vpc_id)
            .or_else(|| {
                self.0
                    .vpcs(region)
                    .into_iter()
                    .find(|v| v.is_default)
                    .map(|v| v.vpc_id)
            })?;
        let group = default_group(&self.0, region, &vpc_id)?;
        Some((vpc_id, group))
    }
}
