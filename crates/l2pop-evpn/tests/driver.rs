//! The tokio driver over loopback TCP: two of our sessions reaching Established with each
//! other (one active, one passive behind `listen`) and a Cease on stop; and a session fed the
//! bytes FRR 8.4 sent (captured), through real sockets. FRR itself is in
//! `crates/l2pop/tests/bgp_frr.rs`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use l2pop_evpn::driver::{self, Neighbour, SessionEvent};
use l2pop_evpn::{DownReason, LocalOpen, RibChange, SessionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

include!("../testdata/frr_8_4.rs");

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(30);

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn session(router_id: [u8; 4], passive: bool) -> SessionConfig {
    SessionConfig {
        local: LocalOpen {
            asn: 65000,
            router_id: Ipv4Addr::from(router_id),
            hold_time: 30,
            graceful_restart_time: 120,
        },
        peer_as: 65000,
        passive,
        connect_retry: Duration::from_secs(1),
        keepalive: None,
        advertises: false,
    }
}

async fn next(events: &mut mpsc::Receiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no session event in time")
        .expect("event channel closed")
}

#[tokio::test]
async fn two_speakers_establish_and_a_stop_is_a_cease() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop_b = CancellationToken::new();
    let (events_b, mut b) = mpsc::channel(16);
    let passive = driver::spawn(
        Neighbour {
            address: LOOPBACK,
            port: 179,
            local_address: None,
            session: session([192, 0, 2, 2], true),
        },
        events_b,
        stop_b.clone(),
    );
    let peers = HashMap::from([(LOOPBACK, passive.inbound.clone())]);
    tokio::spawn(driver::listen(listener, peers, stop_b.clone()));

    let stop_a = CancellationToken::new();
    let (events_a, mut a) = mpsc::channel(16);
    let active = driver::spawn(
        Neighbour {
            address: LOOPBACK,
            port,
            local_address: Some(LOOPBACK),
            session: session([192, 0, 2, 1], false),
        },
        events_a,
        stop_a.clone(),
    );
    for events in [&mut a, &mut b] {
        match next(events).await {
            SessionEvent::Up { negotiated, .. } => {
                assert_eq!(negotiated.hold_time, 30);
                assert!(negotiated.peer.evpn && negotiated.peer.enhanced_route_refresh);
            }
            other => panic!("{other:?}"),
        }
    }
    // Each says it has nothing to send: End-of-RIB.
    for events in [&mut a, &mut b] {
        assert!(matches!(next(events).await, SessionEvent::EndOfRib { .. }));
    }
    stop_a.cancel();
    match next(&mut b).await {
        SessionEvent::Down {
            reason: DownReason::NotificationReceived(n),
            ..
        } => assert_eq!((n.code, n.subcode), (6, 2)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        next(&mut a).await,
        SessionEvent::Down {
            reason: DownReason::Stopped,
            ..
        }
    ));
    assert!(matches!(next(&mut a).await, SessionEvent::Stopped { .. }));
    active.task.await.unwrap();
    stop_b.cancel();
    passive.task.await.unwrap();
}

#[tokio::test]
async fn frr_bytes_over_tcp_become_routes_and_a_closed_connection_withdraws_them() {
    let frr = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = frr.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    let (events, mut rx) = mpsc::channel(16);
    let handle = driver::spawn(
        Neighbour {
            address: LOOPBACK,
            port,
            local_address: None,
            session: session([192, 0, 2, 1], false),
        },
        events,
        stop.clone(),
    );
    let (mut socket, _) = tokio::time::timeout(WAIT, frr.accept())
        .await
        .unwrap()
        .unwrap();
    // Our OPEN arrives first; then FRR's OPEN, its KEEPALIVE and its UPDATEs.
    let mut header = [0u8; 19];
    socket.read_exact(&mut header).await.unwrap();
    assert_eq!(header[18], 1, "an OPEN");
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[16], header[17]])) - 19];
    socket.read_exact(&mut body).await.unwrap();
    socket.write_all(&hex(FRR_OPEN)).await.unwrap();
    let keepalive = [&[0xff; 16][..], &[0, 19, 4]].concat();
    socket.write_all(&keepalive).await.unwrap();
    assert!(matches!(next(&mut rx).await, SessionEvent::Up { .. }));
    socket.write_all(&hex(FRR_UPDATES)).await.unwrap();
    let mut added = 0;
    loop {
        match next(&mut rx).await {
            SessionEvent::Routes { changes, .. } => {
                assert!(changes.iter().all(|c| matches!(c, RibChange::Added { .. })));
                added += changes.len();
            }
            SessionEvent::EndOfRib { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(added, 4);
    drop(socket);
    assert!(matches!(
        next(&mut rx).await,
        SessionEvent::Down {
            reason: DownReason::ConnectionLost,
            ..
        }
    ));
    match next(&mut rx).await {
        SessionEvent::Routes { changes, .. } => {
            assert_eq!(changes.len(), 4);
            assert!(
                changes
                    .iter()
                    .all(|c| matches!(c, RibChange::Removed { .. }))
            );
        }
        other => panic!("{other:?}"),
    }
    // It comes back by itself: a new connection after ConnectRetry.
    let (_socket, _) = tokio::time::timeout(WAIT, frr.accept())
        .await
        .unwrap()
        .unwrap();
    stop.cancel();
    handle.task.await.unwrap();
}
