//! The reporter: delivers the speaker's reports to the server's REST API, in order.
//!
//! Reports arrive one by one; whatever is queued when the reporter is free is cut into
//! requests by [`batches`]: consecutive gateway routes become one `POST …/gateways`,
//! consecutive device routes one `POST …/devices` (at most `batch_max` each), agent states one
//! `PUT /v2.0/l2pop/bgp-agents/{host}` each, End-of-RIB one `POST …/end-of-rib`. A request the server could not take (unreachable,
//! 5xx) is retried, and nothing behind it is sent before it succeeds; one it refuses (4xx) is
//! logged, counted and dropped, since sending it again cannot succeed.

use std::collections::VecDeque;
use std::time::Duration;

use l2pop_bgpvpn::{DeviceRoute, GatewayRoute};
use l2pop_evpn::Learned;
use l2pop_model::Host;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::ServerSettings;

/// One thing to tell the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The BGP agent's state (cases 6a with `start_flag`, 6b with `alive: false`);
    /// `graceful_restart` with `start_flag`: keep what an earlier run reported, stale.
    Agent {
        alive: bool,
        start_flag: bool,
        graceful_restart: bool,
    },
    Route(Learned),
    /// After a graceful restart, every route is re-learned: purge the stale ones.
    EndOfRib,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    Agent {
        alive: bool,
        start_flag: bool,
        graceful_restart: bool,
    },
    Gateways(Vec<GatewayRoute>),
    Devices(Vec<DeviceRoute>),
    EndOfRib,
}

/// Cuts the queue into requests without reordering anything.
pub fn batches(queue: impl IntoIterator<Item = Report>, batch_max: usize) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for report in queue {
        match (report, out.last_mut()) {
            (
                Report::Agent {
                    alive,
                    start_flag,
                    graceful_restart,
                },
                _,
            ) => out.push(Batch::Agent {
                alive,
                start_flag,
                graceful_restart,
            }),
            (Report::EndOfRib, _) => out.push(Batch::EndOfRib),
            (Report::Route(Learned::Gateway(g)), Some(Batch::Gateways(list)))
                if list.len() < batch_max =>
            {
                list.push(g);
            }
            (Report::Route(Learned::Gateway(g)), _) => out.push(Batch::Gateways(vec![g])),
            (Report::Route(Learned::Device(d)), Some(Batch::Devices(list)))
                if list.len() < batch_max =>
            {
                list.push(d);
            }
            (Report::Route(Learned::Device(d)), _) => out.push(Batch::Devices(vec![d])),
        }
    }
    out
}

impl Batch {
    /// How many learned routes (gateways and devices) the request carries.
    pub fn routes(&self) -> usize {
        match self {
            Batch::Gateways(list) => list.len(),
            Batch::Devices(list) => list.len(),
            Batch::Agent { .. } | Batch::EndOfRib => 0,
        }
    }

    fn request(&self, host: &Host) -> (reqwest::Method, String, Value) {
        let agent = format!("/v2.0/l2pop/bgp-agents/{host}");
        match self {
            Batch::Agent {
                alive,
                start_flag,
                graceful_restart,
            } => (
                reqwest::Method::PUT,
                agent,
                json!({"bgp_agent": {"admin_state_up": true, "alive": alive, "start_flag": start_flag, "graceful_restart": graceful_restart}}),
            ),
            Batch::EndOfRib => (
                reqwest::Method::POST,
                format!("{agent}/end-of-rib"),
                json!({}),
            ),
            Batch::Gateways(list) => (
                reqwest::Method::POST,
                format!("{agent}/gateways"),
                json!({ "gateways": list }),
            ),
            Batch::Devices(list) => (
                reqwest::Method::POST,
                format!("{agent}/devices"),
                json!({ "devices": list }),
            ),
        }
    }
}

enum Delivery {
    Done,
    Refused(String),
    Retry(String),
}

async fn deliver(
    http: &reqwest::Client,
    server: &ServerSettings,
    host: &Host,
    batch: &Batch,
) -> Delivery {
    let (method, path, body) = batch.request(host);
    let mut request = http
        .request(method, format!("{}{path}", server.url))
        .json(&body);
    if let Some(token) = &server.token {
        request = request.header("X-Auth-Token", token);
    }
    match request.send().await {
        Err(error) => Delivery::Retry(error.to_string()),
        Ok(response) if response.status().is_success() => Delivery::Done,
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Delivery::Retry(format!("{status} {text}"))
            } else {
                Delivery::Refused(format!("{status} {text}"))
            }
        }
    }
}

/// Delivers `reports` until the channel closes and the queue is empty, or `stop`.
pub async fn run(
    server: ServerSettings,
    host: Host,
    mut reports: mpsc::UnboundedReceiver<Report>,
    stop: CancellationToken,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            report = reports.recv() => match report {
                Some(report) => report,
                None => return,
            },
        };
        let mut queue = VecDeque::from([first]);
        while let Ok(report) = reports.try_recv() {
            queue.push_back(report);
        }
        for batch in batches(queue, server.batch_max) {
            let mut backoff = Duration::from_millis(100);
            loop {
                match deliver(&http, &server, &host, &batch).await {
                    Delivery::Done => {
                        // What the server took, for benchmarks (bgp_routes) and debugging.
                        tracing::debug!(routes = batch.routes(), "reported to the server");
                        break;
                    }
                    Delivery::Refused(why) => {
                        tracing::error!(?batch, %why, "the server refused a BGP report; dropped");
                        metrics::counter!("l2pop_bgp_reports_refused_total").increment(1);
                        break;
                    }
                    Delivery::Retry(why) => {
                        tracing::warn!(%why, retry_in = ?backoff, "cannot report to the server");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }
}
