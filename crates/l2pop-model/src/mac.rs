use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;

/// An Ethernet MAC address, printed lowercase with ':' separators as Neutron stores it.
///
/// Ordering is numeric (byte-wise), so the all-zero flooding MAC sorts first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

impl Mac {
    /// The all-zero MAC of Neutron's `FLOODING_ENTRY`.
    pub const ZERO: Mac = Mac([0; 6]);

    pub const fn new(octets: [u8; 6]) -> Self {
        Mac(octets)
    }

    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Group bit set: broadcast or multicast, never a port's address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// A MAC a port or device may own: unicast and not all-zero.
    pub fn validate_unicast(self) -> Result<Self, ModelError> {
        if self.is_zero() {
            Err(ModelError::ZeroMac)
        } else if self.is_multicast() {
            Err(ModelError::MulticastMac(self))
        } else {
            Ok(self)
        }
    }

    /// Writes the canonical text form into a fixed buffer (no allocation on the hot path).
    fn to_text(self) -> [u8; 17] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b':'; 17];
        for (i, byte) in self.0.iter().enumerate() {
            out[i * 3] = HEX[usize::from(byte >> 4)];
            out[i * 3 + 1] = HEX[usize::from(byte & 0xf)];
        }
        out
    }
}

impl FromStr for Mac {
    type Err = ModelError;

    /// Accepts `aa:bb:cc:dd:ee:ff` and `aa-bb-cc-dd-ee-ff`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ModelError::InvalidMac(s.to_owned());
        let bytes = s.as_bytes();
        if bytes.len() != 17 {
            return Err(invalid());
        }
        let sep = bytes[2];
        if sep != b':' && sep != b'-' {
            return Err(invalid());
        }
        let mut octets = [0u8; 6];
        for (i, octet) in octets.iter_mut().enumerate() {
            if i < 5 && bytes[i * 3 + 2] != sep {
                return Err(invalid());
            }
            let text = std::str::from_utf8(&bytes[i * 3..i * 3 + 2]).map_err(|_| invalid())?;
            if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            *octet = u8::from_str_radix(text, 16).map_err(|_| invalid())?;
        }
        Ok(Mac(octets))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        // The buffer holds only ASCII hex digits and ':'.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.to_text();
        serializer.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lowercase() {
        let mac: Mac = "FA:16:3E:AA:BB:CC".parse().unwrap();
        assert_eq!(mac.to_string(), "fa:16:3e:aa:bb:cc");
        let dashed: Mac = "fa-16-3e-aa-bb-cc".parse().unwrap();
        assert_eq!(dashed, mac);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "fa:16:3e:aa:bb",
            "fa:16:3e:aa:bb:cc:dd",
            "fa:16-3e:aa:bb:cc",
            "gg:16:3e:aa:bb:cc",
            "+a:16:3e:aa:bb:cc",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn unicast_validation() {
        assert_eq!(Mac::ZERO.validate_unicast(), Err(ModelError::ZeroMac));
        let multicast: Mac = "01:00:5e:00:00:01".parse().unwrap();
        assert!(multicast.validate_unicast().is_err());
        let ok: Mac = "fa:16:3e:00:00:01".parse().unwrap();
        assert_eq!(ok.validate_unicast(), Ok(ok));
    }

    #[test]
    fn zero_sorts_first() {
        let any: Mac = "00:00:00:00:00:01".parse().unwrap();
        assert!(Mac::ZERO < any);
    }
}
