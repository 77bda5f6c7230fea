//! The engine as data, for the server's snapshots: [`Engine`] serializes its topology, indexes,
//! stream positions and open refreshes, with each registered extension's own bytes
//! ([`crate::FdbExtension::save_state`]); [`EngineBuilder::restore`] rebuilds an engine from
//! that [`EngineImage`] over freshly registered extensions. A restored engine is the engine that
//! was saved: the same queries answer the same, and the same events give the same
//! notifications, numbered on from the same positions.

use std::collections::HashMap;

use l2pop_model::{Host, NetworkId, NetworkType};
use serde::{Deserialize, Serialize, Serializer};

use crate::engine::{Engine, EngineBuilder, Refresh};
use crate::error::RegistryError;
use crate::topology::Topology;

/// One extension's saved state.
#[derive(Debug, Serialize, Deserialize)]
struct ExtensionImage {
    name: String,
    quarantined: bool,
    #[serde(with = "bytes")]
    state: Vec<u8>,
}

/// An [`Engine`] read back from its serialized form; [`EngineBuilder::restore`] makes it an
/// engine again.
#[derive(Debug, Deserialize)]
pub struct EngineImage {
    topology: Topology,
    segments: Vec<(SegmentKey, NetworkId)>,
    refresh: HashMap<Host, Refresh>,
    seq: u64,
    fanout_seq: u64,
    host_seqs: HashMap<Host, u64>,
    extensions: Vec<ExtensionImage>,
}

type SegmentKey = (NetworkType, Option<String>, Option<u32>);

/// The serialized form, borrowing the engine (no copy of its state).
#[derive(Serialize)]
struct ImageRef<'a> {
    topology: &'a Topology,
    segments: Vec<(&'a SegmentKey, &'a NetworkId)>,
    refresh: &'a HashMap<Host, Refresh>,
    seq: u64,
    fanout_seq: u64,
    host_seqs: &'a HashMap<Host, u64>,
    extensions: Vec<ExtensionImage>,
}

impl Serialize for Engine {
    /// Fails when a registered extension cannot save its state.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut extensions = Vec::with_capacity(self.registry.slots.len());
        for slot in &self.registry.slots {
            let state = slot.extension.save_state().map_err(|e| {
                serde::ser::Error::custom(format!("extension {:?}: {e}", slot.name))
            })?;
            extensions.push(ExtensionImage {
                name: slot.name.clone(),
                quarantined: slot.quarantined,
                state,
            });
        }
        ImageRef {
            topology: &self.topology,
            segments: self.segments.iter().collect(),
            refresh: &self.refresh,
            seq: self.seq,
            fanout_seq: self.fanout_seq,
            host_seqs: &self.host_seqs,
            extensions,
        }
        .serialize(serializer)
    }
}

impl EngineBuilder {
    /// The engine `image` was saved from, over the extensions registered here: they must be
    /// the saved ones, by name and in order, and each restores its own state.
    pub fn restore(self, image: EngineImage) -> Result<Engine, RegistryError> {
        let mut engine = self.build();
        let saved: Vec<&str> = image.extensions.iter().map(|e| e.name.as_str()).collect();
        let registered: Vec<&str> = engine
            .registry
            .slots
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        if saved != registered {
            return Err(RegistryError::SnapshotExtensions {
                saved: saved.iter().map(|s| (*s).to_owned()).collect(),
                registered: registered.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
        for (slot, saved) in engine.registry.slots.iter_mut().zip(&image.extensions) {
            slot.extension
                .restore_state(&saved.state)
                .map_err(|e| RegistryError::Restore {
                    name: slot.name.clone(),
                    message: e.to_string(),
                })?;
            slot.quarantined = saved.quarantined;
        }
        engine.topology = image.topology;
        engine.segments = image.segments.into_iter().collect();
        engine.refresh = image.refresh;
        engine.seq = image.seq;
        engine.fanout_seq = image.fanout_seq;
        engine.host_seqs = image.host_seqs;
        Ok(engine)
    }
}

/// Byte strings as one byte string (not a sequence of numbers) in self-describing formats.
mod bytes {
    use serde::Serializer;
    use serde::de::{Deserializer, SeqAccess, Visitor};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    /// Accepts a byte string, or a sequence of numbers (formats without byte strings).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_byte_buf(Bytes)
    }
}
