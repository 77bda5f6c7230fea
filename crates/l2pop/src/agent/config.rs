//! `l2pop agent` configuration: raw TOML (`deny_unknown_fields`, errors name the key), then
//! `L2POP_*` environment overrides, then flags, then validation into typed [`Settings`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use l2pop_model::Host;
use serde::Deserialize;

use crate::server::config::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub agent: RawAgent,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub bus: RawBus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `l2pop` (default) or `neutron`: which server the agent follows.
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// Neutron's `[DEFAULT] host`: host casts are addressed to it (default: the host name).
    pub host: Option<String>,
    /// This host's tunnel endpoint address (Neutron's `local_ip`). Required.
    pub local_ip: Option<String>,
    /// Program the kernel of this network namespace (`/run/netns/NAME`) instead of the
    /// agent's own; the bus and status sockets stay in the agent's namespace.
    pub netns: Option<String>,
    /// Where `l2pop agent status` and `l2pop fdb explain` ask the agent (empty: off).
    pub status_listen: Option<String>,
    /// Seconds between report_state heartbeats (Neutron's `report_interval`).
    pub report_interval_s: Option<u64>,
    /// Seconds between full reconciliations of the kernel against the desired table.
    pub reconcile_interval_s: Option<u64>,
    /// Milliseconds between retries for taps the server does not know yet (netlink events and
    /// every reconciliation find new taps).
    pub scan_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    /// `rabbit` (the only backend across processes).
    pub backend: Option<String>,
    pub url: Option<String>,
    pub topic: Option<String>,
    pub rpc_topic: Option<String>,
    /// Where `report_state` goes (Neutron: `q-reports-plugin`; l2pop: `rpc_topic`).
    pub reports_topic: Option<String>,
}

/// Flags that override the file and the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct Flags {
    /// The TOML configuration file.
    #[arg(long, default_value = "etc/agent.toml")]
    pub config: std::path::PathBuf,
    /// Overrides agent.host [env: L2POP_HOST].
    #[arg(long)]
    pub host: Option<String>,
    /// Overrides agent.local_ip [env: L2POP_LOCAL_IP].
    #[arg(long)]
    pub local_ip: Option<String>,
    /// Overrides agent.netns [env: L2POP_NETNS].
    #[arg(long)]
    pub netns: Option<String>,
    /// Overrides agent.status_listen [env: L2POP_STATUS_LISTEN].
    #[arg(long)]
    pub status_listen: Option<String>,
    /// Overrides bus.url [env: L2POP_BUS_URL].
    #[arg(long)]
    pub bus_url: Option<String>,
}

/// Which server the agent follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// An l2pop server: l2pop's RPC topic, numbered streams, `get_fdb_entries` resyncs and
    /// `get_stream_positions` checks.
    L2pop,
    /// A neutron-server with ML2 `l2population`, as Neutron's Linux bridge agent follows it:
    /// `report_state` on `q-reports-plugin` (version 1.3), device calls on
    /// `q-plugin`; no snapshot and no positions: full FDBs arrive as host casts after
    /// `update_device_up` (with `refresh_tunnels` the first time after a start).
    Neutron,
}

impl ServerKind {
    /// The RPC topic device calls go to by default.
    pub fn default_rpc_topic(self) -> &'static str {
        match self {
            ServerKind::L2pop => l2pop_bus::wire::DEFAULT_RPC_TOPIC,
            ServerKind::Neutron => NEUTRON_PLUGIN_TOPIC,
        }
    }
}

/// Neutron's `topics.PLUGIN`: the ML2 plugin's `RpcCallbacks`.
pub const NEUTRON_PLUGIN_TOPIC: &str = "q-plugin";
/// Neutron's `topics.REPORTS`: `AgentExtRpcCallback.report_state`.
pub const NEUTRON_REPORTS_TOPIC: &str = "q-reports-plugin";

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host: Host,
    pub local_ip: IpAddr,
    pub netns: Option<String>,
    pub status_listen: Option<SocketAddr>,
    pub report_interval: Duration,
    pub reconcile_interval: Duration,
    pub scan_interval: Duration,
    pub server: ServerKind,
    pub bus: l2pop_bus::BusSettings,
    /// Where `report_state` goes (the plugin topic for l2pop, `q-reports-plugin` for Neutron).
    pub reports_topic: String,
}

impl RawConfig {
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        crate::server::config::load_toml(path)
    }

    pub fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
        crate::server::config::parse_toml(text, origin)
    }

    /// Applies `L2POP_*` variables read through `var`.
    pub fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |slot: &mut Option<String>, key: &str| {
            if let Some(value) = var(key) {
                *slot = Some(value);
            }
        };
        set(&mut self.agent.host, "L2POP_HOST");
        set(&mut self.agent.local_ip, "L2POP_LOCAL_IP");
        set(&mut self.agent.netns, "L2POP_NETNS");
        set(&mut self.agent.status_listen, "L2POP_STATUS_LISTEN");
        set(&mut self.server.kind, "L2POP_SERVER_KIND");
        set(&mut self.bus.backend, "L2POP_BUS_BACKEND");
        set(&mut self.bus.url, "L2POP_BUS_URL");
        set(&mut self.bus.topic, "L2POP_BUS_TOPIC");
        self
    }

    /// Applies the flags.
    pub fn with_flags(mut self, flags: &Flags) -> Self {
        let set = |slot: &mut Option<String>, flag: &Option<String>| {
            if flag.is_some() {
                slot.clone_from(flag);
            }
        };
        set(&mut self.agent.host, &flags.host);
        set(&mut self.agent.local_ip, &flags.local_ip);
        set(&mut self.agent.netns, &flags.netns);
        set(&mut self.agent.status_listen, &flags.status_listen);
        set(&mut self.bus.url, &flags.bus_url);
        self
    }

    pub fn validate(self) -> Result<Settings, ConfigError> {
        let host_text = self.agent.host.unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default()
        });
        let host = Host::new(&host_text).map_err(|e| ConfigError::Invalid {
            key: "agent.host",
            value: host_text.clone(),
            reason: e.to_string(),
        })?;
        let local_ip = match self.agent.local_ip {
            None => {
                return Err(ConfigError::Invalid {
                    key: "agent.local_ip",
                    value: String::new(),
                    reason:
                        "must be set to this host's tunnel address (or L2POP_LOCAL_IP, --local-ip)"
                            .to_owned(),
                });
            }
            Some(text) => text.parse::<IpAddr>().map_err(|e| ConfigError::Invalid {
                key: "agent.local_ip",
                value: text.clone(),
                reason: e.to_string(),
            })?,
        };
        if local_ip.is_unspecified() || local_ip.is_multicast() || local_ip.is_loopback() {
            return Err(ConfigError::Invalid {
                key: "agent.local_ip",
                value: local_ip.to_string(),
                reason: "is not a unicast address another host can reach".to_owned(),
            });
        }
        let netns = self.agent.netns.filter(|n| !n.is_empty());
        if let Some(name) = &netns
            && (name.contains('/') || name.starts_with('.'))
        {
            return Err(ConfigError::Invalid {
                key: "agent.netns",
                value: name.clone(),
                reason: "is a namespace name under /run/netns, not a path".to_owned(),
            });
        }
        let status_listen =
            match self.agent.status_listen.as_deref() {
                None => Some(SocketAddr::from(([127, 0, 0, 1], 9697))),
                Some("") => None,
                Some(text) => Some(text.parse().map_err(|e: std::net::AddrParseError| {
                    ConfigError::Invalid {
                        key: "agent.status_listen",
                        value: text.to_owned(),
                        reason: e.to_string(),
                    }
                })?),
            };
        let seconds = |value: Option<u64>, default: u64, key: &'static str| {
            let value = value.unwrap_or(default);
            if value == 0 {
                Err(ConfigError::Invalid {
                    key,
                    value: "0".to_owned(),
                    reason: "must be at least 1".to_owned(),
                })
            } else {
                Ok(value)
            }
        };
        let report_interval = Duration::from_secs(seconds(
            self.agent.report_interval_s,
            30,
            "agent.report_interval_s",
        )?);
        let reconcile_interval = Duration::from_secs(seconds(
            self.agent.reconcile_interval_s,
            60,
            "agent.reconcile_interval_s",
        )?);
        let scan_interval = Duration::from_millis(seconds(
            self.agent.scan_interval_ms,
            2000,
            "agent.scan_interval_ms",
        )?);
        let server = match self.server.kind.as_deref() {
            None | Some("l2pop") => ServerKind::L2pop,
            Some("neutron") => ServerKind::Neutron,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "server.kind",
                    value: other.to_owned(),
                    reason: "must be \"l2pop\" or \"neutron\"".to_owned(),
                });
            }
        };
        let backend = self.bus.backend.unwrap_or_else(|| "rabbit".to_owned());
        if backend != "rabbit" {
            return Err(ConfigError::Invalid {
                key: "bus.backend",
                value: backend,
                reason:
                    "must be \"rabbit\" for an agent process (the memory bus is in-process only)"
                        .to_owned(),
            });
        }
        let mut bus = l2pop_bus::BusSettings::rabbit(
            self.bus
                .url
                .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
        );
        if let Some(topic) = self.bus.topic {
            bus.topic = topic;
        }
        bus.rpc_topic = self
            .bus
            .rpc_topic
            .unwrap_or_else(|| server.default_rpc_topic().to_owned());
        let reports_topic = self.bus.reports_topic.unwrap_or_else(|| match server {
            ServerKind::L2pop => bus.rpc_topic.clone(),
            ServerKind::Neutron => NEUTRON_REPORTS_TOPIC.to_owned(),
        });
        l2pop_bus::wire::check_topic(&reports_topic).map_err(|e| ConfigError::Invalid {
            key: "bus.reports_topic",
            value: reports_topic.clone(),
            reason: e.to_string(),
        })?;
        bus.validate().map_err(|e| ConfigError::Invalid {
            key: "bus",
            value: format!("{} / {}", bus.topic, bus.rpc_topic),
            reason: e.to_string(),
        })?;
        Ok(Settings {
            host,
            local_ip,
            netns,
            status_listen,
            report_interval,
            reconcile_interval,
            scan_interval,
            server,
            bus,
            reports_topic,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_shipped_example_parses_and_validates() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../etc/agent.toml");
        let raw = RawConfig::load(Path::new(path)).unwrap();
        let settings = raw.with_env(|_| None).validate().unwrap();
        assert_eq!(settings.local_ip, "192.0.2.11".parse::<IpAddr>().unwrap());
        assert_eq!(settings.report_interval, Duration::from_secs(30));
        assert_eq!(settings.server, ServerKind::L2pop);
        assert_eq!(settings.bus.rpc_topic, "l2pop-plugin");
        assert_eq!(settings.reports_topic, "l2pop-plugin");
    }

    #[test]
    fn a_neutron_server_is_called_on_neutrons_topics() {
        let raw = RawConfig::parse(
            "[agent]\nlocal_ip = \"192.0.2.1\"\n[server]\nkind = \"neutron\"\n",
            "t",
        )
        .unwrap();
        let settings = raw.validate().unwrap();
        assert_eq!(settings.server, ServerKind::Neutron);
        assert_eq!(settings.bus.rpc_topic, "q-plugin");
        assert_eq!(settings.reports_topic, "q-reports-plugin");
        assert_eq!(settings.bus.topic, "q-agent-notifier-l2population-update");
        let raw = RawConfig::parse("[agent]\nlocal_ip = \"192.0.2.1\"\n", "t").unwrap();
        let raw = raw.with_env(|key| (key == "L2POP_SERVER_KIND").then(|| "neutron".to_owned()));
        assert_eq!(raw.validate().unwrap().server, ServerKind::Neutron);
        let raw = RawConfig::parse(
            "[agent]\nlocal_ip = \"192.0.2.1\"\n[server]\nkind = \"nova\"\n",
            "t",
        )
        .unwrap();
        let error = raw.validate().unwrap_err().to_string();
        assert!(
            error.contains("server.kind") && error.contains("nova"),
            "{error}"
        );
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let raw = RawConfig::parse("[agent]\nlocal_ip = \"nope\"\n", "t").unwrap();
        let error = raw.validate().unwrap_err().to_string();
        assert!(
            error.contains("agent.local_ip") && error.contains("nope"),
            "{error}"
        );
        let error = RawConfig::parse("[agent]\nlocal_ipp = \"1.2.3.4\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(error.contains("local_ipp"), "{error}");
        let raw = RawConfig::parse("[agent]\nlocal_ip = \"192.0.2.1\"\n", "t").unwrap();
        let flags = Flags {
            host: Some("x".repeat(300)),
            ..Flags::default()
        };
        let error = raw.with_flags(&flags).validate().unwrap_err().to_string();
        assert!(error.contains("agent.host"), "{error}");
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let raw =
            RawConfig::parse("[agent]\nhost = \"file\"\nlocal_ip = \"192.0.2.1\"\n", "t").unwrap();
        let raw = raw.with_env(|key| (key == "L2POP_HOST").then(|| "env".to_owned()));
        assert_eq!(raw.agent.host.as_deref(), Some("env"));
        let flags = Flags {
            host: Some("flag".to_owned()),
            ..Flags::default()
        };
        let settings = raw.with_flags(&flags).validate().unwrap();
        assert_eq!(settings.host.as_str(), "flag");
    }
}
