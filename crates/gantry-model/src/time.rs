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

/// `2020-05-23T12:31:14Z`, or with `millis` `2020-05-23T12:31:14.695Z`, from epoch seconds.
pub fn iso8601(ts: f64, millis: bool) -> String {
    let total_ms = (ts * 1000.0).round().max(0.0) as i64;
    let (secs, ms) = (total_ms.div_euclid(1000), total_ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if millis {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The current time in ISO 8601 with milliseconds, as the Query protocol writes timestamps.
pub fn iso8601_now() -> String {
    iso8601(now(), true)
}
