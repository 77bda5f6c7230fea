//! The RPC roles shared by both transports: what an RPC server hands its owner
//! ([`RpcRequest`]), how an answer becomes an oslo reply, oslo's duplicate filter, and the
//! publisher counters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::error::{EncodeError, RpcError};
use crate::oslo::{self, IncomingRequest, RemoteFailure, Reply};

/// The answer to a call: a JSON result, or a failure the caller sees as oslo's `RemoteError`.
pub type RpcReply = Result<Value, RpcFailure>;

/// A failure to report to an RPC caller. A Python `RPCClient.call` raises
/// `oslo_messaging.RemoteError` with `exc_type` and `value` = `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcFailure {
    pub exc_type: String,
    pub message: String,
}

impl RpcFailure {
    /// A failure of class `exc_type` with `message`.
    pub fn new(exc_type: impl Into<String>, message: impl Into<String>) -> Self {
        RpcFailure {
            exc_type: exc_type.into(),
            message: message.into(),
        }
    }
}

/// One request received by an RPC server. Casts have no `reply`; for calls, send exactly one
/// [`RpcReply`] (dropping the sender answers the caller with a `RequestDropped` failure).
#[derive(Debug)]
pub struct RpcRequest {
    pub method: String,
    /// The keyword arguments, a JSON object.
    pub args: Value,
    /// The request context (`_context_*` keys, prefix removed).
    pub context: Map<String, Value>,
    pub reply: Option<oneshot::Sender<RpcReply>>,
}

impl RpcRequest {
    /// Answers a call (no-op for a cast). Returns false when the caller is gone.
    pub fn respond(self, reply: RpcReply) -> bool {
        match self.reply {
            Some(sender) => sender.send(reply).is_ok(),
            None => true,
        }
    }
}

/// Turns a decoded request into what the server's owner receives, plus the receiving end of
/// the answer for calls (with the call's reply address).
pub(crate) fn dispatch(
    request: IncomingRequest,
) -> (
    RpcRequest,
    Option<(oslo::CallInfo, oneshot::Receiver<RpcReply>)>,
) {
    let (reply, pending) = match request.call {
        Some(call) => {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some((call, rx)))
        }
        None => (None, None),
    };
    let rpc = RpcRequest {
        method: request.method,
        args: Value::Object(request.args),
        context: request.context,
        reply,
    };
    (rpc, pending)
}

/// The reply body for `msg_id`. `None` means the owner dropped the request unanswered.
pub(crate) fn reply_body(msg_id: &str, answer: Option<RpcReply>) -> Result<Vec<u8>, EncodeError> {
    let (result, failure) = match answer {
        Some(Ok(value)) => (value, None),
        Some(Err(failure)) => (
            Value::Null,
            Some(RemoteFailure::l2pop(&failure.exc_type, &failure.message)),
        ),
        None => (
            Value::Null,
            Some(RemoteFailure::l2pop(
                "RequestDropped",
                "the l2pop server dropped the request without answering",
            )),
        ),
    };
    oslo::encode_reply(&Reply {
        msg_id: msg_id.to_owned(),
        result,
        failure,
        ending: true,
        unique_id: Some(crate::wire::uuid_hex()),
    })
}

/// A decoded reply as the caller's result.
pub(crate) fn reply_result(reply: Reply) -> Result<Value, RpcError> {
    match reply.failure {
        Some(failure) => Err(RpcError::Remote {
            exc_type: failure.class,
            module: failure.module,
            message: failure.message,
            traceback: failure.tb,
        }),
        None => Ok(reply.result),
    }
}

/// oslo's `_MsgIdCache`: the last 16 `_unique_id`s seen; a repeat is a redelivery.
#[derive(Debug, Default)]
pub(crate) struct DuplicateFilter {
    recent: VecDeque<String>,
}

impl DuplicateFilter {
    const SIZE: usize = 16;

    /// True when `unique_id` was seen recently (and so must be dropped); records it otherwise.
    pub(crate) fn is_duplicate(&mut self, unique_id: Option<&str>) -> bool {
        let Some(id) = unique_id else {
            return false;
        };
        if self.recent.iter().any(|seen| seen == id) {
            return true;
        }
        if self.recent.len() == Self::SIZE {
            self.recent.pop_front();
        }
        self.recent.push_back(id.to_owned());
        false
    }
}

/// Counters of a notification publisher, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Messages handed to the broker, resends included.
    pub published_messages: u64,
    /// Body bytes handed to the broker, resends included.
    pub published_bytes: u64,
    /// Messages the broker confirmed.
    pub confirmed_messages: u64,
    /// Messages published again after a connection loss.
    pub resent_messages: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    published_messages: AtomicU64,
    published_bytes: AtomicU64,
    confirmed_messages: AtomicU64,
    resent_messages: AtomicU64,
    reconnects: AtomicU64,
}

impl Counters {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Counters::default())
    }

    pub(crate) fn published(&self, bytes: usize, resend: bool) {
        self.published_messages.fetch_add(1, Ordering::Relaxed);
        self.published_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        if resend {
            self.resent_messages.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn confirmed(&self) {
        self.confirmed_messages.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> PublisherStats {
        PublisherStats {
            published_messages: self.published_messages.load(Ordering::Relaxed),
            published_bytes: self.published_bytes.load(Ordering::Relaxed),
            confirmed_messages: self.confirmed_messages.load(Ordering::Relaxed),
            resent_messages: self.resent_messages.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn duplicate_filter_remembers_sixteen() {
        let mut filter = DuplicateFilter::default();
        assert!(!filter.is_duplicate(Some("a")));
        assert!(filter.is_duplicate(Some("a")));
        for i in 0..16 {
            assert!(!filter.is_duplicate(Some(&i.to_string())));
        }
        assert!(!filter.is_duplicate(Some("a")), "evicted after 16 others");
        assert!(!filter.is_duplicate(None));
        assert!(!filter.is_duplicate(None));
    }

    #[test]
    fn dropped_request_answers_with_a_failure() {
        let body = reply_body("m", None).unwrap();
        let reply = oslo::decode_reply(&body).unwrap();
        let err = reply_result(reply).unwrap_err();
        assert!(matches!(err, RpcError::Remote { exc_type, .. } if exc_type == "RequestDropped"));
    }
}
