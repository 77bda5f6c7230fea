//! Neutron's paging links (`*_links`): where the next and previous pages of a listing are, as
//! URLs repeating the request's filters, fields and sort with the page's marker.

use axum::http::{HeaderMap, Uri};
use l2pop_neutron::listing::{ListParams, Page};
use serde_json::{Value, json};

/// `http://<host><path>` of the request: where the `*_links` of a page point.
pub(crate) fn links_base(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{}", uri.path())
}

/// Neutron's `*_links`: `next` while more items follow the page, `previous` once a marker was
/// given (reversed for `page_reverse`).
pub(crate) fn page_links(base: &str, params: &ListParams, page: &Page) -> Vec<Value> {
    let href = |marker: &str, reverse: bool| {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, values) in &params.filters {
            pairs.extend(values.iter().map(|v| (key.clone(), v.clone())));
        }
        pairs.extend(
            params
                .fields
                .iter()
                .map(|f| ("fields".to_owned(), f.clone())),
        );
        for (key, ascending) in &params.sort {
            pairs.push(("sort_key".to_owned(), key.clone()));
            let dir = if *ascending { "asc" } else { "desc" };
            pairs.push(("sort_dir".to_owned(), dir.to_owned()));
        }
        if let Some(limit) = params.limit {
            pairs.push(("limit".to_owned(), limit.to_string()));
        }
        pairs.push(("marker".to_owned(), marker.to_owned()));
        if reverse {
            pairs.push(("page_reverse".to_owned(), "True".to_owned()));
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        format!("{base}?{}", query.join("&"))
    };
    let (mut next, mut previous) = (None, None);
    let given = params.marker.is_some();
    if params.page_reverse {
        if page.more {
            previous = page.first_id.as_deref().map(|m| href(m, true));
        }
        if given {
            next = page.last_id.as_deref().map(|m| href(m, false));
        }
    } else {
        if page.more {
            next = page.last_id.as_deref().map(|m| href(m, false));
        }
        if given {
            previous = page.first_id.as_deref().map(|m| href(m, true));
        }
    }
    let mut links = Vec::new();
    if let Some(href) = next {
        links.push(json!({"rel": "next", "href": href}));
    }
    if let Some(href) = previous {
        links.push(json!({"rel": "previous", "href": href}));
    }
    links
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
