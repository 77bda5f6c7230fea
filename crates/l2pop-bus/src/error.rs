//! The bus's typed errors: what failed to encode, to decode, to reach the broker, or to answer.

use thiserror::Error;

/// A message that could not be rendered as JSON (only non-string map keys or a failing
/// `Serialize` implementation can cause it).
#[derive(Debug, Error)]
#[error("cannot encode {what} as JSON: {source}")]
pub struct EncodeError {
    pub what: &'static str,
    #[source]
    pub source: serde_json::Error,
}

impl EncodeError {
    pub(crate) fn new(what: &'static str, source: serde_json::Error) -> Self {
        EncodeError { what, source }
    }
}

/// A body that is not a valid oslo.messaging message, or not a valid l2pop notification.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("message body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("message body is not a JSON object (got {0})")]
    NotAnObject(&'static str),
    #[error("unsupported oslo envelope version {0:?}: this side speaks 2.0")]
    UnsupportedEnvelopeVersion(String),
    #[error("oslo.message is not a string holding a JSON object: {0}")]
    BadInnerMessage(String),
    #[error("message has no {0:?} field")]
    MissingField(&'static str),
    #[error("field {field:?} must be {expected}, got {got}")]
    WrongType {
        field: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error(
        "unknown l2pop method {0:?}: expected add_fdb_entries, remove_fdb_entries or update_fdb_entries"
    )]
    UnknownMethod(String),
    #[error("unsupported l2pop API version {0:?}: this side speaks 1.x")]
    UnsupportedVersion(String),
    #[error("invalid fdb_entries: {0}")]
    BadFdbEntries(#[source] serde_json::Error),
    #[error("invalid _context_l2pop stream position: {0}")]
    BadStreamPosition(#[source] serde_json::Error),
    #[error("invalid RPC failure payload: {0}")]
    BadFailure(String),
}

/// Names a JSON value's type for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A transport failure: the broker could not be reached, refused a declaration, or a task that
/// owns a connection is gone.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("cannot connect to the AMQP broker at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: lapin::Error,
    },
    #[error("invalid AMQP URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("AMQP {operation} failed: {source}")]
    Amqp {
        operation: String,
        #[source]
        source: lapin::Error,
    },
    #[error("the broker refused the publish of notification seq {seq} (nack)")]
    Nacked { seq: u64 },
    #[error(
        "notification seq {got} is not after seq {last}: notifications must be published in sequence order"
    )]
    OutOfOrder { last: u64, got: u64 },
    /// A queue name, exchange name or routing key longer than an AMQP `shortstr` (255 bytes):
    /// refused before it reaches lapin, which cannot encode it.
    #[error("{what} {value:?} is {} bytes; AMQP carries at most 255", value.len())]
    TooLong { what: &'static str, value: String },
    /// A notifier topic so long that a host cast to a [`l2pop_model::Host::MAX_LEN`]-byte host
    /// would not fit a routing key.
    #[error(
        "topic {topic:?} is {} bytes; at most {max} leave room for every host name in a routing key",
        topic.len()
    )]
    TopicTooLong { topic: String, max: usize },
    #[error("no queue is bound for routing key {0:?}")]
    Unroutable(String),
    #[error("the {0} task has stopped")]
    Closed(&'static str),
    #[error("shutdown timed out with {unconfirmed} notification(s) still unconfirmed")]
    ShutdownTimeout { unconfirmed: usize },
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl BusError {
    /// True when only the one message was refused (it cannot be carried or is out of order)
    /// and the publisher goes on working; false when the transport itself failed.
    pub fn is_per_message(&self) -> bool {
        matches!(
            self,
            BusError::TooLong { .. } | BusError::Encode(_) | BusError::OutOfOrder { .. }
        )
    }

    pub(crate) fn amqp(operation: impl Into<String>, source: lapin::Error) -> Self {
        BusError::Amqp {
            operation: operation.into(),
            source,
        }
    }
}

/// Why an RPC call got no result.
#[derive(Debug, Error)]
pub enum RpcError {
    /// The server answered with a failure (oslo's `RemoteError`).
    #[error("remote error: {exc_type} {message}")]
    Remote {
        exc_type: String,
        module: String,
        message: String,
        traceback: Vec<String>,
    },
    #[error("no reply to {method} within {timeout:?}")]
    Timeout {
        method: String,
        timeout: std::time::Duration,
    },
    /// The call was returned unrouted: no server has declared a queue for its topic (yet).
    #[error("no server listens on {topic}: the call was not routed")]
    NoServer { topic: String },
    #[error("undecodable reply: {0}")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Bus(#[from] BusError),
}
