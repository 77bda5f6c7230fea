//! Devices as Neutron's L2 agents name them, and the details an agent needs to wire one
//! (`get_device_details`), read from a catalog.

use l2pop_model::{Host, PortId, Uuid};
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::error::NeutronError;

/// A device name as agents report it: the port id, `tap` + the id's first 11 characters
/// (`xxxxxxxx-xx`, the top 40 bits), or the port's MAC (Neutron's test #26: agents that name
/// devices by MAC). The prefix is a range of ids, looked up in the ordered port map, so a
/// Linux bridge agent's `update_device_up` costs a range query, not a scan. A MAC is unique
/// per network only: it names the one port with that MAC bound to `host`, and is refused as
/// not found when there is none or more than one (a scan: no agent of ours names devices so).
pub fn resolve_device(
    catalog: &Catalog,
    device: &str,
    host: &Host,
) -> Result<PortId, NeutronError> {
    if let Ok(id) = device.parse::<PortId>() {
        return Ok(id);
    }
    let not_found = || NeutronError::not_found("port", device).with_field("device");
    if let Ok(mac) = device.parse::<l2pop_model::Mac>() {
        let mut bound = catalog
            .ports
            .values()
            .filter(|p| p.mac == mac && p.host.as_ref() == Some(host))
            .map(|p| p.id);
        return match (bound.next(), bound.next()) {
            (Some(id), None) => Ok(id),
            _ => Err(not_found()),
        };
    }
    let digits: String = device
        .strip_prefix("tap")
        .unwrap_or(device)
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if digits.len() < 8 || digits.len() >= 32 {
        return Err(not_found());
    }
    let prefix = u128::from_str_radix(&digits, 16).map_err(|_| not_found())?;
    let free_bits = 128 - 4 * digits.len() as u32;
    let low = PortId(Uuid::from_u128(prefix << free_bits));
    let high = PortId(Uuid::from_u128(
        (prefix << free_bits) | ((1u128 << free_bits) - 1),
    ));
    let mut matches = catalog.ports.range(low..=high).map(|(id, _)| *id);
    match (matches.next(), matches.next()) {
        (Some(id), None) => Ok(id),
        _ => Err(not_found()),
    }
}

/// One device's details for the agent on `host`, in the shape of Neutron's
/// `RpcCallbacks.get_device_details` (ML2): `{"device"}` alone when the port is unknown or
/// bound elsewhere, else the port's network, segment, MAC, fixed IPs and admin state.
pub fn device_details(catalog: &Catalog, device: &str, host: &Host) -> Value {
    let Ok(id) = resolve_device(catalog, device, host) else {
        return json!({"device": device});
    };
    let (Some(port), Some(network)) = (
        catalog.ports.get(&id),
        catalog
            .ports
            .get(&id)
            .and_then(|port| catalog.networks.get(&port.network_id)),
    ) else {
        return json!({"device": device});
    };
    if port.host.as_ref() != Some(host) {
        return json!({"device": device});
    }
    let fixed_ips: Vec<Value> = port
        .fixed_ips
        .iter()
        .map(|ip| json!({"subnet_id": ip.subnet_id, "ip_address": ip.ip_address}))
        .collect();
    json!({
        "device": device,
        "network_id": port.network_id,
        "port_id": port.id,
        "mac_address": port.mac,
        "admin_state_up": port.admin_state_up,
        "network_type": network.network_type,
        "segmentation_id": network.segmentation_id,
        "physical_network": network.physical_network,
        "fixed_ips": fixed_ips,
        "device_owner": port.device_owner,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::command::{Command, NetworkRecord, PortRecord};
    use crate::state::NeutronState;
    use l2pop_model::{Mac, NetworkId, NetworkType};

    fn state_with_ports(ids: &[u128]) -> NeutronState {
        let mut state = NeutronState::new();
        let network = NetworkId(Uuid::from_u128(1));
        let record = NetworkRecord {
            id: network,
            name: String::new(),
            description: String::new(),
            project_id: "p".into(),
            admin_state_up: true,
            network_type: NetworkType::Vxlan,
            segmentation_id: Some(7),
            physical_network: None,
            created_at: String::new(),
            mtu: None,
            port_security_enabled: true,
            segment_id: None,
        };
        state
            .execute(&Command::NetworkCreate { network: record })
            .unwrap();
        for (n, id) in ids.iter().enumerate() {
            let port = PortRecord {
                id: PortId(Uuid::from_u128(*id)),
                name: String::new(),
                project_id: "p".into(),
                network_id: network,
                mac: Mac::new([0xfa, 0x16, 0x3e, 0, 0, n as u8 + 1]),
                fixed_ips: Vec::new(),
                device_owner: String::new(),
                device_id: String::new(),
                host: None,
                admin_state_up: true,
                created_at: String::new(),
                description: String::new(),
                port_security_enabled: true,
                vnic_type: Default::default(),
            };
            state.execute(&Command::PortCreate { port }).unwrap();
        }
        state
    }

    /// Binds every port to `host`, as a port update would.
    fn bind_all(state: &mut NeutronState, host: &Host) {
        let ids: Vec<PortId> = state.catalog().ports.keys().copied().collect();
        for id in ids {
            state
                .execute(&Command::PortUpdate {
                    id,
                    name: None,
                    admin_state_up: None,
                    mac: None,
                    fixed_ips: None,
                    device_owner: None,
                    device_id: None,
                    host: Some(Some(host.clone())),
                    description: None,
                    port_security_enabled: None,
                    vnic_type: None,
                })
                .unwrap();
        }
    }

    fn nobody() -> Host {
        "nobody".parse().unwrap()
    }

    #[test]
    fn a_mac_names_the_one_port_with_it_bound_to_the_reporting_host() {
        let id = 0x1234_5678_9a00_0000_0000_0000_0000_0001_u128;
        let mut state = state_with_ports(&[id]);
        let host: Host = "compute-1".parse().unwrap();
        let mac = "fa:16:3e:00:00:01";
        // Not bound to the reporting host: not found.
        assert!(resolve_device(state.catalog(), mac, &host).is_err());
        bind_all(&mut state, &host);
        assert_eq!(
            resolve_device(state.catalog(), mac, &host).unwrap(),
            PortId(Uuid::from_u128(id))
        );
        assert!(resolve_device(state.catalog(), "fa:16:3e:00:00:09", &host).is_err());
    }

    #[test]
    fn tap_names_resolve_to_the_one_port_with_that_prefix() {
        let a = 0x1234_5678_9a00_0000_0000_0000_0000_0001_u128;
        let b = 0x1234_5678_9b00_0000_0000_0000_0000_0002_u128;
        let state = state_with_ports(&[a, b]);
        let tap = |id: u128| format!("tap{}", &PortId(Uuid::from_u128(id)).to_string()[..11]);
        assert_eq!(
            resolve_device(state.catalog(), &tap(a), &nobody()).unwrap(),
            PortId(Uuid::from_u128(a))
        );
        assert_eq!(
            resolve_device(state.catalog(), &tap(b), &nobody()).unwrap(),
            PortId(Uuid::from_u128(b))
        );
        // Ambiguous (both share 12345678-9) and unknown prefixes are not found.
        assert!(resolve_device(state.catalog(), "tap12345678-9", &nobody()).is_err());
        assert!(resolve_device(state.catalog(), "tapffffffff-ff", &nobody()).is_err());
        assert!(resolve_device(state.catalog(), "tapnothex", &nobody()).is_err());
        let full = PortId(Uuid::from_u128(a)).to_string();
        assert_eq!(
            resolve_device(state.catalog(), &full, &nobody()).unwrap(),
            PortId(Uuid::from_u128(a))
        );
    }

    #[test]
    fn device_details_answer_only_the_bound_host_in_neutron_shape() {
        let id = 0x1234_5678_9a00_0000_0000_0000_0000_0001_u128;
        let mut state = state_with_ports(&[id]);
        let host: Host = "compute-1".parse().unwrap();
        let tap = format!("tap{}", &PortId(Uuid::from_u128(id)).to_string()[..11]);
        // Not bound yet: the device alone, as Neutron answers an unbound port.
        assert_eq!(
            device_details(state.catalog(), &tap, &host),
            json!({"device": tap})
        );
        bind_all(&mut state, &host);
        let details = device_details(state.catalog(), &tap, &host);
        assert_eq!(details["device"], json!(tap));
        assert_eq!(details["port_id"], json!(PortId(Uuid::from_u128(id))));
        assert_eq!(details["network_type"], json!("vxlan"));
        assert_eq!(details["segmentation_id"], json!(7));
        assert_eq!(details["mac_address"], json!("fa:16:3e:00:00:01"));
        // Bound elsewhere, or unknown: the device alone.
        let other: Host = "compute-2".parse().unwrap();
        assert_eq!(
            device_details(state.catalog(), &tap, &other),
            json!({"device": tap})
        );
        assert_eq!(
            device_details(state.catalog(), "tapffffffff-ff", &host),
            json!({"device": "tapffffffff-ff"})
        );
    }
}
