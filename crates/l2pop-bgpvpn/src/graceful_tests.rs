//! Case 6a with graceful restart (RFC 4724): a restart keeps the agent's routes, stale; a route
//! re-learned unchanged sends nothing, a changed one only the change, and End-of-RIB purges what
//! is still stale in one diff. The golden scenarios `bgpvpn-case-6a-graceful-*` pin the same
//! rules end to end; these tests pin the refusals and the edges.

use super::*;

fn graceful_start(agent: &str) -> Value {
    json!({"op":"bgp_agent","host":agent,"start_flag":true,"graceful_restart":true})
}

fn end_of_rib(agent: &str) -> Value {
    json!({"op":"bgp_end_of_rib","host":agent})
}

const NONE: [&str; 0] = [];

#[test]
fn a_graceful_restart_keeps_every_entry_and_sends_nothing() {
    let mut engine = world();
    let before = [fdb(&engine, "host1", N1), fdb(&engine, "host1", N2)];
    assert_eq!(describe(&ok(&mut engine, graceful_start("bgp1"))), NONE);
    assert_eq!(
        [fdb(&engine, "host1", N1), fdb(&engine, "host1", N2)],
        before
    );
}

#[test]
fn relearned_routes_lose_the_stale_mark_and_survive_end_of_rib() {
    let mut engine = world();
    ok(&mut engine, graceful_start("bgp1"));
    // The gateway and device of N1 come back unchanged: nothing to send.
    let relearned = [
        gateways(
            "bgp1",
            json!([{"vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001}]),
        ),
        devices(
            "bgp1",
            json!([{"mac":DEV1,"ip":"10.0.1.100","vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001}]),
        ),
    ];
    for value in relearned {
        assert_eq!(describe(&ok(&mut engine, value)), NONE);
    }
    // N2's routes did not come back: End-of-RIB removes them, in one diff, and only them.
    assert_eq!(
        describe(&ok(&mut engine, end_of_rib("bgp1"))),
        [
            "remove fanout bgpvpn N2 203.0.113.2 flood",
            "remove fanout bgpvpn N2 203.0.113.2 02:00:00:00:00:02 10.0.2.100",
        ]
    );
    // A second End-of-RIB finds nothing stale.
    assert_eq!(describe(&ok(&mut engine, end_of_rib("bgp1"))), NONE);
    assert_eq!(
        fdb(&engine, "host1", N1),
        [
            "192.0.2.2 flood",
            "192.0.2.2 fa:16:3e:00:00:02 10.0.1.12",
            "203.0.113.1 flood",
            "203.0.113.1 02:00:00:00:00:01 10.0.1.100",
        ]
    );
}

#[test]
fn a_changed_route_sends_only_the_change_and_the_old_one_goes_at_end_of_rib() {
    let mut engine = world();
    ok(&mut engine, graceful_start("bgp1"));
    // DEV1 moved to .3 with a higher sequence: an add at .3 at once (the stale route at .1 loses
    // on MAC mobility); End-of-RIB then purges the stale .1 route, which no host still uses.
    assert_eq!(
        describe(&ok(
            &mut engine,
            devices(
                "bgp1",
                json!([{"mac":DEV1,"ip":"10.0.1.100","vtep":"203.0.113.3","route_targets":["65000:1"],"vni":1001,"seq":1}]),
            )
        )),
        ["add fanout bgpvpn N1 203.0.113.3 02:00:00:00:00:01 10.0.1.100"]
    );
    assert_eq!(
        describe(&ok(&mut engine, end_of_rib("bgp1"))),
        [
            "remove fanout bgpvpn N1 203.0.113.1 flood",
            "remove fanout bgpvpn N2 203.0.113.2 flood",
            "remove fanout bgpvpn N2 203.0.113.2 02:00:00:00:00:02 10.0.2.100",
        ]
    );
}

#[test]
fn a_withdrawn_stale_route_goes_at_once() {
    let mut engine = world();
    ok(&mut engine, graceful_start("bgp1"));
    assert_eq!(
        describe(&ok(
            &mut engine,
            gateways(
                "bgp1",
                json!([{"vtep":"203.0.113.1","route_targets":["65000:1"],"vni":1001,"withdrawn":true}]),
            )
        )),
        ["remove fanout bgpvpn N1 203.0.113.1 flood"]
    );
}

#[test]
fn a_restart_without_graceful_restart_still_drops_everything_at_once() {
    let mut engine = world();
    ok(&mut engine, graceful_start("bgp1"));
    // A plain restart while routes are stale: case 6a as before, stale or not.
    assert_eq!(
        describe(&ok(
            &mut engine,
            json!({"op":"bgp_agent","host":"bgp1","start_flag":true})
        ))
        .len(),
        4
    );
    assert_eq!(describe(&ok(&mut engine, end_of_rib("bgp1"))), NONE);
}

#[test]
fn stale_routes_of_a_dead_agent_behave_as_case_6b() {
    let mut engine = world();
    ok(&mut engine, graceful_start("bgp1"));
    let down = ok(
        &mut engine,
        json!({"op":"bgp_agent","host":"bgp1","alive":false}),
    );
    assert_eq!(describe(&down).len(), 4, "{:?}", describe(&down));
    // End-of-RIB while it is down purges silently; back up, nothing of it remains.
    assert_eq!(describe(&ok(&mut engine, end_of_rib("bgp1"))), NONE);
    assert_eq!(
        describe(&ok(&mut engine, json!({"op":"bgp_agent","host":"bgp1"}))),
        NONE
    );
}

#[test]
fn end_of_rib_from_an_unknown_agent_is_refused_and_changes_nothing() {
    let mut twin = Twin::new();
    twin.ok(graceful_start("bgp1"));
    twin.refuse(
        end_of_rib("bgp9"),
        BgpvpnError::UnknownAgent(host("bgp9")),
        "host: no BGP agent on host bgp9",
    );
    // The stale marks survived the refusal: End-of-RIB purges everything in both engines.
    assert_eq!(twin.ok(end_of_rib("bgp1")).len(), 4);
}
