//! What a client reads to discover the API before it uses it: Neutron's version documents (`/`
//! and `/v2.0/`, which keystoneauth reads behind an endpoint override) and the extension list
//! (`/v2.0/extensions`, which the `openstack` CLI reads before it creates a port). The list is
//! exactly what l2pop implements; a client that checks for an extension l2pop lacks is told so.

use serde_json::{Value, json};

/// One API extension, as Neutron's `GET /v2.0/extensions` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension {
    pub alias: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub updated: &'static str,
}

/// The extensions l2pop implements, by Neutron's (or the plugin project's) alias and with its
/// `updated` stamp, in alias order.
pub const EXTENSIONS: &[Extension] = &[
    Extension {
        alias: "agent",
        name: "agent",
        description: "The agent management extension.",
        updated: "2013-02-03T10:00:00-00:00",
    },
    Extension {
        alias: "bgp",
        name: "BGP Dynamic Routing Extension",
        description: "Discover and advertise routes for Neutron prefixes dynamically via BGP",
        updated: "2016-05-10T15:37:00-00:00",
    },
    Extension {
        alias: "bgp_dragent_scheduler",
        name: "BGP Dynamic Routing Agent Scheduler",
        description: "Schedules BgpSpeakers on BgpDrAgent",
        updated: "2015-07-30T10:00:00-00:00",
    },
    Extension {
        alias: "bgpvpn",
        name: "BGPVPN extension",
        description: "Provides support for BGP VPN interconnections",
        updated: "2014-06-10T17:00:00-00:00",
    },
    Extension {
        alias: "binding",
        name: "Port Binding",
        description: "Expose port bindings of a virtual port to external application",
        updated: "2014-02-03T10:00:00-00:00",
    },
    Extension {
        alias: "filter-validation",
        name: "Filter parameters validation",
        description: "Provides validation on filter parameters.",
        updated: "2018-03-21T10:00:00-00:00",
    },
    Extension {
        alias: "pagination",
        name: "Pagination support",
        description: "Extension that indicates that pagination is enabled.",
        updated: "2016-06-12T00:00:00-00:00",
    },
    Extension {
        alias: "project-id",
        name: "project_id field enabled",
        description: "Extension that indicates that project_id field is enabled.",
        updated: "2016-09-09T09:09:09-09:09",
    },
    Extension {
        alias: "provider",
        name: "Provider Network",
        description: "Expose mapping of virtual networks to physical networks",
        updated: "2012-09-07T10:00:00-00:00",
    },
    Extension {
        alias: "segment",
        name: "Segment",
        description: "Segments extension.",
        updated: "2016-02-24T17:00:00-00:00",
    },
    Extension {
        alias: "sorting",
        name: "Sorting support",
        description: "Extension that indicates that sorting is enabled.",
        updated: "2016-06-12T00:00:00-00:00",
    },
];

/// The collections `GET /v2.0/` lists (Neutron's `resources` document).
const RESOURCES: &[(&str, &str)] = &[
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("agent", "agents"),
    ("bgp-speaker", "bgp-speakers"),
    ("bgpvpn", "bgpvpn/bgpvpns"),
];

fn extension_view(extension: &Extension) -> Value {
    json!({
        "alias": extension.alias,
        "name": extension.name,
        "description": extension.description,
        "updated": extension.updated,
        "links": [],
    })
}

/// `GET /v2.0/extensions`.
pub fn extensions() -> Value {
    let list: Vec<Value> = EXTENSIONS.iter().map(extension_view).collect();
    json!({ "extensions": list })
}

/// `GET /v2.0/extensions/{alias}`: `None` for an alias l2pop does not implement (a 404).
pub fn extension(alias: &str) -> Option<Value> {
    EXTENSIONS
        .iter()
        .find(|e| e.alias == alias)
        .map(|e| json!({ "extension": extension_view(e) }))
}

/// `GET /`: the one API version, linked from `base` (`http://host:port`, no trailing slash).
pub fn versions(base: &str) -> Value {
    json!({
        "versions": [{
            "id": "v2.0",
            "status": "CURRENT",
            "links": [{"href": format!("{base}/v2.0/"), "rel": "self"}],
        }]
    })
}

/// `GET /v2.0/`: the collections of version 2.0, linked from `base`.
pub fn resources(base: &str) -> Value {
    let list: Vec<Value> = RESOURCES
        .iter()
        .map(|(name, collection)| {
            json!({
                "name": name,
                "collection": collection,
                "links": [{"href": format!("{base}/v2.0/{collection}"), "rel": "self"}],
            })
        })
        .collect();
    json!({ "resources": list })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_unique_and_in_alias_order() {
        let aliases: Vec<&str> = EXTENSIONS.iter().map(|e| e.alias).collect();
        let mut sorted = aliases.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(aliases, sorted);
        assert_eq!(
            extensions()["extensions"].as_array().map(Vec::len),
            Some(EXTENSIONS.len())
        );
        assert_eq!(
            extension("binding").unwrap()["extension"]["name"],
            "Port Binding"
        );
        assert!(extension("security-group").is_none());
    }

    #[test]
    fn version_documents_link_from_the_base() {
        let doc = versions("http://h:9696");
        assert_eq!(doc["versions"][0]["id"], "v2.0");
        assert_eq!(
            doc["versions"][0]["links"][0]["href"],
            "http://h:9696/v2.0/"
        );
        let doc = resources("http://h:9696");
        assert_eq!(
            doc["resources"][0]["links"][0]["href"],
            "http://h:9696/v2.0/networks"
        );
    }
}
