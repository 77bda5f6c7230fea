//! `l2pop server` configuration: raw TOML (`deny_unknown_fields`, errors name the key), then
//! `L2POP_*` environment overrides, then validation into typed [`Settings`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use l2pop_model::NetworkType;
use serde::Deserialize;

use super::requests::TenantNetworks;

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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    /// This process's name in the leader record (default: the host name).
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<String>,
    pub leader_poll_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    /// `rabbit` or `memory`.
    pub backend: Option<String>,
    pub url: Option<String>,
    pub topic: Option<String>,
    pub rpc_topic: Option<String>,
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

/// Which transport carries notifications and agent RPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusSettings {
    Rabbit {
        url: String,
        topic: String,
        rpc_topic: String,
    },
    Memory,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub name: String,
    pub store_url: String,
    pub leader_poll: Duration,
    pub bus: BusSettings,
    pub admin_token: String,
    pub projects: Vec<(String, String)>,
    pub tenant_networks: TenantNetworks,
    pub agent_down_time: Duration,
}

impl RawConfig {
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        RawConfig::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: origin.to_owned(),
            source: Box::new(source),
        })
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
        let backend = self.bus.backend.unwrap_or_else(|| "rabbit".to_owned());
        let bus = match backend.as_str() {
            "rabbit" => BusSettings::Rabbit {
                url: self
                    .bus
                    .url
                    .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
                topic: self
                    .bus
                    .topic
                    .unwrap_or_else(|| "q-agent-notifier-l2population-update".to_owned()),
                rpc_topic: self
                    .bus
                    .rpc_topic
                    .unwrap_or_else(|| "l2pop-plugin".to_owned()),
            },
            "memory" => BusSettings::Memory,
            other => {
                return Err(ConfigError::Invalid {
                    key: "bus.backend",
                    value: other.to_owned(),
                    reason: "is neither \"rabbit\" nor \"memory\"".to_owned(),
                });
            }
        };
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
            name,
            store_url,
            leader_poll: Duration::from_millis(poll_ms),
            bus,
            admin_token,
            projects,
            tenant_networks,
            agent_down_time: Duration::from_secs(self.agents.down_time_s.unwrap_or(75)),
        })
    }
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
        assert!(matches!(settings.bus, BusSettings::Rabbit { .. }));
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
    fn environment_overrides_the_file() {
        let raw = RawConfig::parse("[auth]\nadmin_token = \"a\"\n", "t").unwrap();
        let settings = raw
            .with_env(|key| (key == "L2POP_STORE_URL").then(|| "sqlite:/tmp/x.db".to_owned()))
            .validate()
            .unwrap();
        assert_eq!(settings.store_url, "sqlite:/tmp/x.db");
    }
}
