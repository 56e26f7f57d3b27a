//! The data plane: a socket per listener on its load balancer's address, and the proxy behind it (HTTP for HTTP
//! listeners, TCP for TCP ones). What a request or connection meets (rules, actions, the targets in service) is a
//! [`Routes`] snapshot the service rebuilds whenever the resources or a target's health change; the proxies read it
//! without locks held across I/O.

pub mod mark;
mod metrics;
mod proxy;
mod routes;
mod seal;
mod slow_start;
mod splice;
mod sticky;
pub(crate) mod target_tls;
mod tcp;
pub(crate) mod tls;
mod upgrade;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use metrics::dimension;
pub use routes::{
    InFlight, ListenerRoutes, Routes, Stickiness, TargetGroupRoutes, TargetInService,
};
pub(crate) use slow_start::share as slow_start_share;

use crate::errors::{LbError, Result};
use crate::model::ListenerRecord;

struct Bound {
    address: String,
    port: u16,
    protocol: String,
    task: tokio::task::JoinHandle<()>,
}

/// Which listener a socket's requests are for.
#[derive(Clone)]
pub(crate) enum Socket {
    /// A listener's own socket on its load balancer's address.
    Listener(Arc<str>),
    /// The shared socket of one port on the front address: the Host header names the load balancer, so that
    /// `curl http://<DNSName>/` works where `*.localhost` resolves to the loopback.
    Front(u16),
}

pub struct DataPlane {
    bound: Mutex<HashMap<String, Bound>>,
    /// Front sockets by port.
    front: Mutex<HashMap<u16, tokio::task::JoinHandle<()>>>,
    /// Front ports already warned about.
    front_warned: Mutex<std::collections::HashSet<u16>>,
    routes: RwLock<Arc<Routes>>,
    /// Rung when the routes should be rebuilt.
    pub(crate) changed: Notify,
    /// The pooled clients, one per load balancer mark: a connection opened for one load balancer is never
    /// reused by another, whose security groups may not let it in.
    clients: Mutex<HashMap<u32, proxy::Upstream>>,
    /// Seals and opens the stickiness cookies.
    sealer: seal::Sealer,
    pub(crate) metrics: metrics::Metrics,
    /// The TLS configurations of the HTTPS and TLS listeners.
    pub(crate) tls: tls::Cache,
}

impl Default for DataPlane {
    fn default() -> DataPlane {
        DataPlane {
            bound: Mutex::new(HashMap::new()),
            front: Mutex::new(HashMap::new()),
            front_warned: Mutex::new(Default::default()),
            routes: RwLock::new(Arc::new(Routes::default())),
            changed: Notify::new(),
            clients: Mutex::new(HashMap::new()),
            metrics: Default::default(),
            sealer: seal::Sealer::default(),
            tls: tls::Cache::default(),
        }
    }
}

impl DataPlane {
    fn bound(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bound>> {
        self.bound.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pooled client of the load balancer with `mark`.
    pub(crate) fn upstream(&self, mark: u32) -> proxy::Upstream {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(mark)
            .or_insert_with(|| proxy::upstream(mark))
            .clone()
    }

    /// Drops the clients of load balancers that are gone.
    pub(crate) fn retain_upstreams(&self, keep: impl Fn(u32) -> bool) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.retain(|m, _| keep(*m));
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_routes(&self, routes: Routes) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(routes);
    }

    /// Asks for the routes to be rebuilt from the store.
    pub fn refresh(&self) {
        self.changed.notify_one();
    }

    /// Binds the listener's port on `address` and serves it with the proxy of its protocol. Binding again what
    /// is bound is a no-op.
    pub async fn open(self: &Arc<Self>, address: &str, record: &ListenerRecord) -> Result<()> {
        let arn = record.listener.listener_arn.clone();
        let port = record.listener.port;
        let protocol = record.listener.protocol.as_str();
        if self.is_bound(&arn, address, port, protocol) {
            return Ok(());
        }
        // Another protocol on the same port: the old socket must be gone (its task ended, not just aborted)
        // before the port can be bound again.
        let same_port = {
            let mut bound = self.bound();
            match bound.get(&arn) {
                Some(b) if b.address == address && b.port == port => bound.remove(&arn),
                _ => None,
            }
        };
        if let Some(old) = same_port {
            old.task.abort();
            let _ = old.task.await;
        }
        let socket = TcpListener::bind((address, port)).await.map_err(|e| {
            LbError::PortUnavailable(format!("Port {port} cannot be opened on {address}: {e}"))
        })?;
        tracing::info!(listener = %arn, %address, port, protocol, "listener serving");
        let task = if matches!(protocol, "TCP" | "TLS") {
            tokio::spawn(tcp::serve(self.clone(), arn.clone().into(), socket))
        } else {
            tokio::spawn(proxy::serve(
                self.clone(),
                Socket::Listener(arn.clone().into()),
                socket,
            ))
        };
        if let Some(old) = self.bound().insert(
            arn,
            Bound {
                address: address.to_string(),
                port,
                protocol: protocol.to_string(),
                task,
            },
        ) {
            old.task.abort();
        }
        Ok(())
    }

    /// Moves a listener to its new port: the new socket is bound before the old one closes.
    pub async fn reopen(self: &Arc<Self>, address: &str, record: &ListenerRecord) -> Result<()> {
        self.open(address, record).await
    }

    pub async fn close(&self, listener_arn: &str) {
        if let Some(b) = self.bound().remove(listener_arn) {
            b.task.abort();
            tracing::info!(listener = %listener_arn, "listener closed");
        }
    }

    /// Closes every socket whose listener `keep` does not know.
    pub(crate) fn close_except(&self, keep: impl Fn(&str) -> bool) {
        self.bound().retain(|arn, b| {
            let k = keep(arn);
            if !k {
                b.task.abort();
            }
            k
        });
    }

    /// Serves the front sockets of `ports` on `address` and closes the others. A port another program holds is
    /// left to it (the load balancers' own addresses still serve).
    pub(crate) async fn sync_front(self: &Arc<Self>, address: &str, ports: &[u16]) {
        let missing: Vec<u16> = {
            let mut front = self.front.lock().unwrap_or_else(|p| p.into_inner());
            front.retain(|port, task| {
                let keep = ports.contains(port);
                if !keep {
                    task.abort();
                }
                keep
            });
            ports
                .iter()
                .copied()
                .filter(|p| !front.contains_key(p))
                .collect()
        };
        for port in missing {
            match TcpListener::bind((address, port)).await {
                Ok(socket) => {
                    let task =
                        tokio::spawn(proxy::serve(self.clone(), Socket::Front(port), socket));
                    self.front
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(port, task);
                }
                Err(e) => {
                    if self
                        .front_warned
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(port)
                    {
                        tracing::warn!(%address, port, error = %e, "the DNS names' shared port cannot be opened; the load balancers' own addresses still serve");
                    }
                }
            }
        }
    }

    pub(crate) fn is_bound(
        &self,
        listener_arn: &str,
        address: &str,
        port: u16,
        protocol: &str,
    ) -> bool {
        self.bound()
            .get(listener_arn)
            .is_some_and(|b| b.address == address && b.port == port && b.protocol == protocol)
    }
}
