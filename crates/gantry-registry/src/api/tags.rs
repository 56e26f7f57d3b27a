//! The tags list, in lexical order, paginated with `n` and `last` and a `Link` to the next page.

use crate::errors::{RegistryError, Result};
use crate::Registry;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_store::Store;
use std::collections::HashMap;

pub(crate) fn list<S: Store>(
    reg: &Registry<S>,
    name: &str,
    query: &HashMap<String, String>,
    head: bool,
) -> Result<Response> {
    if !reg.meta.repo_exists(name) {
        return Err(RegistryError::NameUnknown);
    }
    let n: Option<usize> = query.get("n").and_then(|n| n.parse().ok());
    let last = query.get("last").map(String::as_str);
    let all: Vec<String> = reg
        .meta
        .tags(name)
        .into_iter()
        .filter(|t| last.is_none_or(|l| t.as_str() > l))
        .collect();
    let (page, more) = match n {
        Some(n) if all.len() > n => (all[..n].to_vec(), true),
        _ => (all, false),
    };
    let body =
        serde_json::to_vec(&serde_json::json!({ "name": name, "tags": page })).expect("json");
    let len = body.len();
    let mut res = (StatusCode::OK, if head { Vec::new() } else { body }).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CONTENT_LENGTH, len.into());
    if let (true, Some(n), Some(last)) = (more, n, page.last()) {
        let link = format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.insert(header::LINK, v);
        }
    }
    Ok(res)
}
