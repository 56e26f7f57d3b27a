//! Connections to targets carry their load balancer's packet mark (`SO_MARK`): a task's security group that lets a
//! load balancer's group in is enforced on the host by matching that mark (`gantry-agent`'s firewall), since every
//! load balancer connects from the host's own address.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpSocket, TcpStream};

/// The mark of a load balancer's connections: a hash of its ARN under a fixed high byte (`G`), so that it is the
/// same on every server and after a restart.
pub fn of(load_balancer_arn: &str) -> u32 {
    // FNV-1a: stable across builds, unlike the std's seeded hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in load_balancer_arn.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    0x4700_0000 | (h & 0x00ff_ffff)
}

/// Connects to `addr` with `mark` on the socket (0: none). Setting a mark needs CAP_NET_ADMIN: without it the
/// connection is made unmarked (security groups naming the load balancer then do not let it in) and that is said
/// once.
pub async fn connect(addr: SocketAddr, mark: u32) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if mark != 0 {
        set_mark(&socket, mark);
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn set_mark(socket: &TcpSocket, mark: u32) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    // SAFETY: a valid socket descriptor, and a pointer to a u32 of the length given, as SO_MARK takes.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            &mark as *const u32 as *const libc::c_void,
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc != 0 && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(error = %io::Error::last_os_error(),
            "connections to targets cannot be marked: security groups that name a load balancer's group will not let it in");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_stable_and_tell_load_balancers_apart() {
        let a = of("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/a/1");
        let b = of("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/b/1");
        assert_ne!(a, b);
        assert_eq!(a >> 24, 0x47);
        assert_eq!(
            a,
            of("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/a/1")
        );
    }

    #[tokio::test]
    async fn a_marked_connection_reaches_its_target() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        connect(addr, of("lb")).await.unwrap();
        accepted.await.unwrap().unwrap();
    }
}
