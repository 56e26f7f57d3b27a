//! The API's own figures for `GET /metrics`: calls per operation and outcome, and their latency, in the
//! Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
struct Operation {
    /// Calls by outcome: `ok` or the error code.
    calls: BTreeMap<String, u64>,
    seconds: f64,
}

#[derive(Default)]
pub struct ApiMetrics {
    /// By "service.operation" as the edge names a call.
    operations: Mutex<BTreeMap<String, Operation>>,
}

/// A label value with `\`, `"` and newlines escaped, as the text format asks.
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl ApiMetrics {
    pub fn record(&self, what: &str, outcome: &str, took: Duration) {
        let mut ops = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let op = ops.entry(what.to_string()).or_default();
        *op.calls.entry(outcome.to_string()).or_default() += 1;
        op.seconds += took.as_secs_f64();
    }

    pub fn render(&self, out: &mut String) {
        let ops = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP gantry_api_requests_total AWS API calls by operation and outcome (ok or the error code).\n");
        out.push_str("# TYPE gantry_api_requests_total counter\n");
        for (what, op) in ops.iter() {
            for (outcome, n) in &op.calls {
                let _ = writeln!(
                    out,
                    "gantry_api_requests_total{{operation=\"{}\",outcome=\"{}\"}} {n}",
                    label(what),
                    label(outcome)
                );
            }
        }
        out.push_str("# HELP gantry_api_request_duration_seconds Time spent in AWS API calls by operation.\n");
        out.push_str("# TYPE gantry_api_request_duration_seconds summary\n");
        for (what, op) in ops.iter() {
            let count: u64 = op.calls.values().sum();
            let _ = writeln!(
                out,
                "gantry_api_request_duration_seconds_sum{{operation=\"{}\"}} {}",
                label(what),
                op.seconds
            );
            let _ = writeln!(
                out,
                "gantry_api_request_duration_seconds_count{{operation=\"{}\"}} {count}",
                label(what)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_latency() {
        let m = ApiMetrics::default();
        m.record("ecs.RunTask", "ok", Duration::from_millis(10));
        m.record(
            "ecs.RunTask",
            "ClusterNotFoundException",
            Duration::from_millis(30),
        );
        m.record("x\"y", "ok", Duration::ZERO);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("gantry_api_requests_total{operation=\"ecs.RunTask\",outcome=\"ok\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("outcome=\"ClusterNotFoundException\"} 1\n"));
        assert!(out
            .contains("gantry_api_request_duration_seconds_count{operation=\"ecs.RunTask\"} 2\n"));
        assert!(
            out.contains("gantry_api_request_duration_seconds_sum{operation=\"ecs.RunTask\"} 0.04")
        );
        assert!(out.contains("operation=\"x\\\"y\""));
    }
}
