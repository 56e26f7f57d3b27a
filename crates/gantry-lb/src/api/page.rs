//! `Marker` / `PageSize` pagination: the marker is the position of the next item.

use crate::errors::{invalid, LbError, Result};

pub const MAX_PAGE_SIZE: u32 = 400;

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

pub fn page<T>(items: Vec<T>, marker: Option<&str>, page_size: Option<u32>) -> Result<Page<T>> {
    let size =
        match page_size {
            None => MAX_PAGE_SIZE as usize,
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n as usize,
            Some(n) => return Err(invalid(
                "pageSize",
                n,
                "Member must have value less than or equal to 400 and greater than or equal to 1",
            )),
        };
    let start = match marker {
        None | Some("") => 0,
        Some(m) => m
            .strip_prefix("p")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| LbError::Validation(format!("The marker '{m}' is not valid")))?,
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let end = start.saturating_add(size);
    Ok(Page {
        items,
        next_marker: (end < total).then(|| format!("p{end}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let p = page((0..5).collect(), None, Some(2)).unwrap();
        assert_eq!(
            (p.items, p.next_marker.as_deref()),
            (vec![0, 1], Some("p2"))
        );
        let p = page((0..5).collect(), Some("p4"), Some(2)).unwrap();
        assert_eq!((p.items, p.next_marker), (vec![4], None));
        assert!(page((0..5).collect::<Vec<_>>(), Some("zz"), None).is_err());
        assert!(page((0..5).collect::<Vec<_>>(), None, Some(0)).is_err());
        assert!(page((0..5).collect::<Vec<_>>(), None, Some(401)).is_err());
    }
}
