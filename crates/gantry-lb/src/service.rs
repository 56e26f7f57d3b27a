//! The service: its configuration and state, the action dispatch, and the store helpers the handlers share.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

use gantry_aws::{AwsError, Params, QueryService, RequestContext, ServiceFuture};
use gantry_model::Scope;
use gantry_store::{Store, Txn};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::controller::SharedRuntime;
use crate::dataplane::DataPlane;
use crate::errors::{LbError, Result};
use crate::health::HealthTable;
use crate::keys::{self, ResourceArn};
use crate::model::{ListenerRecord, LoadBalancerRecord, RuleRecord, TargetGroupRecord};

#[derive(Debug, Clone)]
pub struct LbConfig {
    /// The first address given to a load balancer; the next ones follow it (`--lb-addresses`).
    pub first_address: Ipv4Addr,
    /// How many addresses there are from the first.
    pub address_count: u32,
    /// The domain DNS names end in. `*.localhost` resolves to the loopback without any DNS set-up.
    pub dns_suffix: String,
    /// Where the shared sockets of the DNS names listen (what `*.localhost` resolves to).
    pub front_address: String,
}

impl Default for LbConfig {
    fn default() -> LbConfig {
        LbConfig {
            first_address: Ipv4Addr::new(127, 0, 1, 1),
            address_count: 254,
            dns_suffix: "elb.localhost".into(),
            front_address: "127.0.0.1".into(),
        }
    }
}

/// Finds the address of an EC2 instance id (an ECS container instance's) for `instance` targets.
pub trait InstanceResolver: Send + Sync + 'static {
    fn address(&self, region: &str, instance_id: &str) -> Option<IpAddr>;
}

/// The VPC a load balancer is in, from the EC2 side: the VPC of its subnets (the first one known), else the
/// region's default VPC, as `(vpc id, id of its default security group)`.
pub trait VpcLookup: Send + Sync + 'static {
    fn vpc_of(&self, region: &str, subnets: &[String]) -> Option<(String, String)>;
}

/// Elastic Load Balancing v2 over a [`Store`].
pub struct LbService<S: Store> {
    pub(crate) store: Arc<S>,
    pub(crate) config: LbConfig,
    /// Every change goes through this lock: ELBv2 calls are few, and names, ports, priorities and addresses are
    /// then unique without compare-and-swap retries.
    pub(crate) writes: tokio::sync::Mutex<()>,
    pub(crate) health: HealthTable,
    pub(crate) data_plane: Arc<DataPlane>,
    pub(crate) runtime: SharedRuntime,
    resolver: RwLock<Option<Arc<dyn InstanceResolver>>>,
    vpcs: RwLock<Option<Arc<dyn VpcLookup>>>,
    /// Counts the changes of which load balancers are in which security groups.
    group_changes: tokio::sync::watch::Sender<u64>,
}

impl<S: Store> LbService<S> {
    pub fn new(store: Arc<S>, config: LbConfig) -> Arc<LbService<S>> {
        Arc::new(LbService {
            store,
            config,
            writes: tokio::sync::Mutex::new(()),
            health: HealthTable::default(),
            data_plane: Arc::new(DataPlane::default()),
            runtime: SharedRuntime::default(),
            resolver: RwLock::new(None),
            vpcs: RwLock::new(None),
            group_changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Instance targets are found through `resolver` from now on.
    pub fn set_instance_resolver(&self, resolver: Arc<dyn InstanceResolver>) {
        *self.resolver.write().unwrap_or_else(|p| p.into_inner()) = Some(resolver);
    }

    /// Load balancers learn their VPC (and ALBs their default security group) through `vpcs` from now on.
    pub fn set_vpc_lookup(&self, vpcs: Arc<dyn VpcLookup>) {
        *self.vpcs.write().unwrap_or_else(|p| p.into_inner()) = Some(vpcs);
    }

    pub(crate) fn vpc_of(&self, region: &str, subnets: &[String]) -> Option<(String, String)> {
        let v = self.vpcs.read().unwrap_or_else(|p| p.into_inner()).clone();
        v?.vpc_of(region, subnets)
    }

    pub(crate) fn resolve_instance(&self, region: &str, instance_id: &str) -> Option<IpAddr> {
        let r = self
            .resolver
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        r?.address(region, instance_id)
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
        Ok(())
    }

    /// Changes whenever a load balancer is made or deleted or its security groups are set.
    pub fn group_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.group_changes.subscribe()
    }

    pub(crate) fn groups_changed(&self) {
        self.group_changes.send_modify(|n| *n += 1);
    }

    /// Every load balancer of the region that has security groups, as `(mark, groups)`: its connections to
    /// targets carry the mark (see [`crate::dataplane::mark`]).
    pub fn marked_groups(&self, region: &str) -> Vec<(u32, Vec<String>)> {
        self.load_balancers(region)
            .into_iter()
            .filter_map(|lb| {
                let groups = lb.load_balancer.security_groups.filter(|g| !g.is_empty())?;
                Some((
                    crate::dataplane::mark::of(&lb.load_balancer.load_balancer_arn),
                    groups,
                ))
            })
            .collect()
    }

    pub(crate) fn load_balancers(&self, region: &str) -> Vec<LoadBalancerRecord> {
        self.list(&keys::load_balancers(region))
    }

    pub(crate) fn target_groups(&self, region: &str) -> Vec<TargetGroupRecord> {
        self.list(&keys::target_groups(region))
    }

    /// The load balancer an ARN names, in the caller's region, with the same id (not a later one of that name).
    pub(crate) fn load_balancer_by_arn(
        &self,
        region: &str,
        arn: &str,
    ) -> Result<LoadBalancerRecord> {
        match ResourceArn::parse(arn) {
            Some(ResourceArn::LoadBalancer {
                region: r, name, ..
            }) if r == region => self
                .get::<LoadBalancerRecord>(&keys::load_balancer(region, &name))
                .filter(|lb| lb.load_balancer.load_balancer_arn == arn)
                .ok_or(LbError::LoadBalancerNotFound),
            Some(_) | None if !arn.starts_with("arn:") => Err(invalid_arn(arn)),
            _ => Err(LbError::LoadBalancerNotFound),
        }
    }

    pub(crate) fn target_group_by_arn(&self, region: &str, arn: &str) -> Result<TargetGroupRecord> {
        match ResourceArn::parse(arn) {
            Some(ResourceArn::TargetGroup {
                region: r, name, ..
            }) if r == region => self
                .get::<TargetGroupRecord>(&keys::target_group(region, &name))
                .filter(|tg| tg.target_group.target_group_arn == arn)
                .ok_or(LbError::TargetGroupNotFound),
            Some(_) | None if !arn.starts_with("arn:") => Err(invalid_arn(arn)),
            _ => Err(LbError::TargetGroupNotFound),
        }
    }

    pub(crate) fn listener_by_arn(&self, region: &str, arn: &str) -> Result<ListenerRecord> {
        match ResourceArn::parse(arn) {
            Some(ResourceArn::Listener {
                region: r, lb, id, ..
            }) if r == region => self
                .get::<ListenerRecord>(&keys::listener(region, &lb, &id))
                .filter(|l| l.listener.listener_arn == arn)
                .ok_or(LbError::ListenerNotFound),
            Some(_) | None if !arn.starts_with("arn:") => Err(invalid_arn(arn)),
            _ => Err(LbError::ListenerNotFound),
        }
    }

    pub(crate) fn rule_by_arn(&self, region: &str, arn: &str) -> Result<(String, RuleRecord)> {
        match ResourceArn::parse(arn) {
            Some(ResourceArn::Rule {
                region: r,
                lb,
                listener,
                id,
                ..
            }) if r == region => {
                let key = keys::rule(region, &lb, &listener, &id);
                self.get::<RuleRecord>(&key)
                    .filter(|rule| rule.rule.rule_arn == arn)
                    .map(|rule| (key, rule))
                    .ok_or(LbError::RuleNotFound)
            }
            Some(_) | None if !arn.starts_with("arn:") => Err(invalid_arn(arn)),
            _ => Err(LbError::RuleNotFound),
        }
    }

    async fn dispatch(
        &self,
        scope: &Scope,
        action: &str,
        params: &Params,
    ) -> std::result::Result<Value, AwsError> {
        use crate::api::*;
        let out = match action {
            "CreateLoadBalancer" => load_balancers::create(self, scope, input(params)?).await?,
            "DescribeLoadBalancers" => load_balancers::describe(self, scope, input(params)?)?,
            "DeleteLoadBalancer" => load_balancers::delete(self, scope, input(params)?).await?,
            "DescribeLoadBalancerAttributes" => load_balancers::describe_attributes(self, scope, input(params)?)?,
            "ModifyLoadBalancerAttributes" => load_balancers::modify_attributes(self, scope, input(params)?).await?,
            "SetSecurityGroups" => load_balancers::set_security_groups(self, scope, input(params)?).await?,
            "SetSubnets" => load_balancers::set_subnets(self, scope, input(params)?).await?,
            "SetIpAddressType" => load_balancers::set_ip_address_type(self, scope, input(params)?).await?,
            "CreateTargetGroup" => target_groups::create(self, scope, input(params)?, input(params)?).await?,
            "DescribeTargetGroups" => target_groups::describe(self, scope, input(params)?)?,
            "ModifyTargetGroup" => target_groups::modify(self, scope, input(params)?, input(params)?).await?,
            "DeleteTargetGroup" => target_groups::delete(self, scope, input(params)?).await?,
            "DescribeTargetGroupAttributes" => target_groups::describe_attributes(self, scope, input(params)?)?,
            "ModifyTargetGroupAttributes" => target_groups::modify_attributes(self, scope, input(params)?).await?,
            "RegisterTargets" => targets::register(self, scope, input(params)?).await?,
            "DeregisterTargets" => targets::deregister(self, scope, input(params)?).await?,
            "DescribeTargetHealth" => targets::describe_health(self, scope, input(params)?)?,
            "CreateListener" => listeners::create(self, scope, input(params)?).await?,
            "DescribeListeners" => listeners::describe(self, scope, input(params)?)?,
            "ModifyListener" => listeners::modify(self, scope, input(params)?).await?,
            "DeleteListener" => listeners::delete(self, scope, input(params)?).await?,
            "AddListenerCertificates" => certificates::add(self, scope, input(params)?).await?,
            "RemoveListenerCertificates" => certificates::remove(self, scope, input(params)?).await?,
            "DescribeListenerCertificates" => certificates::describe(self, scope, input(params)?)?,
            "CreateRule" => rules::create(self, scope, input(params)?).await?,
            "DescribeRules" => rules::describe(self, scope, input(params)?)?,
            "ModifyRule" => rules::modify(self, scope, input(params)?).await?,
            "DeleteRule" => rules::delete(self, scope, input(params)?).await?,
            "SetRulePriorities" => rules::set_priorities(self, scope, input(params)?).await?,
            "AddTags" => tags::add(self, scope, input(params)?).await?,
            "RemoveTags" => tags::remove(self, scope, input(params)?).await?,
            "DescribeTags" => tags::describe(self, scope, input(params)?)?,
            "DescribeAccountLimits" => limits::describe_account_limits(input(params)?)?,
            "DescribeSSLPolicies" => limits::describe_ssl_policies(input(params)?)?,
            other => {
                return Err(AwsError::client(
                    "InvalidAction",
                    format!("The action {other} is not valid for this endpoint (or is not supported by Gantry)."),
                ))
            }
        };
        Ok(out)
    }
}

fn invalid_arn(arn: &str) -> LbError {
    LbError::Validation(format!("'{arn}' is not a valid ARN"))
}

fn input<T: DeserializeOwned>(params: &Params) -> std::result::Result<T, AwsError> {
    params.decode()
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "undecodable ELBv2 record skipped");
            None
        }
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    gantry_model::json::to_vec(value)
}

/// An answer: the members of `{Action}Result`.
pub(crate) fn answer<T: Serialize>(value: &T) -> Value {
    gantry_model::json::to_value(value)
}

impl<S: Store> QueryService for LbService<S> {
    fn signing_name(&self) -> &'static str {
        keys::SERVICE
    }

    fn xml_namespace(&self) -> &'static str {
        "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
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
