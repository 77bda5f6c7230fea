use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// A UUID as Neutron prints ids: 8-4-4-4-12 lowercase hex digits. Stored as 128 bits, so ids are
/// `Copy`, hash fast and take 16 bytes per port instead of a 36-byte string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(u128);

impl Uuid {
    pub const fn from_u128(value: u128) -> Self {
        Uuid(value)
    }

    pub const fn as_u128(&self) -> u128 {
        self.0
    }

    fn to_text(self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut nibble = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            let shift = 124 - 4 * nibble;
            *slot = HEX[((self.0 >> shift) & 0xf) as usize];
            nibble += 1;
        }
        out
    }
}

impl FromStr for Uuid {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ModelError::InvalidUuid(s.to_owned());
        let bytes = s.as_bytes();
        if bytes.len() != 36 {
            return Err(invalid());
        }
        let mut value: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return Err(invalid());
                }
                continue;
            }
            let digit = (b as char).to_digit(16).ok_or_else(invalid)?;
            value = (value << 4) | u128::from(digit);
        }
        Ok(Uuid(value))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.to_text();
        serializer.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

uuid_id!(
    /// A Neutron network id.
    NetworkId
);
uuid_id!(
    /// A Neutron port id.
    PortId
);
uuid_id!(
    /// A Neutron router id (the `device_id` of its interface ports).
    RouterId
);

/// A host name as agents report it (`[DEFAULT] host`) and as port bindings name it. It is the
/// routing-key suffix of host casts, so it must be a non-empty token without whitespace.
/// Cheap to clone: hosts are shared by every port bound to them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Host(Arc<str>);

impl Host {
    /// The longest host name, in bytes, that the wire can carry: a host cast is published with
    /// routing key `q-agent-notifier-l2population-update.<host>` (37 bytes before the host), and
    /// an agent declares a queue of that name; AMQP carries both as a `shortstr` of at most 255
    /// bytes. Neutron allows 255-byte hosts, but such a host could never be notified: a longer
    /// name is refused where it enters (API, RPC, configuration) rather than on the wire.
    pub const MAX_LEN: usize = 255 - "q-agent-notifier-l2population-update.".len();

    pub fn new(name: &str) -> Result<Self, ModelError> {
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && !name.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Host(Arc::from(name)))
        } else {
            Err(ModelError::InvalidHost(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Host {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Host::new(s)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Host {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Host::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trip_lowercases() {
        let text = "9F1B7A52-5D2C-4C8E-9A3E-2B6F0C1D4E5F";
        let id: NetworkId = text.parse().unwrap();
        assert_eq!(id.to_string(), text.to_lowercase());
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{}\"", text.to_lowercase())
        );
    }

    #[test]
    fn uuid_rejects_malformed() {
        for bad in [
            "",
            "9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5",
            "9f1b7a52x5d2c-4c8e-9a3e-2b6f0c1d4e5f",
            "9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5g",
            "+f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn host_validation() {
        assert!(Host::new("compute-1.example.org").is_ok());
        assert_eq!(Host::MAX_LEN, 218);
        assert!(Host::new(&"h".repeat(218)).is_ok());
        for bad in [
            "",
            "two words",
            "tab\there",
            &"h".repeat(219),
            &"h".repeat(256),
        ] {
            assert!(Host::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
