//! The demo's checks: what a host's kernel should hold, derived from the server's desired
//! table (`GET /v2.0/l2pop/hosts/{host}/fdb`), against what iproute2 reads from the kernel
//! (`bridge -j fdb show`, `ip -j neigh show`): independent of the agent's own netlink code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use super::topology::check_in;

/// One check's outcome, printed as `PASS name` / `FAIL name: detail`.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, passed: bool, detail: String) -> Check {
        Check {
            name: name.to_owned(),
            passed,
            detail,
        }
    }

    pub fn from_result(name: &str, result: anyhow::Result<()>) -> Check {
        match result {
            Ok(()) => Check::new(name, true, String::new()),
            Err(error) => Check::new(name, false, format!("{error:#}")),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        if self.detail.is_empty() {
            write!(f, "{verdict} {}", self.name)
        } else {
            write!(f, "{verdict} {}: {}", self.name, self.detail)
        }
    }
}

/// The l2pop-owned part of a host's kernel tables, per VNI: flood VTEPs, MAC → VTEP, and the
/// proxy's IP → MAC.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelTable {
    pub networks: BTreeMap<u32, NetworkEntries>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkEntries {
    pub flood: BTreeSet<IpAddr>,
    pub unicast: BTreeSet<(String, IpAddr)>,
    pub neighbours: BTreeSet<(IpAddr, String)>,
}

impl KernelTable {
    pub fn vnis(&self) -> BTreeSet<u32> {
        self.networks.keys().copied().collect()
    }

    /// What differs, in words, or None.
    pub fn diff(&self, actual: &KernelTable) -> Option<String> {
        let mut out = Vec::new();
        for (vni, want) in &self.networks {
            let empty = NetworkEntries::default();
            let have = actual.networks.get(vni).unwrap_or(&empty);
            let missing = |a: usize, b: usize, what: &str, out: &mut Vec<String>| {
                if a > 0 || b > 0 {
                    out.push(format!("VNI {vni}: {a} {what} missing, {b} extra"));
                }
            };
            missing(
                want.flood.difference(&have.flood).count(),
                have.flood.difference(&want.flood).count(),
                "flood entries",
                &mut out,
            );
            missing(
                want.unicast.difference(&have.unicast).count(),
                have.unicast.difference(&want.unicast).count(),
                "unicast entries",
                &mut out,
            );
            missing(
                want.neighbours.difference(&have.neighbours).count(),
                have.neighbours.difference(&want.neighbours).count(),
                "proxy neighbours",
                &mut out,
            );
        }
        (!out.is_empty()).then(|| out.join(", "))
    }
}

/// What the kernel of the host with VTEP `own` should hold, from the server's desired table.
pub fn expected_kernel(desired: &Value, own: Ipv4Addr) -> KernelTable {
    let mut table = KernelTable::default();
    for network in desired["fdb"]["networks"].as_array().into_iter().flatten() {
        let Some(vni) = network["segment_id"].as_u64() else {
            continue;
        };
        let entries = table.networks.entry(vni as u32).or_default();
        for vtep in network["vteps"].as_array().into_iter().flatten() {
            let Some(address) = vtep["vtep"].as_str().and_then(|v| v.parse::<IpAddr>().ok()) else {
                continue;
            };
            if address == IpAddr::V4(own) {
                continue;
            }
            for entry in vtep["entries"].as_array().into_iter().flatten() {
                let mac = entry["mac_address"].as_str().unwrap_or_default().to_owned();
                let ip: Option<IpAddr> = entry["ip_address"].as_str().and_then(|i| i.parse().ok());
                if mac == "00:00:00:00:00:00" {
                    entries.flood.insert(address);
                    continue;
                }
                entries.unicast.insert((mac.clone(), address));
                if let Some(ip) = ip.filter(|ip| !ip.is_unspecified()) {
                    entries.neighbours.insert((ip, mac));
                }
            }
        }
    }
    table
}

/// The same view of an agent's own observation of a kernel (in-process tests with the
/// in-memory kernel).
pub fn observed_table(observed: &l2pop_dataplane::Observed, vnis: &BTreeSet<u32>) -> KernelTable {
    let mut table = KernelTable::default();
    for vni in vnis {
        let dev = l2pop_dataplane::vxlan_name(*vni);
        let entries = table.networks.entry(*vni).or_default();
        for (mac, dst) in observed.fdb.get(&dev).into_iter().flatten() {
            if mac.is_zero() {
                entries.flood.insert(*dst);
            } else {
                entries.unicast.insert((mac.to_string(), *dst));
            }
        }
        for (ip, mac) in observed.neighbours.get(&dev).into_iter().flatten() {
            entries.neighbours.insert((*ip, mac.to_string()));
        }
    }
    table
}

/// What iproute2 reads from `ns` for the VXLAN devices of these VNIs (`vxlan-<VNI>`).
pub fn kernel_table(ns: &str, vnis: &BTreeSet<u32>) -> anyhow::Result<KernelTable> {
    let mut table = KernelTable::default();
    for vni in vnis {
        let dev = format!("vxlan-{vni}");
        let entries = table.networks.entry(*vni).or_default();
        let links = check_in(Some(ns), &["ip", "-j", "link", "show"])?;
        if !links.contains(&format!("\"{dev}\"")) {
            continue;
        }
        let fdb: Value = serde_json::from_str(&check_in(
            Some(ns),
            &["bridge", "-j", "fdb", "show", "dev", &dev],
        )?)?;
        for entry in fdb.as_array().into_iter().flatten() {
            let (Some(mac), Some(dst)) = (
                entry["mac"].as_str(),
                entry["dst"].as_str().and_then(|d| d.parse::<IpAddr>().ok()),
            ) else {
                continue;
            };
            if mac == "00:00:00:00:00:00" {
                entries.flood.insert(dst);
            } else {
                entries.unicast.insert((mac.to_owned(), dst));
            }
        }
        let neighbours: Value = serde_json::from_str(&check_in(
            Some(ns),
            &["ip", "-j", "neigh", "show", "dev", &dev],
        )?)?;
        for entry in neighbours.as_array().into_iter().flatten() {
            let (Some(ip), Some(mac)) = (
                entry["dst"].as_str().and_then(|d| d.parse::<IpAddr>().ok()),
                entry["lladdr"].as_str(),
            ) else {
                continue;
            };
            entries.neighbours.insert((ip, mac.to_owned()));
        }
    }
    Ok(table)
}

/// A host's table for people: every desired entry, where it came from, and whether the
/// kernel has it.
pub fn render_table(desired: &Value, own: Ipv4Addr, actual: &KernelTable) -> String {
    let mut out = String::new();
    for network in desired["fdb"]["networks"].as_array().into_iter().flatten() {
        let vni = network["segment_id"].as_u64().unwrap_or_default() as u32;
        let empty = NetworkEntries::default();
        let have = actual.networks.get(&vni).unwrap_or(&empty);
        out.push_str(&format!("  vxlan-{vni}:\n"));
        for vtep in network["vteps"].as_array().into_iter().flatten() {
            let address: Option<IpAddr> = vtep["vtep"].as_str().and_then(|v| v.parse().ok());
            let Some(address) = address.filter(|a| *a != IpAddr::V4(own)) else {
                continue;
            };
            for entry in vtep["entries"].as_array().into_iter().flatten() {
                let mac = entry["mac_address"].as_str().unwrap_or_default();
                let ip = entry["ip_address"].as_str().unwrap_or_default();
                let source = match entry["source"].as_object().and_then(|s| s.iter().next()) {
                    Some((kind, value)) => format!("{kind} {}", value.as_str().unwrap_or_default()),
                    None => String::new(),
                };
                let (what, present) = if mac == "00:00:00:00:00:00" {
                    ("flood".to_owned(), have.flood.contains(&address))
                } else {
                    (
                        format!("{mac} {ip}"),
                        have.unicast.contains(&(mac.to_owned(), address)),
                    )
                };
                let mark = if present { "in kernel" } else { "MISSING" };
                out.push_str(&format!(
                    "    {what:<36} dst {address:<15} {mark:<9}  from {source}\n"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn the_expectation_skips_the_own_vtep_and_splits_flood_unicast_and_proxy() {
        let desired = json!({"fdb": {"networks": [{"segment_id": 1001, "vteps": [
            {"vtep": "192.0.2.11", "entries": [
                {"mac_address": "00:00:00:00:00:00", "ip_address": "0.0.0.0", "source": {"host": "compute-1"}}]},
            {"vtep": "192.0.2.12", "entries": [
                {"mac_address": "00:00:00:00:00:00", "ip_address": "0.0.0.0", "source": {"host": "compute-2"}},
                {"mac_address": "fa:16:3e:00:00:02", "ip_address": "10.0.1.2", "source": {"port": "p"}}]}
        ]}]}});
        let table = expected_kernel(&desired, Ipv4Addr::new(192, 0, 2, 11));
        let net = &table.networks[&1001];
        assert_eq!(net.flood, ["192.0.2.12".parse().unwrap()].into());
        assert_eq!(net.unicast.len(), 1);
        assert_eq!(net.neighbours.len(), 1);
        assert!(table.diff(&table).is_none());
        let diff = table.diff(&KernelTable::default()).unwrap();
        assert!(diff.contains("1 flood entries missing"), "{diff}");
    }
}
