//! Bodies of the fuzz targets (`crates/l2pop-evpn/fuzz`), shared with the stable test that runs
//! every corpus file through them (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes, drives
//! the path a peer's bytes take, and panics only when an invariant breaks.
//!
//! - [`update`]: BGP messages framed as the session frames them; each UPDATE reduced to EVPN
//!   routes (RFC 7606 verdicts), applied to an Adj-RIB-In and imported.
//! - [`nlri`]: EVPN NLRI (RFC 7432 §7) as the payload of MP_REACH_NLRI and of MP_UNREACH_NLRI
//!   through the same path, and the codec's decode/encode round trip.
//! - [`fsm`]: a sequence of session inputs (start, stop, TCP up/down, bytes received, timers,
//!   time passing, our advertisements) with the FSM's invariants checked after each one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rustbgpd_wire::Message;
use rustbgpd_wire::evpn::{decode_evpn_nlri, encode_evpn_nlri};

use crate::codec::{self, Framer, LocalOpen, Verdict};
use crate::fsm::{Input, Output, Session, SessionConfig, State, Timer};
use crate::import::Importer;
use crate::rib::{AdjRibIn, RibChange, RouteKey};

mod frr {
    include!("../testdata/frr_8_4.rs");
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// FRR 8.4's OPEN, as captured (seed for the fuzzers and the FSM's message dictionary).
pub fn frr_open() -> Vec<u8> {
    hex(frr::FRR_OPEN)
}

/// FRR 8.4's UPDATEs (three type-2 routes, one type-3, End-of-RIB), as captured.
pub fn frr_updates() -> Vec<u8> {
    hex(frr::FRR_UPDATES)
}

/// The UPDATE path: frame `data` into messages, reduce each UPDATE (4-octet AS on and off,
/// iBGP and eBGP), apply the result to an Adj-RIB-In and import the changes.
pub fn update(data: &[u8]) {
    for (four_octet_as, ibgp) in [(true, true), (false, false)] {
        let mut framer = Framer::default();
        framer.push(data);
        let mut rib = AdjRibIn::default();
        let mut importer = Importer::new(BTreeSet::new());
        while let Some(message) = framer.next_message() {
            // A framing or message error ends the connection: nothing after it is read.
            let Ok(message) = message else { break };
            if let Message::Update(update) = message {
                reduce_and_import(&update, four_octet_as, ibgp, &mut rib, &mut importer);
            }
        }
    }
}

fn reduce_and_import(
    update: &codec::WireUpdate,
    four_octet_as: bool,
    ibgp: bool,
    rib: &mut AdjRibIn,
    importer: &mut Importer,
) {
    let Ok(evpn) = codec::evpn_update(update, four_octet_as, ibgp) else {
        // A NOTIFICATION: the session resets, the UPDATE changes nothing.
        return;
    };
    if evpn.verdict == Some(Verdict::TreatAsWithdraw) {
        assert!(
            evpn.announced.is_empty(),
            "treat-as-withdraw announced {:?}",
            evpn.announced
        );
    }
    if evpn.end_of_rib {
        assert!(evpn.announced.is_empty() && evpn.withdrawn.is_empty());
    }
    let mut changes = Vec::new();
    for key in &evpn.withdrawn {
        rib.withdraw(key, &mut changes);
    }
    for (key, path) in evpn.announced {
        rib.announce(key, path, &mut changes);
    }
    importer.apply(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)), &changes);
}

/// Largest NLRI payload that still fits a 4096-octet UPDATE with the other attributes.
const NLRI_MAX: usize = 3900;

/// The NLRI path: `data` as the EVPN NLRI of an MP_REACH_NLRI (with the attributes a route
/// needs) and of an MP_UNREACH_NLRI, each sent through [`update`]; plus the codec's round trip.
pub fn nlri(data: &[u8]) {
    let nlri = &data[..data.len().min(NLRI_MAX)];
    let mut reach = vec![0, 25, 70, 4, 192, 0, 2, 11, 0];
    reach.extend_from_slice(nlri);
    let mut unreach = vec![0, 25, 70];
    unreach.extend_from_slice(nlri);
    let origin = attribute(0x40, 1, &[0]);
    let as_path = attribute(0x50, 2, &[2, 1, 0, 0, 0xfd, 0xe9]);
    let local_pref = attribute(0x40, 5, &[0, 0, 0, 100]);
    let communities = attribute(
        0xc0,
        16,
        &[3, 0x0c, 0, 0, 0, 0, 0, 8, 0, 2, 0xfd, 0xe8, 0, 0, 0, 100],
    );
    let announce = update_message(&[
        origin,
        as_path,
        local_pref,
        attribute(0x90, 14, &reach),
        communities,
    ]);
    let withdraw = update_message(&[attribute(0x90, 15, &unreach)]);
    update(&[announce, withdraw].concat());

    // What the codec decodes, it encodes back to the same routes.
    if let Ok(routes) = decode_evpn_nlri(nlri) {
        let mut encoded = Vec::new();
        if encode_evpn_nlri(&routes, &mut encoded).is_ok() {
            let again = decode_evpn_nlri(&encoded);
            assert_eq!(
                again.as_ref().ok(),
                Some(&routes),
                "round trip of {routes:?}"
            );
        }
    }
}

fn attribute(flags: u8, kind: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, kind];
    if flags & 0x10 != 0 {
        a.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    } else {
        a.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    }
    a.extend_from_slice(value);
    a
}

fn update_message(attributes: &[Vec<u8>]) -> Vec<u8> {
    let attributes = attributes.concat();
    let mut body = vec![0, 0];
    body.extend_from_slice(&u16::try_from(attributes.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&attributes);
    message(2, &body)
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap_or(0).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// Reads the FSM's inputs from fuzz bytes, one operation byte and its operands at a time.
#[derive(Debug)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

/// Transitions one input may cause (RFC 4271 §8.2.2 as `fsm` keeps it; one `Received` can
/// carry OPEN and KEEPALIVE together, ConnectRetry in Active retries through Idle).
fn transition_allowed(from: State, to: State) -> bool {
    use State::*;
    from == to
        || to == Idle
        || matches!(
            (from, to),
            (Idle, Connect | Active)
                | (Connect, Active | OpenSent)
                | (Active, Connect | OpenSent)
                | (OpenSent, OpenConfirm | Established)
                | (OpenConfirm, Established)
        )
}

fn config(flags: u8) -> SessionConfig {
    SessionConfig {
        local: LocalOpen {
            asn: if flags & 1 == 0 { 65000 } else { 65001 },
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: if flags & 2 == 0 { 90 } else { 3 },
            graceful_restart_time: 120,
        },
        peer_as: 65000,
        passive: flags & 4 != 0,
        connect_retry: Duration::from_secs(5),
        keepalive: (flags & 8 != 0).then_some(1),
        advertises: flags & 16 != 0,
    }
}

/// The FSM path: a session driven by inputs read from `data`, its invariants checked after
/// every input: state transitions among those above; no UPDATE sent before Established (ours
/// included); `Up` only on reaching Established and `Down` only on leaving it; timers armed in
/// the future; every message sent decodes; the Adj-RIB-In is what its reported changes say.
/// Returns how far the session got, so that a test can tell the seeds reach Established.
pub fn fsm(data: &[u8]) -> FsmReach {
    let mut reach = FsmReach::default();
    let mut input = Reader(data);
    let mut session = Session::new(config(input.byte().unwrap_or(0)));
    let mut importer = Importer::new(BTreeSet::new());
    let mut shadow: BTreeMap<RouteKey, crate::rib::Path> = BTreeMap::new();
    let keepalive = message(4, &[]);
    let mut now = Duration::ZERO;
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 512 {
            break;
        }
        let owned;
        let step = match op % 12 {
            0 => Input::Start,
            1 => Input::Stop,
            2 => Input::TcpConnected,
            3 => Input::TcpFailed,
            4 => {
                let n = usize::from(input.u16() % 4200);
                Input::Received(input.bytes(n))
            }
            5 => {
                owned = frr_open();
                Input::Received(&owned)
            }
            6 => Input::Received(&keepalive),
            7 => {
                // The first n octets of FRR's UPDATEs (all of them when n reaches their length).
                owned = frr_updates();
                let cut = usize::from(input.u16()).min(owned.len());
                Input::Received(&owned[..cut])
            }
            8 => Input::TimerExpired(
                [
                    Timer::ConnectRetry,
                    Timer::Hold,
                    Timer::Keepalive,
                    Timer::Restart,
                ][usize::from(input.byte().unwrap_or(0) % 4)],
            ),
            9 => {
                // Time passes: the earliest armed timer fires when its deadline comes.
                now += Duration::from_millis(u64::from(input.u16()) * 10);
                match session.next_deadline() {
                    Some((timer, at)) if at <= now => Input::TimerExpired(timer),
                    _ => continue,
                }
            }
            10 => Input::Advertise(codec::end_of_rib()),
            _ => {
                // Jump to the next deadline and fire it.
                let Some((timer, at)) = session.next_deadline() else {
                    continue;
                };
                now = now.max(at);
                Input::TimerExpired(timer)
            }
        };
        let before = session.state();
        let outputs = session.handle(now, step);
        let after = session.state();
        check(before, after, now, &outputs);
        for output in &outputs {
            if let Output::Routes(changes) = output {
                follow(&mut shadow, changes);
                importer.apply(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)), changes);
            }
        }
        assert_eq!(
            shadow.len(),
            session.rib().len(),
            "Adj-RIB-In vs its changes"
        );
        reach.established |= after == State::Established;
        reach.most_routes = reach.most_routes.max(shadow.len());
    }
    reach
}

/// How far one [`fsm`] run got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsmReach {
    pub established: bool,
    /// The most routes the peer's Adj-RIB-In held at once.
    pub most_routes: usize,
}

/// Follows the outputs in order: `Up` enters Established, `Down` leaves it (one input can do
/// both, e.g. OPEN, KEEPALIVE and NOTIFICATION received together); UPDATEs only in between.
fn check(before: State, after: State, now: Duration, outputs: &[Output]) {
    assert!(
        transition_allowed(before, after),
        "transition {before:?} -> {after:?}"
    );
    let mut established = before == State::Established;
    for output in outputs {
        match output {
            Output::Send(bytes) => {
                let mut framer = Framer::default();
                framer.push(bytes);
                let sent = framer.next_message();
                assert!(
                    matches!(sent, Some(Ok(_))),
                    "sent an undecodable message {bytes:02x?}: {sent:?}"
                );
                if let Some(Ok(Message::Update(_))) = sent {
                    assert!(established, "UPDATE sent before Established");
                }
            }
            Output::ArmTimer { at, .. } => assert!(*at >= now, "timer armed in the past"),
            Output::Up(_) => {
                assert!(!established, "Up while Established");
                established = true;
            }
            Output::Down(_) => {
                assert!(established, "Down while not Established");
                established = false;
            }
            _ => {}
        }
    }
    assert_eq!(established, after == State::Established, "Up/Down vs state");
}

fn follow(shadow: &mut BTreeMap<RouteKey, crate::rib::Path>, changes: &[RibChange]) {
    for change in changes {
        match change {
            RibChange::Added { key, path } => {
                assert!(shadow.insert(*key, path.clone()).is_none(), "added twice");
            }
            RibChange::Replaced { key, old, new } => {
                assert_eq!(shadow.insert(*key, new.clone()).as_ref(), Some(old));
            }
            RibChange::Removed { key, path } => {
                assert_eq!(shadow.remove(key).as_ref(), Some(path));
            }
        }
    }
}
