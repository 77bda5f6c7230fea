//! Neutron's verbs on a resource as generic handlers. One type per resource says how its
//! requests are built and its items shown ([`Listed`], [`Written`]); `list::<R>`, `show::<R>`,
//! `create::<R>`, `update::<R>` and `delete::<R>` then serve every resource alike: the same
//! authentication, path parsing (an id that does not parse is a 404 naming the resource) and
//! body parsing (`{"<resource>": {...}}`).

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use l2pop_bgpvpn::{BgpvpnId, SpeakerId};
use l2pop_model::{NetworkId, PortId, RouterId, Uuid};
use l2pop_neutron::listing::Collection;
use l2pop_neutron::request::{self as req, body};
use l2pop_neutron::{Caller, Catalog, NeutronError, Request, Time};
use serde_json::Value;

use super::{App, Pairs, UrlQuery, json_body, path_id};

/// A resource: its name (the body's key and what a 404 names) and the type of its ids.
pub(super) trait Resource: 'static {
    const ONE: &'static str;
    type Id: FromStr + Send;
}

/// A resource listed and shown from the published catalog.
pub(super) trait Listed: Resource {
    const COLLECTION: Collection;
    fn show(
        catalog: &Catalog,
        id: Self::Id,
        caller: &Caller,
        now: Time,
    ) -> Result<Value, NeutronError>;
}

/// A resource created, updated and deleted through the owner.
pub(super) trait Written: Resource {
    fn create(body: Value, caller: &Caller) -> Result<Request, NeutronError>;
    fn update(id: Self::Id, body: Value) -> Result<Request, NeutronError>;
    fn delete(id: Self::Id, caller: &Caller) -> Result<Request, NeutronError>;
}

pub(super) async fn list<R: Listed>(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    UrlQuery(pairs): Pairs,
) -> Response {
    app.list(&headers, &uri, pairs, R::COLLECTION).await
}

pub(super) async fn show<R: Listed>(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.read(&headers, |catalog, caller, now| {
        R::show(catalog, path_id(R::ONE, &id)?, caller, now)
    })
    .await
}

pub(super) async fn create<R: Written>(
    State(app): State<App>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::CREATED, |caller| {
        R::create(json_body(&bytes)?, caller)
    })
    .await
}

pub(super) async fn update<R: Written>(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    app.write(&headers, StatusCode::OK, |_| {
        R::update(path_id(R::ONE, &id)?, json_body(&bytes)?)
    })
    .await
}

pub(super) async fn delete<R: Written>(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    app.write(&headers, StatusCode::NO_CONTENT, |caller| {
        R::delete(path_id(R::ONE, &id)?, caller)
    })
    .await
}

pub(super) struct Networks;

impl Resource for Networks {
    const ONE: &'static str = "network";
    type Id = NetworkId;
}

impl Listed for Networks {
    const COLLECTION: Collection = Collection::Networks;
    fn show(
        catalog: &Catalog,
        id: NetworkId,
        caller: &Caller,
        _: Time,
    ) -> Result<Value, NeutronError> {
        catalog.network_answer(id, caller)
    }
}

impl Written for Networks {
    fn create(body: Value, _: &Caller) -> Result<Request, NeutronError> {
        Ok(req::create_body(body, Self::ONE)?.request("networks", Request::NetworkCreate))
    }
    fn update(id: NetworkId, value: Value) -> Result<Request, NeutronError> {
        Ok(Request::NetworkUpdate(id, body(value, Self::ONE)?))
    }
    fn delete(id: NetworkId, _: &Caller) -> Result<Request, NeutronError> {
        Ok(Request::NetworkDelete(id))
    }
}

pub(super) struct Subnets;

impl Resource for Subnets {
    const ONE: &'static str = "subnet";
    type Id = Uuid;
}

impl Listed for Subnets {
    const COLLECTION: Collection = Collection::Subnets;
    fn show(catalog: &Catalog, id: Uuid, caller: &Caller, _: Time) -> Result<Value, NeutronError> {
        catalog.subnet_answer(id, caller)
    }
}

impl Written for Subnets {
    fn create(body: Value, _: &Caller) -> Result<Request, NeutronError> {
        Ok(req::create_body(body, Self::ONE)?.request("subnets", Request::SubnetCreate))
    }
    fn update(id: Uuid, value: Value) -> Result<Request, NeutronError> {
        Ok(Request::SubnetUpdate(id, body(value, Self::ONE)?))
    }
    fn delete(id: Uuid, _: &Caller) -> Result<Request, NeutronError> {
        Ok(Request::SubnetDelete(id))
    }
}

pub(super) struct Ports;

impl Resource for Ports {
    const ONE: &'static str = "port";
    type Id = PortId;
}

impl Listed for Ports {
    const COLLECTION: Collection = Collection::Ports;
    fn show(
        catalog: &Catalog,
        id: PortId,
        caller: &Caller,
        _: Time,
    ) -> Result<Value, NeutronError> {
        catalog.port_answer(id, caller)
    }
}

impl Written for Ports {
    fn create(body: Value, _: &Caller) -> Result<Request, NeutronError> {
        Ok(req::create_body(body, Self::ONE)?.request("ports", Request::PortCreate))
    }
    fn update(id: PortId, value: Value) -> Result<Request, NeutronError> {
        Ok(Request::PortUpdate(id, body(value, Self::ONE)?))
    }
    fn delete(id: PortId, _: &Caller) -> Result<Request, NeutronError> {
        Ok(Request::PortDelete(id))
    }
}

/// Segments (Neutron's segments extension: admin only, which the resource layer enforces).
pub(super) struct Segments;

impl Resource for Segments {
    const ONE: &'static str = "segment";
    type Id = Uuid;
}

impl Listed for Segments {
    const COLLECTION: Collection = Collection::Segments;
    fn show(catalog: &Catalog, id: Uuid, caller: &Caller, _: Time) -> Result<Value, NeutronError> {
        catalog.segment_answer(id, caller)
    }
}

impl Written for Segments {
    fn create(value: Value, _: &Caller) -> Result<Request, NeutronError> {
        Ok(Request::SegmentCreate(body(value, Self::ONE)?))
    }
    fn update(id: Uuid, value: Value) -> Result<Request, NeutronError> {
        Ok(Request::SegmentUpdate(id, body(value, Self::ONE)?))
    }
    fn delete(id: Uuid, _: &Caller) -> Result<Request, NeutronError> {
        Ok(Request::SegmentDelete(id))
    }
}

/// BGPVPNs: written here; listed and shown through the owner (the BGPVPN extension's state).
pub(super) struct Bgpvpns;

impl Resource for Bgpvpns {
    const ONE: &'static str = "bgpvpn";
    type Id = BgpvpnId;
}

impl Written for Bgpvpns {
    fn create(value: Value, caller: &Caller) -> Result<Request, NeutronError> {
        caller.require_admin("create_bgpvpn")?;
        Ok(Request::BgpvpnCreate(body(value, Self::ONE)?))
    }
    fn update(id: BgpvpnId, value: Value) -> Result<Request, NeutronError> {
        Ok(Request::BgpvpnUpdate(id, body(value, Self::ONE)?))
    }
    fn delete(id: BgpvpnId, _: &Caller) -> Result<Request, NeutronError> {
        Ok(Request::BgpvpnDelete(id))
    }
}

/// BGP speakers (neutron-dynamic-routing: admin only).
pub(super) struct Speakers;

impl Resource for Speakers {
    const ONE: &'static str = "bgp_speaker";
    type Id = SpeakerId;
}

impl Listed for Speakers {
    const COLLECTION: Collection = Collection::BgpSpeakers;
    fn show(
        catalog: &Catalog,
        id: SpeakerId,
        caller: &Caller,
        _: Time,
    ) -> Result<Value, NeutronError> {
        caller.require_admin("get_bgp_speaker")?;
        catalog.speaker_answer(id)
    }
}

impl Written for Speakers {
    fn create(value: Value, caller: &Caller) -> Result<Request, NeutronError> {
        caller.require_admin("create_bgp_speaker")?;
        Ok(Request::SpeakerCreate(body(value, Self::ONE)?))
    }
    fn update(id: SpeakerId, value: Value) -> Result<Request, NeutronError> {
        Ok(Request::SpeakerUpdate(id, body(value, Self::ONE)?))
    }
    fn delete(id: SpeakerId, caller: &Caller) -> Result<Request, NeutronError> {
        caller.require_admin("delete_bgp_speaker")?;
        Ok(Request::SpeakerDelete(id))
    }
}

/// L2 and BGP agents (Neutron's `/v2.0/agents`: admin only).
pub(super) struct Agents;

impl Resource for Agents {
    const ONE: &'static str = "agent";
    type Id = Uuid;
}

impl Listed for Agents {
    const COLLECTION: Collection = Collection::Agents;
    fn show(
        catalog: &Catalog,
        id: Uuid,
        caller: &Caller,
        now: Time,
    ) -> Result<Value, NeutronError> {
        catalog.agent_answer(caller, id, now)
    }
}

/// HA routers' hosts (`/v2.0/l2pop/routers`: admin only); written by a PUT of its own.
pub(super) struct Routers;

impl Resource for Routers {
    const ONE: &'static str = "router";
    type Id = RouterId;
}

impl Listed for Routers {
    const COLLECTION: Collection = Collection::Routers;
    fn show(
        catalog: &Catalog,
        id: RouterId,
        caller: &Caller,
        _: Time,
    ) -> Result<Value, NeutronError> {
        catalog.router_answer(id, caller)
    }
}
