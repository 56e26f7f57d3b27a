//! The TCP proxy of a network load balancer's TCP and TLS listeners (TLS decrypted first): each accepted connection goes whole to one target of
//! the listener's target group, bytes copied both ways, counted in the target's in-flight work until it closes so
//! that draining waits for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::splice::splice;
use super::{DataPlane, ListenerRoutes, Routes, TargetGroupRoutes};

/// NLB's fixed idle timeout for TCP flows.
const IDLE: Duration = Duration::from_secs(350);
const CONNECT: Duration = Duration::from_secs(10);

/// Accepts connections until the socket is closed (its task aborted); the connections go on.
pub(crate) async fn serve(plane: Arc<DataPlane>, listener_arn: Arc<str>, socket: TcpListener) {
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            plane.clone(),
            listener_arn.clone(),
            stream,
            peer,
        ));
    }
}

/// The target group a TCP listener forwards to: its default action's (an NLB listener has no other rules).
fn target_group<'r>(
    routes: &'r Routes,
    listener: &ListenerRoutes,
) -> Option<&'r Arc<TargetGroupRoutes>> {
    let action = listener.rules.last()?.1.last()?;
    let arn = action.target_group_arn.clone().or_else(|| {
        action
            .forward_config
            .as_ref()?
            .target_groups
            .as_ref()?
            .first()?
            .target_group_arn
            .clone()
    })?;
    routes.target_groups.get(&arn)
}

async fn connection(
    plane: Arc<DataPlane>,
    listener_arn: Arc<str>,
    client: TcpStream,
    peer: SocketAddr,
) {
    let routes = plane.routes();
    let Some(listener) = routes.listeners.get(&*listener_arn) else {
        return;
    };
    let Some(group) = target_group(&routes, listener) else {
        return;
    };
    // No target in service: the connection is closed, as an NLB resets it.
    let Some(target) = group.pick_for(peer.ip()) else {
        return;
    };
    let addr = target.addr;
    let _counted = target.begin();
    let tls = listener.tls.clone();
    let mark = listener.mark;
    // The snapshot is not held for the life of the connection: later rebuilds replace it.
    drop(routes);
    let upstream = match tokio::time::timeout(CONNECT, super::mark::connect(addr, mark)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(target = %addr, error = %e, "target refused the connection");
            return;
        }
        Err(_) => {
            tracing::debug!(target = %addr, "connecting to the target timed out");
            return;
        }
    };
    // A TLS listener decrypts and sends the plain bytes on, as an NLB's TLS listener to TCP targets does.
    let spliced = match tls {
        Some(config) => {
            let accept = tokio_rustls::TlsAcceptor::from(config).accept(client);
            match tokio::time::timeout(CONNECT, accept).await {
                Ok(Ok(tls)) => splice(tls, upstream, IDLE).await,
                _ => return,
            }
        }
        None => splice(client, upstream, IDLE).await,
    };
    if let Err(e) = spliced {
        tracing::debug!(target = %addr, error = %e, "tcp connection ended");
    }
}
