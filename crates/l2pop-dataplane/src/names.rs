//! Device names: Neutron's Linux bridge agent conventions, and which names the agent owns.
//!
//! The agent recognises its own links by name alone, as Neutron's `linuxbridge-agent` does, so
//! a restarted agent can find (and clean up) what an earlier run created without any state.

/// `IFNAMSIZ - 1`: the longest interface name the kernel accepts.
pub const MAX_NAME_LEN: usize = 15;

/// Prefix of the agent's VXLAN devices (`VXLAN_INTERFACE_PREFIX` in Neutron).
pub const VXLAN_PREFIX: &str = "vxlan-";
/// Prefix of the agent's bridges (`BRIDGE_NAME_PREFIX` in Neutron).
pub const BRIDGE_PREFIX: &str = "brq";
/// Prefix of instance ports (`constants.TAP_DEVICE_PREFIX` in Neutron).
pub const TAP_PREFIX: &str = "tap";

/// Neutron's id slice length (`constants.RESOURCE_ID_LENGTH`): 3-letter prefix + 11 = 14 bytes.
const ID_LEN: usize = 11;

/// The VXLAN device of a segment: `vxlan-{vni}` (Neutron `get_vxlan_device_name`).
pub fn vxlan_name(vni: u32) -> String {
    format!("{VXLAN_PREFIX}{vni}")
}

/// The bridge of a network: `brq` + first 11 characters of the network id
/// (Neutron `get_bridge_name`).
pub fn bridge_name(network_id: &str) -> String {
    format!("{BRIDGE_PREFIX}{}", id_prefix(network_id))
}

/// The tap device of a port: `tap` + first 11 characters of the port id
/// (Neutron `get_tap_device_name`).
pub fn tap_name(port_id: &str) -> String {
    format!("{TAP_PREFIX}{}", id_prefix(port_id))
}

fn id_prefix(id: &str) -> &str {
    match id.char_indices().nth(ID_LEN) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// The VNI encoded in an agent-owned VXLAN device name (`vxlan-42` → 42).
pub fn vni_of(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(VXLAN_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether a link belongs to the agent: `vxlan-<digits>` or `brq<...>`, at most
/// [`MAX_NAME_LEN`] bytes. Every other link on the host is never modified.
pub fn owns(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && (vni_of(name).is_some()
            || (name.len() > BRIDGE_PREFIX.len() && name.starts_with(BRIDGE_PREFIX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutron_names() {
        assert_eq!(vxlan_name(1001), "vxlan-1001");
        assert_eq!(vxlan_name(16_777_215).len(), 14);
        let net = "3c4a2e6b-2f1e-4d8a-9b0c-1d2e3f4a5b6c";
        assert_eq!(bridge_name(net), "brq3c4a2e6b-2f");
        assert_eq!(tap_name(net), "tap3c4a2e6b-2f");
        assert_eq!(bridge_name("short"), "brqshort");
        assert!(bridge_name(net).len() <= MAX_NAME_LEN);
    }

    #[test]
    fn ownership_by_name() {
        assert!(owns("vxlan-7"));
        assert!(owns("brq3c4a2e6b-2f"));
        assert!(!owns("vxlan-"));
        assert!(!owns("vxlan-7a"));
        assert!(!owns("vxlan7"));
        assert!(!owns("brq"));
        assert!(!owns("br-foreign"));
        assert!(!owns("eth0"));
        assert!(!owns("tap3c4a2e6b-2f"));
        assert_eq!(vni_of("vxlan-42"), Some(42));
        assert_eq!(vni_of("vxlan-99999999999"), None);
    }
}
