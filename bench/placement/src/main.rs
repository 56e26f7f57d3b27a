//! Placement throughput and latency with simulated container instances: the real ECS API (called in-process,
//! without HTTP), the real scheduler and the real store (its write-ahead log on disk, durable commits), and no agents, so tasks
//! stay PENDING where placement put them. Prints a Markdown table.
//!
//!   cargo run --release -p placement-bench -- [--instances 10000] [--tasks 1000000] [--services 100]
//!       [--rate 1000] [--seconds 10] [--callers 64]
//!
//! Half the tasks go through RunTask (count 10, several callers at once), half through services (the service
//! controller places them); then RunTask calls of one task each are offered at `--rate` tasks/s for `--seconds`
//! on the full cluster, and the time from the call to its answer (the task is PENDING on an instance) is measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_aws::{JsonService, RequestContext};
use gantry_ecs::{EcsConfig, EcsService};
use gantry_model::agent::RegisterRequest;
use gantry_model::ecs::Attribute;
use gantry_model::Scope;
use gantry_store::{EventKind, Store, WalStore};
use serde_json::{json, Value};

struct Args {
    instances: usize,
    tasks: usize,
    services: usize,
    rate: u64,
    seconds: u64,
    callers: usize,
}

/// Waits until every service's record counts all its tasks, then a second more: the controller's passes right
/// after a service has been filled each read its 50,000 tasks again, and the latency is measured on a settled
/// cluster, not during those.
async fn settle_services(ecs: &Ecs, services: usize, per_service: usize) {
    let names: Vec<String> = (0..services).map(|s| format!("svc-{s}")).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let mut counted = true;
        for chunk in names.chunks(10) {
            let out = call(ecs, "DescribeServices", &json!({ "services": chunk })).await;
            counted &= out["services"].as_array().is_some_and(|all| {
                all.iter()
                    .all(|s| s["pendingCount"].as_u64() == Some(per_service as u64))
            });
        }
        if counted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        instances: 10_000,
        tasks: 1_000_000,
        services: 100,
        rate: 1000,
        seconds: 10,
        callers: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--instances" => a.instances = n as usize,
            "--tasks" => a.tasks = n as usize,
            "--services" => a.services = n as usize,
            "--rate" => a.rate = n,
            "--seconds" => a.seconds = n,
            "--callers" => a.callers = n as usize,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

type Ecs = EcsService<WalStore>;

async fn call(ecs: &Ecs, op: &str, body: &Value) -> Value {
    let ctx = RequestContext {
        request_id: "bench".into(),
        scope: Scope::new("us-east-1", "000000000000"),
        access_key: "test".into(),
    };
    match ecs.call(&ctx, op, body.to_string().as_bytes()).await {
        Ok(v) => v,
        Err(e) => panic!("{op}: {} {}", e.code, e.message),
    }
}

/// Resident and peak memory of this process, in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("placement-bench: {e}");
            std::process::exit(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("gantry-placement-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let store = Arc::new(WalStore::open(&dir.join("state")).expect("store"));
    // Tasks created, counted as they commit.
    let created = Arc::new(AtomicU64::new(0));
    let counter = created.clone();
    store.observe(
        "/ecs/us-east-1/tasks/",
        Arc::new(move |events| {
            let new = events
                .iter()
                .filter(|e| e.kind == EventKind::Put && e.kv.create_revision == e.kv.mod_revision)
                .count();
            counter.fetch_add(new as u64, Ordering::Relaxed);
        }),
    );
    let ecs = EcsService::new(
        store.clone(),
        EcsConfig {
            agent_timeout: Duration::from_secs(86_400),
            ..Default::default()
        },
    );

    eprintln!("registering {} instances", a.instances);
    let per_instance = (a.tasks / a.instances.max(1) + 1) as i64;
    for i in 0..a.instances {
        ecs.agent_register(RegisterRequest {
            cluster: "default".into(),
            instance_id: format!("i-{i:08}"),
            cpu: 16 * per_instance * 2,
            memory: 16 * per_instance * 2,
            attributes: vec![Attribute {
                name: "ecs.availability-zone".into(),
                value: Some(format!("zone-{}", i % 3)),
                ..Default::default()
            }],
            agent_version: "bench".into(),
            docker_version: "none".into(),
            ..Default::default()
        })
        .await
        .expect("register");
    }
    let td = json!({"family": "bench", "containerDefinitions": [{"name": "app", "image": "bench", "cpu": 16, "memory": 16}]});
    call(&ecs, "RegisterTaskDefinition", &td).await;
    let strategy = json!([{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "binpack", "field": "memory"}]);

    // RunTask: half the tasks, 10 per call, from several callers at once.
    let run_total = a.tasks / 2;
    eprintln!("RunTask: {run_total} tasks");
    let start = Instant::now();
    let mut callers = Vec::new();
    for c in 0..a.callers {
        let ecs = ecs.clone();
        let calls = (run_total / 10) / a.callers + usize::from(c < (run_total / 10) % a.callers);
        let body = json!({"taskDefinition": "bench", "count": 10, "placementStrategy": strategy});
        callers.push(tokio::spawn(async move {
            let mut placed = 0;
            for _ in 0..calls {
                placed += call(&ecs, "RunTask", &body).await["tasks"]
                    .as_array()
                    .map_or(0, Vec::len);
            }
            placed
        }));
    }
    let mut run_placed = 0;
    for c in callers {
        run_placed += c.await.expect("caller");
    }
    let run_secs = start.elapsed().as_secs_f64();

    // Services: the other half, placed by the service controller.
    let service_total = a.tasks - run_total;
    let per_service = service_total / a.services.max(1);
    eprintln!("services: {} x {per_service} tasks", a.services);
    let before = created.load(Ordering::Relaxed);
    let start = Instant::now();
    let _controller =
        ecs.clone()
            .spawn_service_controller(gantry_store::lease::Lease::single_server(
                "ecs/service-controller",
            ));
    for s in 0..a.services {
        call(
            &ecs,
            "CreateService",
            &json!({"serviceName": format!("svc-{s}"), "taskDefinition": "bench",
                "desiredCount": per_service, "placementStrategy": strategy}),
        )
        .await;
    }
    let want = (per_service * a.services) as u64;
    let deadline = Instant::now() + Duration::from_secs(1800);
    while created.load(Ordering::Relaxed) - before < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let service_placed = created.load(Ordering::Relaxed) - before;
    let service_secs = start.elapsed().as_secs_f64();
    let settle = Instant::now();
    settle_services(&ecs, a.services, per_service).await;
    let settle_secs = settle.elapsed().as_secs_f64();

    // Latency on the full cluster at an offered rate, one task per call.
    eprintln!(
        "latency: {} tasks/s for {} s (services settled {settle_secs:.1} s after their last placement)",
        a.rate, a.seconds
    );
    let mut latencies = Vec::new();
    let interval = Duration::from_secs_f64(1.0 / a.rate.max(1) as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let body = Arc::new(json!({"taskDefinition": "bench", "placementStrategy": strategy}));
    let mut pending = Vec::new();
    for _ in 0..a.rate * a.seconds {
        ticker.tick().await;
        let (ecs, body) = (ecs.clone(), body.clone());
        pending.push(tokio::spawn(async move {
            let t = Instant::now();
            let placed = call(&ecs, "RunTask", &body).await["tasks"]
                .as_array()
                .map_or(0, Vec::len);
            (t.elapsed(), placed)
        }));
    }
    let mut latency_placed = 0;
    for p in pending {
        let (d, n) = p.await.expect("call");
        latencies.push(d);
        latency_placed += n;
    }
    latencies.sort();
    let (rss, peak) = rss_mib();
    let _ = std::fs::remove_dir_all(&dir);

    let rate = |n: f64, secs: f64| n / secs.max(1e-9);
    println!(
        "| {} instances, strategy spread(zone)+binpack(memory) | tasks placed | seconds | placements/s |",
        a.instances
    );
    println!("|---|---|---|---|");
    println!(
        "| RunTask, count 10, {} callers | {run_placed} | {run_secs:.1} | {:.0} |",
        a.callers,
        rate(run_placed as f64, run_secs)
    );
    println!(
        "| {} services (service controller) | {service_placed} | {service_secs:.1} | {:.0} |",
        a.services,
        rate(service_placed as f64, service_secs)
    );
    println!(
        "| both | {} | {:.1} | {:.0} |",
        run_placed as u64 + service_placed,
        run_secs + service_secs,
        rate(
            run_placed as f64 + service_placed as f64,
            run_secs + service_secs
        )
    );
    println!();
    println!(
        "RunTask -> PENDING at {} tasks/s offered for {} s on the full cluster ({latency_placed} placed): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        a.rate,
        a.seconds,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!("RSS at the end {rss:.0} MiB, peak {peak:.0} MiB");
    println!("Anchors: Nomad C1M about 3,750 placements/s (1M containers, 5,000 hosts); kube-scheduler about 700-800 pods/s at 5,000 nodes.");
}
