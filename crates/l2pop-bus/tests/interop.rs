//! Interop with the real Python code: oslo.messaging 18.3.1 and Neutron 24.0.0 in the venv
//! made by `scripts/python-venv` (or the python in `L2POP_INTEROP_PYTHON`), against the broker
//! of `L2POP_AMQP_URL`. Missing python or broker fails the tests; nothing is skipped.
//!
//! - A: our casts → a real oslo RPC server whose endpoint subclasses Neutron's
//!   `L2populationRpcCallBackMixin` (what the mixin hands `fdb_add`/`fdb_remove`/`fdb_update`).
//! - B: Neutron's `L2populationAgentNotifyAPI` → our `NotificationConsumer`.
//! - C: a Python `RPCClient.call` → our `RpcServer` (reply, and `RemoteError` for a failure).
//! - D: our `RpcClient` → a real oslo RPC server (reply, and a Python exception).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use l2pop_bus::rabbit::{
    ConsumerConfig, NotificationConsumer, NotificationPublisher, PublisherConfig, RpcClient,
    RpcClientConfig, RpcServer, RpcServerConfig,
};
use l2pop_bus::{Context, Received, RpcError, RpcFailure};
use l2pop_model::{
    ChgIp, FLOODING_ENTRY, FdbEntries, FdbPayload, IpChange, Method, NetworkFdb, NetworkId,
    NetworkType, Target,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

use common::*;

/// How long a Python helper may live, and how long we wait for one of its lines.
const HELPER_LIFETIME_SECS: u64 = 120;
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

fn python() -> PathBuf {
    let path = std::env::var_os("L2POP_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/interop-venv/bin/python")
        });
    assert!(
        path.exists(),
        "the interop python {} does not exist: run scripts/python-venv (or set L2POP_INTEROP_PYTHON)",
        path.display()
    );
    path
}

/// A Python helper from `tests/interop/`: JSON events on stdout, stderr kept for failure
/// messages, killed when dropped.
struct Helper {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
}

impl Helper {
    fn start(script: &str, args: &[&str]) -> Helper {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
        let mut child = Command::new(python())
            .arg("-u")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Helper {
            name: script.to_owned(),
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            stderr,
        }
    }

    fn fail(&self, what: &str) -> ! {
        let stderr = self.stderr.lock().unwrap().clone();
        panic!(
            "{}: {what}\n--- its stderr ---\n{}",
            self.name,
            stderr.trim_end()
        )
    }

    /// The next JSON event line.
    async fn event(&mut self) -> Value {
        loop {
            let line = match tokio::time::timeout(LINE_TIMEOUT, self.stdout.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => {
                    // Let the stderr reader catch up before reporting.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    self.fail("exited before printing the expected event")
                }
                Ok(Err(e)) => self.fail(&format!("stdout unreadable: {e}")),
                Err(_) => self.fail(&format!("no event within {LINE_TIMEOUT:?}")),
            };
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                return value;
            }
            eprintln!("{}: {line}", self.name);
        }
    }

    /// The next event, which must be `name`.
    async fn expect(&mut self, name: &str) -> Value {
        let event = self.event().await;
        if event["event"] != name {
            self.fail(&format!("expected event {name:?}, got {event}"));
        }
        event
    }

    /// Closes stdin and waits for a successful exit.
    async fn finish(mut self) {
        self.stdin.take();
        match tokio::time::timeout(LINE_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.fail(&format!("exited with {status}"))
            }
            Ok(Err(e)) => self.fail(&format!("cannot wait: {e}")),
            Err(_) => self.fail("did not exit"),
        }
    }
}

fn secs(n: u64) -> String {
    n.to_string()
}

/// The two network ids of a test, so concurrent runs can tell their messages apart.
fn networks() -> (NetworkId, NetworkId) {
    (network(), network())
}

fn gre_flood(net: NetworkId, vni: u32) -> FdbPayload {
    FdbPayload::Entries(FdbEntries::single(
        net,
        NetworkFdb {
            segment_id: Some(vni),
            network_type: NetworkType::Gre,
            ports: vec![(ip("198.51.100.3"), vec![FLOODING_ENTRY])],
        },
    ))
}

fn chg_ip(
    net: NetworkId,
    vtep: &str,
    before: Vec<l2pop_model::PortInfo>,
    after: Vec<l2pop_model::PortInfo>,
) -> FdbPayload {
    FdbPayload::ChgIp(ChgIp(vec![(
        net,
        vec![(ip(vtep), IpChange { before, after })],
    )]))
}

#[tokio::test]
async fn a_our_casts_reach_neutrons_l2pop_mixin() {
    let url = amqp_url();
    let topic = unique("l2pop-interop-a");
    let me = unique("agent");
    let mut agent = Helper::start(
        "l2pop_agent.py",
        &[&url, &topic, &me, &secs(HELPER_LIFETIME_SECS)],
    );
    agent.expect("ready").await;

    let mut config = PublisherConfig::new(url.clone(), 0xa);
    config.topic = topic.clone();
    let mut publisher = NotificationPublisher::connect(config)
        .await
        .unwrap_or_else(|e| broker_unreachable(e));
    let (net, net2) = networks();
    let sent = numbered(vec![
        (Target::Fanout, Method::AddFdbEntries, sample_add(net)),
        (
            Target::Host(host(&me)),
            Method::AddFdbEntries,
            sample_add(net2),
        ),
        (Target::Fanout, Method::RemoveFdbEntries, sample_remove(net)),
        (Target::Fanout, Method::UpdateFdbEntries, sample_update(net)),
        (
            Target::Host(host(&me)),
            Method::UpdateFdbEntries,
            chg_ip(
                net2,
                "192.0.2.12",
                vec![],
                vec![pi("fa:16:3e:11:22:33", "10.0.0.8")],
            ),
        ),
        (
            Target::Host(host(&me)),
            Method::RemoveFdbEntries,
            gre_flood(net2, 7),
        ),
    ]);
    for n in &sent {
        publisher.publish(n).await.unwrap();
    }

    let mut events = Vec::new();
    for _ in 0..sent.len() {
        events.push(agent.event().await);
    }
    let handler = |m: Method| match m {
        Method::AddFdbEntries => "fdb_add",
        Method::RemoveFdbEntries => "fdb_remove",
        Method::UpdateFdbEntries => "fdb_update",
    };
    // Each stream (fanout queue, host queue) is in order; match events to notifications by
    // payload, then check the order within each stream.
    let mut positions = Vec::new();
    for event in &events {
        let index = sent
            .iter()
            .position(|n| {
                event["event"] == handler(n.method)
                    && event["fdb_entries"] == serde_json::to_value(&n.fdb_entries).unwrap()
            })
            .unwrap_or_else(|| agent.fail(&format!("unexpected call {event}")));
        positions.push(index);
        assert_eq!(event["all_portinfo"], json!(true), "{event}");
        assert_eq!(event["context_class"], json!("neutron_lib.context.Context"));
        assert_eq!(event["is_admin"], json!(true));
        assert_eq!(event["roles"], json!(["admin", "member", "reader"]));
        assert!(event["request_id"].as_str().unwrap().starts_with("req-"));
        assert!(event["context"].get("l2pop").is_none());
    }
    for fanout in [true, false] {
        let order: Vec<_> = positions
            .iter()
            .filter(|&&i| (sent[i].target == Target::Fanout) == fanout)
            .collect();
        assert!(order.is_sorted(), "stream out of order: {order:?}");
        assert_eq!(order.len(), 3);
    }

    // Our consumer declares the same objects a real agent declared first: a differing flag
    // or argument would be PRECONDITION_FAILED here.
    let mut config = ConsumerConfig::new(url.clone(), host(&unique("other")));
    config.topic = topic.clone();
    let consumer = NotificationConsumer::connect(config)
        .await
        .expect("declarations equivalent to oslo's");
    delete_queues(consumer.queues()).await;
    publisher.shutdown(Duration::from_secs(10)).await.unwrap();
    agent.finish().await;
    delete_queues(&[topic.clone(), format!("{topic}.{me}")]).await;
}

/// Neutron's notifier, with the topic prefix `L2populationAgentNotifyAPI(topic=...)` takes
/// (Neutron passes `q-agent-notifier`), so this run has its own topic.
#[tokio::test]
async fn b_neutrons_notifier_reaches_our_consumer() {
    let url = amqp_url();
    let prefix = unique("q-agent-notifier-interop");
    let topic = format!("{prefix}-l2population-update");
    let me = unique("agent");
    let mut config = ConsumerConfig::new(url.clone(), host(&me));
    config.topic = topic.clone();
    let mut consumer = NotificationConsumer::connect(config)
        .await
        .unwrap_or_else(|e| broker_unreachable(e));
    let (net1, net2) = networks();
    let mut notifier = Helper::start(
        "neutron_notifier.py",
        &[
            &url,
            &prefix,
            &me,
            &net1.to_string(),
            &net2.to_string(),
            &secs(HELPER_LIFETIME_SECS),
        ],
    );
    let sent = notifier.expect("sent").await;
    assert_eq!(sent["topic"], json!(topic));
    notifier.finish().await;

    let vxlan = |ports: Vec<(&str, Vec<l2pop_model::PortInfo>)>| {
        FdbPayload::Entries(FdbEntries::single(
            net1,
            NetworkFdb {
                segment_id: Some(1001),
                network_type: NetworkType::Vxlan,
                ports: ports.into_iter().map(|(v, l)| (ip(v), l)).collect(),
            },
        ))
    };
    let me_target = Target::Host(host(&me));
    let expected = [
        (
            Method::AddFdbEntries,
            Target::Fanout,
            vxlan(vec![
                (
                    "192.0.2.11",
                    vec![FLOODING_ENTRY, pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
                ),
                (
                    "192.0.2.12",
                    vec![
                        FLOODING_ENTRY,
                        pi("fa:16:3e:11:22:33", "10.0.0.7"),
                        pi("fa:16:3e:11:22:33", "2001:db8::7"),
                    ],
                ),
            ]),
        ),
        (
            Method::AddFdbEntries,
            me_target.clone(),
            gre_flood(net2, 2002),
        ),
        (
            Method::RemoveFdbEntries,
            Target::Fanout,
            vxlan(vec![(
                "192.0.2.11",
                vec![pi("fa:16:3e:dd:ee:ff", "10.0.0.9")],
            )]),
        ),
        (
            Method::UpdateFdbEntries,
            Target::Fanout,
            chg_ip(
                net1,
                "192.0.2.11",
                vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.5")],
                vec![pi("fa:16:3e:aa:bb:cc", "10.0.0.6")],
            ),
        ),
        (
            Method::UpdateFdbEntries,
            me_target.clone(),
            chg_ip(
                net2,
                "198.51.100.3",
                vec![],
                vec![pi("fa:16:3e:00:00:01", "10.1.0.10")],
            ),
        ),
        (
            Method::RemoveFdbEntries,
            me_target.clone(),
            gre_flood(net2, 2002),
        ),
    ];

    let ours = |r: &Received| {
        let nets: Vec<NetworkId> = match &r.fdb_entries {
            FdbPayload::Entries(e) => e.0.iter().map(|(n, _)| *n).collect(),
            FdbPayload::ChgIp(c) => c.0.iter().map(|(n, _)| *n).collect(),
        };
        nets.iter().any(|n| *n == net1 || *n == net2)
    };
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let r = tokio::time::timeout(RECV_TIMEOUT, consumer.recv())
            .await
            .expect("Neutron's casts did not all arrive")
            .unwrap();
        if ours(&r) {
            received.push(r);
        }
    }
    for fanout in [true, false] {
        let exp: Vec<_> = expected
            .iter()
            .filter(|(_, t, _)| (*t == Target::Fanout) == fanout)
            .collect();
        let got: Vec<_> = received
            .iter()
            .filter(|r| (r.target == Target::Fanout) == fanout)
            .collect();
        assert_eq!(got.len(), exp.len());
        for (r, (method, target, payload)) in got.iter().zip(exp) {
            assert_eq!(r.method, *method);
            assert_eq!(&r.target, target);
            assert_eq!(&r.fdb_entries, payload);
            assert_eq!(r.stream, None, "Neutron sends no l2pop stream position");
            let id = r.unique_id.as_deref().unwrap();
            assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(r.context["is_admin"], json!(true));
            assert!(
                r.context["request_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("req-")
            );
        }
    }
    assert_eq!(consumer.rejected(), 0);
    delete_queues(consumer.queues()).await;
}

#[tokio::test]
async fn c_python_rpc_client_calls_our_server() {
    let url = amqp_url();
    let topic = unique("l2pop-interop-c");
    let (tx, mut requests) = mpsc::channel(16);
    let mut config = RpcServerConfig::new(url.clone(), "server-1");
    config.topic = topic.clone();
    let server = RpcServer::start(config, tx)
        .await
        .unwrap_or_else(|e| broker_unreachable(e));
    let (casts_tx, mut casts) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let reply = match request.method.as_str() {
                "echo" => {
                    Ok(json!({"args": request.args, "request_id": request.context["request_id"]}))
                }
                "fail" => Err(RpcFailure::new("NetworkNotFound", "network n1 not found")),
                _ => {
                    let _ = casts_tx.send((request.method.clone(), request.args.clone()));
                    continue;
                }
            };
            request.respond(reply);
        }
    });

    let mut client = Helper::start("rpc_client.py", &[&url, &topic, "server-1", "60"]);
    let echo = client.expect("echo").await;
    assert_eq!(
        echo["result"],
        json!({"args": {"host": "h1", "devices": ["a", "é"]}, "request_id": "req-python-1"})
    );
    let echo = client.expect("echo_server").await;
    assert_eq!(echo["result"]["args"], json!({"n": 1}));
    let error = client.expect("remote_error").await;
    assert_eq!(error["exc_type"], json!("NetworkNotFound"));
    assert_eq!(error["value"], json!("network n1 not found"));
    client.expect("done").await;
    client.finish().await;
    let (method, args) = tokio::time::timeout(RECV_TIMEOUT, casts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(method, "note");
    assert_eq!(args, json!({"seen": true}));
    delete_queues(server.queues()).await;
}

#[tokio::test]
async fn d_our_rpc_client_calls_a_python_server() {
    let url = amqp_url();
    let topic = unique("l2pop-interop-d");
    let me = unique("agent");
    let mut agent = Helper::start(
        "l2pop_agent.py",
        &[&url, &topic, &me, &secs(HELPER_LIFETIME_SECS)],
    );
    agent.expect("ready").await;
    let client = RpcClient::connect(RpcClientConfig::new(url.clone(), topic.clone()))
        .await
        .unwrap_or_else(|e| broker_unreachable(e));
    let context = Context::admin_now();
    let request_id = context.get("request_id").unwrap().clone();
    let args = json!({"x": [1, 2], "name": "é"})
        .as_object()
        .unwrap()
        .clone();
    let timeout = Duration::from_secs(30);

    let reply = client
        .call(Some(&me), "echo", &args, &context, timeout)
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"kwargs": {"x": [1, 2], "name": "é"}, "request_id": request_id})
    );
    let reply = client
        .call(None, "echo", &args, &context, timeout)
        .await
        .unwrap();
    assert_eq!(reply["kwargs"]["x"], json!([1, 2]));

    let args = json!({"message": "bad VNI"}).as_object().unwrap().clone();
    match client
        .call(Some(&me), "fail", &args, &context, timeout)
        .await
    {
        Err(RpcError::Remote {
            exc_type,
            module,
            message,
            traceback,
        }) => {
            assert_eq!(exc_type, "ValueError");
            assert_eq!(module, "builtins");
            assert_eq!(message, "bad VNI");
            assert!(
                traceback.iter().any(|l| l.contains("Traceback")),
                "{traceback:?}"
            );
        }
        other => agent.fail(&format!("expected a remote ValueError, got {other:?}")),
    }
    let reply_q = client.reply_queue().to_owned();
    client.close().await;
    agent.finish().await;
    delete_queues(&[topic.clone(), format!("{topic}.{me}"), reply_q]).await;
}
