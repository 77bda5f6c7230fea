//! What crossed the underlay: dumpcap (Wireshark's capture engine, which needs no privilege
//! drop and so also runs inside an unprivileged user namespace) on each compute host's
//! underlay link while the traffic runs, then tshark decodes the VXLAN frames (outer addresses, VNI, inner destination MAC,
//! whether the inner frame is ARP). Independent of l2pop's code: the checks count what the
//! wire carried.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::topology::VXLAN_PORT;

/// One VXLAN frame seen on a host's underlay link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub vni: u32,
    /// The inner frame's destination MAC.
    pub inner_dst: String,
    pub arp: bool,
}

impl Frame {
    /// An inner broadcast or multicast: a frame the sender flooded.
    pub fn flooded(&self) -> bool {
        u8::from_str_radix(self.inner_dst.get(..2).unwrap_or("00"), 16).is_ok_and(|b| b & 1 == 1)
    }
}

/// Captures running on some hosts' `eth0`.
#[derive(Debug)]
pub struct Capture {
    running: Vec<(String, PathBuf, Child)>,
}

impl Capture {
    /// Starts one capture per namespace, writing `dir/<ns>.pcap`.
    pub fn start(namespaces: &[String], dir: &Path) -> anyhow::Result<Capture> {
        let mut running = Vec::new();
        for ns in namespaces {
            let file = dir.join(format!("{ns}.pcap"));
            let child = Command::new("ip")
                .args([
                    "netns", "exec", ns, "dumpcap", "-q", "-P", "-i", "eth0", "-f",
                ])
                .arg(format!("udp port {VXLAN_PORT}"))
                .arg("-w")
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start dumpcap (apt-get install tshark)")?;
            running.push((ns.clone(), file, child));
        }
        // The capture needs a moment to open the interface.
        std::thread::sleep(Duration::from_millis(700));
        Ok(Capture { running })
    }

    /// Stops the captures and decodes every file: (namespace, frames).
    pub fn stop(self) -> anyhow::Result<Vec<(String, Vec<Frame>)>> {
        let mut out = Vec::new();
        for (ns, file, mut child) in self.running {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
            out.push((ns, decode(&file)?));
        }
        Ok(out)
    }
}

/// Decodes a capture file with tshark.
pub fn decode(file: &Path) -> anyhow::Result<Vec<Frame>> {
    let output = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-n",
            "-Y",
            "vxlan",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "vxlan.vni",
            "-e",
            "eth.dst",
            "-e",
            "arp.opcode",
            "-E",
            "occurrence=a",
        ])
        .output()
        .context("cannot run tshark (apt-get install tshark)")?;
    if !output.status.success() {
        bail!(
            "tshark -r {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(parse_line)
        .collect())
}

/// One tshark line: `src[,inner]\tdst[,inner]\tvni\touter,inner eth.dst\tarp opcode` (every
/// occurrence of a field, outer first, joined by tshark's default aggregator `,`).
fn parse_line(line: &str) -> Option<Frame> {
    let mut fields = line.split('\t');
    let first = |f: &str| f.split(',').next().map(str::to_owned);
    let src = first(fields.next()?)?.parse().ok()?;
    let dst = first(fields.next()?)?.parse().ok()?;
    let vni = fields.next()?.split(',').next()?.parse().ok()?;
    let inner_dst = fields.next()?.split(',').next_back()?.to_owned();
    let arp = fields.next().is_some_and(|f| !f.trim().is_empty());
    Some(Frame {
        src,
        dst,
        vni,
        inner_dst,
        arp,
    })
}

/// ARP broadcasts that `vtep` sent into the overlay (the number l2pop exists to make zero).
pub fn arp_broadcasts_from(frames: &[Frame], vtep: Ipv4Addr) -> usize {
    frames
        .iter()
        .filter(|f| f.src == vtep && f.arp && f.flooded())
        .count()
}

/// Frames that reached `vtep` on a VNI it has no port on.
pub fn frames_to_outsider(frames: &[Frame], vtep: Ipv4Addr, vnis: &BTreeSet<u32>) -> usize {
    frames
        .iter()
        .filter(|f| f.dst == vtep && !vnis.contains(&f.vni))
        .count()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tshark_lines_parse_outer_addresses_and_inner_destination() {
        let frame =
            parse_line("192.0.2.11\t192.0.2.12\t1001\t02:00:00:00:00:01,ff:ff:ff:ff:ff:ff\t1")
                .unwrap();
        assert_eq!(frame.src, Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(frame.vni, 1001);
        assert!(frame.arp && frame.flooded());
        let frame = parse_line(
            "192.0.2.11,10.0.1.1\t192.0.2.12,10.0.1.2\t1001\t02:00:00:00:00:01,fa:16:3e:00:00:02\t",
        )
        .unwrap();
        assert_eq!(frame.dst, Ipv4Addr::new(192, 0, 2, 12));
        assert!(!frame.arp && !frame.flooded());
        assert_eq!(
            arp_broadcasts_from(std::slice::from_ref(&frame), Ipv4Addr::new(192, 0, 2, 11)),
            0
        );
        assert_eq!(
            frames_to_outsider(&[frame], Ipv4Addr::new(192, 0, 2, 12), &[1002].into()),
            1
        );
        assert!(parse_line("garbage").is_none());
    }
}
