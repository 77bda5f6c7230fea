use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ModelError, NetworkId};

/// ML2 network (segment) types that l2pop can meet (`provider:network_type`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetworkType {
    Vxlan,
    Gre,
    Geneve,
    Vlan,
    Flat,
    Local,
}

impl NetworkType {
    pub const ALL: [NetworkType; 6] = [
        NetworkType::Vxlan,
        NetworkType::Gre,
        NetworkType::Geneve,
        NetworkType::Vlan,
        NetworkType::Flat,
        NetworkType::Local,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkType::Vxlan => "vxlan",
            NetworkType::Gre => "gre",
            NetworkType::Geneve => "geneve",
            NetworkType::Vlan => "vlan",
            NetworkType::Flat => "flat",
            NetworkType::Local => "local",
        }
    }

    /// Overlay types an agent may list in `tunnel_types`.
    pub fn is_tunnel(self) -> bool {
        matches!(
            self,
            NetworkType::Vxlan | NetworkType::Gre | NetworkType::Geneve
        )
    }

    /// Valid segmentation ids, as ML2's type drivers allocate them; `None` for types without one.
    pub fn segmentation_id_range(self) -> Option<(u32, u32)> {
        match self {
            NetworkType::Vxlan | NetworkType::Geneve => Some((1, (1 << 24) - 1)),
            NetworkType::Gre => Some((1, u32::MAX)),
            NetworkType::Vlan => Some((1, 4094)),
            NetworkType::Flat | NetworkType::Local => None,
        }
    }

    fn needs_physical_network(self) -> bool {
        matches!(self, NetworkType::Vlan | NetworkType::Flat)
    }
}

impl FromStr for NetworkType {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetworkType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ModelError::UnknownNetworkType(s.to_owned()))
    }
}

impl fmt::Display for NetworkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NetworkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NetworkType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NetworkType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A network's (single) segment: the `provider:*` attributes. Valid by construction.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Segment {
    network_type: NetworkType,
    segmentation_id: Option<u32>,
    physical_network: Option<String>,
}

impl Segment {
    /// Checks the attributes as ML2's type drivers do: the id range of the type, and a
    /// physical network exactly for vlan and flat.
    pub fn new(
        network_type: NetworkType,
        segmentation_id: Option<u64>,
        physical_network: Option<String>,
    ) -> Result<Self, ModelError> {
        let segmentation_id = match (network_type.segmentation_id_range(), segmentation_id) {
            (Some(_), None) => return Err(ModelError::SegmentationIdRequired(network_type)),
            (Some((min, max)), Some(id)) => {
                if id < u64::from(min) || id > u64::from(max) {
                    return Err(ModelError::SegmentationIdOutOfRange {
                        network_type,
                        id,
                        min,
                        max,
                    });
                }
                Some(id as u32)
            }
            (None, Some(id)) => {
                return Err(ModelError::SegmentationIdNotAllowed { network_type, id });
            }
            (None, None) => None,
        };
        match (network_type.needs_physical_network(), physical_network) {
            (true, None) => Err(ModelError::PhysicalNetworkRequired(network_type)),
            (false, Some(name)) => {
                Err(ModelError::PhysicalNetworkNotAllowed { network_type, name })
            }
            (true, Some(name)) => {
                if name.is_empty() || name.len() > 64 || name.chars().any(char::is_whitespace) {
                    Err(ModelError::InvalidPhysicalNetwork(name))
                } else {
                    Ok(Segment {
                        network_type,
                        segmentation_id,
                        physical_network: Some(name),
                    })
                }
            }
            (false, None) => Ok(Segment {
                network_type,
                segmentation_id,
                physical_network: None,
            }),
        }
    }

    pub fn network_type(&self) -> NetworkType {
        self.network_type
    }

    pub fn segmentation_id(&self) -> Option<u32> {
        self.segmentation_id
    }

    pub fn physical_network(&self) -> Option<&str> {
        self.physical_network.as_deref()
    }
}

/// A network with its segment, as l2pop needs it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Network {
    pub id: NetworkId,
    pub segment: Segment,
}

/// A subnet: the range a port's fixed IPs must come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Subnet {
    pub network_id: NetworkId,
    pub cidr: IpNet,
}

impl Subnet {
    /// Refuses a CIDR with host bits set, as an operator almost always meant the network address.
    pub fn new(network_id: NetworkId, cidr: IpNet) -> Result<Self, ModelError> {
        if cidr.trunc() != cidr {
            return Err(ModelError::CidrHostBits(cidr, cidr.trunc()));
        }
        Ok(Subnet { network_id, cidr })
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.cidr.contains(&other.cidr.network()) || other.cidr.contains(&self.cidr.network())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_ranges() {
        assert!(Segment::new(NetworkType::Vxlan, Some(16_777_215), None).is_ok());
        assert!(Segment::new(NetworkType::Vxlan, Some(16_777_216), None).is_err());
        assert!(Segment::new(NetworkType::Vxlan, Some(0), None).is_err());
        assert!(Segment::new(NetworkType::Gre, Some(u64::from(u32::MAX)), None).is_ok());
        assert!(Segment::new(NetworkType::Vlan, Some(4095), Some("physnet1".into())).is_err());
        assert!(Segment::new(NetworkType::Vlan, Some(4094), Some("physnet1".into())).is_ok());
        assert!(Segment::new(NetworkType::Vlan, Some(10), None).is_err());
        assert!(Segment::new(NetworkType::Flat, None, Some("physnet1".into())).is_ok());
        assert!(Segment::new(NetworkType::Flat, Some(3), Some("physnet1".into())).is_err());
        assert!(Segment::new(NetworkType::Vxlan, Some(5), Some("physnet1".into())).is_err());
        assert!(Segment::new(NetworkType::Local, None, None).is_ok());
    }

    #[test]
    fn segment_error_names_value() {
        let err = Segment::new(NetworkType::Vxlan, Some(16_777_216), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "segmentation_id 16777216 is out of range for vxlan (1..=16777215)"
        );
    }

    #[test]
    fn subnet_host_bits_and_overlap() {
        let net = NetworkId(crate::Uuid::from_u128(1));
        assert!(Subnet::new(net, "10.0.0.5/24".parse().unwrap()).is_err());
        let a = Subnet::new(net, "10.0.0.0/16".parse().unwrap()).unwrap();
        let b = Subnet::new(net, "10.0.3.0/24".parse().unwrap()).unwrap();
        let c = Subnet::new(net, "10.1.0.0/24".parse().unwrap()).unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}
