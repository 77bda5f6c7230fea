//! The one place the client does I/O: resolves the endpoint (flags, then `L2POP_URL` /
//! `L2POP_TOKEN`, then the default), sends one [`Request`] with `X-Auth-Token`, and turns the
//! answer into JSON or a [`ClientError`] carrying the API's `NeutronError` verbatim.

use std::time::Duration;

use serde_json::Value;

use super::args::{ClientOptions, DEFAULT_URL};
use super::error::ClientError;
use super::plan::{Method, Request};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where requests go and with which token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://host:port`, no trailing slash.
    pub base: String,
    pub token: Option<String>,
}

impl Endpoint {
    /// Flags first, then `env` (`L2POP_URL`, `L2POP_TOKEN`), then the default URL.
    pub fn new(
        options: &ClientOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Endpoint, ClientError> {
        let url = options
            .url
            .clone()
            .or_else(|| env("L2POP_URL"))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| ClientError::Usage(format!("--url {url:?} is not a URL: {e}")))?;
        if parsed.scheme() != "http" {
            return Err(ClientError::Usage(format!(
                "--url {url:?}: only http:// is supported (put a TLS proxy in front for https)"
            )));
        }
        let token = options
            .token
            .clone()
            .or_else(|| env("L2POP_TOKEN"))
            .filter(|t| !t.is_empty());
        Ok(Endpoint {
            base: url.trim_end_matches('/').to_owned(),
            token,
        })
    }
}

/// Sends `request`; `None` for an empty answer (204).
pub async fn send(endpoint: &Endpoint, request: &Request) -> Result<Option<Value>, ClientError> {
    let unreachable = |error: reqwest::Error| ClientError::Unreachable {
        url: endpoint.base.clone(),
        cause: root_cause(&error),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(unreachable)?;
    let url = format!("{}{}", endpoint.base, request.path);
    let mut builder = client.request(method(request.method), &url);
    if let Some(token) = &endpoint.token {
        builder = builder.header("X-Auth-Token", token);
    }
    if let Some(body) = &request.body {
        builder = builder.json(body);
    }
    let response = builder.send().await.map_err(unreachable)?;
    let status = response.status();
    let text = response.text().await.map_err(unreachable)?;
    answer(status.as_u16(), status.canonical_reason(), &text)
}

/// `GET base + path` from a running agent's status endpoint (no token: it listens on loopback).
pub async fn get_agent(base: &str, path: &str) -> Result<Value, ClientError> {
    let unreachable = |error: reqwest::Error| ClientError::Unreachable {
        url: base.to_owned(),
        cause: root_cause(&error),
    };
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(unreachable)?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let response = client.get(&url).send().await.map_err(unreachable)?;
    let status = response.status();
    let text = response.text().await.map_err(unreachable)?;
    answer(status.as_u16(), status.canonical_reason(), &text)?
        .ok_or_else(|| ClientError::Answer(format!("empty answer from {url}")))
}

fn method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// The innermost cause (`Connection refused (os error 111)`), which names the problem best.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// A 2xx answer as JSON (`None` when empty); any other status as [`ClientError::Api`] with the
/// `NeutronError`'s type and message; without one, webob's name for the status
/// (`HTTPNotFound`) and the raw text.
pub fn answer(status: u16, reason: Option<&str>, text: &str) -> Result<Option<Value>, ClientError> {
    if (200..300).contains(&status) {
        if text.trim().is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(text)
            .map(Some)
            .map_err(|e| ClientError::Answer(format!("not JSON ({e}): {text}")));
    }
    let body: Option<Value> = serde_json::from_str(text).ok();
    let neutron = body.as_ref().map(|b| &b["NeutronError"]);
    let field = |key: &str| neutron.and_then(|n| n[key].as_str()).map(str::to_owned);
    let reason = reason.unwrap_or("HTTP error");
    Err(ClientError::Api {
        status,
        kind: field("type").unwrap_or_else(|| format!("HTTP{}", reason.replace(' ', ""))),
        message: field("message").unwrap_or_else(|| fallback_message(text, reason)),
    })
}

fn fallback_message(text: &str, reason: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        reason.to_owned()
    } else {
        text.to_owned()
    }
}
