//! Neutron's l2pop payloads (reference `neutron-l2pop.md` §2), with serde output identical to
//! Neutron's JSON: key order `segment_id`, `network_type`, `ports`; integer `segment_id`;
//! `[mac, ip]` lists; the flooding entry first in its list (it has the lowest MAC).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::de::{self, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeStruct, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Mac, NetworkId, NetworkType};

/// Neutron's `PortInfo(mac_address, ip_address)` namedtuple; on the wire a 2-element list.
/// Ordered by (mac, ip) so that a sorted list starts with the flooding entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PortInfo {
    pub mac: Mac,
    pub ip: IpAddr,
}

/// `('00:00:00:00:00:00', '0.0.0.0')`: "flood this network's BUM traffic to this VTEP".
pub const FLOODING_ENTRY: PortInfo = PortInfo {
    mac: Mac::ZERO,
    ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
};

impl PortInfo {
    pub fn new(mac: Mac, ip: IpAddr) -> Self {
        PortInfo { mac, ip }
    }

    pub fn is_flooding(&self) -> bool {
        *self == FLOODING_ENTRY
    }
}

impl Serialize for PortInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.mac)?;
        tuple.serialize_element(&self.ip)?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for PortInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (mac, ip) = <(Mac, IpAddr)>::deserialize(deserializer)?;
        Ok(PortInfo { mac, ip })
    }
}

/// One network's entry of an add/remove payload.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NetworkFdb {
    /// The segment's `segmentation_id` (null for flat/local).
    pub segment_id: Option<u32>,
    pub network_type: NetworkType,
    /// VTEP → entries, in wire order.
    pub ports: Vec<(IpAddr, Vec<PortInfo>)>,
}

/// `add_fdb_entries` / `remove_fdb_entries` payload: network id → [`NetworkFdb`], in wire order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct FdbEntries(pub Vec<(NetworkId, NetworkFdb)>);

impl FdbEntries {
    pub fn single(network: NetworkId, fdb: NetworkFdb) -> Self {
        FdbEntries(vec![(network, fdb)])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Before/after lists of one VTEP in a `chg_ip` update; each present only when non-empty.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct IpChange {
    pub before: Vec<PortInfo>,
    pub after: Vec<PortInfo>,
}

/// `update_fdb_entries` payload: `{"chg_ip": {network: {vtep: {before, after}}}}` (rule 8).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ChgIp(pub Vec<(NetworkId, Vec<(IpAddr, IpChange)>)>);

/// The `fdb_entries` argument of the three l2pop RPC methods.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FdbPayload {
    Entries(FdbEntries),
    ChgIp(ChgIp),
}

/// Serializes `(key, value)` pairs as a JSON object in their order.
struct OrderedMap<'a, K, V>(&'a [(K, V)]);

impl<K: fmt::Display, V: Serialize> Serialize for OrderedMap<'_, K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(&DisplayKey(key), value)?;
        }
        map.end()
    }
}

/// A map key written through `Display` (ids and addresses), without an intermediate String.
struct DisplayKey<'a, K>(&'a K);

impl<K: fmt::Display> Serialize for DisplayKey<'_, K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

impl Serialize for NetworkFdb {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("NetworkFdb", 3)?;
        s.serialize_field("segment_id", &self.segment_id)?;
        s.serialize_field("network_type", &self.network_type)?;
        s.serialize_field("ports", &OrderedMap(&self.ports))?;
        s.end()
    }
}

impl Serialize for FdbEntries {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        OrderedMap(&self.0).serialize(serializer)
    }
}

impl Serialize for IpChange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = usize::from(!self.before.is_empty()) + usize::from(!self.after.is_empty());
        let mut map = serializer.serialize_map(Some(fields))?;
        if !self.before.is_empty() {
            map.serialize_entry("before", &self.before)?;
        }
        if !self.after.is_empty() {
            map.serialize_entry("after", &self.after)?;
        }
        map.end()
    }
}

impl Serialize for ChgIp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Networks<'a>(&'a [(NetworkId, Vec<(IpAddr, IpChange)>)]);
        impl Serialize for Networks<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (network, vteps) in self.0 {
                    map.serialize_entry(&DisplayKey(network), &OrderedMap(vteps))?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("chg_ip", &Networks(&self.0))?;
        map.end()
    }
}

impl Serialize for FdbPayload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FdbPayload::Entries(entries) => entries.serialize(serializer),
            FdbPayload::ChgIp(chg) => chg.serialize(serializer),
        }
    }
}

/// Reads a JSON object into `(key, value)` pairs, keeping the wire order.
struct PairsVisitor<K, V>(std::marker::PhantomData<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<K, V> {
    type Value = Vec<(K, V)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(pair) = access.next_entry()? {
            pairs.push(pair);
        }
        Ok(pairs)
    }
}

fn deserialize_pairs<'de, D, K, V>(deserializer: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    deserializer.deserialize_map(PairsVisitor(std::marker::PhantomData))
}

impl<'de> Deserialize<'de> for NetworkFdb {
    /// Liberal in what it accepts: keys other than the three Neutron sends (StarlingX adds
    /// `physical_network` and `audit`) are ignored.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            segment_id: Option<u32>,
            network_type: NetworkType,
            #[serde(deserialize_with = "deserialize_pairs")]
            ports: Vec<(IpAddr, Vec<PortInfo>)>,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(NetworkFdb {
            segment_id: raw.segment_id,
            network_type: raw.network_type,
            ports: raw.ports,
        })
    }
}

impl<'de> Deserialize<'de> for FdbEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_pairs(deserializer).map(FdbEntries)
    }
}

impl<'de> Deserialize<'de> for IpChange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            before: Vec<PortInfo>,
            #[serde(default)]
            after: Vec<PortInfo>,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(IpChange {
            before: raw.before,
            after: raw.after,
        })
    }
}

impl<'de> Deserialize<'de> for FdbPayload {
    /// An object with a `chg_ip` key is an update; anything else is an add/remove payload.
    /// Top-level keys that are not network ids with an object value (StarlingX's `"source"`)
    /// are skipped, as Neutron's agents skip them.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PayloadVisitor;
        impl<'de> Visitor<'de> for PayloadVisitor {
            type Value = FdbPayload;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an l2pop fdb_entries object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<FdbPayload, A::Error> {
                let mut entries = Vec::new();
                let mut chg_ip = None;
                while let Some(key) = access.next_key::<String>()? {
                    if key == "chg_ip" {
                        let networks: ChgIpNetworks = access.next_value()?;
                        chg_ip = Some(ChgIp(networks.0));
                        continue;
                    }
                    let value: serde_json::Value = access.next_value()?;
                    let Ok(network) = key.parse::<NetworkId>() else {
                        continue;
                    };
                    if !value.is_object() {
                        continue;
                    }
                    let fdb = NetworkFdb::deserialize(value).map_err(de::Error::custom)?;
                    entries.push((network, fdb));
                }
                Ok(match chg_ip {
                    Some(chg) => FdbPayload::ChgIp(chg),
                    None => FdbPayload::Entries(FdbEntries(entries)),
                })
            }
        }
        deserializer.deserialize_map(PayloadVisitor)
    }
}

struct ChgIpNetworks(Vec<(NetworkId, Vec<(IpAddr, IpChange)>)>);

impl<'de> Deserialize<'de> for ChgIpNetworks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Vteps(Vec<(IpAddr, IpChange)>);
        impl<'de> Deserialize<'de> for Vteps {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_pairs(deserializer).map(Vteps)
            }
        }
        let pairs: Vec<(NetworkId, Vteps)> = deserialize_pairs(deserializer)?;
        Ok(ChgIpNetworks(
            pairs.into_iter().map(|(n, v)| (n, v.0)).collect(),
        ))
    }
}

#[cfg(test)]
#[path = "fdb_tests.rs"]
mod tests;
