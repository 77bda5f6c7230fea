//! `l2pop server` configuration: raw TOML (`deny_unknown_fields`, errors name the key), then
//! `L2POP_*` environment overrides, then validation into typed [`Settings`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use l2pop_bus::memory::MemoryBus;
use l2pop_bus::{Backend, BusSettings, wire};
use l2pop_model::{Host, NetworkType};
use serde::Deserialize;

use l2pop_neutron::TenantNetworks;

/// A configuration problem, naming the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{key}: {value:?} {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub bus: RawBus,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub tenant_networks: RawTenantNetworks,
    #[serde(default)]
    pub agents: RawAgents,
    #[serde(default)]
    pub ports: RawPorts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPorts {
    /// Fixed IPs one port may ask for (Neutron's `max_fixed_ips_per_port`, default 5).
    pub max_fixed_ips_per_port: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    /// This process's name in the leader record (default: the host name).
    pub name: Option<String>,
    /// Seconds a client has to send a request's head (also between keep-alive requests).
    pub header_read_timeout_s: Option<u64>,
    /// Seconds without a byte either way before a connection is closed.
    pub idle_timeout_s: Option<u64>,
    /// API connections served at once; more wait to be accepted.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<String>,
    /// Create a new, empty store even on an existing empty database file (`--init`).
    pub init: Option<bool>,
    pub leader_poll_ms: Option<u64>,
    /// Commands between snapshots (0: never); see `server::snapshots`.
    pub snapshot_every: Option<u64>,
}

/// `[bus]`: maps to the bus seam's [`BusSettings`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    /// `rabbit` or `memory`.
    pub backend: Option<String>,
    pub url: Option<String>,
    /// At most [`wire::MAX_TOPIC_LEN`] bytes (Neutron's topic is exactly that long), so that
    /// every valid host's cast fits an AMQP routing key.
    pub topic: Option<String>,
    pub rpc_topic: Option<String>,
    /// Notifications held in memory while the broker is away (at least 2); beyond it the
    /// oldest are dropped from memory and republished from the command log.
    pub max_backlog: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub admin_token: Option<String>,
    #[serde(default)]
    pub projects: Vec<RawProject>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    pub project_id: String,
    pub token: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenantNetworks {
    pub network_type: Option<String>,
    /// `"low:high"` ranges, as Neutron's `vni_ranges`.
    pub vni_ranges: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgents {
    /// Seconds without a heartbeat before an agent counts as down (Neutron's agent_down_time).
    pub down_time_s: Option<u64>,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The API listener's timeouts and connection cap.
    pub http: super::listener::HttpLimits,
    /// This server's name: the leader record, and the RPC queue `<rpc_topic>.<name>` (so it
    /// is bounded as a host name is).
    pub name: String,
    pub store_url: String,
    /// `store.init` / `--init`: an existing empty database may become a new store.
    pub store_init: bool,
    pub leader_poll: Duration,
    /// `store.snapshot_every`: commands between snapshots, 0 for none.
    pub snapshot_every: u64,
    pub bus: BusSettings,
    /// `bus.max_backlog`: see [`super::outbox`].
    pub max_backlog: usize,
    pub admin_token: String,
    pub projects: Vec<(String, String)>,
    pub tenant_networks: TenantNetworks,
    pub agent_down_time: Duration,
    /// `ports.max_fixed_ips_per_port`.
    pub max_fixed_ips_per_port: usize,
}

/// Reads and parses the TOML configuration file at `path` (shared by every role's config).
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_toml(&text, &path.display().to_string())
}

/// Parses TOML configuration text; `origin` names it in errors.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: origin.to_owned(),
        source: Box::new(source),
    })
}

impl RawConfig {
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        crate::server::config::load_toml(path)
    }

    pub fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
        crate::server::config::parse_toml(text, origin)
    }

    /// Applies `L2POP_*` overrides from `env` (a lookup, so tests need not touch the process
    /// environment).
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(v) = env("L2POP_LISTEN") {
            self.server.listen = Some(v);
        }
        if let Some(v) = env("L2POP_STORE_URL") {
            self.store.url = Some(v);
        }
        if let Some(v) = env("L2POP_BUS_BACKEND") {
            self.bus.backend = Some(v);
        }
        if let Some(v) = env("L2POP_BUS_URL") {
            self.bus.url = Some(v);
        }
        if let Some(v) = env("L2POP_BUS_TOPIC") {
            self.bus.topic = Some(v);
        }
        if let Some(v) = env("L2POP_ADMIN_TOKEN") {
            self.auth.admin_token = Some(v);
        }
        self
    }

    pub fn validate(self) -> Result<Settings, ConfigError> {
        let http = http_limits(&self.server)?;
        let listen_text = self
            .server
            .listen
            .unwrap_or_else(|| "127.0.0.1:9696".to_owned());
        let listen =
            listen_text
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                    key: "server.listen",
                    value: listen_text.clone(),
                    reason: e.to_string(),
                })?;
        let name = self.server.name.unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "l2pop-server".to_owned())
        });
        let store_url = self
            .store
            .url
            .unwrap_or_else(|| "sqlite:l2pop.db".to_owned());
        if !(store_url.starts_with("sqlite:")
            || store_url.starts_with("postgres://")
            || store_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "store.url",
                value: store_url,
                reason: "is neither sqlite:PATH nor postgres://...".to_owned(),
            });
        }
        let poll_ms = self.store.leader_poll_ms.unwrap_or(1000);
        if poll_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "store.leader_poll_ms",
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        if let Err(error) = Host::new(&name) {
            return Err(ConfigError::Invalid {
                key: "server.name",
                value: name,
                reason: error.to_string(),
            });
        }
        let max_backlog = self
            .bus
            .max_backlog
            .unwrap_or(super::outbox::DEFAULT_MAX_BACKLOG);
        if max_backlog < 2 {
            return Err(ConfigError::Invalid {
                key: "bus.max_backlog",
                value: max_backlog.to_string(),
                reason: "must be at least 2".to_owned(),
            });
        }
        let bus = self.bus.validate()?;
        let admin_token = match self.auth.admin_token {
            Some(token) if !token.is_empty() => token,
            other => {
                return Err(ConfigError::Invalid {
                    key: "auth.admin_token",
                    value: other.unwrap_or_default(),
                    reason: "must be set (or L2POP_ADMIN_TOKEN)".to_owned(),
                });
            }
        };
        let mut projects = Vec::new();
        for project in self.auth.projects {
            if project.token.is_empty() || project.token == admin_token {
                return Err(ConfigError::Invalid {
                    key: "auth.projects.token",
                    value: project.project_id,
                    reason: "must be non-empty and differ from the admin token".to_owned(),
                });
            }
            projects.push((project.project_id, project.token));
        }
        let mut tenant_networks = TenantNetworks::default();
        if let Some(text) = self.tenant_networks.network_type {
            tenant_networks.network_type =
                text.parse::<NetworkType>()
                    .map_err(|e| ConfigError::Invalid {
                        key: "tenant_networks.network_type",
                        value: text.clone(),
                        reason: e.to_string(),
                    })?;
        }
        if let Some(ranges) = self.tenant_networks.vni_ranges {
            tenant_networks.vni_ranges = ranges
                .iter()
                .map(|range| parse_range(range))
                .collect::<Result<_, _>>()?;
        }
        Ok(Settings {
            listen,
            http,
            name,
            store_url,
            store_init: self.store.init.unwrap_or(false),
            leader_poll: Duration::from_millis(poll_ms),
            snapshot_every: self
                .store
                .snapshot_every
                .unwrap_or(super::snapshots::DEFAULT_SNAPSHOT_EVERY),
            bus,
            max_backlog,
            admin_token,
            projects,
            tenant_networks,
            agent_down_time: Duration::from_secs(self.agents.down_time_s.unwrap_or(75)),
            max_fixed_ips_per_port: self
                .ports
                .max_fixed_ips_per_port
                .unwrap_or(l2pop_neutron::state::DEFAULT_MAX_FIXED_IPS_PER_PORT),
        })
    }
}

impl RawBus {
    fn validate(self) -> Result<BusSettings, ConfigError> {
        let backend = self.backend.unwrap_or_else(|| "rabbit".to_owned());
        let backend = match backend.as_str() {
            "rabbit" => Backend::Rabbit {
                url: self
                    .url
                    .unwrap_or_else(|| l2pop_bus::rabbit::DEFAULT_URL.to_owned()),
            },
            "memory" => Backend::Memory(MemoryBus::new()),
            other => {
                return Err(ConfigError::Invalid {
                    key: "bus.backend",
                    value: other.to_owned(),
                    reason: "is neither \"rabbit\" nor \"memory\"".to_owned(),
                });
            }
        };
        let mut settings = BusSettings {
            backend,
            topic: wire::DEFAULT_TOPIC.to_owned(),
            rpc_topic: wire::DEFAULT_RPC_TOPIC.to_owned(),
        };
        for (key, value, slot) in [
            ("bus.topic", self.topic, &mut settings.topic),
            ("bus.rpc_topic", self.rpc_topic, &mut settings.rpc_topic),
        ] {
            if let Some(value) = value {
                wire::check_topic(&value).map_err(|e| ConfigError::Invalid {
                    key,
                    value: value.clone(),
                    reason: format!("is refused: {e} (of up to {} bytes)", Host::MAX_LEN),
                })?;
                *slot = value;
            }
        }
        settings.validate().map_err(|e| ConfigError::Invalid {
            key: "bus.url",
            value: match &settings.backend {
                Backend::Rabbit { url } => url.clone(),
                Backend::Memory(_) => String::new(),
            },
            reason: e.to_string(),
        })?;
        Ok(settings)
    }
}

/// `[server]`'s listener limits, each at least 1.
fn http_limits(raw: &RawServer) -> Result<super::listener::HttpLimits, ConfigError> {
    let defaults = super::listener::HttpLimits::default();
    let positive = |key: &'static str, value: Option<u64>, default: u64| match value {
        Some(0) => Err(ConfigError::Invalid {
            key,
            value: "0".to_owned(),
            reason: "must be at least 1".to_owned(),
        }),
        Some(value) => Ok(value),
        None => Ok(default),
    };
    Ok(super::listener::HttpLimits {
        header_read_timeout: Duration::from_secs(positive(
            "server.header_read_timeout_s",
            raw.header_read_timeout_s,
            defaults.header_read_timeout.as_secs(),
        )?),
        idle_timeout: Duration::from_secs(positive(
            "server.idle_timeout_s",
            raw.idle_timeout_s,
            defaults.idle_timeout.as_secs(),
        )?),
        max_connections: usize::try_from(positive(
            "server.max_connections",
            raw.max_connections.map(|n| n as u64),
            defaults.max_connections as u64,
        )?)
        .unwrap_or(usize::MAX),
    })
}

fn parse_range(text: &str) -> Result<(u32, u32), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "tenant_networks.vni_ranges",
        value: text.to_owned(),
        reason: reason.to_owned(),
    };
    let (low, high) = text
        .split_once(':')
        .ok_or_else(|| invalid("is not low:high"))?;
    let low: u32 = low
        .trim()
        .parse()
        .map_err(|_| invalid("low is not a number"))?;
    let high: u32 = high
        .trim()
        .parse()
        .map_err(|_| invalid("high is not a number"))?;
    if low == 0 || low > high || high > 16_777_215 {
        return Err(invalid("must satisfy 1 <= low <= high <= 16777215"));
    }
    Ok((low, high))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shipped_example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/server.toml");
        let settings = RawConfig::load(&path).unwrap().validate().unwrap();
        assert_eq!(settings.listen.port(), 9696);
        assert!(matches!(settings.bus.backend, Backend::Rabbit { .. }));
        assert_eq!(settings.bus.topic, wire::DEFAULT_TOPIC);
        assert!(!settings.projects.is_empty());
    }

    #[test]
    fn unknown_key_is_named() {
        let error = RawConfig::parse("[store]\nurll = \"x\"\n", "t.toml").unwrap_err();
        assert!(error.to_string().contains("urll"), "{error}");
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let raw = RawConfig::parse(
            "[auth]\nadmin_token = \"a\"\n[tenant_networks]\nvni_ranges = [\"10:5\"]\n",
            "t.toml",
        )
        .unwrap();
        let error = raw.validate().unwrap_err().to_string();
        assert!(
            error.contains("tenant_networks.vni_ranges") && error.contains("10:5"),
            "{error}"
        );
        let raw = RawConfig::parse(
            "[auth]\nadmin_token = \"a\"\n[bus]\nbackend = \"kafka\"\n",
            "t",
        )
        .unwrap();
        let error = raw.validate().unwrap_err().to_string();
        assert!(
            error.contains("bus.backend") && error.contains("kafka"),
            "{error}"
        );
    }

    #[test]
    fn names_the_wire_cannot_carry_are_refused() {
        let long_topic = "q-agent-notifier-l2population-update-x";
        let raw = RawConfig::parse(
            &format!("[auth]\nadmin_token = \"a\"\n[bus]\ntopic = \"{long_topic}\"\n"),
            "t",
        )
        .unwrap();
        let error = raw.validate().unwrap_err().to_string();
        assert!(
            error.contains("bus.topic") && error.contains(long_topic) && error.contains("218"),
            "{error}"
        );
        let long_name = "n".repeat(219);
        let raw = RawConfig::parse(
            &format!("[server]\nname = \"{long_name}\"\n[auth]\nadmin_token = \"a\"\n"),
            "t",
        )
        .unwrap();
        let error = raw.validate().unwrap_err().to_string();
        assert!(
            error.contains("server.name") && error.contains(&long_name),
            "{error}"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let raw = RawConfig::parse("[auth]\nadmin_token = \"a\"\n", "t").unwrap();
        let settings = raw
            .with_env(|key| (key == "L2POP_STORE_URL").then(|| "sqlite:/tmp/x.db".to_owned()))
            .validate()
            .unwrap();
        assert_eq!(settings.store_url, "sqlite:/tmp/x.db");
    }
}
