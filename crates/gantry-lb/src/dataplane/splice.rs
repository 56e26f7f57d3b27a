//! Copying bytes both ways between a client and a target (TCP listeners, upgraded HTTP connections) until both
//! sides are done, an error ends it, or nothing moved for the idle timeout, as the load balancers' idle timeouts
//! close quiet connections.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
// Tokio's clock, so that tests can pause it.
use tokio::time::Instant;

/// Copies until both directions end; `Err` for an I/O error or the idle timeout. Either way both streams are
/// dropped (closed) when it returns.
pub async fn splice<A, B>(a: A, b: B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut a = Active {
        inner: a,
        start,
        last: last.clone(),
    };
    let mut b = Active {
        inner: b,
        start,
        last: last.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let quiet_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
        let deadline = quiet_since + idle;
        tokio::select! {
            done = &mut copy => return done,
            _ = tokio::time::sleep_until(deadline) => {
                // Data may have moved while asleep: only a deadline that still holds ends it.
                let now_quiet = start + Duration::from_millis(last.load(Ordering::Relaxed));
                if now_quiet + idle <= Instant::now() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
                }
            }
        }
    }
}

/// A stream that notes when bytes last moved through it.
struct Active<S> {
    inner: S,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Active<S> {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.fetch_max(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Active<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Active<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn copies_both_ways_and_ends_when_both_close() {
        let (mut client, proxy_a) = tokio::io::duplex(64);
        let (proxy_b, mut target) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(proxy_a, proxy_b, Duration::from_secs(5)));
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        target.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        target.write_all(b"pong!").await.unwrap();
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong!");
        drop(client);
        drop(target);
        assert_eq!(task.await.unwrap().unwrap(), (4, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_connection_times_out_and_a_busy_one_does_not() {
        let (mut client, proxy_a) = tokio::io::duplex(64);
        let (proxy_b, mut target) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(proxy_a, proxy_b, Duration::from_secs(10)));
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            client.write_all(b"x").await.unwrap();
            let mut one = [0u8; 1];
            target.read_exact(&mut one).await.unwrap();
        }
        assert!(!task.is_finished());
        tokio::time::sleep(Duration::from_secs(11)).await;
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // The proxy's ends are closed: the client reads end of stream.
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
    }
}
