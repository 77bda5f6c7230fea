#![allow(clippy::unwrap_used)]

use std::time::Duration;

use l2pop_model::{FdbEntries, FdbPayload, Host, Method, Notification, Target};
use serde_json::json;
use tokio::sync::mpsc;

use super::*;

fn notification(seq: u64, target: Target) -> Notification {
    Notification {
        seq,
        target,
        method: Method::AddFdbEntries,
        source: None,
        fdb_entries: FdbPayload::Entries(FdbEntries::default()),
        fanout_seq: seq,
        host_seq: None,
    }
}

#[tokio::test]
async fn topics_that_leave_no_room_for_a_host_are_refused() {
    let mut settings = BusSettings::memory(MemoryBus::new());
    settings.topic = format!("{}x", wire::DEFAULT_TOPIC);
    let error = connect(&settings).await.unwrap_err();
    assert!(matches!(error, BusError::TopicTooLong { .. }), "{error}");
    let mut settings = BusSettings::rabbit("http://nowhere");
    settings.topic = "short".to_owned();
    let error = connect(&settings).await.unwrap_err();
    assert!(matches!(error, BusError::BadUrl { .. }), "{error}");
}

#[tokio::test]
async fn the_memory_backend_plays_every_role() {
    let bus = connect(&BusSettings::memory(MemoryBus::new()))
        .await
        .unwrap();
    let host = Host::new("compute-1").unwrap();
    let mut consumer = bus.consumer(host.clone());
    let mut publisher = bus.publisher(7, 0);
    publisher
        .publish(&notification(1, Target::Host(host)))
        .await
        .unwrap();
    let received = consumer.recv().await.unwrap();
    assert_eq!(
        received.unique_id.as_deref(),
        Some("00000000000000070000000000000001")
    );
    assert_eq!(*publisher.confirmed().borrow(), 1);

    let (tx, mut requests) = mpsc::channel(4);
    let _server = bus.rpc_server("server-1", tx);
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            if let Some(reply) = request.reply {
                let _ = reply.send(Ok(json!({"method": request.method})));
            }
        }
    });
    let client = bus.rpc_client();
    let answer = client
        .call(
            None,
            "ping",
            &serde_json::Map::new(),
            &Context::admin_now(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(answer, json!({"method": "ping"}));
}

#[tokio::test]
async fn the_longest_host_fits_the_longest_topic() {
    let mut settings = BusSettings::memory(MemoryBus::new());
    settings.topic = "t".repeat(wire::MAX_TOPIC_LEN);
    let bus = connect(&settings).await.unwrap();
    let mut publisher = bus.publisher(1, 0);
    let longest = Host::new(&"h".repeat(Host::MAX_LEN)).unwrap();
    publisher
        .publish(&notification(1, Target::Host(longest)))
        .await
        .unwrap();
    publisher
        .publish(&notification(2, Target::Fanout))
        .await
        .unwrap();
    assert_eq!(*publisher.confirmed().borrow(), 2);
}
