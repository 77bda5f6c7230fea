//! Route targets and route distinguishers in networking-bgpvpn's text form (`RTRD_REGEX`,
//! RFC 4364 types 0/1/2): `<2-byte AS>:<u32>`, `<IPv4>:<u16>`, `<4-byte AS>:<u16>`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid route target/distinguisher {0:?}: expected <2-byte AS>:<0..4294967295>, <IPv4>:<0..65535> or <4-byte AS>:<0..65535>"
)]
pub struct RouteTargetError(pub String);

/// A route target (or distinguisher: same text forms). Ordered for stable sets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// Type 0: 2-byte AS, 4-byte number.
    As2 { asn: u16, number: u32 },
    /// Type 1: IPv4 address, 2-byte number.
    Ipv4 { address: Ipv4Addr, number: u16 },
    /// Type 2: 4-byte AS (above 65535), 2-byte number.
    As4 { asn: u32, number: u16 },
}

/// A decimal without sign or leading zeros (as the regex), within `max`.
fn decimal(text: &str, max: u64) -> Option<u64> {
    let valid = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !valid || text.len() > 10 {
        return None;
    }
    text.parse::<u64>().ok().filter(|v| *v <= max)
}

impl FromStr for RouteTarget {
    type Err = RouteTargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || RouteTargetError(s.to_owned());
        let (admin, number) = s.rsplit_once(':').ok_or_else(invalid)?;
        if admin.contains('.') {
            let address: Ipv4Addr = admin.parse().map_err(|_| invalid())?;
            let number = decimal(number, u64::from(u16::MAX)).ok_or_else(invalid)? as u16;
            return Ok(RouteTarget::Ipv4 { address, number });
        }
        let asn = decimal(admin, u64::from(u32::MAX)).ok_or_else(invalid)?;
        if asn <= u64::from(u16::MAX) {
            let number = decimal(number, u64::from(u32::MAX)).ok_or_else(invalid)? as u32;
            Ok(RouteTarget::As2 {
                asn: asn as u16,
                number,
            })
        } else {
            let number = decimal(number, u64::from(u16::MAX)).ok_or_else(invalid)? as u16;
            Ok(RouteTarget::As4 {
                asn: asn as u32,
                number,
            })
        }
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::As2 { asn, number } => write!(f, "{asn}:{number}"),
            RouteTarget::Ipv4 { address, number } => write!(f, "{address}:{number}"),
            RouteTarget::As4 { asn, number } => write!(f, "{asn}:{number}"),
        }
    }
}

impl fmt::Debug for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for RouteTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RouteTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        assert_eq!(
            "65000:4294967295".parse(),
            Ok(RouteTarget::As2 {
                asn: 65000,
                number: u32::MAX
            })
        );
        assert_eq!(
            "192.0.2.1:65535".parse(),
            Ok(RouteTarget::Ipv4 {
                address: Ipv4Addr::new(192, 0, 2, 1),
                number: 65535
            })
        );
        assert_eq!(
            "4200000000:7".parse(),
            Ok(RouteTarget::As4 {
                asn: 4_200_000_000,
                number: 7
            })
        );
        assert_eq!(
            "0:0".parse::<RouteTarget>().map(|r| r.to_string()),
            Ok("0:0".to_owned())
        );
    }

    #[test]
    fn refuses_what_the_regex_refuses() {
        for bad in [
            "",
            "65000",
            ":1",
            "65000:",
            "065000:1",
            "65000:01",
            "65000:4294967296",
            "192.0.2.1:65536",
            "4200000000:65536",
            "4294967296:1",
            "256.0.0.1:1",
            "a:1",
            "-1:1",
            "65000:1:2",
        ] {
            assert!(bad.parse::<RouteTarget>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn error_names_the_value() {
        let err = "65000:x".parse::<RouteTarget>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid route target/distinguisher \"65000:x\"")
        );
    }
}
