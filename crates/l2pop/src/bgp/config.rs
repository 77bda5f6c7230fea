//! `l2pop bgp` configuration: raw TOML (`deny_unknown_fields`, errors name the key), then
//! `L2POP_*` environment overrides, then validation into typed [`Settings`].

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use l2pop_bgpvpn::RouteTarget;
use l2pop_evpn::driver::Neighbour;
use l2pop_evpn::{LocalOpen, SessionConfig};
use l2pop_model::Host;
use serde::Deserialize;

use crate::server::config::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub bgp: RawBgp,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub neighbors: Vec<RawNeighbor>,
    /// The bus the server publishes on; with a URL, the speaker exports (see [`RawExport`]).
    #[serde(default)]
    pub bus: RawBus,
    #[serde(default)]
    pub export: RawExport,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    /// RabbitMQ (`amqp://…`); absent: nothing is exported.
    pub url: Option<String>,
    pub topic: Option<String>,
    pub rpc_topic: Option<String>,
}

/// Export of our hosts and ports to the VPN site (`docs/bgp.md`, "Export").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    /// Seconds between snapshots of what to export (BGPVPN definitions change without a
    /// fanout); port changes follow the fanout stream at once.
    pub refresh_s: Option<u64>,
    /// Seconds an RPC call to the server may take.
    pub rpc_timeout_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgp {
    /// The BGP agent's host as the server knows it (default: the host name).
    pub host: Option<String>,
    pub local_as: Option<u32>,
    /// BGP Identifier (an IPv4 address). Required.
    pub router_id: Option<String>,
    /// Where peers connect to us, e.g. "0.0.0.0:179" (absent or "": we only connect).
    pub listen: Option<String>,
    pub hold_time_s: Option<u16>,
    pub keepalive_s: Option<u16>,
    pub connect_retry_s: Option<u64>,
    pub graceful_restart_time_s: Option<u16>,
    /// Route targets whose routes are reported (empty: every route that has one).
    pub import_route_targets: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub url: Option<String>,
    /// X-Auth-Token with admin rights (the learned-route API is admin-only).
    pub token: Option<String>,
    /// Routes per request at most.
    pub batch_max: Option<usize>,
    /// Seconds between the agent's heartbeats (Neutron's `report_interval`); the server reports
    /// a BGP agent silent for longer than its `agents.down_time_s` dead (case 6b).
    pub report_interval_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNeighbor {
    pub address: Option<String>,
    pub remote_as: Option<u32>,
    pub port: Option<u16>,
    /// Wait for the peer to connect (needs `bgp.listen`).
    pub passive: Option<bool>,
    /// Source address of our connections (the address the peer expects us at).
    pub local_address: Option<String>,
    pub hold_time_s: Option<u16>,
}

/// Where and how the speaker reports to the server.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub url: String,
    pub token: Option<String>,
    pub batch_max: usize,
    pub report_interval: std::time::Duration,
}

/// Export settings: where the server's stream is, and how we name our routes.
#[derive(Clone, Debug)]
pub struct ExportSettings {
    pub bus: l2pop_bus::BusSettings,
    pub refresh: Duration,
    pub rpc_timeout: Duration,
    pub origin: l2pop_evpn::Origin,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host: Host,
    pub listen: Option<SocketAddr>,
    pub import_route_targets: BTreeSet<RouteTarget>,
    pub server: ServerSettings,
    pub neighbors: Vec<Neighbour>,
    /// RFC 4724 restart time: advertised to peers, and how long a start waits for every
    /// neighbour's End-of-RIB before the server purges the routes not re-learned. Zero: no
    /// graceful start (the server drops the earlier run's routes at once, case 6a).
    pub graceful_restart_time: Duration,
    /// `None`: the speaker only imports.
    pub export: Option<ExportSettings>,
}

fn invalid(key: &'static str, value: impl ToString, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn hold_time(key: &'static str, value: u16) -> Result<u16, ConfigError> {
    if value == 1 || value == 2 {
        return Err(invalid(
            key,
            value,
            "must be 0 or at least 3 (RFC 4271 §4.2)",
        ));
    }
    Ok(value)
}

impl RawConfig {
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        crate::server::config::load_toml(path)
    }

    pub fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
        crate::server::config::parse_toml(text, origin)
    }

    /// Applies `L2POP_BGP_HOST`, `L2POP_URL` and `L2POP_TOKEN` read through `var`.
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(value) = var("L2POP_BGP_HOST") {
            self.bgp.host = Some(value);
        }
        if let Some(value) = var("L2POP_URL") {
            self.server.url = Some(value);
        }
        if let Some(value) = var("L2POP_TOKEN") {
            self.server.token = Some(value);
        }
        if let Some(value) = var("L2POP_BUS_URL") {
            self.bus.url = Some(value);
        }
        self
    }

    pub fn validate(self) -> Result<Settings, ConfigError> {
        let bgp = self.bgp;
        let host_text = bgp.host.unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default()
        });
        let host = Host::new(&host_text).map_err(|e| invalid("bgp.host", &host_text, e))?;
        let local_as = match bgp.local_as {
            None | Some(0) => {
                return Err(invalid(
                    "bgp.local_as",
                    bgp.local_as.unwrap_or(0),
                    "must be set to an AS number 1..=4294967295",
                ));
            }
            Some(asn) => asn,
        };
        let router_id_text = bgp.router_id.unwrap_or_default();
        let router_id: Ipv4Addr = router_id_text
            .parse()
            .map_err(|e| invalid("bgp.router_id", &router_id_text, e))?;
        if router_id.is_unspecified() {
            return Err(invalid(
                "bgp.router_id",
                router_id,
                "must not be 0.0.0.0 (RFC 6286)",
            ));
        }
        let listen = match bgp.listen.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .map_err(|e| invalid("bgp.listen", text, e))?,
            ),
        };
        let hold = hold_time("bgp.hold_time_s", bgp.hold_time_s.unwrap_or(90))?;
        let graceful_restart_time = bgp.graceful_restart_time_s.unwrap_or(120);
        if graceful_restart_time > 4095 {
            return Err(invalid(
                "bgp.graceful_restart_time_s",
                graceful_restart_time,
                "must be at most 4095 (12 bits, RFC 4724 §3)",
            ));
        }
        let connect_retry = match bgp.connect_retry_s.unwrap_or(30) {
            0 => return Err(invalid("bgp.connect_retry_s", 0, "must be at least 1")),
            s => Duration::from_secs(s),
        };
        let mut import_route_targets = BTreeSet::new();
        for text in bgp.import_route_targets.unwrap_or_default() {
            let target: RouteTarget = text
                .parse()
                .map_err(|e| invalid("bgp.import_route_targets", &text, e))?;
            import_route_targets.insert(target);
        }

        let url = self
            .server
            .url
            .unwrap_or_else(|| "http://127.0.0.1:9696".to_owned());
        match reqwest::Url::parse(&url) {
            Ok(parsed) if parsed.scheme() == "http" => {}
            Ok(_) => return Err(invalid("server.url", &url, "must be an http:// URL")),
            Err(e) => return Err(invalid("server.url", &url, e)),
        }
        let batch_max = match self.server.batch_max.unwrap_or(500) {
            0 => return Err(invalid("server.batch_max", 0, "must be at least 1")),
            n => n,
        };
        let report_interval = match self.server.report_interval_s.unwrap_or(30) {
            0 => {
                return Err(invalid("server.report_interval_s", 0, "must be at least 1"));
            }
            n => std::time::Duration::from_secs(n),
        };

        let export = match self.bus.url.filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                let mut bus = l2pop_bus::BusSettings::rabbit(url);
                if let Some(topic) = self.bus.topic {
                    bus.topic = topic;
                }
                if let Some(topic) = self.bus.rpc_topic {
                    bus.rpc_topic = topic;
                }
                bus.validate()
                    .map_err(|e| invalid("bus", format!("{} / {}", bus.topic, bus.rpc_topic), e))?;
                let seconds = |key: &'static str, value: Option<u64>, default: u64| match value
                    .unwrap_or(default)
                {
                    0 => Err(invalid(key, 0, "must be at least 1")),
                    n => Ok(Duration::from_secs(n)),
                };
                Some(ExportSettings {
                    bus,
                    refresh: seconds("export.refresh_s", self.export.refresh_s, 30)?,
                    rpc_timeout: seconds("export.rpc_timeout_s", self.export.rpc_timeout_s, 10)?,
                    origin: l2pop_evpn::Origin {
                        asn: local_as,
                        router_id,
                    },
                })
            }
        };

        if self.neighbors.is_empty() {
            return Err(invalid(
                "neighbors",
                "[]",
                "needs at least one [[neighbors]] entry",
            ));
        }
        let mut seen = HashSet::new();
        let mut neighbors = Vec::with_capacity(self.neighbors.len());
        for raw in self.neighbors {
            let text = raw.address.unwrap_or_default();
            let address: IpAddr = text
                .parse()
                .map_err(|e| invalid("neighbors.address", &text, e))?;
            if !seen.insert(address) {
                return Err(invalid("neighbors.address", address, "is configured twice"));
            }
            let peer_as = match raw.remote_as {
                None | Some(0) => {
                    return Err(invalid(
                        "neighbors.remote_as",
                        raw.remote_as.unwrap_or(0),
                        "must be set to an AS number 1..=4294967295",
                    ));
                }
                Some(asn) => asn,
            };
            let passive = raw.passive.unwrap_or(false);
            if passive && listen.is_none() {
                return Err(invalid(
                    "neighbors.passive",
                    address,
                    "is a passive neighbour but bgp.listen is not set",
                ));
            }
            let local_address = match raw.local_address.as_deref() {
                None | Some("") => None,
                Some(text) => Some(
                    text.parse::<IpAddr>()
                        .map_err(|e| invalid("neighbors.local_address", text, e))?,
                ),
            };
            let hold_time = match raw.hold_time_s {
                Some(h) => hold_time("neighbors.hold_time_s", h)?,
                None => hold,
            };
            neighbors.push(Neighbour {
                address,
                port: raw.port.unwrap_or(179),
                local_address,
                session: SessionConfig {
                    local: LocalOpen {
                        asn: local_as,
                        router_id,
                        hold_time,
                        graceful_restart_time,
                    },
                    peer_as,
                    passive,
                    connect_retry,
                    keepalive: bgp.keepalive_s,
                    advertises: export.is_some(),
                },
            });
        }
        Ok(Settings {
            host,
            listen,
            import_route_targets,
            server: ServerSettings {
                url: url.trim_end_matches('/').to_owned(),
                token: self.server.token.filter(|t| !t.is_empty()),
                batch_max,
                report_interval,
            },
            neighbors,
            graceful_restart_time: Duration::from_secs(u64::from(graceful_restart_time)),
            export,
        })
    }
}
