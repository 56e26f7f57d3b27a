//! "This server holds the lease for this job": the one abstraction every background loop that must run once per
//! cluster of servers runs behind (the service controller, deregistrations, retention, lifecycle, garbage
//! collection). A single server always holds every lease; with several servers an etcd backend will grant each
//! lease to one of them at a time, and the loops will not change.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Grants leases on named jobs.
pub trait Leases: Send + Sync + 'static {
    /// The lease on `job` as this server sees it, now and as it changes.
    fn lease(&self, job: &str) -> Lease;
}

/// The backend of one server alone: it holds every lease, always.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleServer;

impl Leases for SingleServer {
    fn lease(&self, job: &str) -> Lease {
        Lease::single_server(job)
    }
}

/// Whether this server holds one job's lease. A backend that goes away leaves it as it last was.
#[derive(Debug, Clone)]
pub struct Lease {
    job: Arc<str>,
    held: watch::Receiver<bool>,
}

impl Lease {
    /// A lease fed by a backend: `held` says whether this server holds it.
    pub fn new(job: &str, held: watch::Receiver<bool>) -> Self {
        Lease {
            job: job.into(),
            held,
        }
    }

    /// A lease that is held for good (one server, or a test).
    pub fn single_server(job: &str) -> Self {
        // The sender is dropped at once: the value stays `true` for ever.
        Lease::new(job, watch::channel(true).1)
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Resolves once the lease is held (at once if it is).
    pub async fn until_held(&mut self) {
        self.until(true).await
    }

    /// Resolves once the lease is lost; never while it stays held.
    pub async fn until_lost(&mut self) {
        self.until(false).await
    }

    async fn until(&mut self, held: bool) {
        if self.held.wait_for(|h| *h == held).await.is_err() {
            // The backend is gone: nothing will change any more.
            if *self.held.borrow() != held {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Spawns `job` to run whenever this server holds `lease`: started when it is held, dropped (stopped at its next
/// await) when it is lost, and started afresh when it is held again. A job that returns is not restarted.
pub fn spawn_leased<F, Fut>(mut lease: Lease, mut job: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            lease.until_held().await;
            tracing::debug!(job = lease.job(), "holding the lease: the job runs");
            let run = job();
            tokio::select! {
                () = run => return,
                () = lease.until_lost() => {
                    tracing::info!(job = lease.job(), "lost the lease: the job stops until it is held again");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts the job's starts and its ticks, as a loop would do work.
    fn ticking(
        starts: Arc<AtomicUsize>,
        ticks: Arc<AtomicUsize>,
    ) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        move || {
            starts.fetch_add(1, Ordering::SeqCst);
            let ticks = ticks.clone();
            Box::pin(async move {
                loop {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        }
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(35)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_server_holds_every_lease_for_good() {
        let mut lease = SingleServer.lease("ecs/service-controller");
        assert!(lease.is_held());
        assert_eq!(lease.job(), "ecs/service-controller");
        lease.until_held().await;
        let lost = tokio::time::timeout(Duration::from_secs(3600), lease.until_lost()).await;
        assert!(lost.is_err(), "a single server's lease is never lost");
    }

    #[tokio::test(start_paused = true)]
    async fn the_job_runs_only_while_the_lease_is_held() {
        let (tx, rx) = watch::channel(false);
        let (starts, ticks) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let handle = spawn_leased(
            Lease::new("job", rx),
            ticking(starts.clone(), ticks.clone()),
        );
        settle().await;
        assert_eq!(starts.load(Ordering::SeqCst), 0, "not held: not started");

        tx.send(true).unwrap();
        settle().await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(ticks.load(Ordering::SeqCst) > 0);

        tx.send(false).unwrap();
        settle().await;
        let stopped_at = ticks.load(Ordering::SeqCst);
        settle().await;
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            stopped_at,
            "lost: the job no longer runs"
        );

        tx.send(true).unwrap();
        settle().await;
        assert_eq!(
            starts.load(Ordering::SeqCst),
            2,
            "held again: started afresh"
        );
        assert!(ticks.load(Ordering::SeqCst) > stopped_at);
        handle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_that_goes_away_leaves_the_lease_as_it_was() {
        let (tx, rx) = watch::channel(false);
        let (starts, ticks) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let handle = spawn_leased(
            Lease::new("job", rx),
            ticking(starts.clone(), ticks.clone()),
        );
        drop(tx);
        settle().await;
        assert_eq!(starts.load(Ordering::SeqCst), 0, "never held: never runs");
        assert!(!handle.is_finished(), "and does not spin or end");
        handle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_returns_is_not_restarted() {
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let handle = spawn_leased(Lease::single_server("once"), move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        handle.await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }
}
