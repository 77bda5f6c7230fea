#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use l2pop_bgpvpn::{DeviceRoute, GatewayRoute};
use l2pop_evpn::Learned;

use super::config::RawConfig;
use super::report::{Batch, Report, batches};
use crate::server::config::ConfigError;

#[test]
fn the_shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../etc/bgp.toml");
    let settings = RawConfig::load(std::path::Path::new(path))
        .unwrap()
        .with_env(|_| None)
        .validate()
        .unwrap();
    assert_eq!(settings.host.as_str(), "bgp-1");
    assert_eq!(settings.listen, None);
    assert_eq!(settings.import_route_targets.len(), 1);
    assert_eq!(settings.server.url, "http://127.0.0.1:9696");
    assert_eq!(settings.server.token.as_deref(), Some("admin-token"));
    let neighbour = &settings.neighbors[0];
    assert_eq!(neighbour.address, "192.0.2.10".parse::<IpAddr>().unwrap());
    assert_eq!(neighbour.port, 179);
    assert_eq!(neighbour.session.peer_as, 65001);
    assert_eq!(neighbour.session.local.asn, 65000);
    assert_eq!(neighbour.session.local.hold_time, 90);
    assert!(!neighbour.session.passive);
    // With a bus URL the speaker exports, and its sessions leave End-of-RIB to the exporter.
    let export = settings.export.as_ref().unwrap();
    assert_eq!(export.refresh, std::time::Duration::from_secs(30));
    assert_eq!(export.origin.asn, 65000);
    assert_eq!(export.bus.topic, l2pop_bus::wire::DEFAULT_TOPIC);
    assert!(neighbour.session.advertises);
}

fn key_of(error: ConfigError) -> &'static str {
    match error {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("{other}"),
    }
}

#[test]
fn errors_name_the_key() {
    let base = |extra: &str, neighbour: &str| {
        format!(
            "[bgp]\nhost = \"b\"\nlocal_as = 65000\nrouter_id = \"192.0.2.1\"\n{extra}\n[[neighbors]]\naddress = \"192.0.2.10\"\nremote_as = 65001\n{neighbour}\n"
        )
    };
    let cases = [
        (base("hold_time_s = 2", ""), "bgp.hold_time_s"),
        (base("connect_retry_s = 0", ""), "bgp.connect_retry_s"),
        (
            base("graceful_restart_time_s = 4096", ""),
            "bgp.graceful_restart_time_s",
        ),
        (
            base("import_route_targets = [\"65000:01\"]", ""),
            "bgp.import_route_targets",
        ),
        (base("", "passive = true"), "neighbors.passive"),
        (base("", "local_address = \"nope\""), "neighbors.local_address"),
        (
            "[bgp]\nhost = \"b\"\nlocal_as = 65000\nrouter_id = \"0.0.0.0\"\n[[neighbors]]\naddress = \"192.0.2.10\"\nremote_as = 1\n"
                .to_owned(),
            "bgp.router_id",
        ),
        (
            "[bgp]\nhost = \"b\"\nrouter_id = \"192.0.2.1\"\n[[neighbors]]\naddress = \"192.0.2.10\"\nremote_as = 1\n"
                .to_owned(),
            "bgp.local_as",
        ),
        (
            "[bgp]\nhost = \"b\"\nlocal_as = 1\nrouter_id = \"192.0.2.1\"\n".to_owned(),
            "neighbors",
        ),
        (
            base("", "[[neighbors]]\naddress = \"192.0.2.10\"\nremote_as = 2"),
            "neighbors.address",
        ),
        (
            base("", "[bus]\nurl = \"amqp://127.0.0.1\"\n[export]\nrefresh_s = 0"),
            "export.refresh_s",
        ),
        (
            base("", &format!("[bus]\nurl = \"amqp://127.0.0.1\"\ntopic = \"{}\"", "t".repeat(300))),
            "bus",
        ),
    ];
    for (text, key) in cases {
        let error = RawConfig::parse(&text, "test")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(key_of(error), key, "{text}");
    }
    // Unknown keys are refused at parse time, naming the key.
    let error = RawConfig::parse("[bgp]\nlocal_asn = 1\n", "test").unwrap_err();
    assert!(error.to_string().contains("local_asn"), "{error}");
}

fn gateway(n: u8, withdrawn: bool) -> Learned {
    Learned::Gateway(GatewayRoute {
        vtep: IpAddr::from([192, 0, 2, n]),
        route_targets: vec![],
        vni: Some(100),
        withdrawn,
    })
}

fn device(n: u8) -> Learned {
    Learned::Device(DeviceRoute {
        mac: format!("02:00:00:00:00:{n:02x}").parse().unwrap(),
        ip: None,
        vtep: IpAddr::from([192, 0, 2, 1]),
        route_targets: vec![],
        vni: Some(100),
        seq: None,
        withdrawn: false,
    })
}

#[test]
fn batches_keep_the_order_and_respect_the_size_limit() {
    let queue = vec![
        Report::Agent {
            alive: true,
            start_flag: true,
            graceful_restart: true,
        },
        Report::Route(gateway(1, false)),
        Report::Route(gateway(2, false)),
        Report::Route(device(1)),
        Report::Route(device(2)),
        Report::Route(device(3)),
        Report::Route(gateway(1, true)),
        Report::Agent {
            alive: false,
            start_flag: false,
            graceful_restart: false,
        },
        Report::Route(device(4)),
        Report::EndOfRib,
    ];
    let out = batches(queue, 2);
    let shape: Vec<(char, usize)> = out
        .iter()
        .map(|b| match b {
            Batch::Agent { .. } => ('a', 1),
            Batch::Gateways(l) => ('g', l.len()),
            Batch::Devices(l) => ('d', l.len()),
            Batch::EndOfRib => ('e', 1),
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ('a', 1),
            ('g', 2),
            ('d', 2),
            ('d', 1),
            ('g', 1),
            ('a', 1),
            ('d', 1),
            ('e', 1)
        ]
    );
    let Batch::Devices(second) = &out[3] else {
        panic!()
    };
    assert_eq!(second[0].mac.to_string(), "02:00:00:00:00:03");
}

mod owner {
    use std::collections::BTreeSet;
    use std::net::{IpAddr, Ipv4Addr};

    use l2pop_evpn::codec::PeerOpen;
    use l2pop_evpn::driver::SessionEvent;
    use l2pop_evpn::rib::{Path, Pmsi, Rd, RibChange, RouteKey};
    use l2pop_evpn::{DownReason, Importer, Learned, Negotiated};
    use tokio::sync::mpsc;

    use super::super::Owner;
    use super::super::report::Report;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const VTEP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));

    fn up(peer: IpAddr) -> SessionEvent {
        SessionEvent::Up {
            peer,
            negotiated: Negotiated {
                peer: PeerOpen {
                    asn: 65001,
                    hold_time: 9,
                    router_id: Ipv4Addr::new(203, 0, 113, 10),
                    evpn: true,
                    four_octet_as: true,
                    route_refresh: true,
                    enhanced_route_refresh: false,
                    graceful_restart_time: None,
                    graceful_restart_evpn: None,
                },
                hold_time: 9,
                keepalive: 3,
            },
        }
    }

    fn down(peer: IpAddr) -> SessionEvent {
        SessionEvent::Down {
            peer,
            reason: DownReason::ConnectionLost,
        }
    }

    fn gateway_change(peer: IpAddr, removed: bool) -> SessionEvent {
        let key = RouteKey::Imet {
            rd: Rd([0, 1, 203, 0, 113, 10, 3, 233]),
            ethernet_tag: 0,
            originator: VTEP,
        };
        let path = Path {
            next_hop: VTEP,
            route_targets: ["65001:1001".parse().unwrap()].into(),
            encapsulations: [8].into(),
            vni: None,
            pmsi: Some(Pmsi {
                tunnel_type: Pmsi::INGRESS_REPLICATION,
                vni: 1001,
                endpoint: Some(VTEP),
            }),
            mobility: None,
        };
        let change = if removed {
            RibChange::Removed { key, path }
        } else {
            RibChange::Added { key, path }
        };
        SessionEvent::Routes {
            peer,
            changes: vec![change],
        }
    }

    fn drain(queue: &mut mpsc::UnboundedReceiver<Report>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(report) = queue.try_recv() {
            out.push(match report {
                Report::Agent {
                    alive,
                    start_flag,
                    graceful_restart,
                } => {
                    format!("agent alive={alive} start={start_flag} graceful={graceful_restart}")
                }
                Report::EndOfRib => "end-of-rib".to_owned(),
                Report::Route(Learned::Gateway(g)) => {
                    format!("gateway {} withdrawn={}", g.vtep, g.withdrawn)
                }
                Report::Route(Learned::Device(d)) => format!("device {}", d.mac),
            });
        }
        out
    }

    #[test]
    fn the_last_session_lost_reports_the_agent_down_before_the_withdrawals() {
        let (reports, mut queue) = mpsc::unbounded_channel();
        let mut owner = Owner::new(Importer::new(BTreeSet::new()), None, reports, 65000);
        owner.event(up(A));
        owner.event(gateway_change(A, false));
        owner.event(up(B));
        owner.event(gateway_change(B, false));
        assert_eq!(
            drain(&mut queue),
            vec!["gateway 203.0.113.10 withdrawn=false"]
        );
        // One of two sessions lost: its routes go, the gateway stays (B has it), no 6b.
        owner.event(down(A));
        owner.event(gateway_change(A, true));
        assert_eq!(drain(&mut queue), Vec::<String>::new());
        // The last one: case 6b first, then the withdrawals.
        owner.event(down(B));
        owner.event(gateway_change(B, true));
        assert_eq!(
            drain(&mut queue),
            vec![
                "agent alive=false start=false graceful=false",
                "gateway 203.0.113.10 withdrawn=true"
            ]
        );
        owner.event(up(A));
        assert_eq!(
            drain(&mut queue),
            vec!["agent alive=true start=false graceful=false"]
        );
    }

    fn event(peer: IpAddr, kind: &str) -> SessionEvent {
        match kind {
            "retained" => SessionEvent::RoutesRetained { peer },
            "swept" => SessionEvent::StaleSwept { peer },
            "eor" => SessionEvent::EndOfRib { peer },
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_peer_whose_routes_are_kept_holds_the_agent_up_until_they_are_swept() {
        let (reports, mut queue) = mpsc::unbounded_channel();
        let mut owner = Owner::new(Importer::new(BTreeSet::new()), None, reports, 65000);
        owner.event(up(A));
        owner.event(gateway_change(A, false));
        drain(&mut queue);
        // The only session is lost with graceful restart: no 6b, no withdrawal.
        owner.event(event(A, "retained"));
        owner.event(down(A));
        assert_eq!(drain(&mut queue), Vec::<String>::new());
        // Back, End-of-RIB sweeps (the route was re-sent: no change): still nothing.
        owner.event(up(A));
        owner.event(event(A, "swept"));
        owner.event(event(A, "eor"));
        assert_eq!(drain(&mut queue), Vec::<String>::new());
        // Lost again, and the restart time runs out: withdrawals, then 6b.
        owner.event(event(A, "retained"));
        owner.event(down(A));
        owner.event(gateway_change(A, true));
        owner.event(event(A, "swept"));
        assert_eq!(
            drain(&mut queue),
            vec![
                "gateway 203.0.113.10 withdrawn=true",
                "agent alive=false start=false graceful=false"
            ]
        );
    }

    #[test]
    fn a_graceful_start_reports_end_of_rib_once_every_configured_peer_sent_one() {
        let (reports, mut queue) = mpsc::unbounded_channel();
        let mut owner = Owner::new(
            Importer::new(BTreeSet::new()),
            Some([A, B].into()),
            reports,
            65000,
        );
        owner.event(up(A));
        owner.event(event(A, "eor"));
        // B is configured but not up yet: its routes from the earlier run stay stale.
        assert_eq!(drain(&mut queue), Vec::<String>::new());
        owner.event(up(B));
        owner.event(event(B, "eor"));
        assert_eq!(drain(&mut queue), vec!["end-of-rib"]);
        // Later End-of-RIBs (a peer's own restart) are not the start's.
        owner.event(event(A, "eor"));
        assert_eq!(drain(&mut queue), Vec::<String>::new());
        // The restart time running out ends a start that is still waiting, once.
        let (reports, mut queue) = mpsc::unbounded_channel();
        let mut owner = Owner::new(
            Importer::new(BTreeSet::new()),
            Some([A].into()),
            reports,
            65000,
        );
        owner.end_graceful_start();
        owner.end_graceful_start();
        owner.event(event(A, "eor"));
        assert_eq!(drain(&mut queue), vec!["end-of-rib"]);
    }
}
