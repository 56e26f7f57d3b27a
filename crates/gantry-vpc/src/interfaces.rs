//! Network interfaces for awsvpc tasks: one address of the subnet each, with the task's security groups, made when
//! a task is placed and deleted when it has stopped. The code that runs tasks calls these; the addresses they hold
//! are what `AvailableIpAddressCount` no longer counts.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use gantry_store::{Store, Txn};

use crate::cidr::Cidr;
use crate::errors::{Result, VpcError};
use crate::model::NetworkInterfaceRecord;
use crate::service::{encode, keys, new_id, VpcService};

/// The first address of `subnet` that none of `taken` holds.
pub fn free_address(subnet: &Cidr, taken: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    subnet.usable().find(|a| !taken.contains(a))
}

/// A locally administered unicast MAC address, as AWS's ENIs have (`0e:..`).
fn mac_address() -> String {
    let b: [u8; 5] = rand::random();
    format!(
        "0e:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

/// What a task's interface is asked for.
#[derive(Debug, Clone)]
pub struct InterfaceRequest {
    pub subnet_id: String,
    pub group_ids: Vec<String>,
    pub description: String,
}

impl<S: Store> VpcService<S> {
    pub fn network_interfaces(&self, region: &str) -> Vec<NetworkInterfaceRecord> {
        self.list(&keys::network_interfaces(region))
    }

    /// Makes an interface in the subnet with the next free address. The groups must be of the subnet's VPC.
    pub async fn create_task_interface(
        &self,
        region: &str,
        request: &InterfaceRequest,
    ) -> Result<NetworkInterfaceRecord> {
        let _w = self.writes.lock().await;
        let subnet = self.subnet(region, &request.subnet_id)?;
        for id in &request.group_ids {
            let g = self.security_group(region, id)?;
            if g.vpc_id != subnet.vpc_id {
                return Err(VpcError::InvalidParameterValue(format!(
                    "Security group {id} and subnet {} belong to different networks.",
                    subnet.subnet_id
                )));
            }
        }
        let cidr = Cidr::parse(&subnet.cidr_block)
            .ok_or_else(|| VpcError::SubnetRange(subnet.cidr_block.clone()))?;
        let taken: HashSet<Ipv4Addr> = self
            .network_interfaces(region)
            .iter()
            .filter(|n| n.subnet_id == subnet.subnet_id)
            .filter_map(|n| n.private_ip_address.parse().ok())
            .collect();
        let address = free_address(&cidr, &taken)
            .ok_or_else(|| VpcError::InsufficientFreeAddresses(subnet.subnet_id.clone()))?;
        let eni = NetworkInterfaceRecord {
            network_interface_id: new_id("eni"),
            subnet_id: subnet.subnet_id,
            vpc_id: subnet.vpc_id,
            availability_zone: subnet.availability_zone,
            private_ip_address: address.to_string(),
            mac_address: mac_address(),
            groups: request.group_ids.clone(),
            description: request.description.clone(),
            requester_id: "amazon-ecs".into(),
            interface_type: "interface".into(),
            tags: vec![],
        };
        self.commit(Txn::new().put(
            format!(
                "{}{}",
                keys::network_interfaces(region),
                eni.network_interface_id
            ),
            encode(&eni),
        ))
        .await?;
        Ok(eni)
    }

    /// Deletes an interface; one already gone is not an error (a retried cleanup).
    pub async fn delete_task_interface(&self, region: &str, id: &str) -> Result<()> {
        let _w = self.writes.lock().await;
        let key = format!("{}{id}", keys::network_interfaces(region));
        if self.store.get(&key).is_some() {
            self.commit(Txn::new().delete(key)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_store::WalStore;
    use std::sync::Arc;

    #[test]
    fn the_first_free_address_after_the_reserved_ones() {
        let c = Cidr::parse("10.0.0.0/28").unwrap();
        let mut taken = HashSet::new();
        assert_eq!(free_address(&c, &taken), Some(Ipv4Addr::new(10, 0, 0, 4)));
        taken.insert(Ipv4Addr::new(10, 0, 0, 4));
        taken.insert(Ipv4Addr::new(10, 0, 0, 6));
        assert_eq!(free_address(&c, &taken), Some(Ipv4Addr::new(10, 0, 0, 5)));
        taken.extend(c.usable());
        assert_eq!(free_address(&c, &taken), None);
    }

    #[tokio::test]
    async fn a_subnet_runs_out_of_addresses_and_gets_them_back() {
        let store = Arc::new(WalStore::in_memory().unwrap());
        let svc = VpcService::new(store, "000000000000");
        svc.ensure_default_vpc("us-east-1").await.unwrap();
        let vpc = svc.vpcs("us-east-1").remove(0);
        let group = svc
            .security_groups("us-east-1")
            .into_iter()
            .find(|g| g.vpc_id == vpc.vpc_id)
            .unwrap();
        let subnet = crate::model::SubnetRecord {
            subnet_id: new_id("subnet"),
            vpc_id: vpc.vpc_id.clone(),
            cidr_block: "172.31.200.0/28".into(),
            availability_zone: "us-east-1a".into(),
            default_for_az: false,
            map_public_ip_on_launch: false,
            tags: vec![],
        };
        svc.commit(Txn::new().put(
            format!("{}{}", keys::subnets("us-east-1"), subnet.subnet_id),
            encode(&subnet),
        ))
        .await
        .unwrap();
        let request = InterfaceRequest {
            subnet_id: subnet.subnet_id.clone(),
            group_ids: vec![group.group_id.clone()],
            description: "arn:aws:ecs:us-east-1:000000000000:attachment/x".into(),
        };
        let mut made = Vec::new();
        for _ in 0..11 {
            made.push(
                svc.create_task_interface("us-east-1", &request)
                    .await
                    .unwrap(),
            );
        }
        let addresses: HashSet<&str> = made.iter().map(|n| n.private_ip_address.as_str()).collect();
        assert_eq!(addresses.len(), 11);
        assert_eq!(svc.available_addresses("us-east-1", &subnet), 0);
        assert!(matches!(
            svc.create_task_interface("us-east-1", &request).await,
            Err(VpcError::InsufficientFreeAddresses(_))
        ));
        svc.delete_task_interface("us-east-1", &made[3].network_interface_id)
            .await
            .unwrap();
        svc.delete_task_interface("us-east-1", &made[3].network_interface_id)
            .await
            .unwrap();
        let again = svc
            .create_task_interface("us-east-1", &request)
            .await
            .unwrap();
        assert_eq!(again.private_ip_address, made[3].private_ip_address);

        // Groups of another VPC are refused.
        let other = crate::api::vpcs::default_group("vpc-00000000000000000");
        svc.commit(Txn::new().put(
            format!("{}{}", keys::security_groups("us-east-1"), other.group_id),
            encode(&other),
        ))
        .await
        .unwrap();
        let wrong = InterfaceRequest {
            group_ids: vec![other.group_id],
            ..request
        };
        assert!(matches!(
            svc.create_task_interface("us-east-1", &wrong).await,
            Err(VpcError::InvalidParameterValue(_))
        ));
    }
}
