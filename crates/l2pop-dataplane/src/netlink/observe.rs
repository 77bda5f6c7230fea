//! Dumps into an [`Observed`]: every link, and on VXLAN devices the `NTF_SELF` FDB entries with
//! `NDA_DST` and the `NUD_PERMANENT` neighbours.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};

use l2pop_model::Mac;

use crate::error::ObserveError;
use crate::state::{Link, LinkKind, Observed};

fn dump_error(what: &'static str) -> impl FnOnce(rtnetlink::Error) -> ObserveError {
    move |e| ObserveError::Dump {
        what,
        message: e.to_string(),
    }
}

/// The observation and the name → ifindex map of every link.
pub(super) async fn dump(
    handle: &rtnetlink::Handle,
) -> Result<(Observed, HashMap<String, u32>), ObserveError> {
    let messages: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(dump_error("link"))?;
    let mut by_index: BTreeMap<u32, String> = BTreeMap::new();
    let mut parsed = Vec::with_capacity(messages.len());
    for message in messages {
        if let Some((name, link, master)) = parse_link(&message) {
            by_index.insert(link.index, name.clone());
            parsed.push((name, link, master));
        }
    }
    let mut observed = Observed::default();
    for (name, mut link, master) in parsed {
        link.master = master.and_then(|m| by_index.get(&m).cloned());
        observed.links.insert(name, link);
    }
    let vxlans: HashMap<u32, String> = observed
        .links
        .iter()
        .filter(|(_, l)| l.kind.is_vxlan())
        .map(|(name, l)| (l.index, name.clone()))
        .collect();

    let mut fdb = handle
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge)
        .execute();
    while let Some(message) = fdb.try_next().await.map_err(dump_error("fdb"))? {
        let Some(dev) = vxlans.get(&message.header.ifindex) else {
            continue;
        };
        if !message.header.flags.contains(NeighbourFlags::Own) {
            continue;
        }
        if let (Some(mac), Some(dst)) = (lladdr(&message), destination(&message)) {
            observed
                .fdb
                .entry(dev.clone())
                .or_default()
                .insert((mac, dst));
        }
    }

    let mut neighbours = handle.neighbours().get().execute();
    while let Some(message) = neighbours
        .try_next()
        .await
        .map_err(dump_error("neighbour"))?
    {
        let Some(dev) = vxlans.get(&message.header.ifindex) else {
            continue;
        };
        if message.header.state != NeighbourState::Permanent
            || !matches!(
                message.header.family,
                AddressFamily::Inet | AddressFamily::Inet6
            )
        {
            continue;
        }
        if let (Some(mac), Some(ip)) = (lladdr(&message), destination(&message)) {
            observed
                .neighbours
                .entry(dev.clone())
                .or_default()
                .insert(ip, mac);
        }
    }
    let indexes = by_index
        .into_iter()
        .map(|(index, name)| (name, index))
        .collect();
    Ok((observed, indexes))
}

fn parse_link(message: &LinkMessage) -> Option<(String, Link, Option<u32>)> {
    let mut name = None;
    let mut master = None;
    let mut kind = LinkKind::Other(String::new());
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Controller(m) => master = Some(*m),
            LinkAttribute::LinkInfo(infos) => kind = parse_kind(infos),
            _ => {}
        }
    }
    let link = Link {
        index: message.header.index,
        kind,
        master: None,
        up: message.header.flags.contains(LinkFlags::Up),
    };
    Some((name?, link, master))
}

fn parse_kind(infos: &[LinkInfo]) -> LinkKind {
    let mut kind = None;
    let mut vxlan = None;
    for info in infos {
        match info {
            LinkInfo::Kind(k) => kind = Some(k.clone()),
            LinkInfo::Data(InfoData::Vxlan(attrs)) => vxlan = Some(attrs),
            _ => {}
        }
    }
    match (kind, vxlan) {
        (Some(InfoKind::Bridge), _) => LinkKind::Bridge,
        (Some(InfoKind::Vxlan), Some(attrs)) => {
            let (mut vni, mut local, mut port, mut learning, mut proxy) =
                (0, None, 8472, true, false);
            for attr in attrs {
                match attr {
                    InfoVxlan::Id(v) => vni = *v,
                    InfoVxlan::Local(v4) => local = Some(IpAddr::V4(*v4)),
                    InfoVxlan::Local6(v6) => local = Some(IpAddr::V6(*v6)),
                    InfoVxlan::Port(p) => port = *p,
                    InfoVxlan::Learning(l) => learning = *l,
                    InfoVxlan::Proxy(p) => proxy = *p,
                    _ => {}
                }
            }
            LinkKind::Vxlan {
                vni,
                local,
                port,
                learning,
                proxy,
            }
        }
        (Some(other), _) => LinkKind::Other(other.to_string()),
        (None, _) => LinkKind::Other(String::new()),
    }
}

fn lladdr(message: &NeighbourMessage) -> Option<Mac> {
    message.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(bytes) => {
            <[u8; 6]>::try_from(bytes.as_slice()).ok().map(Mac::new)
        }
        _ => None,
    })
}

/// `NDA_DST`; in `AF_BRIDGE` dumps it arrives as raw bytes (`NeighbourAddress::Other`).
fn destination(message: &NeighbourMessage) -> Option<IpAddr> {
    message.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes.as_slice())
                .ok()
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            16 => <[u8; 16]>::try_from(bytes.as_slice())
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        },
        _ => None,
    })
}
