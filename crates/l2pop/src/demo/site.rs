//! The demo's VPN site on FRR: FRR as the site's PE/VTEP ([`super::frr`]), `l2pop bgp` peering
//! with it, and the checks that the site was learned over BGP and that FRR installed our
//! export; and when the site cannot run on FRR, the line that says why.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use super::{
    ADMIN_TOKEN, Demo, OUR_AS, Options, SITE_AS, SITE_RT, USERNS_ENV, frr, is_root, topology,
};

/// Why the site cannot run on FRR in this run (the REST-posted site is used instead), as the
/// line to print; None when it can.
pub(super) fn frr_unavailable(options: &Options) -> Option<String> {
    let fallback = "the site's gateway and devices are posted through the REST API instead";
    if options.no_frr {
        Some(format!("--no-frr: {fallback}"))
    } else if std::env::var_os(USERNS_ENV).is_some() || !is_root() {
        Some(format!(
            "FRR not used: not root (user namespace); {fallback}; run `sudo ./scripts/demo` \
             for the site on FRR"
        ))
    } else if options.bus != "rabbit" {
        Some(format!(
            "FRR not used: `l2pop bgp` exports over the RabbitMQ bus (--bus rabbit); {fallback}"
        ))
    } else if !frr::installed() {
        Some(format!(
            "FRR not found ({}/zebra, bgpd): {fallback}; install it with `apt-get install -y \
             frr` (./scripts/demo does) to run the site as a BGP EVPN PE",
            frr::FRR_DIR
        ))
    } else {
        None
    }
}

/// The peering link between our speaker (root namespace, .1) and FRR (.2): 198.19.N.0/24,
/// N from the prefix, so that demos of other prefixes use other subnets.
fn peering_subnet(prefix: &str) -> u8 {
    let hash = prefix.bytes().fold(2_166_136_261_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    (hash % 256) as u8
}

impl Demo {
    /// With FRR: the site's namespace on the underlay, FRR as its PE/VTEP (VNI 1001,
    /// `advertise-all-vni`, the two devices behind its bridge), and `l2pop bgp` (config in the
    /// state folder) peering with it, importing the BGPVPN's route target and exporting our
    /// hosts and ports from the server's stream.
    pub(super) fn start_frr_site(&mut self) -> anyhow::Result<()> {
        let prefix = &self.options.prefix;
        topology::build_site_namespace(prefix, &self.site)?;
        let n = peering_subnet(prefix);
        let devices = self
            .site
            .devices
            .iter()
            .enumerate()
            .map(|(index, (ns, mac, ip))| frr::Device {
                port: format!("d{index}"),
                mac: mac.clone(),
                ip: Some(*ip),
                ns: Some(ns.clone()),
            })
            .collect();
        let options = frr::SiteOptions {
            ns: self.site.ns.clone(),
            create_ns: false,
            dir: self.state.join("frr"),
            host_if: format!("{prefix}-bgp"),
            ours: Ipv4Addr::new(198, 19, n, 1),
            pe: Ipv4Addr::new(198, 19, n, 2),
            vtep: self.site.vtep,
            vtep_on_loopback: false,
            vni: self.site.vni,
            bridge: "br0".to_owned(),
            vxlan: "vxlan0".to_owned(),
            // The SVI: an address of net1's subnet that the server does not hand out.
            svi: (Ipv4Addr::new(10, 0, 1, 253), self.site.prefix_len),
            devices,
            local_as: SITE_AS,
            remote_as: OUR_AS,
            route_target: SITE_RT.to_owned(),
            listen_port: None,
            extra_bgp: String::new(),
        };
        let _ = std::fs::remove_dir_all(&options.dir);
        let site = frr::Site::create(options)?;
        // Recorded at once, so that a later failure or --clean removes them too.
        let site = self.frr.insert(site);
        let mut pids = Vec::new();
        for daemon in ["zebra", "bgpd"] {
            pids.push(site.start(daemon)?);
        }
        let (ours, pe) = (site.ours(), site.pe());
        for pid in pids {
            self.record_pid(pid)?;
        }
        let config = self.state.join("bgp.toml");
        std::fs::write(
            &config,
            format!(
                "[bgp]\nhost = \"bgp-1\"\nlocal_as = {OUR_AS}\nrouter_id = \"{ours}\"\n\
                 connect_retry_s = 1\nimport_route_targets = [\"{SITE_RT}\"]\n\
                 [server]\nurl = \"{api}\"\ntoken = \"{ADMIN_TOKEN}\"\n\
                 [bus]\n{bus}\
                 [[neighbors]]\naddress = \"{pe}\"\nremote_as = {SITE_AS}\nlocal_address = \"{ours}\"\n",
                api = self.api,
                bus = self.bus_lines(),
            ),
        )?;
        self.spawn(
            "bgp",
            &[
                "bgp".into(),
                "--config".into(),
                config.display().to_string(),
            ],
        )
    }

    /// compute-1's entries under the site's VTEP at the server, as (MAC, IP, source).
    fn site_entries(&self) -> anyhow::Result<Vec<(String, String, Value)>> {
        let fdb = self.api(
            reqwest::Method::GET,
            &format!("/v2.0/l2pop/hosts/{}/fdb", self.hosts[0].name),
            None,
        )?;
        let vtep = self.site.vtep.to_string();
        Ok(fdb["fdb"]["networks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["segment_id"] == self.site.vni)
            .flat_map(|n| n["vteps"].as_array().cloned().unwrap_or_default())
            .filter(|v| v["vtep"] == vtep.as_str())
            .flat_map(|v| v["entries"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                (
                    e["mac_address"].as_str().unwrap_or_default().to_owned(),
                    e["ip_address"].as_str().unwrap_or_default().to_owned(),
                    e["source"].clone(),
                )
            })
            .collect())
    }

    /// Polls until the server holds the site's gateway (flooding entry) and both devices
    /// (MAC and IP) under the site's VTEP, every one from the bgpvpn extension: what our
    /// speaker learned from FRR.
    pub fn wait_site_learned(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let mut wanted = vec![("00:00:00:00:00:00".to_owned(), "0.0.0.0".to_owned())];
        wanted.extend(
            self.site
                .devices
                .iter()
                .map(|(_, mac, ip)| (mac.clone(), ip.to_string())),
        );
        loop {
            let entries = self.site_entries()?;
            let missing: Vec<String> = wanted
                .iter()
                .filter(|(mac, ip)| !entries.iter().any(|(m, i, _)| m == mac && i == ip))
                .map(|(mac, ip)| format!("{mac} {ip}"))
                .collect();
            let foreign: Vec<String> = entries
                .iter()
                .filter(|(_, _, source)| *source != json!({"extension": "bgpvpn"}))
                .map(|(mac, _, source)| format!("{mac} from {source}"))
                .collect();
            if missing.is_empty() && foreign.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                // FRR's neighbour rows (address, version, AS, …, state).
                let summary = self
                    .frr
                    .as_ref()
                    .map(|s| s.show("show bgp l2vpn evpn summary"))
                    .unwrap_or_default();
                let sessions: Vec<String> = summary
                    .lines()
                    .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect();
                bail!(
                    "missing {missing:?}, not from BGP {foreign:?}; FRR's session: {}",
                    sessions.join("; ")
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Polls until FRR's kernel at the site holds what our speaker exported: every net1 VM's
    /// MAC behind its host's VTEP and its IP in the SVI's neighbours, and flooding to exactly
    /// the hosts with a net1 port.
    pub fn wait_site_installed(&self, within: Duration) -> anyhow::Result<()> {
        let Some(site) = &self.frr else {
            bail!("the site does not run on FRR");
        };
        let deadline = Instant::now() + within;
        loop {
            let (fdb, neigh) = (site.fdb(), site.neigh());
            let mut problems = Vec::new();
            let mut flood_to = BTreeSet::new();
            for vm in self.vms.iter().filter(|vm| vm.vni == self.site.vni) {
                let vtep = self.hosts[vm.host].vtep;
                flood_to.insert(vtep);
                if !fdb.contains(&format!("{} dst {vtep} ", vm.mac)) {
                    problems.push(format!("no {} dst {vtep}", vm.mac));
                }
                if !neigh.contains(&format!("{} lladdr {}", vm.ip, vm.mac)) {
                    problems.push(format!("no neighbour {} {}", vm.ip, vm.mac));
                }
            }
            let flooding: BTreeSet<Ipv4Addr> = fdb
                .lines()
                .filter(|l| l.starts_with("00:00:00:00:00:00 dst "))
                .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
                .collect();
            if flooding != flood_to {
                problems.push(format!("floods to {flooding:?}, not {flood_to:?}"));
            }
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{}", problems.join("; "));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// With FRR: what its kernel at the site holds from our export (`bridge fdb` entries with
    /// a remote VTEP on the VXLAN device, the SVI's neighbours zebra installed), as `print_report` shows it.
    pub(super) fn print_site_table(&self) {
        let Some(site) = &self.frr else {
            return;
        };
        println!(
            "site (FRR, VTEP {}) kernel table, installed by zebra from our routes:",
            self.site.vtep
        );
        for line in site.fdb().lines().filter(|l| l.contains(" dst ")) {
            println!("    {}", line.trim());
        }
        for line in site.neigh().lines().filter(|l| l.contains("extern_learn")) {
            println!("    {}", line.trim());
        }
    }
}
