//! The REST API (axum): Neutron's resources where Neutron has them, networking-bgpvpn's and
//! neutron-dynamic-routing's for BGPVPNs and speakers, and l2pop's own under `/v2.0/l2pop`
//! (agent reports and device state as the agent RPC carries them, BGP agents' learned routes,
//! and every host's desired FDB with provenance).
//!
//! Handlers authenticate, parse the path and body into a typed [`Request`] or [`Query`] and send
//! it to the owner task (the five verbs of a Neutron resource are generic handlers, `resource`); listings and shows read the catalog the owner published, on the
//! handler's own task, and a listing without `limit` is streamed page by page. [`routes`] is
//! the one table of routes: the router, the route list and the OpenAPI document all come from it.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Query as UrlQuery, Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use l2pop_bgpvpn::BgpvpnId;
use l2pop_model::Host;
use l2pop_neutron::discovery;
use l2pop_neutron::listing::{BGPVPN_ATTRIBUTES, Collection, ListParams};
use l2pop_neutron::request::{body, tracked};
use l2pop_neutron::{Caller, Catalog, NeutronError, Query, Request, Time, Tokens};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::error;
use super::links::{links_base, page_links};
use super::openapi::RouteDoc;
use super::owner::{self, OwnerHandle};

mod l2pop;
mod resource;

use resource::{Agents, Bgpvpns, Networks, Ports, Segments, Speakers, Subnets};

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct App {
    /// `None` while this process stands by (another server is active).
    pub owner: watch::Receiver<Option<OwnerHandle>>,
    pub tokens: Arc<Tokens>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// A failed server task and the bus connection, for `/healthz`.
    pub health: super::health::Health,
}

type Answer = Result<(StatusCode, Value), NeutronError>;

fn respond(answer: Answer) -> Response {
    match answer {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, value)) => (status, axum::Json(value)).into_response(),
        Err(refused) => {
            tracing::debug!(%refused, "request refused");
            error::response(&refused)
        }
    }
}

impl App {
    /// The caller a token names, whether or not this process is active.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, NeutronError> {
        let token = headers
            .get("x-auth-token")
            .and_then(|value| value.to_str().ok());
        self.tokens.authenticate(token)
    }

    fn caller(&self, headers: &HeaderMap) -> Result<(Caller, OwnerHandle), NeutronError> {
        let caller = self.authenticate(headers)?;
        let owner = self.owner.borrow().clone().ok_or_else(|| {
            NeutronError::unavailable("standing by: another l2pop server is active")
        })?;
        Ok((caller, owner))
    }

    /// Sends the request `build` makes to the owner; `status` is the success status.
    async fn write(
        &self,
        headers: &HeaderMap,
        status: StatusCode,
        build: impl FnOnce(&Caller) -> Result<Request, NeutronError>,
    ) -> Response {
        let answer = async {
            let (caller, owner) = self.caller(headers)?;
            let request = build(&caller)?;
            Ok((status, owner.write(caller, request).await?))
        };
        respond(answer.await)
    }

    /// Asks the owner a query (reads that need the engine or the BGPVPN extension).
    async fn query(
        &self,
        headers: &HeaderMap,
        build: impl FnOnce() -> Result<Query, NeutronError>,
    ) -> Response {
        let answer = async {
            let (caller, owner) = self.caller(headers)?;
            Ok((StatusCode::OK, owner.query(caller, build()?).await?))
        };
        respond(answer.await)
    }

    /// Reads the published catalog on this task.
    async fn read(
        &self,
        headers: &HeaderMap,
        read: impl FnOnce(&Catalog, &Caller, Time) -> Result<Value, NeutronError>,
    ) -> Response {
        let answer = self.caller(headers).and_then(|(caller, owner)| {
            Ok((
                StatusCode::OK,
                read(&owner.catalog(), &caller, owner::now())?,
            ))
        });
        respond(answer)
    }

    /// Lists a collection from the published catalog (see [`list`]).
    async fn list(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        pairs: Vec<(String, String)>,
        collection: Collection,
    ) -> Response {
        let listing = self.caller(headers).and_then(|(caller, owner)| {
            let params = ListParams::parse(pairs)?;
            list(
                owner.catalog(),
                caller,
                params,
                collection,
                &links_base(headers, uri),
            )
        });
        match listing {
            Ok(response) => response,
            Err(refused) => error::response(&refused),
        }
    }
}

/// Items rendered per step of a streamed listing.
const LIST_CHUNK: usize = 512;

/// A listing. With `limit`, one page and Neutron's `<collection>_links` (`next` while more
/// items follow, `previous` after a marker). Without, the whole collection, streamed in chunks
/// of [`LIST_CHUNK`] rendered from the catalog as the client reads them: memory stays bounded
/// however large the collection, and the catalog snapshot keeps the listing consistent.
fn list(
    catalog: Arc<Catalog>,
    caller: Caller,
    params: ListParams,
    collection: Collection,
    base: &str,
) -> Result<Response, NeutronError> {
    let key = collection.key();
    let now = owner::now();
    let marker = params.marker.clone();
    if let Some(limit) = params.limit {
        let page = catalog.page(collection, &caller, &params, marker.as_deref(), limit, now)?;
        let links = page_links(base, &params, &page);
        let mut answer = json!({ key: page.items });
        if !links.is_empty() {
            answer[format!("{key}_links")] = Value::Array(links);
        }
        return Ok(axum::Json(answer).into_response());
    }
    // The first chunk is rendered now, so that a refusal is still an error answer.
    let first = catalog.page(
        collection,
        &caller,
        &params,
        marker.as_deref(),
        LIST_CHUNK,
        now,
    )?;
    // (page to write, whether an item was written already, bytes to send before it)
    let opening = format!("{{\"{key}\":[").into_bytes();
    let stream = futures_util::stream::unfold(Some((first, false, opening)), move |state| {
        let (catalog, caller, params) = (catalog.clone(), caller.clone(), params.clone());
        async move {
            let (page, mut written, mut bytes) = state?;
            for item in &page.items {
                if written {
                    bytes.push(b',');
                }
                written = true;
                if let Err(error) = serde_json::to_writer(&mut bytes, item) {
                    tracing::warn!(%error, "listing: an item did not serialize");
                }
            }
            // The same catalog, caller and parameters cannot refuse the next page.
            let next = match (&page.last_id, page.more) {
                (Some(last), true) => catalog
                    .page(collection, &caller, &params, Some(last), LIST_CHUNK, now)
                    .ok(),
                _ => None,
            };
            let state = match next {
                Some(next) => Some((next, written, Vec::new())),
                None => {
                    bytes.extend_from_slice(b"]}");
                    None
                }
            };
            Some((Ok::<_, std::convert::Infallible>(Bytes::from(bytes)), state))
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Parses the request body as JSON; a malformed body is a 400, never a panic.
fn json_body(bytes: &Bytes) -> Result<Value, NeutronError> {
    serde_json::from_slice(bytes)
        .map_err(|e| NeutronError::bad_request(format!("Malformed JSON in request body: {e}")))
}

/// Parses a whole JSON body (no resource key) into `T`, naming the offending attribute.
fn whole_body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, NeutronError> {
    tracked(json_body(bytes)?)
}

/// A path id that does not parse names nothing that exists: 404, as Neutron.
fn path_id<T: std::str::FromStr>(resource: &str, text: &str) -> Result<T, NeutronError> {
    text.parse()
        .map_err(|_| NeutronError::not_found(resource, text))
}

fn host_param(text: &str) -> Result<Host, NeutronError> {
    Host::new(text).map_err(|e| NeutronError::invalid("host", text, e))
}

type Pairs = UrlQuery<Vec<(String, String)>>;

// ---- networks, subnets, ports, segments, BGPVPNs' writes, speakers: resource.rs ----

// ---- agents ----

/// `PUT /v2.0/agents/{id}`: `admin_state_up` and `description`, as Neutron's agent update.
async fn agent_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, |_| {
        let id = path_id("agent", &id)?;
        Ok(Request::AgentUpdate(id, body(json_body(&bytes)?, "agent")?))
    })
    .await
}

/// `POST /v2.0/agents/{id}/bgp-drinstances`: the BGP agent hosts a speaker.
async fn drinstance_add(
    State(app): State<App>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::CREATED, |caller| {
        caller.require_admin("add_bgp_speaker_to_dragent")?;
        Ok(Request::DrInstanceAdd {
            agent: path_id("agent", &agent)?,
            body: whole_body(&bytes)?,
        })
    })
    .await
}

async fn drinstance_remove(
    State(app): State<App>,
    headers: HeaderMap,
    Path((agent, speaker)): Path<(String, String)>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, |caller| {
        caller.require_admin("remove_bgp_speaker_from_dragent")?;
        Ok(Request::DrInstanceRemove {
            agent: path_id("agent", &agent)?,
            speaker: path_id("bgp_speaker", &speaker)?,
        })
    })
    .await
}

async fn drinstances_list(
    State(app): State<App>,
    headers: HeaderMap,
    Path(agent): Path<String>,
) -> Response {
    app.read(&headers, |catalog, caller, _| {
        caller.require_admin("list_bgp_speaker_on_dragent")?;
        catalog.drinstances(caller, path_id("agent", &agent)?)
    })
    .await
}

// ---- BGPVPNs ----

/// BGPVPNs, filtered, sorted and paged as the catalog's collections are.
async fn bgpvpns_list(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    UrlQuery(pairs): Pairs,
) -> Response {
    let answer = async {
        let params = ListParams::parse(pairs)?;
        params.check_attributes("bgpvpns", BGPVPN_ATTRIBUTES)?;
        let (caller, owner) = app.caller(&headers)?;
        let mut all = owner.query(caller, Query::BgpvpnList).await?;
        let items: Vec<Value> = match all["bgpvpns"].take() {
            Value::Array(items) => items.into_iter().filter(|i| params.matches(i)).collect(),
            _ => Vec::new(),
        };
        let limit = params.limit.unwrap_or(usize::MAX);
        let page = params.page_of(items, params.marker.as_deref(), limit)?;
        let links = page_links(&links_base(&headers, &uri), &params, &page);
        let mut answer = json!({ "bgpvpns": page.items });
        if params.limit.is_some() && !links.is_empty() {
            answer["bgpvpns_links"] = Value::Array(links);
        }
        Ok((StatusCode::OK, answer))
    };
    respond(answer.await)
}

async fn bgpvpn_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.query(&headers, || Ok(Query::BgpvpnShow(path_id("bgpvpn", &id)?)))
        .await
}

async fn associations_list(
    State(app): State<App>,
    headers: HeaderMap,
    Path(bgpvpn): Path<String>,
) -> Response {
    app.query(&headers, || {
        Ok(Query::AssociationList(path_id("bgpvpn", &bgpvpn)?))
    })
    .await
}

async fn association_create(
    State(app): State<App>,
    headers: HeaderMap,
    Path(bgpvpn): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::CREATED, |_| {
        let bgpvpn: BgpvpnId = path_id("bgpvpn", &bgpvpn)?;
        Ok(Request::AssociationCreate(
            bgpvpn,
            body(json_body(&bytes)?, "network_association")?,
        ))
    })
    .await
}

async fn association_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path((bgpvpn, id)): Path<(String, String)>,
) -> Response {
    app.query(&headers, || {
        Ok(Query::AssociationShow(
            path_id("bgpvpn", &bgpvpn)?,
            path_id("network_association", &id)?,
        ))
    })
    .await
}

async fn association_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path((bgpvpn, id)): Path<(String, String)>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, |_| {
        Ok(Request::AssociationDelete(
            path_id("bgpvpn", &bgpvpn)?,
            path_id("network_association", &id)?,
        ))
    })
    .await
}

// ---- BGP speakers: binding BGPVPNs ----

async fn speaker_vpn(
    app: App,
    headers: HeaderMap,
    id: String,
    bytes: Bytes,
    add: bool,
) -> Response {
    app.write(&headers, StatusCode::OK, |_| {
        Ok(Request::SpeakerVpn {
            speaker: path_id("bgp_speaker", &id)?,
            body: whole_body(&bytes)?,
            add,
        })
    })
    .await
}

async fn speaker_add_vpn(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    speaker_vpn(app, headers, id, bytes, true).await
}

async fn speaker_remove_vpn(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    speaker_vpn(app, headers, id, bytes, false).await
}

// ---- discovery: version documents and extensions ----

/// `http://<host>` of the request: where the version documents link.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /`: the API versions, without a token (as Neutron's `versions` app).
async fn versions(headers: HeaderMap) -> Response {
    axum::Json(discovery::versions(&origin(&headers))).into_response()
}

/// `GET /v2.0/`: the collections of version 2.0.
async fn version_resources(State(app): State<App>, headers: HeaderMap) -> Response {
    respond(
        app.authenticate(&headers)
            .map(|_| (StatusCode::OK, discovery::resources(&origin(&headers)))),
    )
}

async fn extensions_list(State(app): State<App>, headers: HeaderMap) -> Response {
    respond(
        app.authenticate(&headers)
            .map(|_| (StatusCode::OK, discovery::extensions())),
    )
}

async fn extension_show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(alias): Path<String>,
) -> Response {
    respond(app.authenticate(&headers).and_then(|_| {
        discovery::extension(&alias)
            .map(|found| (StatusCode::OK, found))
            .ok_or_else(|| {
                NeutronError::new(
                    l2pop_neutron::ErrorKind::NotFound,
                    "HTTPNotFound",
                    format!("Extension with alias {alias} does not exist"),
                )
            })
    }))
}

// ---- operations ----

async fn metrics_text(State(app): State<App>) -> Response {
    match &app.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `{"role": "active" | "standby", "bus": "up" | "down" | null, "failed": null | why}`: 503
/// once a server task has failed (the server is stopping), else 200.
async fn healthz(State(app): State<App>) -> Response {
    let role = if app.owner.borrow().is_some() {
        "active"
    } else {
        "standby"
    };
    let bus = app.health.bus_up().map(|up| if up { "up" } else { "down" });
    let failed = app.health.failure();
    let status = if failed.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(json!({ "role": role, "bus": bus, "failed": failed })),
    )
        .into_response()
}

async fn openapi() -> Response {
    let routes = routes();
    axum::Json(super::openapi::document(routes.iter().map(|r| &r.doc))).into_response()
}

/// Counts and times every request by route template.
async fn observe(request: HttpRequest, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "l2pop_api_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The largest request body taken (axum's default, made explicit): a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Gives every error answer Neutron's body: the router's own answers (no route, a method the
/// route does not take, a body over [`MAX_BODY_BYTES`]) come without one. Answers that already
/// are JSON (every refusal) pass unchanged; other headers (`Allow`) are kept.
async fn neutron_errors(request: HttpRequest, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => format!("The resource could not be found: no route {path}."),
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("The method {method} is not allowed for {path}.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("Request is too large: a body may be at most {MAX_BODY_BYTES} bytes.")
        }
        _ => {
            let (_, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let mut message = String::from_utf8_lossy(&text).into_owned();
            if message.is_empty() {
                message = status.to_string();
            }
            return error::http(status, message);
        }
    };
    let (mut parts, _) = response.into_parts();
    let answer = error::http(status, message);
    let (answer_parts, body) = answer.into_parts();
    for name in [
        axum::http::header::CONTENT_TYPE,
        axum::http::header::CONTENT_LENGTH,
    ] {
        parts.headers.remove(&name);
        if let Some(value) = answer_parts.headers.get(&name) {
            parts.headers.insert(name, value.clone());
        }
    }
    Response::from_parts(parts, body)
}

async fn no_route(request: HttpRequest) -> Response {
    error::http(
        StatusCode::NOT_FOUND,
        format!(
            "The resource could not be found: no route {}.",
            request.uri().path()
        ),
    )
}

/// One route of the API: what the router serves and the OpenAPI document describes.
#[derive(Debug)]
pub struct Route {
    pub doc: RouteDoc,
    pub handler: MethodRouter<App>,
}

fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    handler: MethodRouter<App>,
) -> Route {
    Route {
        doc: RouteDoc {
            method,
            path,
            summary,
            body,
            open: false,
        },
        handler,
    }
}

/// Every route of the API, the one table (see the module documentation).
pub fn routes() -> Vec<Route> {
    const NETWORK: Option<&str> = Some("network");
    const SUBNET: Option<&str> = Some("subnet");
    const PORT: Option<&str> = Some("port");
    const BGPVPN: Option<&str> = Some("bgpvpn");
    const SPEAKER: Option<&str> = Some("bgp_speaker");
    const ASSOC: &str = "/v2.0/bgpvpn/bgpvpns/{id}/network_associations";
    const ASSOC_ONE: &str = "/v2.0/bgpvpn/bgpvpns/{id}/network_associations/{association_id}";
    let open = |mut r: Route| {
        r.doc.open = true;
        r
    };
    vec![
        open(route(
            "GET",
            "/",
            "API versions (Neutron's version document)",
            None,
            get(versions),
        )),
        route(
            "GET",
            "/v2.0",
            "The collections of API v2.0",
            None,
            get(version_resources),
        ),
        route(
            "GET",
            "/v2.0/",
            "The collections of API v2.0",
            None,
            get(version_resources),
        ),
        route(
            "GET",
            "/v2.0/extensions",
            "The API extensions l2pop implements",
            None,
            get(extensions_list),
        ),
        route(
            "GET",
            "/v2.0/extensions/{alias}",
            "One API extension by alias",
            None,
            get(extension_show),
        ),
        route(
            "GET",
            "/v2.0/networks",
            "List networks (filters: any attribute; paging)",
            None,
            get(resource::list::<Networks>),
        ),
        route(
            "POST",
            "/v2.0/networks",
            "Create a network, or networks in bulk (provider:* admin-only)",
            NETWORK,
            post(resource::create::<Networks>),
        ),
        route(
            "GET",
            "/v2.0/networks/{id}",
            "Show a network",
            None,
            get(resource::show::<Networks>),
        ),
        route(
            "PUT",
            "/v2.0/networks/{id}",
            "Update name, description, admin_state_up",
            NETWORK,
            put(resource::update::<Networks>),
        ),
        route(
            "DELETE",
            "/v2.0/networks/{id}",
            "Delete a network without ports",
            None,
            delete(resource::delete::<Networks>),
        ),
        route(
            "GET",
            "/v2.0/subnets",
            "List subnets",
            None,
            get(resource::list::<Subnets>),
        ),
        route(
            "POST",
            "/v2.0/subnets",
            "Create a subnet, or subnets in bulk",
            SUBNET,
            post(resource::create::<Subnets>),
        ),
        route(
            "GET",
            "/v2.0/subnets/{id}",
            "Show a subnet",
            None,
            get(resource::show::<Subnets>),
        ),
        route(
            "PUT",
            "/v2.0/subnets/{id}",
            "Update a subnet's name, description, DNS servers, host routes, DHCP",
            SUBNET,
            put(resource::update::<Subnets>),
        ),
        route(
            "DELETE",
            "/v2.0/subnets/{id}",
            "Delete a subnet no port has an address in",
            None,
            delete(resource::delete::<Subnets>),
        ),
        route(
            "GET",
            "/v2.0/ports",
            "List ports (filters: network_id, device_id, ...; paging)",
            None,
            get(resource::list::<Ports>),
        ),
        route(
            "POST",
            "/v2.0/ports",
            "Create a port, or ports in bulk (binding:host_id admin-only)",
            PORT,
            post(resource::create::<Ports>),
        ),
        route(
            "GET",
            "/v2.0/ports/{id}",
            "Show a port",
            None,
            get(resource::show::<Ports>),
        ),
        route(
            "PUT",
            "/v2.0/ports/{id}",
            "Update a port (bind, move, change IPs)",
            PORT,
            put(resource::update::<Ports>),
        ),
        route(
            "DELETE",
            "/v2.0/ports/{id}",
            "Delete a port",
            None,
            delete(resource::delete::<Ports>),
        ),
        route(
            "GET",
            "/v2.0/segments",
            "List network segments (admin only; filters; paging)",
            None,
            get(resource::list::<Segments>),
        ),
        route(
            "POST",
            "/v2.0/segments",
            "Add a segment to a network (admin only)",
            Some("segment"),
            post(resource::create::<Segments>),
        ),
        route(
            "GET",
            "/v2.0/segments/{id}",
            "Show a segment (admin only)",
            None,
            get(resource::show::<Segments>),
        ),
        route(
            "PUT",
            "/v2.0/segments/{id}",
            "Update a segment's name and description (admin only)",
            Some("segment"),
            put(resource::update::<Segments>),
        ),
        route(
            "DELETE",
            "/v2.0/segments/{id}",
            "Delete a segment (a network's first only while none of its ports is bound)",
            None,
            delete(resource::delete::<Segments>),
        ),
        route(
            "GET",
            "/v2.0/agents",
            "List L2 and BGP agents (admin)",
            None,
            get(resource::list::<Agents>),
        ),
        route(
            "GET",
            "/v2.0/agents/{id}",
            "Show an agent (admin)",
            None,
            get(resource::show::<Agents>),
        ),
        route(
            "PUT",
            "/v2.0/agents/{id}",
            "Update an agent's admin_state_up or description (admin)",
            Some("agent"),
            put(agent_update),
        ),
        route(
            "GET",
            "/v2.0/agents/{id}/bgp-drinstances",
            "Speakers hosted by a BGP agent",
            None,
            get(drinstances_list),
        ),
        route(
            "POST",
            "/v2.0/agents/{id}/bgp-drinstances",
            "Host a speaker on a BGP agent",
            Some("bgp_speaker_id"),
            post(drinstance_add),
        ),
        route(
            "DELETE",
            "/v2.0/agents/{id}/bgp-drinstances/{speaker_id}",
            "Stop hosting a speaker",
            None,
            delete(drinstance_remove),
        ),
        route(
            "GET",
            "/v2.0/bgpvpn/bgpvpns",
            "List BGPVPNs",
            None,
            get(bgpvpns_list),
        ),
        route(
            "POST",
            "/v2.0/bgpvpn/bgpvpns",
            "Create a BGPVPN (admin)",
            BGPVPN,
            post(resource::create::<Bgpvpns>),
        ),
        route(
            "GET",
            "/v2.0/bgpvpn/bgpvpns/{id}",
            "Show a BGPVPN",
            None,
            get(bgpvpn_show),
        ),
        route(
            "PUT",
            "/v2.0/bgpvpn/bgpvpns/{id}",
            "Update a BGPVPN (route targets admin-only)",
            BGPVPN,
            put(resource::update::<Bgpvpns>),
        ),
        route(
            "DELETE",
            "/v2.0/bgpvpn/bgpvpns/{id}",
            "Delete a BGPVPN (admin)",
            None,
            delete(resource::delete::<Bgpvpns>),
        ),
        route(
            "GET",
            ASSOC,
            "List network associations",
            None,
            get(associations_list),
        ),
        route(
            "POST",
            ASSOC,
            "Associate a network",
            Some("network_association"),
            post(association_create),
        ),
        route(
            "GET",
            ASSOC_ONE,
            "Show a network association",
            None,
            get(association_show),
        ),
        route(
            "DELETE",
            ASSOC_ONE,
            "Dissociate a network",
            None,
            delete(association_delete),
        ),
        route(
            "GET",
            "/v2.0/bgp-speakers",
            "List BGP speakers (admin)",
            None,
            get(resource::list::<Speakers>),
        ),
        route(
            "POST",
            "/v2.0/bgp-speakers",
            "Create a BGP speaker (admin)",
            SPEAKER,
            post(resource::create::<Speakers>),
        ),
        route(
            "GET",
            "/v2.0/bgp-speakers/{id}",
            "Show a BGP speaker",
            None,
            get(resource::show::<Speakers>),
        ),
        route(
            "PUT",
            "/v2.0/bgp-speakers/{id}",
            "Rename a BGP speaker",
            SPEAKER,
            put(resource::update::<Speakers>),
        ),
        route(
            "DELETE",
            "/v2.0/bgp-speakers/{id}",
            "Delete a BGP speaker",
            None,
            delete(resource::delete::<Speakers>),
        ),
        route(
            "PUT",
            "/v2.0/bgp-speakers/{id}/add_bgp_vpn",
            "Bind a BGPVPN to the speaker",
            Some("bgpvpn_id"),
            put(speaker_add_vpn),
        ),
        route(
            "PUT",
            "/v2.0/bgp-speakers/{id}/remove_bgp_vpn",
            "Unbind a BGPVPN from the speaker",
            Some("bgpvpn_id"),
            put(speaker_remove_vpn),
        ),
        open(route(
            "GET",
            "/metrics",
            "Prometheus metrics",
            None,
            get(metrics_text),
        )),
        open(route(
            "GET",
            "/healthz",
            "active or standby",
            None,
            get(healthz),
        )),
        open(route(
            "GET",
            "/openapi.json",
            "This document",
            None,
            get(openapi),
        )),
    ]
    .into_iter()
    .chain(l2pop::routes())
    .collect()
}

pub fn router(app: App) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, route| {
            router.route(route.doc.path, route.handler)
        })
        .fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(neutron_errors))
        .layer(middleware::from_fn(observe))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    #[test]
    fn every_route_is_documented_once_with_a_summary() {
        let routes = routes();
        let document = super::super::openapi::document(routes.iter().map(|r| &r.doc));
        for RouteDoc { method, path, .. } in routes.iter().map(|r| r.doc) {
            let operation = &document["paths"][path][method.to_lowercase()];
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
        }
        let documented: usize = document["paths"].as_object().map_or(0, |paths| {
            paths
                .values()
                .map(|p| p.as_object().map_or(0, Map::len))
                .sum()
        });
        assert_eq!(documented, routes.len(), "a route is listed twice");
    }
}
