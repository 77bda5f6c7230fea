//! l2pop notifications as oslo.messaging casts: the mapping between a [`Notification`] and the
//! bytes Neutron's `L2populationAgentNotifyAPI` would send, plus l2pop's stream numbers.
//!
//! A notification becomes the cast `method(fdb_entries=...)` at version `"1.0"`, with Neutron's
//! admin context and one extra context key, `_context_l2pop`, holding its [`StreamPosition`].
//! Neutron agents build their context with `.get` and never see it; l2pop agents use it to order
//! the fanout and host streams and to detect gaps. `_unique_id` is derived from the server's
//! stream id and the notification's `seq`, so a notification republished after a crash carries
//! the same id and oslo receivers drop the duplicate.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use l2pop_model::{FdbPayload, Method, Notification, Target};

use crate::context::Context;
use crate::error::{DecodeError, EncodeError, json_type};
use crate::oslo::{self, ExtendedContext, Request};

/// The l2pop RPC API version (`L2populationAgentNotifyAPI`'s target).
pub const API_VERSION: &str = "1.0";
/// The context key (`_context_l2pop` on the wire) carrying the [`StreamPosition`].
pub const STREAM_CONTEXT_KEY: &str = "l2pop";

/// A notification's place in l2pop's streams (see [`Notification`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The global sequence number.
    pub seq: u64,
    /// The fanout stream's number (a fanout's own; for a host cast, the last fanout it reflects).
    pub fanout_seq: u64,
    /// The host stream's number, for host casts.
    pub host_seq: Option<u64>,
    /// The extension whose entries this carries, `None` for native entries.
    pub source: Option<String>,
}

impl StreamPosition {
    /// The stream numbers `notification` carries.
    pub fn of(notification: &Notification) -> Self {
        StreamPosition {
            seq: notification.seq,
            fanout_seq: notification.fanout_seq,
            host_seq: notification.host_seq,
            source: notification.source.clone(),
        }
    }
}

/// The deterministic `_unique_id` of notification `seq` from server `stream_id`: 32 lowercase
/// hex digits, like oslo's uuid4 hex.
pub fn unique_id(stream_id: u64, seq: u64) -> String {
    format!("{stream_id:016x}{seq:016x}")
}

/// Reads a method name.
pub fn parse_method(name: &str) -> Option<Method> {
    [
        Method::AddFdbEntries,
        Method::RemoveFdbEntries,
        Method::UpdateFdbEntries,
    ]
    .into_iter()
    .find(|m| m.as_str() == name)
}

/// Encodes `notification` as the complete AMQP body of an oslo cast. `context` is the base
/// context (normally [`Context::admin`]); `_context_l2pop` is appended after its keys.
pub fn encode_notification(
    notification: &Notification,
    stream_id: u64,
    context: &Context,
) -> Result<Vec<u8>, EncodeError> {
    #[derive(Serialize)]
    struct Args<'a> {
        fdb_entries: &'a FdbPayload,
    }
    let position = StreamPosition::of(notification);
    oslo::encode_request(&Request {
        method: notification.method.as_str(),
        args: &Args {
            fdb_entries: &notification.fdb_entries,
        },
        namespace: None,
        version: Some(API_VERSION),
        call: None,
        unique_id: &unique_id(stream_id, notification.seq),
        context: &ExtendedContext {
            base: context,
            key: STREAM_CONTEXT_KEY,
            value: &position,
        },
    })
}

/// An l2pop notification as an agent receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    pub method: Method,
    /// Where it came from: the fanout exchange, or this agent's host queue.
    pub target: Target,
    pub fdb_entries: FdbPayload,
    pub unique_id: Option<String>,
    /// The request context (`_context_*` keys, prefix removed), without `l2pop`.
    pub context: Map<String, Value>,
    /// l2pop's stream numbers; `None` for messages from Neutron's own server.
    pub stream: Option<StreamPosition>,
}

/// Decodes an l2pop cast body (with or without the envelope); `target` says which queue it
/// came from. A `host` argument (Neutron's server never sends one) is ignored.
pub fn decode_notification(body: &[u8], target: Target) -> Result<Received, DecodeError> {
    let mut request = oslo::decode_request(body)?;
    let method =
        parse_method(&request.method).ok_or(DecodeError::UnknownMethod(request.method.clone()))?;
    if let Some(version) = &request.version
        && version.split('.').next().map(str::trim) != Some("1")
    {
        return Err(DecodeError::UnsupportedVersion(version.clone()));
    }
    let entries = request
        .args
        .remove("fdb_entries")
        .ok_or(DecodeError::MissingField("fdb_entries"))?;
    if !entries.is_object() {
        return Err(DecodeError::WrongType {
            field: "fdb_entries".into(),
            expected: "an object",
            got: json_type(&entries),
        });
    }
    let fdb_entries = FdbPayload::deserialize(entries).map_err(DecodeError::BadFdbEntries)?;
    let stream = match request.context.remove(STREAM_CONTEXT_KEY) {
        None | Some(Value::Null) => None,
        Some(value) => {
            Some(StreamPosition::deserialize(value).map_err(DecodeError::BadStreamPosition)?)
        }
    };
    Ok(Received {
        method,
        target,
        fdb_entries,
        unique_id: request.unique_id,
        context: request.context,
        stream,
    })
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
