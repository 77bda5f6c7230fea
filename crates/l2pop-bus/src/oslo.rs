//! The oslo.messaging 18.x RPC wire format, as pure functions over bytes (no I/O).
//!
//! Every AMQP body is the envelope `{"oslo.version": "2.0", "oslo.message": "<JSON text>"}`
//! (`_drivers/common.py serialize_msg`), written by Python's `json.dumps` at both levels (", " and
//! ": " separators, `ensure_ascii`). The inner message is one of:
//!
//! - a **request** (`rpc/client.py _make_message` + `amqpdriver._send` + `amqp.pack_context`):
//!   keys in order `method`, `args`, [`namespace`], [`version`], then for calls only `_msg_id`,
//!   `_reply_q`, `_timeout`, then `_unique_id` (receivers drop repeats among their last 16),
//!   then one `_context_<k>` per context key. A cast has no `_msg_id`/`_reply_q`/`_timeout`.
//! - a **reply** (`amqpdriver.AMQPIncomingMessage._send_reply`): `result`, `failure` (null or a
//!   JSON *string* of `{class, module, message, tb, args, kwargs}`), `ending` (true: oslo 18
//!   sends one reply message per call), `_msg_id`, `_unique_id`; no context.
//!
//! Decoding follows `deserialize_msg`: a JSON object carrying both envelope keys is unwrapped
//! (its version must be compatible with 2.0), any other object is taken as a pre-envelope
//! message.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use l2pop_model::python_json;

use crate::context::Context;
use crate::error::{DecodeError, EncodeError, json_type};

/// `_RPC_ENVELOPE_VERSION` of oslo.messaging.
pub const ENVELOPE_VERSION: &str = "2.0";
const VERSION_KEY: &str = "oslo.version";
const MESSAGE_KEY: &str = "oslo.message";
const CONTEXT_PREFIX: &str = "_context_";

/// The module name our failures claim: not `builtins` and not in any client's
/// `allowed_remote_exmods`, so a Python caller raises `oslo_messaging.RemoteError`.
pub const REMOTE_MODULE: &str = "l2pop";

/// The reply address of an RPC call (`_msg_id`, `_reply_q`, `_timeout`).
#[derive(Clone, Debug, PartialEq)]
pub struct CallInfo {
    /// uuid4 hex; the reply carries it back as `_msg_id`.
    pub msg_id: String,
    /// The caller's reply queue, `reply_<uuid4 hex>`; replies go to the default exchange with it
    /// as routing key.
    pub reply_q: String,
    /// `call_monitor_timeout` in seconds (null unless the caller asked for heartbeats).
    pub timeout: Option<f64>,
}

/// Something that writes `_context_<key>` entries, in order, into a message being serialized.
pub trait ContextEntries {
    /// Calls `entry(key, value)` for each entry, key without the prefix.
    fn write_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

impl ContextEntries for Context {
    fn write_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        for (key, value) in self.iter() {
            map.serialize_entry(&ContextKey(key), value)?;
        }
        Ok(())
    }
}

/// A context followed by one more entry whose value keeps its own field order (a `Value` in
/// the `Context` would be re-sorted by `serde_json`).
#[derive(Debug)]
pub struct ExtendedContext<'a, V: ?Sized> {
    pub base: &'a Context,
    pub key: &'a str,
    pub value: &'a V,
}

impl<V: Serialize + ?Sized> ContextEntries for ExtendedContext<'_, V> {
    fn write_entries<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        self.base.write_entries(map)?;
        map.serialize_entry(&ContextKey(self.key), self.value)
    }
}

/// An outgoing request, borrowed.
#[derive(Debug)]
pub struct Request<'a, A: ?Sized, C: ?Sized = Context> {
    pub method: &'a str,
    /// The keyword arguments: must serialize as a JSON object.
    pub args: &'a A,
    pub namespace: Option<&'a str>,
    /// The target version (`"1.0"` for l2pop); omitted when `None`, as oslo does.
    pub version: Option<&'a str>,
    /// Present for calls.
    pub call: Option<&'a CallInfo>,
    pub unique_id: &'a str,
    pub context: &'a C,
}

impl<A: Serialize + ?Sized, C: ContextEntries + ?Sized> Serialize for Request<'_, A, C> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("method", self.method)?;
        map.serialize_entry("args", self.args)?;
        if let Some(namespace) = self.namespace {
            map.serialize_entry("namespace", namespace)?;
        }
        if let Some(version) = self.version {
            map.serialize_entry("version", version)?;
        }
        if let Some(call) = self.call {
            map.serialize_entry("_msg_id", &call.msg_id)?;
            map.serialize_entry("_reply_q", &call.reply_q)?;
            map.serialize_entry("_timeout", &call.timeout)?;
        }
        map.serialize_entry("_unique_id", self.unique_id)?;
        self.context.write_entries(&mut map)?;
        map.end()
    }
}

/// `_context_<key>` written without allocating.
struct ContextKey<'a>(&'a str);

impl Serialize for ContextKey<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{CONTEXT_PREFIX}{}", self.0))
    }
}

/// Encodes a request (cast or call) as a complete AMQP body.
pub fn encode_request<A: Serialize + ?Sized, C: ContextEntries + ?Sized>(
    request: &Request<'_, A, C>,
) -> Result<Vec<u8>, EncodeError> {
    let inner = python_json::to_string(request).map_err(|e| EncodeError::new("request", e))?;
    envelope(&inner)
}

/// Wraps an inner message's JSON text in the 2.0 envelope (`serialize_msg`).
pub fn envelope(inner: &str) -> Result<Vec<u8>, EncodeError> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "oslo.version")]
        version: &'a str,
        #[serde(rename = "oslo.message")]
        message: &'a str,
    }
    python_json::to_vec(&Envelope {
        version: ENVELOPE_VERSION,
        message: inner,
    })
    .map_err(|e| EncodeError::new("envelope", e))
}

/// A failure as oslo serializes an exception (`serialize_remote_exception`).
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteFailure {
    /// The exception class name (`RemoteError.exc_type` on a Python caller).
    pub class: String,
    pub module: String,
    /// `str(exception)` (`RemoteError.value`).
    pub message: String,
    /// Formatted traceback lines.
    pub tb: Vec<String>,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
}

impl RemoteFailure {
    /// A failure raised by l2pop: module [`REMOTE_MODULE`], args `[message]`, no traceback.
    pub fn l2pop(class: &str, message: &str) -> Self {
        RemoteFailure {
            class: class.to_owned(),
            module: REMOTE_MODULE.to_owned(),
            message: message.to_owned(),
            tb: Vec::new(),
            args: vec![Value::String(message.to_owned())],
            kwargs: Map::new(),
        }
    }
}

impl Serialize for RemoteFailure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("class", &self.class)?;
        map.serialize_entry("module", &self.module)?;
        map.serialize_entry("message", &self.message)?;
        map.serialize_entry("tb", &self.tb)?;
        map.serialize_entry("args", &self.args)?;
        map.serialize_entry("kwargs", &self.kwargs)?;
        map.end()
    }
}

/// An RPC reply message.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub msg_id: String,
    /// The method's return value (null on failure).
    pub result: Value,
    pub failure: Option<RemoteFailure>,
    /// True on the final reply (oslo 18 sends only that one; `false` is a call-monitor
    /// heartbeat).
    pub ending: bool,
    pub unique_id: Option<String>,
}

/// Encodes a reply as a complete AMQP body.
pub fn encode_reply(reply: &Reply) -> Result<Vec<u8>, EncodeError> {
    struct Inner<'a>(&'a Reply, Option<String>);
    impl Serialize for Inner<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            map.serialize_entry("result", &self.0.result)?;
            map.serialize_entry("failure", &self.1)?;
            map.serialize_entry("ending", &self.0.ending)?;
            map.serialize_entry("_msg_id", &self.0.msg_id)?;
            if let Some(unique_id) = &self.0.unique_id {
                map.serialize_entry("_unique_id", unique_id)?;
            }
            map.end()
        }
    }
    let failure = match &reply.failure {
        Some(failure) => {
            Some(python_json::to_string(failure).map_err(|e| EncodeError::new("failure", e))?)
        }
        None => None,
    };
    let inner =
        python_json::to_string(&Inner(reply, failure)).map_err(|e| EncodeError::new("reply", e))?;
    envelope(&inner)
}

/// Parses a body and unwraps the envelope when there is one, as `deserialize_msg` does.
pub fn unwrap_envelope(body: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let value: Value = serde_json::from_slice(body).map_err(DecodeError::NotJson)?;
    let Value::Object(mut outer) = value else {
        return Err(DecodeError::NotAnObject(json_type(&value)));
    };
    if !(outer.contains_key(VERSION_KEY) && outer.contains_key(MESSAGE_KEY)) {
        return Ok(outer);
    }
    let version = match outer.remove(VERSION_KEY) {
        Some(Value::String(version)) => version,
        Some(other) => return Err(DecodeError::UnsupportedEnvelopeVersion(other.to_string())),
        None => return Err(DecodeError::MissingField(VERSION_KEY)),
    };
    if !version_is_compatible(ENVELOPE_VERSION, &version) {
        return Err(DecodeError::UnsupportedEnvelopeVersion(version));
    }
    let Some(Value::String(inner)) = outer.remove(MESSAGE_KEY) else {
        return Err(DecodeError::BadInnerMessage("not a string".into()));
    };
    match serde_json::from_str(&inner) {
        Ok(Value::Object(message)) => Ok(message),
        Ok(other) => Err(DecodeError::BadInnerMessage(format!(
            "holds {}",
            json_type(&other)
        ))),
        Err(e) => Err(DecodeError::BadInnerMessage(e.to_string())),
    }
}

/// `oslo_messaging._utils.version_is_compatible(imp, version)`: same major, and not newer than
/// `imp` in minor (then revision). Unparsable versions are incompatible.
pub fn version_is_compatible(imp: &str, version: &str) -> bool {
    fn parts(v: &str) -> Option<(u64, u64, u64)> {
        let mut it = v.split('.');
        let major = it.next()?.trim().parse().ok()?;
        let minor = it.next()?.trim().parse().ok()?;
        let rev = match it.next() {
            Some(r) => r.trim().parse().ok()?,
            None => 0,
        };
        Some((major, minor, rev))
    }
    match (parts(imp), parts(version)) {
        (Some((imajor, iminor, irev)), Some((major, minor, rev))) => {
            major == imajor && (minor < iminor || (minor == iminor && rev <= irev))
        }
        _ => false,
    }
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingRequest {
    pub method: String,
    /// Keyword arguments (`{}` when absent, as the dispatcher defaults).
    pub args: Map<String, Value>,
    pub namespace: Option<String>,
    pub version: Option<String>,
    pub unique_id: Option<String>,
    /// Present when the sender waits for a reply (`_msg_id` set).
    pub call: Option<CallInfo>,
    /// The `_context_*` entries, prefix removed.
    pub context: Map<String, Value>,
}

fn take_string(
    message: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    match message.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(DecodeError::WrongType {
            field: field.to_owned(),
            expected: "a string",
            got: json_type(&other),
        }),
    }
}

/// Decodes a request body (cast or call), with or without the envelope.
pub fn decode_request(body: &[u8]) -> Result<IncomingRequest, DecodeError> {
    let mut message = unwrap_envelope(body)?;
    let method = take_string(&mut message, "method")?.ok_or(DecodeError::MissingField("method"))?;
    let args = match message.remove("args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(args)) => args,
        Some(other) => {
            return Err(DecodeError::WrongType {
                field: "args".into(),
                expected: "an object",
                got: json_type(&other),
            });
        }
    };
    let namespace = take_string(&mut message, "namespace")?;
    let version = take_string(&mut message, "version")?;
    let unique_id = take_string(&mut message, "_unique_id")?;
    let msg_id = take_string(&mut message, "_msg_id")?;
    let reply_q = take_string(&mut message, "_reply_q")?;
    let timeout = message.remove("_timeout").and_then(|t| t.as_f64());
    let call = match (msg_id, reply_q) {
        (Some(msg_id), Some(reply_q)) => Some(CallInfo {
            msg_id,
            reply_q,
            timeout,
        }),
        (Some(_), None) => return Err(DecodeError::MissingField("_reply_q")),
        (None, _) => None,
    };
    let context = message
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(CONTEXT_PREFIX).map(|k| (k.to_owned(), v)))
        .collect();
    Ok(IncomingRequest {
        method,
        args,
        namespace,
        version,
        unique_id,
        call,
        context,
    })
}

/// Decodes a reply body (`ReplyWaiter._process_reply`).
pub fn decode_reply(body: &[u8]) -> Result<Reply, DecodeError> {
    let mut message = unwrap_envelope(body)?;
    let msg_id =
        take_string(&mut message, "_msg_id")?.ok_or(DecodeError::MissingField("_msg_id"))?;
    let unique_id = take_string(&mut message, "_unique_id")?;
    let failure = match message.remove("failure") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(decode_failure(
            serde_json::from_str(&text).map_err(|e| DecodeError::BadFailure(e.to_string()))?,
        )?),
        Some(other @ Value::Object(_)) => Some(decode_failure(other)?),
        Some(other) => {
            return Err(DecodeError::BadFailure(format!(
                "expected a JSON string, got {}",
                json_type(&other)
            )));
        }
    };
    Ok(Reply {
        msg_id,
        result: message.remove("result").unwrap_or(Value::Null),
        failure,
        ending: message
            .remove("ending")
            .and_then(|e| e.as_bool())
            .unwrap_or(false),
        unique_id,
    })
}

/// Reads a failure as `deserialize_remote_exception` does: every field optional.
fn decode_failure(value: Value) -> Result<RemoteFailure, DecodeError> {
    let Value::Object(mut map) = value else {
        return Err(DecodeError::BadFailure(format!(
            "expected an object, got {}",
            json_type(&value)
        )));
    };
    let mut text = |key: &str| match map.remove(key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let class = text("class");
    let module = text("module");
    let message = text("message");
    let tb = match map.remove("tb") {
        Some(Value::Array(lines)) => lines
            .into_iter()
            .map(|l| match l {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let args = match map.remove("args") {
        Some(Value::Array(args)) => args,
        _ => Vec::new(),
    };
    let kwargs = match map.remove("kwargs") {
        Some(Value::Object(kwargs)) => kwargs,
        _ => Map::new(),
    };
    Ok(RemoteFailure {
        class,
        module,
        message,
        tb,
        args,
        kwargs,
    })
}

#[cfg(test)]
#[path = "oslo_tests.rs"]
mod tests;
