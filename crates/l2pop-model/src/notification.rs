use serde::{Serialize, Serializer};

use crate::{FdbPayload, Host};

/// The three l2pop RPC methods of `L2populationAgentNotifyAPI` (version 1.0).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Method {
    AddFdbEntries,
    RemoveFdbEntries,
    UpdateFdbEntries,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::AddFdbEntries => "add_fdb_entries",
            Method::RemoveFdbEntries => "remove_fdb_entries",
            Method::UpdateFdbEntries => "update_fdb_entries",
        }
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Where a notification goes: every l2pop agent (fanout cast), or one host (host cast, used for
/// the full FDB only; rule 1).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Target {
    Fanout,
    Host(Host),
}

impl Serialize for Target {
    /// `"fanout"` or `{"host": "<host>"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Target::Fanout => serializer.serialize_str("fanout"),
            Target::Host(host) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("host", host)?;
                map.end()
            }
        }
    }
}

/// One message for the agents, numbered.
///
/// `seq` orders every notification the engine ever emitted. The bus delivers two kinds of
/// stream that RabbitMQ orders separately (the fanout queue, each host's queue), so each
/// notification also carries its place in its own stream: a fanout its `fanout_seq`; a host
/// cast its `host_seq` and, as `fanout_seq`, the last fanout it already reflects (a full FDB
/// describes the state after every fanout numbered up to it).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Notification {
    pub seq: u64,
    pub target: Target,
    pub method: Method,
    /// The extension whose entries this carries; `None` for native (port/host) entries.
    pub source: Option<String>,
    pub fdb_entries: FdbPayload,
    pub fanout_seq: u64,
    pub host_seq: Option<u64>,
}
