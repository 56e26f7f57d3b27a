//! Connects ECS and the VPC without either knowing the other: awsvpc tasks find their subnets and security groups
//! and take their network interfaces through [`gantry_ecs::networking::TaskNetworking`].

use std::sync::Arc;

use gantry_ecs::networking::{Interface, InterfaceError, NetFuture, SubnetFacts, TaskNetworking};
use gantry_store::Store;
use gantry_vpc::errors::VpcError;
use gantry_vpc::interfaces::InterfaceRequest;
use gantry_vpc::VpcService;

pub struct EcsInterfaces<S: Store>(pub Arc<VpcService<S>>);

impl<S: Store> TaskNetworking for EcsInterfaces<S> {
    fn subnet(&self, region: &str, subnet_id: &str) -> Option<SubnetFacts> {
        let s = self.0.subnet(region, subnet_id).ok()?;
        Some(SubnetFacts {
            subnet_id: s.subnet_id,
            vpc_id: s.vpc_id,
            availability_zone: s.availability_zone,
            cidr_block: s.cidr_block,
        })
    }

    fn security_group_vpc(&self, region: &str, group_id: &str) -> Option<String> {
        self.0
            .security_group(region, group_id)
            .ok()
            .map(|g| g.vpc_id)
    }

    fn default_security_group(&self, region: &str, vpc_id: &str) -> Option<String> {
        self.0
            .security_groups(region)
            .into_iter()
            .find(|g| g.vpc_id == vpc_id && g.group_name == "default")
            .map(|g| g.group_id)
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
            match self.0.create_task_interface(region, &request).await {
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
            self.0
                .delete_task_interface(region, id)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn task_interfaces(&self, region: &str) -> Vec<(String, String)> {
        self.0
            .network_interfaces(region)
            .into_iter()
            .filter(|n| n.requester_id == "amazon-ecs")
            .map(|n| (n.network_interface_id, n.description))
            .collect()
    }
}
