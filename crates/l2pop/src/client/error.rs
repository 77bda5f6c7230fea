//! What can go wrong in a client verb, and the exit code each maps to.

/// A failed client verb.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API refused the request: Neutron's `NeutronError` type and message, verbatim.
    #[error("{status} {kind}: {message}")]
    Api {
        status: u16,
        kind: String,
        message: String,
    },
    /// No HTTP exchange happened (refused, unresolvable, timed out).
    #[error("cannot reach the l2pop server at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    /// The server answered 2xx with something the verb cannot show.
    #[error("unexpected answer from the server: {0}")]
    Answer(String),
    /// The arguments ask for something the client will not send.
    #[error("{0}")]
    Usage(String),
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl ClientError {
    /// 2 for a usage error (as clap's own), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The stderr line: the API's words alone, anything else prefixed with `l2pop: `.
    pub fn to_stderr(&self) -> String {
        match self {
            ClientError::Api { .. } => self.to_string(),
            _ => format!("l2pop: {self}"),
        }
    }
}
