//! Every file of the fuzz corpus (`fuzz/corpus/<target>/`) through the same target bodies the
//! fuzzers run (`l2pop_evpn::fuzzing`), on the stable toolchain: a crash the fuzzers found and
//! kept in the corpus fails here too.

#![allow(clippy::unwrap_used)]

use std::path::Path;

fn run(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        files += 1;
    }
    assert!(files > 0, "{target}: empty corpus in {}", dir.display());
}

#[test]
fn update_corpus() {
    run("update", l2pop_evpn::fuzzing::update);
}

#[test]
fn nlri_corpus() {
    run("nlri", l2pop_evpn::fuzzing::nlri);
}

#[test]
fn fsm_corpus() {
    run("fsm", |data| {
        l2pop_evpn::fuzzing::fsm(data);
    });
}

/// The FSM seed built from FRR's session reaches Established and learns FRR's four routes
/// through the fuzz target's own input decoding: the fuzzer starts from a working session.
#[test]
fn fsm_seed_reaches_established() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/fsm");
    let seed = std::fs::read(dir.join("frr-session")).unwrap();
    let reach = l2pop_evpn::fuzzing::fsm(&seed);
    assert_eq!(
        reach,
        l2pop_evpn::fuzzing::FsmReach {
            established: true,
            most_routes: 4
        }
    );
}

/// The seeds reach what they are meant to: FRR's session gets Established and learns its
/// four routes through the FSM path (the corpus is not all rejected at the door).
#[test]
fn frr_seed_reaches_established_and_learns_routes() {
    use l2pop_evpn::{Input, LocalOpen, Output, Session, SessionConfig, State};
    use std::time::Duration;
    let mut session = Session::new(SessionConfig {
        local: LocalOpen {
            asn: 65000,
            router_id: "192.0.2.1".parse().unwrap(),
            hold_time: 90,
            graceful_restart_time: 120,
        },
        peer_as: 65000,
        passive: false,
        connect_retry: Duration::from_secs(5),
        keepalive: None,
        advertises: false,
    });
    let now = Duration::ZERO;
    session.handle(now, Input::Start);
    session.handle(now, Input::TcpConnected);
    let keepalive = [[0xff; 16].as_slice(), &[0, 19, 4]].concat();
    let stream = [l2pop_evpn::fuzzing::frr_open(), keepalive].concat();
    session.handle(now, Input::Received(&stream));
    assert_eq!(session.state(), State::Established);
    let outputs = session.handle(now, Input::Received(&l2pop_evpn::fuzzing::frr_updates()));
    assert!(outputs.contains(&Output::EndOfRib));
    assert_eq!(session.rib().len(), 4);
}
