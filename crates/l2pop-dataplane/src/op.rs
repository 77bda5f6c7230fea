//! Kernel operations as plain values. `plan` produces them, a [`crate::Dataplane`] executes
//! them, [`crate::Observed::apply`] replays them; `Display` prints the iproute2 command each one
//! equals, for logs and for reproducing a step by hand.

use std::fmt;
use std::net::IpAddr;

use l2pop_model::Mac;

/// One kernel change. Every variant names devices, never ifindexes, so a plan stays valid
/// across a link being recreated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `ip link add NAME type bridge` (`RTM_NEWLINK`, `IFLA_INFO_KIND "bridge"`).
    CreateBridge { name: String },
    /// `ip link add NAME type vxlan id VNI local IP dstport PORT nolearning proxy`
    /// (`RTM_NEWLINK`, `IFLA_VXLAN_ID/LOCAL(6)/PORT/LEARNING=0/PROXY=1`); it is set up after
    /// it has been enslaved.
    CreateVxlan {
        name: String,
        vni: u32,
        local: IpAddr,
        dst_port: u16,
    },
    /// `ip link del NAME` (`RTM_DELLINK`).
    DeleteLink { name: String },
    /// `ip link set LINK master MASTER` (`RTM_NEWLINK` with `IFLA_MASTER`).
    SetMaster { link: String, master: String },
    /// `ip link set LINK up` (`IFF_UP`).
    SetUp { link: String },
    /// `bridge fdb append 00:00:00:00:00:00 dev DEV dst DST self permanent`: one more flood
    /// remote (`RTM_NEWNEIGH`, `AF_BRIDGE`, `NTF_SELF`, `NUD_PERMANENT`,
    /// `NLM_F_CREATE|NLM_F_APPEND`).
    FdbAppend { dev: String, mac: Mac, dst: IpAddr },
    /// `bridge fdb replace MAC dev DEV dst DST self permanent`: a unicast remote, created or
    /// moved in place (`NLM_F_CREATE|NLM_F_REPLACE`).
    FdbReplace { dev: String, mac: Mac, dst: IpAddr },
    /// `bridge fdb del MAC dev DEV dst DST self` (`RTM_DELNEIGH`, `AF_BRIDGE`, `NDA_DST`).
    FdbDel { dev: String, mac: Mac, dst: IpAddr },
    /// `ip neigh replace IP lladdr MAC dev DEV nud permanent` (`RTM_NEWNEIGH`, `AF_INET(6)`):
    /// the entry the VXLAN `proxy` responder answers ARP/ND from.
    NeighReplace { dev: String, ip: IpAddr, mac: Mac },
    /// `ip neigh del IP dev DEV` (`RTM_DELNEIGH`).
    NeighDel { dev: String, ip: IpAddr },
}

impl Op {
    /// The device the op acts on (the link itself for link ops).
    pub fn dev(&self) -> &str {
        match self {
            Op::CreateBridge { name } | Op::CreateVxlan { name, .. } | Op::DeleteLink { name } => {
                name
            }
            Op::SetMaster { link, .. } | Op::SetUp { link } => link,
            Op::FdbAppend { dev, .. }
            | Op::FdbReplace { dev, .. }
            | Op::FdbDel { dev, .. }
            | Op::NeighReplace { dev, .. }
            | Op::NeighDel { dev, .. } => dev,
        }
    }

    /// Whether the op changes a link rather than an FDB or neighbour entry.
    pub fn is_link_op(&self) -> bool {
        matches!(
            self,
            Op::CreateBridge { .. }
                | Op::CreateVxlan { .. }
                | Op::DeleteLink { .. }
                | Op::SetMaster { .. }
                | Op::SetUp { .. }
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateBridge { name } => write!(f, "ip link add {name} type bridge"),
            Op::CreateVxlan {
                name,
                vni,
                local,
                dst_port,
            } => write!(
                f,
                "ip link add {name} type vxlan id {vni} local {local} dstport {dst_port} nolearning proxy"
            ),
            Op::DeleteLink { name } => write!(f, "ip link del {name}"),
            Op::SetMaster { link, master } => write!(f, "ip link set {link} master {master}"),
            Op::SetUp { link } => write!(f, "ip link set {link} up"),
            Op::FdbAppend { dev, mac, dst } => {
                write!(
                    f,
                    "bridge fdb append {mac} dev {dev} dst {dst} self permanent"
                )
            }
            Op::FdbReplace { dev, mac, dst } => {
                write!(
                    f,
                    "bridge fdb replace {mac} dev {dev} dst {dst} self permanent"
                )
            }
            Op::FdbDel { dev, mac, dst } => {
                write!(f, "bridge fdb del {mac} dev {dev} dst {dst} self")
            }
            Op::NeighReplace { dev, ip, mac } => {
                write!(
                    f,
                    "ip neigh replace {ip} lladdr {mac} dev {dev} nud permanent"
                )
            }
            Op::NeighDel { dev, ip } => write!(f, "ip neigh del {ip} dev {dev}"),
        }
    }
}
