//! The service: the store helpers the handlers share, the default VPC, and the action dispatch.

use std::sync::Arc;

use gantry_aws::{AwsError, Params, QueryService, RequestContext, ServiceFuture, XmlStyle};
use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::errors::{Result, VpcError};
use crate::model::{SecurityGroupRecord, SubnetRecord, VpcRecord};

/// The EC2 VPC subset over a [`Store`].
pub struct VpcService<S: Store> {
    pub(crate) store: Arc<S>,
    pub(crate) account: String,
    /// Every change goes through this lock: VPC calls are few, and CIDR overlaps and group names are then checked
    /// against a state nobody else changes meanwhile.
    pub(crate) writes: tokio::sync::Mutex<()>,
    /// Counts the changes, so that whoever enforces the groups on hosts learns of a rule or a member at once.
    changes: tokio::sync::watch::Sender<u64>,
}

/// Store keys, by kind.
pub(crate) mod keys {
    pub fn vpcs(region: &str) -> String {
        format!("/ec2/{region}/vpcs/")
    }
    pub fn subnets(region: &str) -> String {
        format!("/ec2/{region}/subnets/")
    }
    pub fn security_groups(region: &str) -> String {
        format!("/ec2/{region}/security-groups/")
    }
    pub fn network_interfaces(region: &str) -> String {
        format!("/ec2/{region}/network-interfaces/")
    }
}

/// A new resource id: the prefix and 17 hex digits, as EC2's long ids are.
pub(crate) fn new_id(prefix: &str) -> String {
    let n: u128 = rand::random();
    format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
}

impl<S: Store> VpcService<S> {
    pub fn new(store: Arc<S>, account: impl Into<String>) -> Arc<VpcService<S>> {
        Arc::new(VpcService {
            store,
            account: account.into(),
            writes: tokio::sync::Mutex::new(()),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Changes whenever a VPC record does (a rule, a group, an interface).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let kv = self.store.get(key)?;
        decode(&kv.key, &kv.value)
    }

    pub(crate) fn list<T: DeserializeOwned>(&self, prefix: &str) -> Vec<T> {
        self.store
            .range(prefix)
            .into_iter()
            .filter_map(|kv| decode(&kv.key, &kv.value))
            .collect()
    }

    pub(crate) async fn commit(&self, txn: Txn) -> Result<()> {
        self.store.txn(txn).await?;
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    pub fn vpcs(&self, region: &str) -> Vec<VpcRecord> {
        self.list(&keys::vpcs(region))
    }

    pub fn subnets(&self, region: &str) -> Vec<SubnetRecord> {
        self.list(&keys::subnets(region))
    }

    pub fn security_groups(&self, region: &str) -> Vec<SecurityGroupRecord> {
        self.list(&keys::security_groups(region))
    }

    pub(crate) fn vpc(&self, region: &str, id: &str) -> Result<VpcRecord> {
        self.get(&format!("{}{id}", keys::vpcs(region)))
            .ok_or_else(|| VpcError::VpcNotFound(id.into()))
    }

    pub fn subnet(&self, region: &str, id: &str) -> Result<SubnetRecord> {
        self.get(&format!("{}{id}", keys::subnets(region)))
            .ok_or_else(|| VpcError::SubnetNotFound(id.into()))
    }

    pub fn security_group(&self, region: &str, id: &str) -> Result<SecurityGroupRecord> {
        self.get(&format!("{}{id}", keys::security_groups(region)))
            .ok_or_else(|| VpcError::GroupNotFound(id.into()))
    }

    /// Makes the region's default VPC, its subnets and its default security group if it has none (the first
    /// start), as every AWS account has them.
    pub async fn ensure_default_vpc(&self, region: &str) -> Result<()> {
        let _w = self.writes.lock().await;
        if self.vpcs(region).iter().any(|v| v.is_default) {
            return Ok(());
        }
        crate::api::vpcs::create_default(self, region).await
    }

    async fn dispatch(
        &self,
        scope: &Scope,
        action: &str,
        params: &Params,
    ) -> std::result::Result<Value, AwsError> {
        use crate::api::*;
        let region = scope.region.as_str();
        if params.get("DryRun") == Some("true") {
            return Err(VpcError::DryRun.into());
        }
        let out = match action {
            "CreateVpc" => vpcs::create(self, region, input(params)?).await?,
            "DescribeVpcs" => vpcs::describe(self, region, input(params)?)?,
            "DeleteVpc" => vpcs::delete(self, region, input(params)?).await?,
            "CreateSubnet" => subnets::create(self, region, input(params)?).await?,
            "DescribeSubnets" => subnets::describe(self, region, input(params)?)?,
            "DeleteSubnet" => subnets::delete(self, region, input(params)?).await?,
            "CreateSecurityGroup" => security_groups::create(self, region, input(params)?).await?,
            "DescribeSecurityGroups" => security_groups::describe(self, region, input(params)?)?,
            "DeleteSecurityGroup" => security_groups::delete(self, region, input(params)?).await?,
            "AuthorizeSecurityGroupIngress" => {
                security_groups::authorize(self, region, true, input(params)?).await?
            }
            "AuthorizeSecurityGroupEgress" => {
                security_groups::authorize(self, region, false, input(params)?).await?
            }
            "RevokeSecurityGroupIngress" => {
                security_groups::revoke(self, region, true, input(params)?).await?
            }
            "RevokeSecurityGroupEgress" => {
                security_groups::revoke(self, region, false, input(params)?).await?
            }
            "DescribeSecurityGroupRules" => security_groups::describe_rules(self, region, input(params)?)?,
            "DescribeNetworkInterfaces" => zones::describe_network_interfaces(self, region, input(params)?)?,
            "DescribeAvailabilityZones" => zones::describe_availability_zones(region, input(params)?)?,
            "DescribeAccountAttributes" => zones::describe_account_attributes(self, region, input(params)?)?,
            "DescribeRegions" => zones::describe_regions(region),
            "CreateTags" => tags::create(self, region, input(params)?).await?,
            "DeleteTags" => tags::delete(self, region, input(params)?).await?,
            "DescribeTags" => tags::describe(self, region, input(params)?)?,
            other => match zones::nothing_here(other) {
                Some(empty) => empty,
                None => {
                    return Err(AwsError::client(
                        "InvalidAction",
                        format!("The action {other} is not valid for this web service (or is not supported by Gantry)."),
                    ))
                }
            },
        };
        Ok(out)
    }
}

impl<S: Store> QueryService for VpcService<S> {
    fn signing_name(&self) -> &'static str {
        "ec2"
    }

    fn xml_namespace(&self) -> &'static str {
        "http://ec2.amazonaws.com/doc/2016-11-15/"
    }

    fn xml_style(&self) -> XmlStyle {
        XmlStyle::Ec2
    }

    fn call<'a>(
        &'a self,
        ctx: &'a RequestContext,
        action: &'a str,
        params: &'a Params,
    ) -> ServiceFuture<'a> {
        Box::pin(async move { self.dispatch(&ctx.scope, action, params).await })
    }
}

/// The typed input of a call; the Query decoder's `ValidationError` is EC2's `InvalidParameterValue`.
fn input<T: DeserializeOwned>(params: &Params) -> std::result::Result<T, AwsError> {
    params.decode().map_err(|mut e: AwsError| {
        if e.code == "ValidationError" {
            e.code = "InvalidParameterValue".into();
        }
        e
    })
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "undecodable EC2 record skipped");
            None
        }
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    gantry_model::json::to_vec(value)
}
