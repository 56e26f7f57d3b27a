//! Pagination tokens and event ids. Pure.
//!
//! - GetLogEvents: `f/<position>` and `b/<position>`, where a position is a gap between two events of a stream:
//!   reading forward from it yields the events at or after it, backward the events before it. When a read finds
//!   nothing, the token it was given comes back unchanged; that is how paginators know they are done.
//! - FilterLogEvents: an opaque token holding the direction and the last event looked at.
//! - Describe calls: an opaque token holding the sort key of the last item returned.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A place in a stream, in key order: (timestamp, sequence). Sequences start at 1, so `(t, 0)` lies before every
/// event at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Position {
    pub timestamp: i64,
    pub seq: u64,
}

impl Position {
    pub fn new(timestamp: i64, seq: u64) -> Position {
        Position { timestamp, seq }
    }

    /// The position before every event at `timestamp`.
    pub fn at(timestamp: i64) -> Position {
        Position { timestamp, seq: 0 }
    }

    /// The smallest position after this one: the gap just after the event at `self`.
    pub fn successor(self) -> Position {
        match self.seq.checked_add(1) {
            Some(seq) => Position {
                timestamp: self.timestamp,
                seq,
            },
            None => Position {
                timestamp: self.timestamp.saturating_add(1),
                seq: 0,
            },
        }
    }
}

/// Maps an i64 onto a u64 with the same order, so that positions print as fixed-width digits.
pub(crate) fn ordered(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

fn unordered(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamToken {
    Forward(Position),
    Backward(Position),
}

impl StreamToken {
    pub fn encode(&self) -> String {
        let (dir, p) = match self {
            StreamToken::Forward(p) => ('f', p),
            StreamToken::Backward(p) => ('b', p),
        };
        format!("{dir}/{:020}{:020}", ordered(p.timestamp), p.seq)
    }

    pub fn parse(s: &str) -> Option<StreamToken> {
        let (dir, digits) = s.split_once('/')?;
        if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ts = unordered(digits[..20].parse().ok()?);
        let seq = digits[20..].parse().ok()?;
        let p = Position::new(ts, seq);
        match dir {
            "f" => Some(StreamToken::Forward(p)),
            "b" => Some(StreamToken::Backward(p)),
            _ => None,
        }
    }
}

/// Where a FilterLogEvents scan stopped: the last event looked at, in the scan's global order
/// (timestamp, stream id, sequence), ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FilterToken {
    pub descending: bool,
    pub timestamp: i64,
    pub stream: u64,
    pub seq: u64,
}

impl FilterToken {
    pub fn encode(&self) -> String {
        let dir = if self.descending { 'd' } else { 'a' };
        URL_SAFE_NO_PAD.encode(format!(
            "1:{dir}:{}:{}:{}",
            self.timestamp, self.stream, self.seq
        ))
    }

    pub fn parse(s: &str) -> Option<FilterToken> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let mut parts = raw.split(':');
        if parts.next()? != "1" {
            return None;
        }
        let descending = match parts.next()? {
            "a" => false,
            "d" => true,
            _ => return None,
        };
        let timestamp = parts.next()?.parse().ok()?;
        let stream = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(FilterToken {
            descending,
            timestamp,
            stream,
            seq,
        })
    }

    /// Where each stream's part of the scan resumes: the range of positions of `stream` whose events come after
    /// this token in the scan order, as (lowest included, highest excluded; `None` for no bound).
    pub fn resume(&self, stream: u64) -> (Option<Position>, Option<Position>) {
        let t = self.timestamp;
        if !self.descending {
            let from = match stream.cmp(&self.stream) {
                std::cmp::Ordering::Less => Position::at(t.saturating_add(1)),
                std::cmp::Ordering::Equal => Position::new(t, self.seq).successor(),
                std::cmp::Ordering::Greater => Position::at(t),
            };
            (Some(from), None)
        } else {
            let until = match stream.cmp(&self.stream) {
                std::cmp::Ordering::Greater => Position::at(t),
                std::cmp::Ordering::Equal => Position::new(t, self.seq),
                std::cmp::Ordering::Less => Position::at(t.saturating_add(1)),
            };
            (None, Some(until))
        }
    }
}

/// A stable id of one stored event, unique across streams: decimal digits, as AWS's are.
pub(crate) fn event_id(timestamp: i64, stream: u64, seq: u64) -> String {
    format!("{:020}{:020}{:020}", ordered(timestamp), stream, seq)
}

/// The sort key of a listed item: a rank (an event time, or 0 when ordering by name) and the name.
pub(crate) type ListKey = (i64, String);

pub(crate) fn encode_list_token(key: &ListKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", key.0, key.1))
}

pub(crate) fn parse_list_token(s: &str) -> Option<ListKey> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let (rank, name) = raw.split_once(':')?;
    Some((rank.parse().ok()?, name.to_string()))
}

/// One page of `items` (sorted by `key`, ascending or descending) after the item keyed `after`, and the key to
/// continue from when more remain.
pub(crate) fn page_after<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> ListKey,
    descending: bool,
    after: Option<&ListKey>,
    limit: usize,
) -> (Vec<T>, Option<ListKey>) {
    let mut rest: Vec<T> = match after {
        None => items,
        Some(a) => items
            .into_iter()
            .filter(|i| {
                let k = key(i);
                if descending {
                    &k < a
                } else {
                    &k > a
                }
            })
            .collect(),
    };
    if rest.len() > limit {
        rest.truncate(limit);
        let next = rest.last().map(&key);
        (rest, next)
    } else {
        (rest, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_tokens_round_trip() {
        for p in [
            Position::new(0, 0),
            Position::new(1_700_000_000_000, 42),
            Position::new(-5, u64::MAX),
            Position::new(i64::MAX, 1),
        ] {
            for t in [StreamToken::Forward(p), StreamToken::Backward(p)] {
                let s = t.encode();
                assert_eq!(StreamToken::parse(&s), Some(t), "{s}");
            }
        }
        let s = StreamToken::Forward(Position::new(1, 2)).encode();
        assert!(s.starts_with("f/"));
        assert_eq!(s.len(), 42);
    }

    #[test]
    fn stream_tokens_order_like_positions() {
        let a = StreamToken::Forward(Position::new(-1, 9)).encode();
        let b = StreamToken::Forward(Position::new(0, 1)).encode();
        let c = StreamToken::Forward(Position::new(0, 2)).encode();
        assert!(a < b && b < c);
    }

    #[test]
    fn rejects_bad_stream_tokens() {
        for s in [
            "",
            "f/",
            "x/0000000000000000000000000000000000000000",
            "f/123",
            "f/00000000000000000000000000000000000000a0",
            "f0000",
        ] {
            assert_eq!(StreamToken::parse(s), None, "{s}");
        }
        // A u64 that overflows.
        assert_eq!(
            StreamToken::parse(&format!("f/{}{}", "9".repeat(20), "0".repeat(20))),
            None
        );
    }

    #[test]
    fn successor_is_the_next_gap() {
        assert_eq!(Position::new(5, 1).successor(), Position::new(5, 2));
        assert_eq!(Position::new(5, u64::MAX).successor(), Position::new(6, 0));
        assert!(Position::at(5) < Position::new(5, 1));
    }

    #[test]
    fn filter_tokens_round_trip_and_resume() {
        let t = FilterToken {
            descending: false,
            timestamp: 100,
            stream: 7,
            seq: 3,
        };
        assert_eq!(FilterToken::parse(&t.encode()), Some(t));
        assert_eq!(FilterToken::parse("nope"), None);
        assert_eq!(FilterToken::parse(&URL_SAFE_NO_PAD.encode("1:a:1:2")), None);
        // Ascending: lower stream ids resume after t, the same stream after the event, higher ones at t.
        assert_eq!(t.resume(6), (Some(Position::at(101)), None));
        assert_eq!(t.resume(7), (Some(Position::new(100, 4)), None));
        assert_eq!(t.resume(8), (Some(Position::at(100)), None));
        let d = FilterToken {
            descending: true,
            ..t
        };
        assert_eq!(FilterToken::parse(&d.encode()), Some(d));
        assert_eq!(d.resume(8), (None, Some(Position::at(100))));
        assert_eq!(d.resume(7), (None, Some(Position::new(100, 3))));
        assert_eq!(d.resume(6), (None, Some(Position::at(101))));
    }

    #[test]
    fn event_ids_are_unique_and_digits() {
        let a = event_id(1, 2, 3);
        assert_ne!(a, event_id(1, 3, 2));
        assert_ne!(a, event_id(12, 0, 3));
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a.len(), 60);
    }

    #[test]
    fn pages_walk_every_item_once() {
        let items: Vec<ListKey> = (0..23).map(|i| (i % 4, format!("s{i:02}"))).collect();
        for descending in [false, true] {
            let mut sorted = items.clone();
            sorted.sort();
            if descending {
                sorted.reverse();
            }
            let mut after = None;
            let mut seen = Vec::new();
            loop {
                let (page, next) =
                    page_after(sorted.clone(), |k| k.clone(), descending, after.as_ref(), 5);
                assert!(page.len() <= 5);
                seen.extend(page);
                match next {
                    Some(k) => after = Some(parse_list_token(&encode_list_token(&k)).unwrap()),
                    None => break,
                }
            }
            assert_eq!(seen, sorted);
        }
    }
}
