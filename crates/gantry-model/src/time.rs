//! Timestamps. The AWS JSON protocols send timestamps as epoch seconds (fractions allowed), so we keep them as f64.

use std::time::{SystemTime, UNIX_EPOCH};

/// Epoch seconds, as the AWS JSON protocols send them.
pub type Timestamp = f64;

/// The current time in epoch seconds, with millisecond precision (what ECS reports).
pub fn now() -> Timestamp {
    let ms = now_millis();
    ms as f64 / 1000.0
}

/// The current time in epoch milliseconds (CloudWatch Logs' unit).
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
