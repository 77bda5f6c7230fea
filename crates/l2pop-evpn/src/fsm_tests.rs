//! The session FSM against byte vectors FRR 8.4 sent (captured, `shared/reference/
//! environment.md` §2) and UPDATEs built here octet by octet (RFC 4271 §4.3, RFC 4760, RFC
//! 7432), never with the codec under test.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::*;
use crate::codec::Verdict;
use crate::rib::{Pmsi, RouteKey};

include!("../testdata/frr_8_4.rs");

pub(crate) fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

const KEEPALIVE: [u8; 19] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0, 19, 4,
];

/// A message: marker, length, type, body (RFC 4271 §4.1).
pub(crate) fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An UPDATE with no withdrawn routes and no body NLRI, carrying `attributes`.
pub(crate) fn update(attributes: &[Vec<u8>]) -> Vec<u8> {
    let attrs: Vec<u8> = attributes.concat();
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    message(2, &body)
}

/// One path attribute with a one-octet length (or two with the extended-length flag).
pub(crate) fn attribute(flags: u8, kind: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, kind];
    if flags & 0x10 != 0 {
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

pub(crate) const RD: [u8; 8] = [0, 1, 192, 0, 2, 11, 0, 2];

/// Type-3 NLRI: RD, Ethernet Tag 0, originator 192.0.2.11.
pub(crate) fn imet_nlri() -> Vec<u8> {
    let mut n = vec![3, 17];
    n.extend_from_slice(&RD);
    n.extend_from_slice(&[0, 0, 0, 0, 32, 192, 0, 2, 11]);
    n
}

/// Type-2 NLRI: RD, ESI 0, Ethernet Tag 0, MAC, optional IPv4, Label1 = `vni`.
pub(crate) fn mac_ip_nlri(mac: [u8; 6], ip: Option<[u8; 4]>, vni: u32) -> Vec<u8> {
    let mut v = RD.to_vec();
    v.extend_from_slice(&[0; 10]);
    v.extend_from_slice(&[0, 0, 0, 0, 48]);
    v.extend_from_slice(&mac);
    match ip {
        Some(ip) => {
            v.push(32);
            v.extend_from_slice(&ip);
        }
        None => v.push(0),
    }
    v.extend_from_slice(&vni.to_be_bytes()[1..]);
    let mut n = vec![2, v.len() as u8];
    n.extend_from_slice(&v);
    n
}

pub(crate) fn mp_reach(nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 25, 70, 4, 192, 0, 2, 11, 0];
    v.extend_from_slice(nlri);
    attribute(0x90, 14, &v)
}

pub(crate) fn mp_unreach(nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 25, 70];
    v.extend_from_slice(nlri);
    attribute(0x90, 15, &v)
}

pub(crate) fn origin() -> Vec<u8> {
    attribute(0x40, 1, &[0])
}

pub(crate) fn as_path() -> Vec<u8> {
    attribute(0x50, 2, &[])
}

pub(crate) fn local_pref() -> Vec<u8> {
    attribute(0x40, 5, &[0, 0, 0, 100])
}

/// Encapsulation VXLAN and RT 65000:100 (and more communities if given).
pub(crate) fn communities(extra: &[[u8; 8]]) -> Vec<u8> {
    let mut v = vec![3, 0x0c, 0, 0, 0, 0, 0, 8, 0, 2, 0xfd, 0xe8, 0, 0, 0, 100];
    for c in extra {
        v.extend_from_slice(c);
    }
    attribute(0xc0, 16, &v)
}

pub(crate) fn pmsi_ir(vni: u32) -> Vec<u8> {
    let mut v = vec![0, 6];
    v.extend_from_slice(&vni.to_be_bytes()[1..]);
    v.extend_from_slice(&[192, 0, 2, 11]);
    attribute(0xc0, 22, &v)
}

fn config() -> SessionConfig {
    SessionConfig {
        local: crate::codec::LocalOpen {
            asn: 65000,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: 90,
            graceful_restart_time: 120,
        },
        peer_as: 65000,
        passive: false,
        connect_retry: Duration::from_secs(5),
        keepalive: None,
        advertises: false,
    }
}

fn at(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn sent(outputs: &[Output]) -> Vec<Vec<u8>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// The NOTIFICATION's (code, subcode) among the sent messages.
fn notification(outputs: &[Output]) -> Option<(u8, u8)> {
    sent(outputs)
        .iter()
        .find(|m| m.len() >= 21 && m[18] == 3)
        .map(|m| (m[19], m[20]))
}

fn routes(outputs: &[Output]) -> Vec<RibChange> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Routes(c) => Some(c.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A session brought to Established with FRR's OPEN at t=0.
fn established() -> Session {
    let mut s = Session::new(config());
    s.handle(at(0), Input::Start);
    s.handle(at(0), Input::TcpConnected);
    s.handle(at(0), Input::Received(&hex(FRR_OPEN)));
    let out = s.handle(at(0), Input::Received(&KEEPALIVE));
    assert!(out.iter().any(|o| matches!(o, Output::Up(_))), "{out:?}");
    s
}

#[test]
fn start_connects_or_waits_by_mode() {
    let mut active = Session::new(config());
    let out = active.handle(at(0), Input::Start);
    assert_eq!(active.state(), State::Connect);
    assert_eq!(
        out,
        vec![
            Output::Connect,
            Output::ArmTimer {
                timer: Timer::ConnectRetry,
                at: at(5)
            }
        ]
    );
    let mut passive = Session::new(SessionConfig {
        passive: true,
        ..config()
    });
    assert_eq!(passive.handle(at(0), Input::Start), vec![]);
    assert_eq!(passive.state(), State::Active);
    // A passive session takes the peer's connection and sends its OPEN.
    let out = passive.handle(at(1), Input::TcpConnected);
    assert_eq!(passive.state(), State::OpenSent);
    assert_eq!(sent(&out).len(), 1);
}

#[test]
fn handshake_with_frr_reaches_established_with_negotiated_timers() {
    let mut s = Session::new(config());
    s.handle(at(0), Input::Start);
    let out = s.handle(at(1), Input::TcpConnected);
    assert_eq!(s.state(), State::OpenSent);
    let open = &sent(&out)[0];
    // Our OPEN: version 4, AS 65000, hold 90, identifier 192.0.2.1, and the MP L2VPN/EVPN,
    // route refresh (2), enhanced route refresh (70), 4-octet AS (65), graceful restart (64)
    // capabilities, checked by octets.
    assert_eq!(open[18], 1);
    assert_eq!(
        &open[19..29],
        &[4, 0xfd, 0xe8, 0, 90, 192, 0, 2, 1, open[28]]
    );
    let params = &open[29..];
    let contains = |needle: &[u8]| params.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&[1, 4, 0, 25, 0, 70]), "{params:02x?}");
    assert!(contains(&[2, 0]) && contains(&[70, 0]));
    assert!(contains(&[65, 4, 0, 0, 0xfd, 0xe8]));
    assert!(contains(&[64, 6, 0, 120, 0, 25, 70, 0]));
    assert!(out.contains(&Output::ArmTimer {
        timer: Timer::Hold,
        at: at(1) + OPEN_HOLD
    }));

    let out = s.handle(at(2), Input::Received(&hex(FRR_OPEN)));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(sent(&out), vec![KEEPALIVE.to_vec()]);
    let negotiated = s.negotiated().unwrap();
    assert_eq!((negotiated.hold_time, negotiated.keepalive), (90, 30));
    assert!(negotiated.peer.evpn && negotiated.peer.four_octet_as);
    assert_eq!(negotiated.peer.router_id, Ipv4Addr::new(192, 0, 2, 11));
    assert!(out.contains(&Output::ArmTimer {
        timer: Timer::Hold,
        at: at(92)
    }));
    assert!(out.contains(&Output::ArmTimer {
        timer: Timer::Keepalive,
        at: at(32)
    }));

    let out = s.handle(at(3), Input::Received(&KEEPALIVE));
    assert_eq!(s.state(), State::Established);
    assert!(
        matches!(&out[..], [Output::ArmTimer { timer: Timer::Hold, at: a }, Output::Up(n), Output::Send(_)]
        if *a == at(93) && n.hold_time == 90)
    );
    // Then our End-of-RIB for L2VPN/EVPN, octet for octet what FRR sends (the last 29 octets
    // of its stream).
    let frr = hex(FRR_UPDATES);
    assert_eq!(sent(&out), vec![frr[frr.len() - 29..].to_vec()]);
}

#[test]
fn frr_updates_fill_the_adj_rib_in_with_vni_next_hop_rt_and_pmsi() {
    let mut s = established();
    // Byte by byte: framing must not depend on how TCP cut the stream.
    let mut out = Vec::new();
    for byte in hex(FRR_UPDATES) {
        out.extend(s.handle(at(4), Input::Received(&[byte])));
    }
    assert_eq!(s.state(), State::Established);
    let changes = routes(&out);
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert!(out.contains(&Output::EndOfRib));
    let vtep = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    let rt: l2pop_bgpvpn::RouteTarget = "65000:100".parse().unwrap();
    for change in &changes {
        let RibChange::Added { key, path } = change else {
            panic!("{change:?}")
        };
        assert_eq!(path.next_hop, vtep);
        assert!(path.route_targets.contains(&rt));
        assert!(path.encapsulations.contains(&8));
        match key {
            RouteKey::MacIp { .. } => assert_eq!(path.vni, Some(100)),
            RouteKey::Imet { originator, .. } => {
                assert_eq!(*originator, vtep);
                assert_eq!(
                    path.pmsi,
                    Some(Pmsi {
                        tunnel_type: 6,
                        vni: 100,
                        endpoint: Some(vtep)
                    })
                );
            }
        }
    }
    let with_ip = changes.iter().any(|c| {
        matches!(c, RibChange::Added { key: RouteKey::MacIp { mac, ip: Some(ip), .. }, .. }
            if mac.to_string() == "02:00:00:00:01:01" && *ip == IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11)))
    });
    assert!(with_ip, "{changes:?}");
    assert_eq!(s.rib().len(), 4);
}

#[test]
fn withdraw_and_implicit_replace() {
    let mut s = established();
    let nlri = mac_ip_nlri([2, 0, 0, 0, 9, 9], None, 100);
    let announce = update(&[
        mp_reach(&nlri),
        origin(),
        as_path(),
        local_pref(),
        communities(&[]),
    ]);
    let out = s.handle(at(4), Input::Received(&announce));
    assert!(matches!(&routes(&out)[..], [RibChange::Added { .. }]));
    // The same NLRI with a MAC Mobility sequence: the path is replaced, not added.
    let moved = update(&[
        mp_reach(&nlri),
        origin(),
        as_path(),
        local_pref(),
        communities(&[[6, 0, 0, 0, 0, 0, 0, 1]]),
    ]);
    let out = s.handle(at(5), Input::Received(&moved));
    assert!(
        matches!(&routes(&out)[..], [RibChange::Replaced { new, .. }] if new.mobility.map(|m| m.sequence) == Some(1))
    );
    // Announcing it again unchanged is no change.
    let out = s.handle(at(6), Input::Received(&moved));
    assert!(routes(&out).is_empty());
    let out = s.handle(at(7), Input::Received(&update(&[mp_unreach(&nlri)])));
    assert!(matches!(&routes(&out)[..], [RibChange::Removed { .. }]));
    assert!(s.rib().is_empty());
    // Withdrawing what is not there changes nothing.
    let out = s.handle(at(8), Input::Received(&update(&[mp_unreach(&nlri)])));
    assert!(routes(&out).is_empty());
    assert_eq!(s.state(), State::Established);
}

#[test]
fn hold_timer_expiry_sends_notification_withdraws_and_restarts() {
    let mut s = established();
    s.handle(at(4), Input::Received(&hex(FRR_UPDATES)));
    assert_eq!(s.rib().len(), 4);
    // A KEEPALIVE at 50 s moves the hold deadline to 140 s; the stale expiry at 93 s is ignored.
    s.handle(at(50), Input::Received(&KEEPALIVE));
    assert_eq!(s.handle(at(93), Input::TimerExpired(Timer::Hold)), vec![]);
    assert_eq!(s.state(), State::Established);
    // Our keepalives go out on time.
    let out = s.handle(at(60), Input::TimerExpired(Timer::Keepalive));
    assert_eq!(sent(&out), vec![KEEPALIVE.to_vec()]);

    let out = s.handle(at(140), Input::TimerExpired(Timer::Hold));
    assert_eq!(notification(&out), Some((4, 0)));
    assert!(out.contains(&Output::Disconnect));
    assert_eq!(routes(&out).len(), 4);
    assert!(
        routes(&out)
            .iter()
            .all(|c| matches!(c, RibChange::Removed { .. }))
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Down(DownReason::NotificationSent(n)) if n.code == 4
    )));
    assert_eq!(s.state(), State::Idle);
    assert!(s.rib().is_empty());
    // Automatic restart after ConnectRetry.
    assert!(out.contains(&Output::ArmTimer {
        timer: Timer::ConnectRetry,
        at: at(145)
    }));
    let out = s.handle(at(145), Input::TimerExpired(Timer::ConnectRetry));
    assert_eq!(s.state(), State::Connect);
    assert!(out.contains(&Output::Connect));
}

/// A valid FRR OPEN with one field changed at `offset`.
fn frr_open_with(offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut open = hex(FRR_OPEN);
    open[offset..offset + bytes.len()].copy_from_slice(bytes);
    open
}

/// FRR's OPEN from another AS (2-octet field and 4-octet capability).
fn frr_open_as(asn: u16) -> Vec<u8> {
    let mut open = frr_open_with(20, &asn.to_be_bytes());
    let cap = open
        .windows(6)
        .position(|w| w == [65, 4, 0, 0, 0xfd, 0xe8])
        .unwrap();
    open[cap + 4..cap + 6].copy_from_slice(&asn.to_be_bytes());
    open
}

#[test]
fn bad_open_gets_the_notification_rfc_4271_names_and_no_session() {
    let cases: Vec<(&str, Vec<u8>, (u8, u8))> = vec![
        ("wrong AS", frr_open_as(0xfde9), (2, 2)),
        ("hold time 2", frr_open_with(22, &[0, 2]), (2, 6)),
        ("identifier 0", frr_open_with(24, &[0, 0, 0, 0]), (2, 3)),
        ("our identifier", frr_open_with(24, &[192, 0, 2, 1]), (2, 3)),
        ("version 3", frr_open_with(19, &[3]), (2, 1)),
        // No optional parameters at all: no MP L2VPN/EVPN.
        (
            "no EVPN",
            message(1, &[4, 0xfd, 0xe8, 0, 180, 192, 0, 2, 11, 0]),
            (2, 7),
        ),
    ];
    for (what, open, expected) in cases {
        let mut s = Session::new(config());
        s.handle(at(0), Input::Start);
        s.handle(at(0), Input::TcpConnected);
        let out = s.handle(at(1), Input::Received(&open));
        assert_eq!(notification(&out), Some(expected), "{what}: {out:?}");
        assert_eq!(s.state(), State::Idle, "{what}");
        assert!(out.contains(&Output::Disconnect), "{what}");
        assert!(!out.iter().any(|o| matches!(o, Output::Up(_))), "{what}");
    }
}

#[test]
fn the_peer_as_may_be_four_octets() {
    let mut s = Session::new(SessionConfig {
        peer_as: 4_200_000_000,
        ..config()
    });
    s.handle(at(0), Input::Start);
    s.handle(at(0), Input::TcpConnected);
    // my_as = AS_TRANS, the real AS in capability 65.
    let mut body = vec![4, 0x5b, 0xa0, 0, 90, 192, 0, 2, 11];
    let caps = [
        2, 6, 1, 4, 0, 25, 0, 70, 2, 6, 65, 4, 0xfa, 0x56, 0xea, 0x00,
    ];
    body.push(caps.len() as u8);
    body.extend_from_slice(&caps);
    s.handle(at(1), Input::Received(&message(1, &body)));
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let mut s = Session::new(config());
    s.handle(at(0), Input::Start);
    s.handle(at(0), Input::TcpConnected);
    let out = s.handle(at(1), Input::Received(&KEEPALIVE));
    assert_eq!(notification(&out), Some((5, 1)));
    assert_eq!(s.state(), State::Idle);

    let mut s = established();
    let out = s.handle(at(4), Input::Received(&hex(FRR_OPEN)));
    assert_eq!(notification(&out), Some((5, 3)));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Down(DownReason::NotificationSent(_))))
    );
}

#[test]
fn garbage_on_the_wire_resets_with_a_header_error() {
    let mut s = established();
    let out = s.handle(at(4), Input::Received(&[0u8; 40]));
    assert_eq!(notification(&out), Some((1, 1)));
    assert_eq!(s.state(), State::Idle);
    let mut s = established();
    let mut short = KEEPALIVE.to_vec();
    short[17] = 10; // length below 19
    let out = s.handle(at(4), Input::Received(&short));
    assert_eq!(notification(&out), Some((1, 2)));
}

#[test]
fn notification_or_connection_loss_takes_the_session_down() {
    let mut s = established();
    s.handle(at(4), Input::Received(&hex(FRR_UPDATES)));
    let cease = message(3, &[6, 2]);
    let out = s.handle(at(5), Input::Received(&cease));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Down(DownReason::NotificationReceived(n)) if (n.code, n.subcode) == (6, 2)
    )));
    assert_eq!(notification(&out), None, "a NOTIFICATION is never answered");
    assert_eq!(routes(&out).len(), 4);

    let mut s = established();
    s.handle(at(4), Input::Received(&hex(FRR_UPDATES)));
    let out = s.handle(at(5), Input::TcpFailed);
    assert_eq!(s.state(), State::Idle);
    // Down comes before the withdrawals it causes.
    let down = out
        .iter()
        .position(|o| *o == Output::Down(DownReason::ConnectionLost));
    let withdrawn = out.iter().position(|o| matches!(o, Output::Routes(_)));
    assert!(down.is_some() && down < withdrawn, "{out:?}");
}

#[test]
fn connect_failure_retries_and_stop_ends_everything() {
    let mut s = Session::new(config());
    s.handle(at(0), Input::Start);
    let out = s.handle(at(1), Input::TcpFailed);
    assert_eq!(s.state(), State::Active);
    assert_eq!(
        out,
        vec![Output::ArmTimer {
            timer: Timer::ConnectRetry,
            at: at(6)
        }]
    );
    let out = s.handle(at(6), Input::TimerExpired(Timer::ConnectRetry));
    assert!(out.contains(&Output::Connect));
    assert_eq!(s.state(), State::Connect);

    let mut s = established();
    let out = s.handle(at(10), Input::Stop);
    assert_eq!(notification(&out), Some((6, 2)));
    assert!(out.contains(&Output::Down(DownReason::Stopped)));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.next_deadline(), None);
    // No automatic restart after Stop; a connection is refused.
    assert_eq!(
        s.handle(at(100), Input::TimerExpired(Timer::ConnectRetry)),
        vec![]
    );
    assert_eq!(
        s.handle(at(100), Input::TcpConnected),
        vec![Output::Disconnect]
    );
}

// ---- RFC 7606 ----

fn announce_then(attributes: &[Vec<u8>]) -> (Session, Vec<Output>) {
    let mut s = established();
    let good = update(&[
        mp_reach(&imet_nlri()),
        origin(),
        as_path(),
        local_pref(),
        communities(&[]),
        pmsi_ir(100),
    ]);
    let out = s.handle(at(4), Input::Received(&good));
    assert_eq!(routes(&out).len(), 1);
    let out = s.handle(at(5), Input::Received(&update(attributes)));
    (s, out)
}

fn verdict(out: &[Output]) -> Option<Verdict> {
    out.iter().find_map(|o| match o {
        Output::Malformed { verdict, .. } => Some(*verdict),
        _ => None,
    })
}

#[test]
fn malformed_origin_is_treat_as_withdraw() {
    // RFC 7606 §7.1: ORIGIN of length 2.
    let (s, out) = announce_then(&[
        mp_reach(&imet_nlri()),
        attribute(0x40, 1, &[0, 0]),
        as_path(),
        local_pref(),
        communities(&[]),
        pmsi_ir(100),
    ]);
    assert_eq!(s.state(), State::Established, "{out:?}");
    assert_eq!(verdict(&out), Some(Verdict::TreatAsWithdraw));
    assert!(matches!(&routes(&out)[..], [RibChange::Removed { .. }]));
    assert_eq!(notification(&out), None);
}

#[test]
fn missing_as_path_is_treat_as_withdraw() {
    // RFC 7606 §3 (d).
    let (s, out) = announce_then(&[
        mp_reach(&imet_nlri()),
        origin(),
        local_pref(),
        communities(&[]),
        pmsi_ir(100),
    ]);
    assert_eq!(s.state(), State::Established, "{out:?}");
    assert_eq!(verdict(&out), Some(Verdict::TreatAsWithdraw));
    assert!(s.rib().is_empty());
}

#[test]
fn bad_extended_communities_length_is_treat_as_withdraw() {
    // RFC 7606 §7.14: length not a multiple of 8.
    let (s, out) = announce_then(&[
        mp_reach(&imet_nlri()),
        origin(),
        as_path(),
        local_pref(),
        attribute(0xc0, 16, &[0, 2, 0xfd, 0xe8, 0, 0, 0]),
        pmsi_ir(100),
    ]);
    assert_eq!(s.state(), State::Established, "{out:?}");
    assert_eq!(verdict(&out), Some(Verdict::TreatAsWithdraw));
    assert!(s.rib().is_empty());
}

#[test]
fn malformed_atomic_aggregate_is_discarded_and_the_route_stands() {
    // RFC 7606 §7.6: ATOMIC_AGGREGATE with a non-zero length is attribute-discard; the
    // route is announced again with one more route target so that a change is visible.
    let (s, out) = announce_then(&[
        mp_reach(&imet_nlri()),
        origin(),
        as_path(),
        local_pref(),
        attribute(0x40, 6, &[1]),
        communities(&[[0, 2, 0xfd, 0xe8, 0, 0, 0, 101]]),
        pmsi_ir(100),
    ]);
    assert_eq!(s.state(), State::Established, "{out:?}");
    assert_eq!(verdict(&out), Some(Verdict::AttributeDiscard));
    assert!(matches!(&routes(&out)[..], [RibChange::Replaced { .. }]));
    assert_eq!(s.rib().len(), 1);
}

#[test]
fn unparsable_mp_reach_resets_the_session() {
    // RFC 7606 §5.3/§7.11: the NLRI cannot be located, so treat-as-withdraw is impossible.
    let mut nlri = imet_nlri();
    nlri[1] = 40; // route length beyond the attribute
    let (s, out) = announce_then(&[mp_reach(&nlri), origin(), as_path(), local_pref()]);
    assert_eq!(s.state(), State::Idle, "{out:?}");
    assert_eq!(notification(&out).map(|n| n.0), Some(3));
    assert!(matches!(&routes(&out)[..], [RibChange::Removed { .. }]));
}

#[test]
fn unknown_optional_attributes_and_other_route_types_are_ignored() {
    // An unknown optional transitive attribute (type 99) and a type-4 NLRI.
    let mut es = vec![4, 23];
    es.extend_from_slice(&RD);
    es.extend_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    es.extend_from_slice(&[32, 192, 0, 2, 11]);
    let mut nlri = es;
    nlri.extend(mac_ip_nlri([2, 0, 0, 0, 7, 7], Some([10, 0, 0, 7]), 100));
    let (s, out) = announce_then(&[
        mp_reach(&nlri),
        origin(),
        as_path(),
        local_pref(),
        attribute(0xc0, 99, &[1, 2, 3]),
        communities(&[]),
    ]);
    assert_eq!(s.state(), State::Established, "{out:?}");
    assert_eq!(verdict(&out), None, "{out:?}");
    assert!(matches!(
        &routes(&out)[..],
        [RibChange::Added {
            key: RouteKey::MacIp { .. },
            ..
        }]
    ));
}

#[test]
fn enhanced_route_refresh_sweeps_what_the_peer_did_not_resend() {
    let mut s = established();
    s.handle(at(4), Input::Received(&hex(FRR_UPDATES)));
    let borr = message(5, &[0, 25, 1, 70]);
    let eorr = message(5, &[0, 25, 2, 70]);
    assert!(routes(&s.handle(at(5), Input::Received(&borr))).is_empty());
    // Only the type-3 route comes again.
    let imet = update(&[
        mp_reach(&imet_nlri()),
        origin(),
        as_path(),
        local_pref(),
        communities(&[]),
        pmsi_ir(100),
    ]);
    s.handle(at(6), Input::Received(&imet));
    let out = s.handle(at(7), Input::Received(&eorr));
    assert_eq!(routes(&out).len(), 3);
    assert_eq!(s.rib().len(), 1);
}

/// An OPEN from AS 65000 (iBGP here), hold 9, id 192.0.2.2, MP L2VPN/EVPN, and a graceful
/// restart capability (RFC 4724 §3) with `restart_time` and, if `evpn` is set, the L2VPN/EVPN
/// family with that F bit.
fn open_with_gr(restart_time: u16, evpn: Option<bool>) -> Vec<u8> {
    let mut gr = restart_time.to_be_bytes().to_vec();
    if let Some(forwarding) = evpn {
        gr.extend_from_slice(&[0, 25, 70, if forwarding { 0x80 } else { 0 }]);
    }
    let mut caps = vec![1, 4, 0, 25, 0, 70, 64, gr.len() as u8];
    caps.extend_from_slice(&gr);
    let mut body = vec![4, 0xfd, 0xe8, 0, 9, 192, 0, 2, 2];
    body.push(caps.len() as u8 + 2);
    body.extend_from_slice(&[2, caps.len() as u8]);
    body.extend_from_slice(&caps);
    message(1, &body)
}

/// Established at `now` with a peer that sent `open`.
fn establish(s: &mut Session, now: Duration, open: &[u8]) -> Vec<Output> {
    s.handle(now, Input::Start);
    s.handle(now, Input::TcpConnected);
    let mut out = s.handle(now, Input::Received(open));
    out.extend(s.handle(now, Input::Received(&KEEPALIVE)));
    assert_eq!(s.state(), State::Established, "{out:?}");
    out
}

fn has(out: &[Output], wanted: &Output) -> bool {
    out.contains(wanted)
}

/// A peer with graceful restart for EVPN (F bit set), holding FRR's four routes.
fn graceful_peer() -> Session {
    let mut s = Session::new(config());
    establish(&mut s, at(0), &open_with_gr(30, Some(true)));
    s.handle(at(1), Input::Received(&hex(FRR_UPDATES)));
    assert_eq!(s.rib().len(), 4);
    s
}

/// The type-3 route alone, as FRR re-sends it after a restart.
fn imet_again() -> Vec<u8> {
    update(&[
        mp_reach(&imet_nlri()),
        origin(),
        as_path(),
        local_pref(),
        communities(&[]),
        pmsi_ir(100),
    ])
}

#[test]
fn graceful_restart_keeps_the_routes_across_a_lost_connection_and_sweeps_at_end_of_rib() {
    let mut s = graceful_peer();
    let out = s.handle(at(2), Input::TcpFailed);
    // Kept: no withdrawal, the Restart timer runs for the peer's 30 s; retained before Down.
    assert_eq!(routes(&out), vec![]);
    let retained = out.iter().position(|o| *o == Output::RoutesRetained);
    let down = out.iter().position(|o| matches!(o, Output::Down(_)));
    assert!(retained.is_some() && retained < down, "{out:?}");
    assert!(has(
        &out,
        &Output::ArmTimer {
            timer: Timer::Restart,
            at: at(32)
        }
    ));
    assert_eq!(s.rib().len(), 4);
    // Back up (ConnectRetry), the peer re-sends one route unchanged: no change; then
    // End-of-RIB sweeps the three it did not re-send, before the EndOfRib output.
    s.handle(at(7), Input::TimerExpired(Timer::ConnectRetry));
    let out = establish_again(&mut s, at(8), &open_with_gr(30, Some(true)));
    assert_eq!(routes(&out), vec![]);
    assert_eq!(
        routes(&s.handle(at(9), Input::Received(&imet_again()))),
        vec![]
    );
    let out = s.handle(at(10), Input::Received(&end_of_rib()));
    assert_eq!(routes(&out).len(), 3);
    assert!(
        routes(&out)
            .iter()
            .all(|c| matches!(c, RibChange::Removed { .. }))
    );
    let swept = out.iter().position(|o| *o == Output::StaleSwept);
    let eor = out.iter().position(|o| *o == Output::EndOfRib);
    assert!(swept.is_some() && swept < eor, "{out:?}");
    assert!(has(&out, &Output::StopTimer(Timer::Restart)));
    assert_eq!(s.rib().len(), 1);
    // A later End-of-RIB (or refresh) sweeps nothing more.
    let out = s.handle(at(11), Input::Received(&end_of_rib()));
    assert_eq!(routes(&out), vec![]);
    assert!(!has(&out, &Output::StaleSwept));
}

/// Connects again (the session is in Connect after ConnectRetry) and reaches Established.
fn establish_again(s: &mut Session, now: Duration, open: &[u8]) -> Vec<Output> {
    let mut out = s.handle(now, Input::TcpConnected);
    out.extend(s.handle(now, Input::Received(open)));
    out.extend(s.handle(now, Input::Received(&KEEPALIVE)));
    assert_eq!(s.state(), State::Established, "{out:?}");
    out
}

fn end_of_rib() -> Vec<u8> {
    update(&[mp_unreach(&[])])
}

#[test]
fn the_restart_time_sweeps_when_the_peer_does_not_come_back() {
    let mut s = graceful_peer();
    s.handle(at(2), Input::TcpFailed);
    // Connection attempts fail meanwhile: the routes stay.
    s.handle(at(7), Input::TimerExpired(Timer::ConnectRetry));
    assert_eq!(routes(&s.handle(at(8), Input::TcpFailed)), vec![]);
    assert_eq!(s.rib().len(), 4);
    // Early or late timer inputs: only the due one acts.
    assert_eq!(
        routes(&s.handle(at(31), Input::TimerExpired(Timer::Restart))),
        vec![]
    );
    let out = s.handle(at(32), Input::TimerExpired(Timer::Restart));
    assert_eq!(routes(&out).len(), 4);
    assert!(has(&out, &Output::StaleSwept));
    assert!(s.rib().is_empty());
}

#[test]
fn the_restart_time_also_bounds_the_wait_for_end_of_rib() {
    let mut s = graceful_peer();
    s.handle(at(2), Input::TcpFailed);
    s.handle(at(7), Input::TimerExpired(Timer::ConnectRetry));
    establish_again(&mut s, at(8), &open_with_gr(30, Some(true)));
    s.handle(at(9), Input::Received(&imet_again()));
    // No End-of-RIB by 32 s: what was not re-sent goes, the re-sent route stays.
    let out = s.handle(at(32), Input::TimerExpired(Timer::Restart));
    assert_eq!(routes(&out).len(), 3);
    assert_eq!(s.rib().len(), 1);
}

#[test]
fn stale_routes_go_at_once_when_the_peer_lost_its_forwarding_state() {
    for open in [
        open_with_gr(30, Some(false)),
        open_with_gr(30, None),
        hex(FRR_OPEN),
    ] {
        let mut s = graceful_peer();
        s.handle(at(2), Input::TcpFailed);
        s.handle(at(7), Input::TimerExpired(Timer::ConnectRetry));
        let out = establish_again(&mut s, at(8), &open);
        assert_eq!(routes(&out).len(), 4, "{out:?}");
        assert!(has(&out, &Output::StaleSwept));
    }
}

#[test]
fn without_graceful_restart_for_evpn_a_lost_connection_withdraws_as_before() {
    for open in [
        hex(FRR_OPEN),
        open_with_gr(30, None),
        open_with_gr(0, Some(true)),
    ] {
        let mut s = Session::new(config());
        establish(&mut s, at(0), &open);
        s.handle(at(1), Input::Received(&hex(FRR_UPDATES)));
        let out = s.handle(at(2), Input::TcpFailed);
        assert_eq!(routes(&out).len(), 4, "{out:?}");
        assert!(!has(&out, &Output::RoutesRetained));
        assert!(!has(&out, &Output::StaleSwept));
    }
}

#[test]
fn a_notification_or_stop_is_no_graceful_restart() {
    // RFC 4724 (without RFC 8538): a NOTIFICATION either way ends the session normally.
    let mut s = graceful_peer();
    let out = s.handle(at(2), Input::Received(&message(3, &[6, 2])));
    assert_eq!(routes(&out).len(), 4);
    let mut s = graceful_peer();
    let out = s.handle(at(20), Input::TimerExpired(Timer::Hold));
    assert_eq!(routes(&out).len(), 4);
    // Stop while routes are kept: they go, and the graceful restart ends.
    let mut s = graceful_peer();
    s.handle(at(2), Input::TcpFailed);
    let out = s.handle(at(3), Input::Stop);
    assert_eq!(routes(&out).len(), 4);
    assert!(has(&out, &Output::StaleSwept));
    assert!(has(&out, &Output::StopTimer(Timer::Restart)));
}

#[test]
fn a_second_loss_before_end_of_rib_keeps_the_routes_and_restarts_the_timer() {
    let mut s = graceful_peer();
    s.handle(at(2), Input::TcpFailed);
    s.handle(at(7), Input::TimerExpired(Timer::ConnectRetry));
    establish_again(&mut s, at(8), &open_with_gr(30, Some(true)));
    s.handle(at(9), Input::Received(&imet_again()));
    let out = s.handle(at(10), Input::TcpFailed);
    assert_eq!(routes(&out), vec![]);
    assert!(has(
        &out,
        &Output::ArmTimer {
            timer: Timer::Restart,
            at: at(40)
        }
    ));
    // Everything is stale again, the re-sent route too.
    let out = s.handle(at(40), Input::TimerExpired(Timer::Restart));
    assert_eq!(routes(&out).len(), 4);
}

#[test]
fn no_input_panics() {
    // Every prefix and a sweep of single-octet corruptions of FRR's stream.
    let stream = [hex(FRR_OPEN), KEEPALIVE.to_vec(), hex(FRR_UPDATES)].concat();
    for cut in 0..stream.len() {
        let mut s = Session::new(config());
        s.handle(at(0), Input::Start);
        s.handle(at(0), Input::TcpConnected);
        s.handle(at(1), Input::Received(&stream[..cut]));
    }
    for index in 0..stream.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut corrupted = stream.clone();
            corrupted[index] = value;
            let mut s = Session::new(config());
            s.handle(at(0), Input::Start);
            s.handle(at(0), Input::TcpConnected);
            s.handle(at(1), Input::Received(&corrupted));
        }
    }
}

mod arbitrary_input {
    //! Whatever a peer sends, the session answers with outputs, never a panic: random UPDATE
    //! bodies behind a valid header (where the attribute decoders run), random EVPN NLRI inside
    //! a valid MP_REACH_NLRI, and random streams.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn random_update_bodies(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut s = established();
            s.handle(at(4), Input::Received(&message(2, &body)));
        }

        #[test]
        fn random_evpn_nlri(nlri in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut s = established();
            let out = s.handle(
                at(4),
                Input::Received(&update(&[mp_reach(&nlri), origin(), as_path(), local_pref(), communities(&[])])),
            );
            // A route that made it into the RIB has a key the codec produced from these octets.
            prop_assert!(routes(&out).len() <= nlri.len() / 17 + 1);
        }

        #[test]
        fn random_streams(stream in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut s = established();
            s.handle(at(4), Input::Received(&stream));
        }
    }
}

#[test]
fn an_exporting_session_leaves_end_of_rib_and_updates_to_its_owner() {
    let mut s = Session::new(SessionConfig {
        advertises: true,
        ..config()
    });
    // Before Established, nothing of ours is sent.
    assert_eq!(s.handle(at(0), Input::Advertise(vec![1, 2, 3])), vec![]);
    s.handle(at(0), Input::Start);
    s.handle(at(0), Input::TcpConnected);
    s.handle(at(0), Input::Received(&hex(FRR_OPEN)));
    let out = s.handle(at(0), Input::Received(&KEEPALIVE));
    assert_eq!(s.state(), State::Established);
    assert!(sent(&out).is_empty(), "no End-of-RIB yet: {out:?}");
    let eor = codec::end_of_rib();
    let out = s.handle(at(1), Input::Advertise(eor.clone()));
    assert_eq!(out, vec![Output::Send(eor)]);
}

/// RFC 4271 §9.1.2: a route whose AS_PATH holds our own AS (an eBGP peer sending our exported
/// routes back) is not received; for a route the peer had announced before, it is a withdraw.
#[test]
fn routes_with_our_as_in_the_path_are_not_received() {
    let mut s = Session::new(SessionConfig {
        peer_as: 65001,
        ..config()
    });
    s.handle(at(0), Input::Start);
    s.handle(at(0), Input::TcpConnected);
    s.handle(at(0), Input::Received(&frr_open_as(65001)));
    s.handle(at(0), Input::Received(&KEEPALIVE));
    assert_eq!(s.state(), State::Established);
    let path = |asns: &[u32]| {
        let mut v = vec![2, asns.len() as u8];
        for asn in asns {
            v.extend_from_slice(&asn.to_be_bytes());
        }
        attribute(0x40, 2, &v)
    };
    let announce = |asns: &[u32]| {
        update(&[
            mp_reach(&imet_nlri()),
            origin(),
            path(asns),
            communities(&[]),
            pmsi_ir(100),
        ])
    };
    // Our own route reflected back: nothing learned.
    let out = s.handle(at(1), Input::Received(&announce(&[65001, 65000])));
    assert!(routes(&out).is_empty(), "{out:?}");
    assert_eq!(s.rib().len(), 0);
    // The peer's route, then the same NLRI with a loop: withdrawn.
    let out = s.handle(at(2), Input::Received(&announce(&[65001])));
    assert_eq!(routes(&out).len(), 1);
    let out = s.handle(at(3), Input::Received(&announce(&[65001, 65000])));
    assert!(
        matches!(&routes(&out)[..], [RibChange::Removed { .. }]),
        "{out:?}"
    );
    assert_eq!(s.rib().len(), 0);
    assert_eq!(s.state(), State::Established);
}

/// RFC 4456 §8: a route a reflector sends back with our identifier as ORIGINATOR_ID is ours.
#[test]
fn routes_reflected_back_to_their_originator_are_not_received() {
    let mut s = established();
    let reflected = |originator: [u8; 4]| {
        update(&[
            mp_reach(&imet_nlri()),
            origin(),
            as_path(),
            local_pref(),
            attribute(0x80, 9, &originator),
            communities(&[]),
            pmsi_ir(100),
        ])
    };
    let out = s.handle(at(1), Input::Received(&reflected([192, 0, 2, 1])));
    assert!(routes(&out).is_empty(), "{out:?}");
    let out = s.handle(at(2), Input::Received(&reflected([192, 0, 2, 11])));
    assert_eq!(
        routes(&out).len(),
        1,
        "another originator's route is learned"
    );
}
