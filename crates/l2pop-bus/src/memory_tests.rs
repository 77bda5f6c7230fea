#![allow(clippy::unwrap_used)]

use l2pop_model::{FLOODING_ENTRY, FdbEntries, FdbPayload, Method, NetworkFdb, NetworkType};
use serde_json::json;

use super::*;
use crate::{RpcFailure, StreamPosition};

fn host(name: &str) -> Host {
    Host::new(name).unwrap()
}

fn notification(seq: u64, target: Target) -> Notification {
    Notification {
        seq,
        target,
        method: Method::AddFdbEntries,
        source: None,
        fdb_entries: FdbPayload::Entries(FdbEntries::single(
            "9f1b7a52-5d2c-4c8e-9a3e-2b6f0c1d4e5f".parse().unwrap(),
            NetworkFdb {
                segment_id: Some(1001),
                network_type: NetworkType::Vxlan,
                ports: vec![("192.0.2.11".parse().unwrap(), vec![FLOODING_ENTRY])],
            },
        )),
        fanout_seq: seq,
        host_seq: None,
    }
}

#[tokio::test]
async fn fanouts_reach_everyone_host_casts_one_host() {
    let bus = MemoryBus::new();
    let mut a = bus.consumer(host("a"));
    let mut b = bus.consumer(host("b"));
    let mut publisher = bus.publisher(7);
    let mut confirmed = publisher.confirmed();

    publisher
        .publish(&notification(1, Target::Fanout))
        .await
        .unwrap();
    publisher
        .publish(&notification(2, Target::Host(host("b"))))
        .await
        .unwrap();
    publisher
        .publish(&notification(3, Target::Fanout))
        .await
        .unwrap();
    confirmed.changed().await.unwrap();
    assert_eq!(*confirmed.borrow(), 3);

    let seqs = |c: &mut MemoryConsumer| {
        std::iter::from_fn(|| c.try_recv())
            .map(|r| (r.target, r.stream.map(|s| s.seq)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(&mut a),
        [(Target::Fanout, Some(1)), (Target::Fanout, Some(3))]
    );
    assert_eq!(
        seqs(&mut b),
        [
            (Target::Fanout, Some(1)),
            (Target::Host(host("b")), Some(2)),
            (Target::Fanout, Some(3))
        ]
    );
    let stats = publisher.stats();
    assert_eq!(stats.published_messages, 3);
    assert_eq!(stats.confirmed_messages, 3);
    assert!(stats.published_bytes > 3 * 1000);
}

#[tokio::test]
async fn received_carries_payload_and_stream() {
    let bus = MemoryBus::new();
    let mut a = bus.consumer(host("a"));
    let mut publisher = bus.publisher(1);
    let sent = notification(5, Target::Fanout);
    publisher.publish(&sent).await.unwrap();
    let received = a.recv().await.unwrap();
    assert_eq!(received.method, Method::AddFdbEntries);
    assert_eq!(received.fdb_entries, sent.fdb_entries);
    assert_eq!(
        received.unique_id.as_deref(),
        Some("00000000000000010000000000000005")
    );
    assert_eq!(
        received.stream,
        Some(StreamPosition {
            seq: 5,
            fanout_seq: 5,
            host_seq: None,
            source: None
        })
    );
    assert_eq!(received.context["is_admin"], json!(true));
}

#[tokio::test]
async fn out_of_order_publish_is_refused() {
    let bus = MemoryBus::new();
    let mut publisher = bus.publisher(1);
    publisher
        .publish(&notification(2, Target::Fanout))
        .await
        .unwrap();
    let err = publisher
        .publish(&notification(2, Target::Fanout))
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::OutOfOrder { last: 2, got: 2 }));
}

#[tokio::test]
async fn rpc_call_reply_failure_and_cast() {
    let bus = MemoryBus::new();
    let (tx, mut requests) = mpsc::channel(8);
    let _server = bus.rpc_server("server-1", tx);
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let reply = match request.method.as_str() {
                "echo" => Ok(request.args.clone()),
                "fail" => Err(RpcFailure::new("NetworkNotFound", "no such network")),
                "drop" => continue,
                _ => Ok(json!(request.context["request_id"])),
            };
            request.respond(reply);
        }
    });
    let client = bus.rpc_client();
    let mut context = Context::new();
    context.insert("request_id", "req-1");
    let args = json!({"x": [1, "é"]}).as_object().unwrap().clone();
    let timeout = Duration::from_secs(5);

    let echoed = client
        .call(None, "echo", &args, &context, timeout)
        .await
        .unwrap();
    assert_eq!(echoed, json!({"x": [1, "é"]}));
    let echoed = client
        .call(Some("server-1"), "ctx", &args, &context, timeout)
        .await
        .unwrap();
    assert_eq!(echoed, json!("req-1"));

    let err = client
        .call(None, "fail", &args, &context, timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RpcError::Remote { exc_type, message, .. } if exc_type == "NetworkNotFound" && message == "no such network"),
        "{err}"
    );
    let err = client
        .call(None, "drop", &args, &context, timeout)
        .await
        .unwrap_err();
    assert!(matches!(&err, RpcError::Remote { exc_type, .. } if exc_type == "RequestDropped"));

    client.cast(None, "echo", &args, &context).unwrap();
    let err = client
        .call(Some("nobody"), "echo", &args, &context, timeout)
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Bus(BusError::Unroutable(_))));
}
