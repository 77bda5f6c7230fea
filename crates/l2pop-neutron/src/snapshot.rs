//! The state as bytes, for the server's snapshots: everything [`NeutronState`] holds (the
//! engine with its extensions' own state, the catalog, the allocation cursors and the count of
//! commands executed), in CBOR behind a format version. Restoring gives the state that was
//! saved: the same answers to every query, the same notifications for the same commands from
//! then on. Settings (`agent_down_time`, `max_fixed_ips_per_port`) are the caller's to set
//! again, as after [`NeutronState::new`].

use std::collections::HashMap;

use l2pop_bgpvpn::Bgpvpn;
use l2pop_engine::{EngineBuilder, EngineImage};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::command::SubnetId;
use crate::state::{Allocation, DEFAULT_MAX_FIXED_IPS_PER_PORT, NeutronState};

/// The first bytes of every snapshot; a change of format changes the version.
const MAGIC: &[u8; 8] = b"l2pops01";

/// Why a snapshot could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot encode the state: {0}")]
    Encode(String),
    #[error("not an l2pop snapshot of this version (it begins {0:?})")]
    Version(String),
    #[error("cannot decode the snapshot: {0}")]
    Decode(String),
    #[error("cannot restore the engine: {0}")]
    Engine(#[from] l2pop_engine::RegistryError),
}

#[derive(Serialize)]
struct StateRef<'a> {
    executed: u64,
    engine: &'a l2pop_engine::Engine,
    catalog: &'a Catalog,
    allocations: &'a HashMap<SubnetId, Allocation>,
}

#[derive(Deserialize)]
struct StateImage {
    executed: u64,
    engine: EngineImage,
    catalog: Catalog,
    allocations: HashMap<SubnetId, Allocation>,
}

impl NeutronState {
    /// The state as bytes (see the module documentation).
    pub fn save(&self) -> Result<Vec<u8>, SnapshotError> {
        let mut bytes = MAGIC.to_vec();
        let state = StateRef {
            executed: self.executed,
            engine: &self.engine,
            catalog: &self.catalog,
            allocations: &self.allocations,
        };
        ciborium::into_writer(&state, &mut bytes)
            .map_err(|e| SnapshotError::Encode(e.to_string()))?;
        Ok(bytes)
    }

    /// The state [`NeutronState::save`] saved.
    pub fn restore(bytes: &[u8]) -> Result<NeutronState, SnapshotError> {
        let Some(body) = bytes.strip_prefix(MAGIC.as_slice()) else {
            let head = &bytes[..bytes.len().min(MAGIC.len())];
            return Err(SnapshotError::Version(
                String::from_utf8_lossy(head).into_owned(),
            ));
        };
        let image: StateImage =
            ciborium::from_reader(body).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        let engine = EngineBuilder::new()
            .extension(l2pop_bgpvpn::NAME, Bgpvpn::new())?
            .restore(image.engine)?;
        let mut state = NeutronState {
            engine,
            catalog: image.catalog,
            allocations: image.allocations,
            executed: image.executed,
            max_fixed_ips_per_port: DEFAULT_MAX_FIXED_IPS_PER_PORT,
        };
        let segmented: std::collections::HashSet<_> = state
            .catalog
            .segments
            .values()
            .map(|s| s.network_id)
            .collect();
        let unsegmented: Vec<_> = state
            .catalog
            .networks
            .values()
            .filter(|n| !segmented.contains(&n.id))
            .map(|n| n.first_segment())
            .collect();
        for segment in unsegmented {
            state.catalog.insert_segment(segment);
        }
        state.catalog.index_segments();
        state.publish_extension_maps();
        Ok(state)
    }
}
