//! JSON exactly as Python's `json.dumps` writes it with default arguments (kombu's serializer and
//! oslo's `jsonutils.dumps`): `", "` and `": "` separators and `ensure_ascii` (every non-ASCII
//! character as a lowercase `\uXXXX` escape, UTF-16 surrogate pairs above the BMP).
//!
//! Byte-identical bodies matter for interop tests against captured Neutron traffic and for the
//! wire size figures.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// Formatter reproducing Python's default `json.dumps` layout.
#[derive(Clone, Copy, Debug, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Serializes `value` as Python's `json.dumps(value)` would.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// Serializes `value` as Python's `json.dumps(value)` would, as a `String`.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    // Only ASCII is written: every other character is escaped.
    to_vec(value).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_ascii_escapes() {
        let value = serde_json::json!({"a": [1, 2], "b": "é😀\n"});
        assert_eq!(
            to_string(&value).unwrap(),
            r#"{"a": [1, 2], "b": "\u00e9\ud83d\ude00\n"}"#
        );
    }

    #[test]
    fn empty_containers() {
        assert_eq!(
            to_string(&serde_json::json!({"a": [], "b": {}})).unwrap(),
            r#"{"a": [], "b": {}}"#
        );
    }
}
