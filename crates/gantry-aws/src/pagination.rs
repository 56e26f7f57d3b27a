//! Pagination over an ordered list: the token is an opaque position (base64 of the offset of the next item).

use base64::Engine;

use crate::AwsError;

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Returns the page at `token` of at most `max` items (`default_max` when unset). `max` must lie in `1..=limit`.
pub fn paginate<T>(
    items: Vec<T>,
    token: Option<&str>,
    max: Option<i64>,
    default_max: usize,
    limit: usize,
) -> Result<Page<T>, AwsError> {
    let max = match max {
        None => default_max,
        Some(m) if m >= 1 && m as usize <= limit => m as usize,
        Some(m) => {
            return Err(AwsError::invalid_parameter(format!(
                "maxResults must be between 1 and {limit}, got {m}"
            )))
        }
    };
    let offset = match token {
        None | Some("") => 0,
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:")?.parse::<usize>().ok())
            .ok_or_else(|| AwsError::invalid_parameter("Invalid nextToken"))?,
    };
    let total = items.len();
    let end = offset.saturating_add(max).min(total);
    let items: Vec<T> = items.into_iter().skip(offset).take(max).collect();
    let next_token = (end < total)
        .then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{end}")));
    Ok(Page { items, next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_all_pages() {
        let items: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
        let mut token = None;
        let mut seen = Vec::new();
        loop {
            let page = paginate(items.clone(), token.as_deref(), Some(10), 100, 100).unwrap();
            seen.extend(page.items);
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn rejects_bad_tokens_and_sizes() {
        assert!(paginate(vec![1], Some("!!"), None, 10, 10).is_err());
        assert!(paginate(vec![1], None, Some(0), 10, 10).is_err());
        assert!(paginate(vec![1], None, Some(11), 10, 10).is_err());
    }
}
