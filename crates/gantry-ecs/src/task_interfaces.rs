//! The network interfaces of awsvpc tasks: made right after placement (one address of a subnet the task may use,
//! preferring its instance's zone), deleted once the task stopped, and swept when a task that held one is gone
//! (a crash between making the interface and storing the task leaves one behind).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use gantry_model::ecs::{Failure, TaskNetwork};
use gantry_model::Scope;
use gantry_store::Store;

use crate::networking::{self, InterfaceError, SubnetFacts};
use crate::records::TaskRecord;
use crate::tasks::AwsVpc;
use crate::{keys, EcsService};

/// Gives the task its interface's facts: the attachment, the containers' interfaces, the subnet's zone.
fn attach(record: &mut TaskRecord, network: TaskNetwork, subnet: &SubnetFacts) {
    let t = &mut record.task;
    t.attachments = vec![networking::attachment(&network, &t.last_status)];
    for c in t.containers.iter_mut() {
        c.network_interfaces = vec![networking::container_interface(&network)];
    }
    t.availability_zone = Some(subnet.availability_zone.clone());
    record.network = Some(network);
}

impl<S: Store> EcsService<S> {
    /// Makes an interface for each placed task; a task that gets none is taken back out of the index and becomes
    /// a failure. Returns the tasks that got one.
    pub(crate) async fn attach_interfaces(
        &self,
        scope: &Scope,
        cluster: &str,
        vpc: &AwsVpc,
        placed: Vec<TaskRecord>,
        failures: &mut Vec<Failure>,
    ) -> Vec<TaskRecord> {
        let region = scope.region.as_str();
        let Some(net) = self.networking() else {
            return placed;
        };
        let mut attached = Vec::with_capacity(placed.len());
        for mut record in placed {
            let turn = self.subnet_turn.fetch_add(1, Ordering::Relaxed);
            let order = networking::subnet_order(
                &vpc.subnets,
                record.task.availability_zone.as_deref(),
                turn,
            );
            let attachment_id = uuid::Uuid::new_v4().to_string();
            let description = scope.arn("ecs", &format!("attachment/{attachment_id}"));
            let mut last_error = None;
            for i in order {
                let subnet = &vpc.subnets[i];
                match net
                    .create_interface(
                        region,
                        &subnet.subnet_id,
                        &vpc.config.security_groups,
                        &description,
                    )
                    .await
                {
                    Ok(eni) => {
                        let network = TaskNetwork {
                            attachment_id: attachment_id.clone(),
                            private_dns_name: networking::private_dns_name(
                                &eni.private_ipv4_address,
                                region,
                            ),
                            network_interface_id: eni.network_interface_id,
                            subnet_id: subnet.subnet_id.clone(),
                            vpc_id: subnet.vpc_id.clone(),
                            subnet_cidr: subnet.cidr_block.clone(),
                            private_ipv4_address: eni.private_ipv4_address,
                            mac_address: eni.mac_address,
                            security_groups: vpc.config.security_groups.clone(),
                        };
                        attach(&mut record, network, subnet);
                        last_error = None;
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            match last_error {
                None => attached.push(record),
                Some(e) => {
                    self.index.with(region, cluster, |index| {
                        index.put_task(record.task.id(), None)
                    });
                    let reason = match &e {
                        InterfaceError::NoFreeAddress(_) => "RESOURCE:ENI",
                        InterfaceError::Other(_) => "ENI",
                    };
                    failures.push(Failure {
                        arn: record.task.container_instance_arn.clone(),
                        reason: Some(reason.into()),
                        detail: Some(e.to_string()),
                    });
                }
            }
        }
        attached
    }

    /// Deletes the interface of a task that stopped (or was never stored).
    pub(crate) async fn release_interface(&self, region: &str, record: &TaskRecord) {
        let (Some(net), Some(n)) = (self.networking(), record.network.as_ref()) else {
            return;
        };
        if let Err(e) = net.delete_interface(region, &n.network_interface_id).await {
            tracing::warn!(task = %record.task.task_arn, eni = %n.network_interface_id, error = %e, "cannot delete the task's network interface");
        }
    }

    /// Deletes interfaces ECS made whose task is stopped or gone, when they were so at the previous sweep too (an
    /// interface is made just before its task is stored). Returns how many it deleted.
    pub async fn sweep_interfaces(&self) -> usize {
        let Some(net) = self.networking() else {
            return 0;
        };
        let mut deleted = 0;
        let mut suspects = self
            .interface_suspects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut next = HashSet::new();
        for region in self.regions() {
            let interfaces = net.task_interfaces(&region);
            if interfaces.is_empty() {
                continue;
            }
            let live: HashSet<String> = self
                .index
                .find_tasks(|t| t.holds)
                .into_iter()
                .filter(|(r, _, _)| *r == region)
                .filter_map(|(r, c, id)| self.repo.get::<TaskRecord>(&keys::task(&r, &c, &id)))
                .filter_map(|t| t.value.network.map(|n| n.network_interface_id))
                .collect();
            for (id, _) in interfaces {
                if live.contains(&id) {
                    continue;
                }
                if suspects.remove(&id) {
                    match net.delete_interface(&region, &id).await {
                        Ok(()) => deleted += 1,
                        Err(e) => {
                            tracing::warn!(eni = %id, error = %e, "cannot delete a left-over network interface")
                        }
                    }
                } else {
                    next.insert(id);
                }
            }
        }
        *self
            .interface_suspects
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = next;
        deleted
    }
}
