//! `/v2.0/segments`: Neutron's segments extension (admin only, as Neutron's policy). A network
//! create makes its segment 0; the first segment of a network is the one l2pop serves it on.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use l2pop_model::Uuid;
use l2pop_neutron::Request;
use l2pop_neutron::listing::Collection;
use l2pop_neutron::request::body;

use super::{App, Pairs, Route, UrlQuery, json_body, path_id, route};

async fn segments_list(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    UrlQuery(pairs): Pairs,
) -> Response {
    app.list(&headers, &uri, pairs, Collection::Segments).await
}

async fn segment_create(State(app): State<App>, headers: HeaderMap, bytes: Bytes) -> Response {
    app.write(&headers, StatusCode::CREATED, |_| {
        Ok(Request::SegmentCreate(body(json_body(&bytes)?, "segment")?))
    })
    .await
}

async fn segment_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.read(&headers, |catalog, caller, _| {
        catalog.segment_answer(path_id("segment", &id)?, caller)
    })
    .await
}

async fn segment_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, |_| {
        let id: Uuid = path_id("segment", &id)?;
        Ok(Request::SegmentUpdate(
            id,
            body(json_body(&bytes)?, "segment")?,
        ))
    })
    .await
}

async fn segment_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, |_| {
        Ok(Request::SegmentDelete(path_id("segment", &id)?))
    })
    .await
}

/// The segments rows of the route table ([`super::routes`]).
pub(super) fn routes() -> Vec<Route> {
    const SEGMENT: Option<&str> = Some("segment");
    vec![
        route(
            "GET",
            "/v2.0/segments",
            "List network segments (admin only; filters; paging)",
            None,
            get(segments_list),
        ),
        route(
            "POST",
            "/v2.0/segments",
            "Add a segment to a network (admin only)",
            SEGMENT,
            post(segment_create),
        ),
        route(
            "GET",
            "/v2.0/segments/{id}",
            "Show a segment (admin only)",
            None,
            get(segment_show),
        ),
        route(
            "PUT",
            "/v2.0/segments/{id}",
            "Update a segment's name and description (admin only)",
            SEGMENT,
            put(segment_update),
        ),
        route(
            "DELETE",
            "/v2.0/segments/{id}",
            "Delete a segment (a network's first only while none of its ports is bound)",
            None,
            delete(segment_delete),
        ),
    ]
}
