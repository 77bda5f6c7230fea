//! Routers as l2pop needs them: `PUT /v2.0/l2pop/routers/{id}` tells which hosts' L3 agents
//! host a router (every instance of an HA router), so that its HA-capable ports (reference D5:
//! `network:ha_router_replicated_interface`, and `network:router_centralized_snat` of an HA
//! router) count on those hosts (D6). Neutron's ML2 driver of this project sends it as an HA
//! router's hosts change; the engine's `Router` / `RouterDelete` events do the rest.
//!
//! The engine owns the fact that counts (`RouterState`); the catalog keeps the record the API
//! shows, written in the same step by [`NeutronState::execute`].

use std::collections::BTreeSet;
use std::sync::Arc;

use l2pop_engine::{Event, RouterDelete, RouterSpec};
use l2pop_model::{Host, Notification, RouterId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::command::Command;
use crate::error::NeutronError;
use crate::policy::Caller;
use crate::state::NeutronState;

/// The policy rule of every router request (admin only, as the rest of `/v2.0/l2pop`).
pub const ROUTER_RULE: &str = "l2pop:router";

/// A router as l2pop keeps and shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterRecord {
    pub id: RouterId,
    /// L3 HA (`ha=True`): its centralized SNAT ports are HA ports too (D5).
    pub ha: bool,
    /// The hosts whose L3 agents host the router.
    pub hosts: BTreeSet<Host>,
}

/// `{"router": {"ha": bool, "hosts": [host, ...]}}`: both required, a PUT replaces the whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterBody {
    pub ha: bool,
    pub hosts: Vec<Host>,
}

impl RouterBody {
    /// The record `id` becomes; a host named twice is refused (naming it), as a typo would be.
    pub fn record(self, id: RouterId) -> Result<RouterRecord, NeutronError> {
        let mut hosts = BTreeSet::new();
        for (index, host) in self.hosts.into_iter().enumerate() {
            let name = host.to_string();
            if !hosts.insert(host) {
                return Err(NeutronError::invalid(
                    &format!("hosts[{index}]"),
                    name,
                    "is listed twice",
                ));
            }
        }
        Ok(RouterRecord {
            id,
            ha: self.ha,
            hosts,
        })
    }
}

impl NeutronState {
    /// The command of a router PUT (create or replace); `None` when it changes nothing.
    pub(crate) fn plan_router_put(
        &self,
        caller: &Caller,
        record: RouterRecord,
    ) -> Result<Option<Command>, NeutronError> {
        caller.require_admin(ROUTER_RULE)?;
        let same = self
            .catalog
            .routers
            .get(&record.id)
            .is_some_and(|known| **known == record);
        Ok((!same).then_some(Command::RouterPut { router: record }))
    }

    pub(crate) fn plan_router_delete(
        &self,
        caller: &Caller,
        id: RouterId,
    ) -> Result<Command, NeutronError> {
        caller.require_admin(ROUTER_RULE)?;
        if !self.catalog.routers.contains_key(&id) {
            return Err(NeutronError::not_found("router", id));
        }
        Ok(Command::RouterDelete { id })
    }

    /// Executes [`Command::RouterPut`]: the engine moves the presence of the router's HA ports.
    pub(crate) fn router_put(
        &mut self,
        router: &RouterRecord,
    ) -> Result<Vec<Notification>, NeutronError> {
        let notifications = self.engine.apply(&Event::Router(RouterSpec {
            id: router.id,
            ha: router.ha,
            distributed: false,
            hosts: router.hosts.iter().cloned().collect(),
        }))?;
        self.catalog
            .routers
            .insert(router.id, Arc::new(router.clone()));
        Ok(notifications)
    }

    /// Executes [`Command::RouterDelete`].
    pub(crate) fn router_delete(
        &mut self,
        id: RouterId,
    ) -> Result<Vec<Notification>, NeutronError> {
        if !self.catalog.routers.contains_key(&id) {
            return Err(NeutronError::not_found("router", id));
        }
        let notifications = self
            .engine
            .apply(&Event::RouterDelete(RouterDelete { id }))?;
        self.catalog.routers.remove(&id);
        Ok(notifications)
    }
}

impl Catalog {
    /// `GET /v2.0/l2pop/routers/{id}`.
    pub fn router_answer(&self, id: RouterId, caller: &Caller) -> Result<Value, NeutronError> {
        caller.require_admin(ROUTER_RULE)?;
        let router = self
            .routers
            .get(&id)
            .ok_or_else(|| NeutronError::not_found("router", id))?;
        Ok(json!({ "router": router_view(router) }))
    }
}

/// A router as the API shows it.
pub fn router_view(router: &RouterRecord) -> Value {
    json!({"id": router.id, "ha": router.ha, "hosts": router.hosts})
}
