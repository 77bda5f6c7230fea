//! The request context that rides in every oslo.messaging message as `_context_<key>` entries,
//! and the one l2pop sends: Neutron's admin context (`neutron_lib.context.get_admin_context()
//! .to_dict()`, keys in the order neutron-lib 5.x / oslo.context 6.x write them, reference
//! `neutron-l2pop.md` §3).
//!
//! The order of keys is part of the wire bytes, so a [`Context`] is an ordered list, not a map.
//! Receivers turn it back into a map: order never matters to them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// A request context: `(key, value)` pairs in wire order, keys without the `_context_` prefix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context(Vec<(String, Value)>);

impl Context {
    /// An empty context (oslo sends no `_context_*` key at all for it).
    pub fn new() -> Self {
        Context(Vec::new())
    }

    /// Sets `key`: in place if present, appended otherwise (Python dict semantics).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the context has no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The context as a map (what a receiver sees).
    pub fn to_map(&self) -> Map<String, Value> {
        self.0.iter().cloned().collect()
    }

    /// Neutron's admin context as `get_admin_context().to_dict()` renders it: no user or project,
    /// `is_admin` true, roles admin/reader/member, `user_identity` `"- - - - -"`, request id
    /// `req-<request_id>` and `timestamp` as Python's `str(datetime.utcnow())`.
    pub fn admin(request_id: uuid::Uuid, timestamp: SystemTime) -> Self {
        let request_id = format!("req-{}", request_id.hyphenated());
        let pairs: [(&str, Value); 23] = [
            ("user", Value::Null),
            ("project_id", Value::Null),
            ("system_scope", Value::Null),
            ("project", Value::Null),
            ("domain", Value::Null),
            ("user_domain", Value::Null),
            ("project_domain", Value::Null),
            ("is_admin", Value::Bool(true)),
            ("read_only", Value::Bool(false)),
            ("show_deleted", Value::Bool(false)),
            ("auth_token", Value::Null),
            ("request_id", Value::String(request_id)),
            ("global_request_id", Value::Null),
            ("resource_uuid", Value::Null),
            (
                "roles",
                Value::Array(vec!["admin".into(), "reader".into(), "member".into()]),
            ),
            ("user_identity", "- - - - -".into()),
            ("is_admin_project", Value::Bool(true)),
            ("user_id", Value::Null),
            ("timestamp", Value::String(python_timestamp(timestamp))),
            ("project_name", Value::Null),
            ("user_name", Value::Null),
            ("has_global_access", Value::Bool(true)),
            ("can_set_project_id", Value::Bool(true)),
        ];
        Context(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// [`Context::admin`] with a fresh random request id and the current time.
    pub fn admin_now() -> Self {
        Context::admin(uuid::Uuid::new_v4(), SystemTime::now())
    }
}

impl From<Map<String, Value>> for Context {
    fn from(map: Map<String, Value>) -> Self {
        Context(map.into_iter().collect())
    }
}

impl FromIterator<(String, Value)> for Context {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut context = Context::new();
        for (k, v) in iter {
            context.insert(k, v);
        }
        context
    }
}

/// Serializes the context as a JSON object in its order (keys without prefix).
impl Serialize for Context {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `str(datetime)` of a naive UTC datetime: `YYYY-MM-DD HH:MM:SS.ffffff`, and, as Python does,
/// without the fraction when the microseconds are zero.
pub fn python_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if micros == 0 {
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}")
    } else {
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{micros:06}")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_match_python_str_datetime() {
        let at = |secs: u64, micros: u32| {
            python_timestamp(
                UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros.into()),
            )
        };
        // datetime.utcfromtimestamp(1795258022.361756) == 2026-11-21 10:47:02.361756
        assert_eq!(at(1_795_258_022, 361_756), "2026-11-21 10:47:02.361756");
        assert_eq!(at(0, 0), "1970-01-01 00:00:00");
        assert_eq!(at(951_782_400, 1), "2000-02-29 00:00:00.000001");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28 23:59:59.999999");
    }

    #[test]
    fn insert_keeps_order_and_replaces_in_place() {
        let mut context = Context::new();
        context.insert("b", 1);
        context.insert("a", 2);
        context.insert("b", 3);
        let keys: Vec<_> = context.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(context.get("b"), Some(&Value::from(3)));
    }

    #[test]
    fn admin_context_shape() {
        let context = Context::admin(uuid::Uuid::nil(), UNIX_EPOCH);
        assert_eq!(context.len(), 23);
        assert_eq!(
            context.get("request_id").unwrap(),
            "req-00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(context.get("is_admin").unwrap(), &Value::Bool(true));
    }
}
