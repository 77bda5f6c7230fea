//! A network's segment in the engine: the check every layer shares ([`checked_segment`]), the
//! uniqueness of segments across networks, and the replacement of a network's segment
//! (`network_segment`, when the resource layer's first segment is deleted).

use l2pop_model::{ModelError, NetworkId, NetworkType, Segment};

use crate::engine::Engine;
use crate::error::EventError;
use crate::event::NetworkSegment;

/// A segment checked as ML2's type drivers check one (the type's id range, a physical network
/// exactly for vlan and flat); the refusal names the field. For every layer that validates
/// segments, so that they refuse alike.
pub fn checked_segment(
    network_type: NetworkType,
    segmentation_id: Option<u64>,
    physical_network: Option<String>,
) -> Result<Segment, EventError> {
    Segment::new(network_type, segmentation_id, physical_network).map_err(|e| {
        let field = match e {
            ModelError::PhysicalNetworkRequired(_)
            | ModelError::PhysicalNetworkNotAllowed { .. }
            | ModelError::InvalidPhysicalNetwork(_) => "physical_network",
            _ => "segmentation_id",
        };
        EventError::Invalid { field, source: e }
    })
}

impl Engine {
    pub(crate) fn segment_key(
        segment: &Segment,
    ) -> Option<(NetworkType, Option<String>, Option<u32>)> {
        match segment.network_type() {
            NetworkType::Local => None,
            t => Some((
                t,
                segment.physical_network().map(str::to_owned),
                segment.segmentation_id(),
            )),
        }
    }

    /// A segment checked as ML2's type drivers check one, and free: no other network's segment
    /// has its key (`network` itself may hold it, for a replacement).
    pub(crate) fn free_segment(
        &self,
        network: NetworkId,
        network_type: NetworkType,
        segmentation_id: Option<u64>,
        physical_network: Option<String>,
    ) -> Result<Segment, EventError> {
        let segment = checked_segment(network_type, segmentation_id, physical_network)?;
        let key = Self::segment_key(&segment);
        if let Some(owner) = key
            .as_ref()
            .and_then(|k| self.segments.get(k))
            .filter(|owner| **owner != network)
        {
            return Err(match segment.segmentation_id() {
                Some(id) => EventError::SegmentInUse {
                    network_type: segment.network_type(),
                    segmentation_id: id,
                    network: *owner,
                },
                None => EventError::FlatNetworkInUse {
                    physical_network: segment.physical_network().unwrap_or_default().to_owned(),
                    network: *owner,
                },
            });
        }
        Ok(segment)
    }

    /// Replaces the segment of a network none of whose ports is bound (see [`NetworkSegment`]).
    pub(crate) fn network_segment(&mut self, change: &NetworkSegment) -> Result<(), EventError> {
        let id = change.id;
        if !self.topology.networks.contains_key(&id) {
            return Err(EventError::UnknownNetwork { field: "id", id });
        }
        let segment = self.free_segment(
            id,
            change.network_type,
            change.segmentation_id,
            change.physical_network.clone(),
        )?;
        if let Some(port) = self
            .topology
            .ports
            .values()
            .filter(|p| p.port.network_id == id && p.port.host.is_some())
            .map(|p| p.port.id)
            .min()
        {
            return Err(EventError::NetworkBound { network: id, port });
        }
        let Some(state) = self.topology.networks.get_mut(&id) else {
            return Err(EventError::UnknownNetwork { field: "id", id });
        };
        if let Some(old) = Self::segment_key(&state.network.segment) {
            self.segments.remove(&old);
        }
        if let Some(key) = Self::segment_key(&segment) {
            self.segments.insert(key, id);
        }
        state.network.segment = segment;
        Ok(())
    }
}
