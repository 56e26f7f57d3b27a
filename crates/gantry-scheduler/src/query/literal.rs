//! Arguments that are not plain strings: registration dates and agent versions.

use std::cmp::Ordering;

/// Epoch seconds of a date in one of the forms the docs accept for `registeredAt`:
/// `2018-06-18T22:28:28+00:00`, `2018-06-18T22:28:28Z`, `2018-06-18T22:28:28` (UTC) and `2018-06-18` (midnight UTC).
pub(super) fn parse_instant(s: &str) -> Option<i64> {
    let (date, rest) = match s.split_once('T') {
        Some((d, r)) => (d, Some(r)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let year = number(parts.next()?, 4)?;
    let month = number(parts.next()?, 2)?;
    let day = number(parts.next()?, 2)?;
    if parts.next().is_some() || !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(rest) = rest {
        let (time, offset) = split_offset(rest)?;
        let mut hms = time.split(':');
        let (h, m, sec) = (
            number(hms.next()?, 2)?,
            number(hms.next()?, 2)?,
            number(hms.next()?, 2)?,
        );
        if hms.next().is_some() || h > 23 || m > 59 || sec > 59 {
            return None;
        }
        seconds += h * 3600 + m * 60 + sec - offset;
    }
    Some(seconds)
}

/// Splits `22:28:28+05:30` into the time and the offset in seconds (`Z` or nothing is UTC).
fn split_offset(s: &str) -> Option<(&str, i64)> {
    if let Some(t) = s.strip_suffix('Z') {
        return Some((t, 0));
    }
    match s.find(['+', '-']) {
        None => Some((s, 0)),
        Some(i) => {
            let (time, off) = s.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (h, m) = off[1..].split_once(':')?;
            let (h, m) = (number(h, 2)?, number(m, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            Some((time, sign * (h * 3600 + m * 60)))
        }
    }
}

fn number(s: &str, digits: usize) -> Option<i64> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The numeric components of a version such as `1.14.5`; `None` unless it is dot-separated numbers.
pub(super) fn parse_version(s: &str) -> Option<Vec<u64>> {
    s.split('.').map(number_any).collect()
}

fn number_any(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Compares an agent's version with a parsed one, missing components counting as 0 (`1.14` == `1.14.0`).
/// An agent version with a suffix (`1.14.5-beta`) compares by its numbers; one without numbers compares as none.
pub(super) fn compare_version(agent: &str, wanted: &[u64]) -> Option<Ordering> {
    let numeric = agent
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("");
    if numeric.is_empty() {
        return None;
    }
    let mut have = numeric.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let mut want = wanted.iter().copied();
    loop {
        match (have.next(), want.next()) {
            (None, None) => return Some(Ordering::Equal),
            (a, b) => match a.unwrap_or(0).cmp(&b.unwrap_or(0)) {
                Ordering::Equal => continue,
                other => return Some(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_date_forms() {
        assert_eq!(
            parse_instant("2018-06-18T22:28:28+00:00"),
            Some(1_529_360_908)
        );
        assert_eq!(parse_instant("2018-06-18T22:28:28Z"), Some(1_529_360_908));
        assert_eq!(parse_instant("2018-06-18T22:28:28"), Some(1_529_360_908));
        assert_eq!(parse_instant("2018-06-18"), Some(1_529_280_000));
        assert_eq!(
            parse_instant("2018-06-18T23:28:28+01:00"),
            Some(1_529_360_908)
        );
        assert_eq!(
            parse_instant("2018-06-18T21:28:28-01:00"),
            Some(1_529_360_908)
        );
        assert_eq!(parse_instant("1970-01-01"), Some(0));
        assert_eq!(parse_instant("2000-02-29"), Some(951_782_400));
    }

    #[test]
    fn malformed_dates() {
        for bad in [
            "",
            "2018",
            "2018-6-18",
            "2018-13-01",
            "2018-02-29",
            "2018-06-18T",
            "2018-06-18T25:00:00",
            "2018-06-18T22:28",
            "2018-06-18T22:28:28+0000",
            "2018-06-18 22:28:28",
            "yesterday",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.14.5"), Some(vec![1, 14, 5]));
        assert_eq!(parse_version("1.x"), None);
        assert_eq!(parse_version(""), None);
        let v = parse_version("1.14.5").unwrap();
        assert_eq!(compare_version("1.14.5", &v), Some(Ordering::Equal));
        assert_eq!(compare_version("1.9.0", &v), Some(Ordering::Less));
        assert_eq!(compare_version("1.14.10", &v), Some(Ordering::Greater));
        assert_eq!(compare_version("1.14.5-beta", &v), Some(Ordering::Equal));
        assert_eq!(compare_version("1.14", &[1, 14, 0]), Some(Ordering::Equal));
        assert_eq!(compare_version("", &v), None);
    }
}
