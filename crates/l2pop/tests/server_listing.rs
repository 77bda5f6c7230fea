//! Listings read from the catalog the owner publishes (issue 8 items 4 and 12): Neutron's
//! paging (`limit`, `marker`, `page_reverse`, `*_links`), repeated filter keys, `fields`, a
//! streamed listing larger than one chunk, and agents whose `alive` and `heartbeat_timestamp`
//! follow their heartbeats.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN, TestServer};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("l2pop.db").display())
}

/// `count` ports on a new network, with `device_id` `vm-<k>`; their ids in id order.
async fn ports(server: &TestServer, count: usize) -> (String, Vec<String>) {
    let network = server.network_with_subnet("paged", "10.9.0.0/16").await;
    let mut ids = Vec::new();
    for k in 0..count {
        let port = server
            .admin(
                Method::POST,
                "/v2.0/ports",
                Some(json!({"port": {"network_id": network, "device_id": format!("vm-{k}")}})),
            )
            .await;
        ids.push(port["port"]["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    (network, ids)
}

fn ids(listing: &Value, key: &str) -> Vec<String> {
    listing[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

fn link(listing: &Value, key: &str, rel: &str) -> Option<String> {
    listing[format!("{key}_links")]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel)
        .map(|l| l["href"].as_str().unwrap().to_owned())
}

/// GETs an absolute `href` as the admin, as openstacksdk follows a `next` link.
async fn follow(server: &TestServer, href: &str) -> Value {
    let path = href
        .strip_prefix(&server.url)
        .unwrap_or_else(|| panic!("link {href} does not point at the server {}", server.url));
    server.admin(Method::GET, path, None).await
}

#[tokio::test]
async fn limit_and_marker_page_through_every_port_once_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let (_, all) = ports(&server, 7).await;

    let mut seen = Vec::new();
    let mut page = server.admin(Method::GET, "/v2.0/ports?limit=3", None).await;
    assert!(link(&page, "ports", "previous").is_none(), "{page}");
    let mut pages = 1;
    loop {
        let got = ids(&page, "ports");
        assert!(got.len() <= 3, "{page}");
        seen.extend(got);
        match link(&page, "ports", "next") {
            Some(next) => {
                assert!(next.contains("limit=3"), "{next}");
                page = follow(&server, &next).await;
                pages += 1;
                assert!(link(&page, "ports", "previous").is_some(), "{page}");
            }
            None => break,
        }
        assert!(pages <= 3, "more pages than 7 ports in pages of 3 need");
    }
    assert_eq!(seen, all, "every port once, in id order");
    assert_eq!(pages, 3);

    // A full last page has no `next`: the SDK's loop ends.
    let exact = server.admin(Method::GET, "/v2.0/ports?limit=7", None).await;
    assert_eq!(ids(&exact, "ports"), all);
    assert!(link(&exact, "ports", "next").is_none(), "{exact}");

    // Backwards from the last port: the ones before it, in id order.
    let back = server
        .admin(
            Method::GET,
            &format!("/v2.0/ports?limit=2&marker={}&page_reverse=True", all[6]),
            None,
        )
        .await;
    assert_eq!(ids(&back, "ports"), all[4..6].to_vec());
    assert!(link(&back, "ports", "previous").is_some(), "{back}");
    assert!(link(&back, "ports", "next").is_some(), "{back}");

    for (query, field) in [
        ("limit=-1", "limit"),
        ("limit=many", "limit"),
        ("marker=not-an-id", "marker"),
        ("page_reverse=maybe", "page_reverse"),
    ] {
        let (status, body) = server
            .call(
                Some(ADMIN),
                Method::GET,
                &format!("/v2.0/ports?{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["NeutronError"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn repeated_filter_keys_match_any_value_and_fields_select_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    ports(&server, 4).await;
    let listing = server
        .admin(
            Method::GET,
            "/v2.0/ports?device_id=vm-1&device_id=vm-3&fields=id&fields=device_id",
            None,
        )
        .await;
    let mut devices: Vec<&str> = listing["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["device_id"].as_str().unwrap())
        .collect();
    devices.sort_unstable();
    assert_eq!(devices, ["vm-1", "vm-3"]);
    for port in listing["ports"].as_array().unwrap() {
        let mut keys: Vec<&String> = port.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["device_id", "id"], "{port}");
    }
    // Booleans match however Python spells them.
    let up = server
        .admin(Method::GET, "/v2.0/ports?admin_state_up=True", None)
        .await;
    assert_eq!(up["ports"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_listing_larger_than_a_chunk_streams_complete_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    // More ports than one chunk of the streamed listing (512), on two networks.
    let (network, mut all) = ports(&server, 530).await;
    let other = server.network_with_subnet("other", "10.10.0.0/24").await;
    let extra = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": other}})),
        )
        .await;
    let listing = server.admin(Method::GET, "/v2.0/ports", None).await;
    let mut expected = all.clone();
    expected.push(extra["port"]["id"].as_str().unwrap().to_owned());
    expected.sort();
    assert_eq!(ids(&listing, "ports"), expected);
    assert!(
        listing.get("ports_links").is_none(),
        "no links without limit"
    );
    // One network's ports, through its index.
    let one = server
        .admin(
            Method::GET,
            &format!("/v2.0/ports?network_id={network}"),
            None,
        )
        .await;
    all.sort();
    assert_eq!(ids(&one, "ports"), all);
    // Nothing matches: an empty list, still valid JSON.
    let none = server
        .admin(Method::GET, "/v2.0/ports?device_id=nobody", None)
        .await;
    assert_eq!(none, json!({"ports": []}));
}

#[tokio::test]
async fn agents_show_real_liveness_moved_by_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let toml =
        support::config(&sqlite_url(&dir), "backend = \"memory\"") + "[agents]\ndown_time_s = 1\n";
    let server = TestServer::start_with(&toml).await;
    let report = |start: bool| json!({"agent": {"host": "compute-1", "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"], "start_flag": start}});
    let first = server
        .admin(Method::POST, "/v2.0/l2pop/agents", Some(report(true)))
        .await;
    assert_eq!(first["agent"]["alive"], true, "{first}");
    let id = first["agent"]["id"].as_str().unwrap().to_owned();

    // Silent for longer than the down time: shown dead, in the list and alone.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let listed = server.admin(Method::GET, "/v2.0/agents", None).await;
    assert_eq!(listed["agents"][0]["alive"], false, "{listed}");
    let dead = server
        .admin(Method::GET, &format!("/v2.0/agents/{id}"), None)
        .await;
    assert_eq!(dead["agent"]["alive"], false, "{dead}");
    let filtered = server
        .admin(Method::GET, "/v2.0/agents?alive=false", None)
        .await;
    assert_eq!(filtered["agents"].as_array().unwrap().len(), 1);

    // A heartbeat (an unchanged report, nothing logged) brings it back and moves the timestamp.
    let again = server
        .admin(Method::POST, "/v2.0/l2pop/agents", Some(report(false)))
        .await;
    assert_eq!(again["agent"]["alive"], true, "{again}");
    assert!(
        again["agent"]["heartbeat_timestamp"].as_str().unwrap()
            > first["agent"]["heartbeat_timestamp"].as_str().unwrap(),
        "{first} then {again}"
    );
    assert_eq!(again["agent"]["started_at"], first["agent"]["started_at"]);
    let alive = server
        .admin(Method::GET, "/v2.0/agents?alive=true", None)
        .await;
    assert_eq!(alive["agents"].as_array().unwrap().len(), 1, "{alive}");
}

/// The vteps of the first network in a host's desired table.
async fn vteps(server: &TestServer, host: &str) -> Vec<String> {
    let fdb = server
        .admin(Method::GET, &format!("/v2.0/l2pop/hosts/{host}/fdb"), None)
        .await;
    fdb["fdb"]["networks"][0]["vteps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["vtep"].as_str().unwrap().to_owned())
        .collect()
}

/// Case 6b without the agent's help: a BGP agent killed without a word (no `alive: false`) is
/// reported dead by the server once silent for the down time, and its gateway leaves every
/// table; heartbeats (unchanged reports, not logged) keep a live one alive.
#[tokio::test]
async fn a_silent_bgp_agent_is_reported_dead_and_its_routes_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let toml =
        support::config(&sqlite_url(&dir), "backend = \"memory\"") + "[agents]\ndown_time_s = 1\n";
    let server = TestServer::start_with(&toml).await;
    server
        .admin(
            Method::POST,
            "/v2.0/l2pop/agents",
            Some(json!({"agent": {"host": "compute-1", "tunneling_ip": "192.0.2.1", "tunnel_types": ["vxlan"], "start_flag": true}})),
        )
        .await;
    let network = server.network_with_subnet("site", "10.0.0.0/24").await;
    let shown = server
        .admin(Method::GET, &format!("/v2.0/networks/{network}"), None)
        .await;
    let vni = shown["network"]["provider:segmentation_id"].clone();
    let port = server
        .admin(
            Method::POST,
            "/v2.0/ports",
            Some(json!({"port": {"network_id": network, "binding:host_id": "compute-1"}})),
        )
        .await;
    let port_id = port["port"]["id"].as_str().unwrap();
    server
        .admin(
            Method::POST,
            &format!("/v2.0/l2pop/devices/{port_id}/up"),
            Some(json!({"device": {"host": "compute-1"}})),
        )
        .await;
    let agent_path = "/v2.0/l2pop/bgp-agents/bgp-1";
    let alive = json!({"bgp_agent": {"alive": true}});
    let agent_id = server
        .bgpvpn_site(
            &network,
            "bgp-1",
            json!({"bgpvpn": {"type": "l2", "route_targets": ["64512:1"]}}),
        )
        .await;
    server
        .admin(
            Method::POST,
            "/v2.0/l2pop/bgp-agents/bgp-1/gateways",
            Some(json!({"gateways": [{"vtep": "203.0.113.1", "route_targets": ["64512:1"], "vni": vni}]})),
        )
        .await;
    assert!(
        vteps(&server, "compute-1")
            .await
            .contains(&"203.0.113.1".to_owned())
    );

    // Heartbeats every 300 ms for 2.4 s, twice the down time: the gateway stays.
    for _ in 0..8 {
        let answer = server
            .admin(Method::PUT, agent_path, Some(alive.clone()))
            .await;
        assert_eq!(answer["agent"]["alive"], true, "{answer}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        vteps(&server, "compute-1")
            .await
            .contains(&"203.0.113.1".to_owned())
    );

    // Killed: silence. Within a few down times the server reports it dead and withdraws.
    let mut withdrawn = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !vteps(&server, "compute-1")
            .await
            .contains(&"203.0.113.1".to_owned())
        {
            withdrawn = true;
            break;
        }
    }
    assert!(withdrawn, "the silent agent's gateway was never withdrawn");
    let shown = server
        .admin(Method::GET, &format!("/v2.0/agents/{agent_id}"), None)
        .await;
    assert_eq!(shown["agent"]["alive"], false, "{shown}");

    // Back: an alive report is a change, logged; its routes return.
    let back = server
        .admin(Method::PUT, agent_path, Some(alive.clone()))
        .await;
    assert_eq!(back["agent"]["alive"], true, "{back}");
    assert!(
        vteps(&server, "compute-1")
            .await
            .contains(&"203.0.113.1".to_owned())
    );
}

#[tokio::test]
async fn bgpvpn_listings_refuse_unknown_filter_and_sort_keys_and_match_networks() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&sqlite_url(&dir)).await;
    let network = server.network_with_subnet("net-vpn", "10.9.0.0/24").await;
    let other = server.network_with_subnet("net-other", "10.8.0.0/24").await;
    for (name, rt) in [("vpn-a", "64512:1"), ("vpn-b", "64512:2")] {
        server
            .admin(
                Method::POST,
                "/v2.0/bgpvpn/bgpvpns",
                Some(json!({"bgpvpn": {"name": name, "type": "l2", "route_targets": [rt]}})),
            )
            .await;
    }
    let listing = server
        .admin(Method::GET, "/v2.0/bgpvpn/bgpvpns?name=vpn-a", None)
        .await;
    let vpn = listing["bgpvpns"][0]["id"].as_str().unwrap().to_owned();
    server
        .admin(
            Method::POST,
            &format!("/v2.0/bgpvpn/bgpvpns/{vpn}/network_associations"),
            Some(json!({"network_association": {"network_id": network}})),
        )
        .await;
    // A list attribute matches when it holds the value asked.
    let by_network = server
        .admin(
            Method::GET,
            &format!("/v2.0/bgpvpn/bgpvpns?networks={network}"),
            None,
        )
        .await;
    assert_eq!(ids(&by_network, "bgpvpns"), [vpn], "{by_network}");
    let none = server
        .admin(
            Method::GET,
            &format!("/v2.0/bgpvpn/bgpvpns?networks={other}"),
            None,
        )
        .await;
    assert_eq!(none["bgpvpns"], json!([]), "{none}");
    // A key that is no BGPVPN attribute is refused, as for every other collection.
    for (path, field, value) in [
        ("/v2.0/bgpvpn/bgpvpns?colour=red", "colour", "colour"),
        ("/v2.0/bgpvpn/bgpvpns?sort_key=colour", "sort_key", "colour"),
    ] {
        let (status, body) = server.call(Some(ADMIN), Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["NeutronError"]["field"], field, "{path}: {body}");
        assert_eq!(body["NeutronError"]["value"], value, "{path}: {body}");
    }
}
