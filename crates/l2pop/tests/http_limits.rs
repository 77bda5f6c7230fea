//! The API listener's limits: an idle socket, a half-sent request head and an idle keep-alive
//! connection are closed; at the connection cap a new connection waits (unserved) while
//! `/healthz` on an existing connection still answers, and it is served once one closes.
//! Before, no timeout or cap existed: 1,000 idle sockets were held forever, and at the
//! open-file limit the API and `/healthz` stopped answering.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: the server's timeouts below are 1 s; this only bounds a hung test.
const PATIENCE: Duration = Duration::from_secs(30);

fn server_config(dir: &tempfile::TempDir, limits: &str) -> String {
    let store = format!("sqlite:{}", dir.path().join("l2pop.db").display());
    support::config(&store, "backend = \"memory\"").replace(
        "name = \"test-server\"",
        &format!("name = \"test-server\"\n{limits}"),
    )
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: l2pop\r\n\r\n";

/// Reads one HTTP response (head and a body of content-length bytes); `None` on EOF first.
async fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// True once the server closed the connection (EOF or reset).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&server_config(
        &dir,
        "header_read_timeout_s = 1\nidle_timeout_s = 1\nmax_connections = 16",
    ))
    .await;
    let addr = server.running.addr;

    // Never sends a byte.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Sends half a request head, then stalls (slowloris).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: l2")
        .await
        .unwrap();
    // One request answered, then an idle keep-alive connection.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(HEALTHZ).await.unwrap();
    let answer = read_response(&mut kept).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    assert!(
        closed_by_server(&mut silent).await,
        "a silent socket was kept"
    );
    assert!(
        closed_by_server(&mut slow).await,
        "a half-sent head was kept"
    );
    assert!(
        closed_by_server(&mut kept).await,
        "an idle keep-alive was kept"
    );
    server.stop().await;
}

#[tokio::test]
async fn at_the_cap_new_connections_wait_and_existing_ones_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_with(&server_config(
        &dir,
        "header_read_timeout_s = 600\nidle_timeout_s = 600\nmax_connections = 2",
    ))
    .await;
    let addr = server.running.addr;
    // The harness's pooled keep-alive connection would hold a slot: close it with its client.
    server.http = reqwest::Client::new();
    // Take the two slots with raw connections that each got an answer (both were accepted).
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut first).await.is_some());
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(HEALTHZ).await.unwrap();
    let served = tokio::time::timeout(PATIENCE, read_response(&mut second))
        .await
        .unwrap();
    assert!(served.is_some(), "the second connection was not served");

    // A third waits: its request gets no answer while the two are open.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut third)).await;
    assert!(
        early.is_err(),
        "a connection over the cap was served: {early:?}"
    );

    // An existing connection still answers /healthz.
    first.write_all(HEALTHZ).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, read_response(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // One closes: the waiting one is served.
    drop(second);
    let late = tokio::time::timeout(PATIENCE, read_response(&mut third))
        .await
        .unwrap()
        .unwrap();
    assert!(late.starts_with("HTTP/1.1 200"), "{late}");
    drop(first);
    drop(third);
    server.stop().await;
}
