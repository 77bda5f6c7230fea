//! BGP messages on the wire, through `rustbgpd-wire` (RFC 4271 framing, RFC 4760 MP
//! attributes, RFC 7432 EVPN NLRI, RFC 6514 PMSI, RFC 7606 dispositions). This module is the
//! only one that names that crate's types: it frames a byte stream into messages, builds the
//! messages the session sends, and reduces a received UPDATE to the EVPN routes it announces
//! and withdraws plus the RFC 7606 verdict on it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use bytes::{Bytes, BytesMut};
use l2pop_bgpvpn::RouteTarget;
use l2pop_model::Mac;
use rustbgpd_wire::attribute::{ExtendedCommunity, PathAttribute};
use rustbgpd_wire::evpn::EvpnRoute;
use rustbgpd_wire::pmsi::PmsiTunnelIdentifier;
use rustbgpd_wire::validate::ErrorDisposition;
use rustbgpd_wire::{
    Afi, Capability, DecodeError, GracefulRestartFamily, MAX_MESSAGE_LEN, Message,
    NotificationCode, NotificationMessage, OpenMessage, Safi, UpdateMessage,
};

use crate::rib::{Mobility, Path, Pmsi, Rd, RouteKey};

pub use rustbgpd_wire::{
    Message as WireMessage, OpenMessage as WireOpen, RouteRefreshSubtype,
    UpdateMessage as WireUpdate,
};

/// `AS_TRANS` (RFC 6793 §9): the 2-octet AS field of an OPEN from a 4-octet AS.
pub const AS_TRANS: u16 = 23456;
/// RFC 9012 §4.1 / RFC 8365 §5.1.3: BGP Encapsulation tunnel type VXLAN.
pub const ENCAP_VXLAN: u16 = 8;

/// A NOTIFICATION (RFC 4271 §4.5): error code, subcode, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;

    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// The NOTIFICATION RFC 4271 §6 prescribes for a decode error.
    pub fn for_decode_error(error: &DecodeError) -> Self {
        let (code, subcode, data) = error.to_notification();
        Notification::new(code.as_u8(), subcode, data.to_vec())
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(&Message::Notification(NotificationMessage::new(
            NotificationCode::from_u8(self.code),
            self.subcode,
            Bytes::copy_from_slice(&self.data),
        )))
    }
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} ({})",
            self.code,
            self.subcode,
            rustbgpd_wire::notification::description(
                NotificationCode::from_u8(self.code),
                self.subcode
            )
        )
    }
}

/// What we say in our OPEN (RFC 4271 §4.2, capabilities RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOpen {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub hold_time: u16,
    /// Graceful restart (RFC 4724) restart time to advertise; the restart state and
    /// forwarding bits stay clear (we keep no forwarding state across restarts).
    pub graceful_restart_time: u16,
}

fn encode(message: &Message) -> Vec<u8> {
    // Our own messages are far below 4096 octets and in range by construction.
    rustbgpd_wire::encode_message(message)
        .map(|b| b.to_vec())
        .unwrap_or_default()
}

/// Our OPEN: MP L2VPN/EVPN (RFC 4760, 7432), 4-octet AS (RFC 6793), route refresh (RFC 2918),
/// enhanced route refresh (RFC 7313), graceful restart (RFC 4724).
pub fn open(local: &LocalOpen) -> Vec<u8> {
    let my_as = u16::try_from(local.asn).unwrap_or(AS_TRANS);
    encode(&Message::Open(OpenMessage {
        version: 4,
        my_as,
        hold_time: local.hold_time,
        bgp_identifier: local.router_id,
        capabilities: vec![
            Capability::MultiProtocol {
                afi: Afi::L2Vpn,
                safi: Safi::Evpn,
            },
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::FourOctetAs { asn: local.asn },
            Capability::GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: local.graceful_restart_time,
                families: vec![GracefulRestartFamily {
                    afi: Afi::L2Vpn,
                    safi: Safi::Evpn,
                    forwarding_preserved: false,
                }],
            },
        ],
    }))
}

pub fn keepalive() -> Vec<u8> {
    encode(&Message::Keepalive)
}

/// End-of-RIB for L2VPN/EVPN (RFC 4724 §2): an UPDATE with only an empty MP_UNREACH_NLRI.
pub fn end_of_rib() -> Vec<u8> {
    let mut message = vec![0xff; 16];
    message.extend_from_slice(&[0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 25, 70]);
    message
}

/// What the peer's OPEN offers that we care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOpen {
    pub asn: u32,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub evpn: bool,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub graceful_restart_time: Option<u16>,
    /// The graceful restart capability lists L2VPN/EVPN: `Some(F bit)`, whether the peer kept
    /// its forwarding state across a restart (RFC 4724 §3). `None`: no retention for EVPN.
    pub graceful_restart_evpn: Option<bool>,
}

impl PeerOpen {
    pub fn from_wire(open: &OpenMessage) -> Self {
        let mut peer = PeerOpen {
            asn: open.four_byte_as(),
            hold_time: open.hold_time,
            router_id: open.bgp_identifier,
            evpn: false,
            four_octet_as: false,
            route_refresh: false,
            enhanced_route_refresh: false,
            graceful_restart_time: None,
            graceful_restart_evpn: None,
        };
        for capability in &open.capabilities {
            match capability {
                Capability::MultiProtocol {
                    afi: Afi::L2Vpn,
                    safi: Safi::Evpn,
                } => peer.evpn = true,
                Capability::FourOctetAs { .. } => peer.four_octet_as = true,
                Capability::RouteRefresh => peer.route_refresh = true,
                Capability::EnhancedRouteRefresh => peer.enhanced_route_refresh = true,
                Capability::GracefulRestart {
                    restart_time,
                    families,
                    ..
                } => {
                    peer.graceful_restart_time = Some(*restart_time);
                    peer.graceful_restart_evpn = families
                        .iter()
                        .find(|f| f.afi == Afi::L2Vpn && f.safi == Safi::Evpn)
                        .map(|f| f.forwarding_preserved);
                }
                _ => {}
            }
        }
        peer
    }
}

/// Splits a TCP byte stream into BGP messages (RFC 4271 §4.1).
#[derive(Debug, Default)]
pub struct Framer {
    buffer: BytesMut,
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message; `None` when more bytes are needed. A header or body error
    /// is fatal for the connection (RFC 4271 §6.1), so the caller stops reading after one.
    pub fn next_message(&mut self) -> Option<Result<Message, DecodeError>> {
        match rustbgpd_wire::peek_message_length(&self.buffer, MAX_MESSAGE_LEN) {
            Ok(None) => None,
            Ok(Some(length)) if self.buffer.len() < usize::from(length) => None,
            Ok(Some(length)) => {
                let mut message = self.buffer.split_to(usize::from(length)).freeze();
                Some(rustbgpd_wire::decode_message(&mut message, MAX_MESSAGE_LEN))
            }
            Err(error) => {
                self.buffer.clear();
                Some(Err(error))
            }
        }
    }

    pub fn clear(&mut self) {
        self.buffer.clear();
    }
}

/// RFC 7606 §2 verdict on an UPDATE that carried a malformed attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Attribute discard: the bad attribute is dropped, the routes stand.
    AttributeDiscard,
    /// Treat-as-withdraw: every route the UPDATE announces is withdrawn.
    TreatAsWithdraw,
}

/// An UPDATE reduced to the EVPN routes it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvpnUpdate {
    pub announced: Vec<(RouteKey, Path)>,
    pub withdrawn: Vec<RouteKey>,
    /// RFC 4724 §2: an UPDATE with nothing but an empty MP_UNREACH_NLRI for L2VPN/EVPN.
    pub end_of_rib: bool,
    /// Set when a malformed attribute was recovered per RFC 7606.
    pub verdict: Option<Verdict>,
    /// What was malformed, for the log.
    pub problems: Vec<String>,
    /// NLRI that are not EVPN type 2 or 3 or not L2VPN/EVPN at all: skipped.
    pub ignored: usize,
    /// Every AS number in AS_PATH, for loop detection (RFC 4271 §9.1.2).
    pub as_path: Vec<u32>,
    /// ORIGINATOR_ID set by a route reflector (RFC 4456 §8), for loop detection.
    pub originator_id: Option<Ipv4Addr>,
}

/// Reduces an UPDATE to EVPN routes, applying RFC 7606: `Err` is the NOTIFICATION to send
/// when the RFC requires a session reset (the NLRI themselves cannot be trusted).
pub fn evpn_update(
    update: &UpdateMessage,
    four_octet_as: bool,
    ibgp: bool,
) -> Result<EvpnUpdate, Notification> {
    let parsed = update
        .parse_revised(four_octet_as, ibgp, false, &[])
        .map_err(|e| Notification::for_decode_error(&e))?;
    let mut out = EvpnUpdate::default();
    let mut worst: Option<ErrorDisposition> = None;
    for malformed in &parsed.malformed {
        out.problems.push(format!(
            "attribute {}: {} ({})",
            malformed.type_code,
            malformed.error,
            malformed.disposition.as_str()
        ));
        if malformed.disposition == ErrorDisposition::SessionReset {
            return Err(Notification::for_decode_error(&malformed.error));
        }
        worst = worst.max(Some(malformed.disposition));
    }
    let attributes = &parsed.update.attributes;
    out.ignored += parsed.update.announced.len() + parsed.update.withdrawn.len();

    let mut next_hop = None;
    let mut announced = Vec::new();
    let mut mp_unreach_evpn = false;
    let mut mp_reach_any = false;
    let mut path = Path {
        next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        route_targets: BTreeSet::new(),
        encapsulations: BTreeSet::new(),
        vni: None,
        pmsi: None,
        mobility: None,
    };
    for attribute in attributes {
        match attribute {
            PathAttribute::MpReachNlri(mp) => {
                mp_reach_any = true;
                if mp.afi == Afi::L2Vpn && mp.safi == Safi::Evpn {
                    next_hop = Some(mp.next_hop);
                    announced.extend(mp.evpn_announced.iter().cloned());
                } else {
                    out.ignored += 1;
                }
            }
            PathAttribute::MpUnreachNlri(mp) => {
                if mp.afi == Afi::L2Vpn && mp.safi == Safi::Evpn {
                    mp_unreach_evpn = true;
                    for route in &mp.evpn_withdrawn {
                        match key_of(route) {
                            Some(key) => out.withdrawn.push(key),
                            None => out.ignored += 1,
                        }
                    }
                } else {
                    out.ignored += 1;
                }
            }
            PathAttribute::ExtendedCommunities(communities)
            | PathAttribute::ExtendedCommunitiesPartial(communities) => {
                for community in communities {
                    read_community(*community, &mut path);
                }
            }
            PathAttribute::OriginatorId(id) => out.originator_id = Some(*id),
            PathAttribute::AsPath(path) => {
                for segment in &path.segments {
                    match segment {
                        rustbgpd_wire::attribute::AsPathSegment::AsSequence(asns)
                        | rustbgpd_wire::attribute::AsPathSegment::AsSet(asns) => {
                            out.as_path.extend(asns.iter().copied());
                        }
                    }
                }
            }
            PathAttribute::PmsiTunnel(pmsi) | PathAttribute::PmsiTunnelPartial(pmsi) => {
                path.pmsi = Some(Pmsi {
                    tunnel_type: pmsi.tunnel_type.as_u8(),
                    vni: pmsi.mpls_label & 0x00ff_ffff,
                    endpoint: match pmsi.tunnel_identifier {
                        PmsiTunnelIdentifier::Ipv4(a) => Some(IpAddr::V4(a)),
                        PmsiTunnelIdentifier::Ipv6(a) => Some(IpAddr::V6(a)),
                        _ => None,
                    },
                });
            }
            _ => {}
        }
    }
    out.end_of_rib = mp_unreach_evpn
        && out.withdrawn.is_empty()
        && !mp_reach_any
        && parsed.update.announced.is_empty()
        && parsed.update.withdrawn.is_empty();

    if !announced.is_empty() {
        // RFC 7606 §3 (d), §5: missing well-known mandatory attributes, bad next hop.
        if let Err(error) =
            rustbgpd_wire::validate::validate_update_attributes(attributes, true, false, !ibgp)
        {
            out.problems.push(format!(
                "update: invalid attribute set, subcode {} ({})",
                error.subcode,
                error.disposition.as_str()
            ));
            if error.disposition == ErrorDisposition::SessionReset {
                return Err(Notification::new(
                    Notification::UPDATE,
                    error.subcode,
                    error.data,
                ));
            }
            worst = worst.max(Some(error.disposition));
        }
    }
    out.verdict = worst.map(|w| match w {
        ErrorDisposition::AttributeDiscard => Verdict::AttributeDiscard,
        _ => Verdict::TreatAsWithdraw,
    });
    if let Some(hop) = next_hop {
        path.next_hop = hop;
    }
    for route in &announced {
        let Some(key) = key_of(route) else {
            out.ignored += 1;
            continue;
        };
        if out.verdict == Some(Verdict::TreatAsWithdraw) {
            out.withdrawn.push(key);
            continue;
        }
        let mut route_path = path.clone();
        if let EvpnRoute::MacIp(mac_ip) = route {
            route_path.vni = Some(mac_ip.label1.as_vni());
            route_path.pmsi = None;
        } else {
            route_path.mobility = None;
        }
        out.announced.push((key, route_path));
    }
    Ok(out)
}

/// The stored key of a type-2 or type-3 route; other types are not kept.
fn key_of(route: &EvpnRoute) -> Option<RouteKey> {
    match route {
        EvpnRoute::MacIp(r) => Some(RouteKey::MacIp {
            rd: Rd(r.rd.0),
            ethernet_tag: r.ethernet_tag.0,
            mac: Mac::new(r.mac.0),
            ip: r.ip,
        }),
        EvpnRoute::Imet(r) => Some(RouteKey::Imet {
            rd: Rd(r.rd.0),
            ethernet_tag: r.ethernet_tag.0,
            originator: r.originator_ip,
        }),
        _ => None,
    }
}

/// Route targets (RFC 4360 §4, types 0x00/0x01/0x02 subtype 0x02), encapsulation (RFC 9012
/// §4.1), MAC mobility (RFC 7432 §7.7); other communities are not needed for import.
fn read_community(community: ExtendedCommunity, path: &mut Path) {
    let v = community.value_bytes();
    match (community.type_byte(), community.subtype()) {
        (0x00, 0x02) => {
            path.route_targets.insert(RouteTarget::As2 {
                asn: u16::from_be_bytes([v[0], v[1]]),
                number: u32::from_be_bytes([v[2], v[3], v[4], v[5]]),
            });
        }
        (0x01, 0x02) => {
            path.route_targets.insert(RouteTarget::Ipv4 {
                address: Ipv4Addr::new(v[0], v[1], v[2], v[3]),
                number: u16::from_be_bytes([v[4], v[5]]),
            });
        }
        (0x02, 0x02) => {
            path.route_targets.insert(RouteTarget::As4 {
                asn: u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                number: u16::from_be_bytes([v[4], v[5]]),
            });
        }
        _ => {
            if let Some(tunnel) = community.as_bgp_encapsulation() {
                path.encapsulations.insert(tunnel);
            } else if let Some((sticky, sequence)) = community.as_mac_mobility() {
                path.mobility = Some(Mobility { sequence, sticky });
            }
        }
    }
}

/// How our UPDATEs to one peer are built (RFC 4271 §5.1.2, §5.1.5; RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSession {
    pub local_as: u32,
    /// The peer is in our AS: empty AS_PATH and LOCAL_PREF (default 100).
    pub ibgp: bool,
    /// Both sides negotiated 4-octet AS numbers.
    pub four_octet_as: bool,
}

/// Room for NLRI in one UPDATE: the 4096-octet maximum (RFC 4271 §4.1) less the header, the
/// two length fields and a generous allowance for the other attributes (route targets add 8
/// octets each and are counted apart).
const NLRI_ROOM: usize = 4096 - 19 - 4 - 160;

fn route_target_community(target: RouteTarget) -> ExtendedCommunity {
    let raw = match target {
        RouteTarget::As2 { asn, number } => {
            (0x0002u64 << 48) | (u64::from(asn) << 32) | u64::from(number)
        }
        RouteTarget::Ipv4 { address, number } => {
            (0x0102u64 << 48) | (u64::from(u32::from(address)) << 16) | u64::from(number)
        }
        RouteTarget::As4 { asn, number } => {
            (0x0202u64 << 48) | (u64::from(asn) << 16) | u64::from(number)
        }
    };
    ExtendedCommunity::new(raw)
}

/// RFC 9012 §4.1: the BGP Encapsulation community, tunnel type VXLAN.
fn vxlan_encapsulation() -> ExtendedCommunity {
    ExtendedCommunity::new((0x030cu64 << 48) | u64::from(ENCAP_VXLAN))
}

fn wire_route(key: &RouteKey, vni: u32) -> EvpnRoute {
    use rustbgpd_wire::evpn::{
        EthernetSegmentIdentifier, EthernetTagId, EvpnImet, EvpnMacIp, MacAddress, MplsLabel,
        RouteDistinguisher,
    };
    match *key {
        RouteKey::MacIp {
            rd,
            ethernet_tag,
            mac,
            ip,
        } => EvpnRoute::MacIp(EvpnMacIp {
            rd: RouteDistinguisher(rd.0),
            esi: EthernetSegmentIdentifier::ZERO,
            ethernet_tag: EthernetTagId(ethernet_tag),
            mac: MacAddress(mac.octets()),
            ip,
            label1: MplsLabel::new(vni),
            label2: None,
        }),
        RouteKey::Imet {
            rd,
            ethernet_tag,
            originator,
        } => EvpnRoute::Imet(EvpnImet {
            rd: RouteDistinguisher(rd.0),
            ethernet_tag: EthernetTagId(ethernet_tag),
            originator_ip: originator,
        }),
    }
}

/// Octets of one EVPN NLRI on the wire (RFC 7432 §7.2, §7.3), type and length included.
fn nlri_len(key: &RouteKey) -> usize {
    let ip_len = |ip: &IpAddr| if ip.is_ipv4() { 4 } else { 16 };
    match key {
        RouteKey::MacIp { ip, .. } => 2 + 33 + ip.as_ref().map_or(0, ip_len),
        RouteKey::Imet { originator, .. } => 2 + 13 + ip_len(originator),
    }
}

fn update_message(attributes: Vec<PathAttribute>, session: &ExportSession) -> Vec<u8> {
    let update = UpdateMessage::build(
        &[],
        &[],
        &attributes,
        session.four_octet_as,
        false,
        rustbgpd_wire::Ipv4UnicastMode::Body,
    );
    encode(&Message::Update(update))
}

fn mp_unreach(routes: Vec<EvpnRoute>) -> PathAttribute {
    PathAttribute::MpUnreachNlri(Box::new(rustbgpd_wire::attribute::MpUnreachNlri {
        afi: Afi::L2Vpn,
        safi: Safi::Evpn,
        withdrawn: Vec::new(),
        flowspec_withdrawn: Vec::new(),
        evpn_withdrawn: routes,
        bgpls_withdrawn: Vec::new(),
        vpn_withdrawn: Vec::new(),
        labeled_withdrawn: Vec::new(),
        rtc_withdrawn: Vec::new(),
    }))
}

/// The UPDATEs that carry `diff` to a peer: withdrawals first (MP_UNREACH_NLRI), then the
/// announcements grouped by identical attributes (MP_REACH_NLRI with the VTEP as next hop,
/// ORIGIN IGP, AS_PATH, LOCAL_PREF on iBGP, route targets and the VXLAN encapsulation
/// community; a type-3 route also its PMSI Tunnel attribute, ingress replication to the VTEP
/// with the VNI as label, RFC 6514 §5 / RFC 8365 §5.1.3), each message within 4096 octets.
pub fn export_updates(diff: &crate::export::ExportDiff, session: &ExportSession) -> Vec<Vec<u8>> {
    use rustbgpd_wire::attribute::{AsPath, AsPathSegment, MpReachNlri, Origin};
    use rustbgpd_wire::pmsi::PmsiTunnel;

    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut room = NLRI_ROOM;
    for (key, path) in &diff.withdraw {
        let len = nlri_len(key);
        if len > room {
            out.push(update_message(
                vec![mp_unreach(std::mem::take(&mut batch))],
                session,
            ));
            room = NLRI_ROOM;
        }
        room -= len;
        batch.push(wire_route(key, path.vni));
    }
    if !batch.is_empty() {
        out.push(update_message(vec![mp_unreach(batch)], session));
    }

    // Routes sharing every attribute share an UPDATE; a type-3 route's PMSI names its VTEP.
    type Group<'a> = (bool, &'a crate::export::ExportPath, Vec<&'a RouteKey>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: std::collections::BTreeMap<(bool, &crate::export::ExportPath), usize> =
        std::collections::BTreeMap::new();
    for (key, path) in &diff.announce {
        let imet = matches!(key, RouteKey::Imet { .. });
        let slot = *index.entry((imet, path)).or_insert_with(|| {
            groups.push((imet, path, Vec::new()));
            groups.len() - 1
        });
        groups[slot].2.push(key);
    }
    for (imet, path, keys) in groups {
        let mut communities: Vec<ExtendedCommunity> = path
            .route_targets
            .iter()
            .map(|t| route_target_community(*t))
            .collect();
        communities.push(vxlan_encapsulation());
        let room_here = NLRI_ROOM.saturating_sub(8 * communities.len()).max(64);
        let attributes = |routes: Vec<EvpnRoute>| {
            let mut attributes = vec![
                PathAttribute::Origin(Origin::Igp),
                PathAttribute::AsPath(AsPath {
                    segments: if session.ibgp {
                        Vec::new()
                    } else {
                        vec![AsPathSegment::AsSequence(vec![session.local_as])]
                    },
                }),
            ];
            if session.ibgp {
                attributes.push(PathAttribute::LocalPref(path.local_pref.unwrap_or(100)));
            }
            attributes.push(PathAttribute::MpReachNlri(Box::new(MpReachNlri {
                afi: Afi::L2Vpn,
                safi: Safi::Evpn,
                next_hop: path.next_hop,
                link_local_next_hop: None,
                announced: Vec::new(),
                flowspec_announced: Vec::new(),
                evpn_announced: routes,
                bgpls_announced: Vec::new(),
                vpn_announced: Vec::new(),
                labeled_announced: Vec::new(),
                rtc_announced: Vec::new(),
            })));
            attributes.push(PathAttribute::ExtendedCommunities(communities.clone()));
            if imet {
                attributes.push(PathAttribute::PmsiTunnel(
                    PmsiTunnel::for_evpn_ingress_replication(path.vni, path.next_hop),
                ));
            }
            attributes
        };
        let mut batch = Vec::new();
        let mut room = room_here;
        for key in keys {
            let len = nlri_len(key);
            if len > room && !batch.is_empty() {
                out.push(update_message(
                    attributes(std::mem::take(&mut batch)),
                    session,
                ));
                room = room_here;
            }
            room = room.saturating_sub(len);
            batch.push(wire_route(key, path.vni));
        }
        if !batch.is_empty() {
            out.push(update_message(attributes(batch), session));
        }
    }
    out
}
