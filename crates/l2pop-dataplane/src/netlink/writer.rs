//! The pipelined executor: ops become `RTM_*` requests, many to one `sendmsg`, and their acks
//! are collected afterwards, the way `bridge -batch` would if it did not wait for each ack.
//!
//! It runs on a blocking thread over a plain `netlink_sys::Socket` opened in the target
//! namespace. The kernel handles the requests of one datagram in order (`netlink_rcv_skb`), so
//! the planner's order is kept without waiting; only resolving the ifindex of a link created
//! earlier in the same batch forces a flush. At most [`WINDOW`] requests are unacknowledged, so
//! their acks fit the socket's receive buffer.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::InfoVxlan;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVxlan};

use l2pop_model::Mac;

use crate::Op;
use crate::error::{ENOBUFS, ENODEV, KernelError, errno_text};

/// Most requests in flight before their acks are read.
pub(crate) const WINDOW: usize = 256;
/// Flush the send buffer beyond this many bytes.
const SEND_BYTES: usize = 64 * 1024;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// `EIO`: the request got no ack (the socket failed).
const EIO: i32 = 5;

/// A netlink socket for writes, with the name → ifindex cache of the links it acts on.
pub(crate) struct Writer {
    socket: Socket,
    seq: u32,
    indexes: HashMap<String, u32>,
    send: Vec<u8>,
    recv: Vec<u8>,
    /// (sequence number, op position) of requests sent or buffered, not yet acknowledged.
    pending: VecDeque<(u32, usize)>,
    unsent: usize,
}

type Results = Vec<Option<Result<(), KernelError>>>;

impl Writer {
    /// Opens the socket in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        socket.set_rx_buf_sz(4 << 20)?;
        // Acks carry only the request's header, plus the kernel's text on errors.
        socket.set_cap_ack(true)?;
        socket.set_ext_ack(true)?;
        Ok(Writer {
            socket,
            seq: 0,
            indexes: HashMap::new(),
            send: Vec::with_capacity(SEND_BYTES + 4096),
            recv: Vec::with_capacity(64 * 1024),
            pending: VecDeque::new(),
            unsent: 0,
        })
    }

    /// Replaces the name → ifindex cache (after a dump).
    pub(crate) fn set_indexes(&mut self, indexes: HashMap<String, u32>) {
        self.indexes = indexes;
    }

    /// Executes `ops` in order; one result per op.
    pub(crate) fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        let mut results: Results = vec![None; ops.len()];
        for (pos, op) in ops.iter().enumerate() {
            match self.request(op, ops, &mut results) {
                Ok((message, flags)) => self.queue(pos, message, flags),
                Err(errno) => results[pos] = Some(Err(KernelError::new(op, errno))),
            }
            if let Op::DeleteLink { name } = op {
                self.indexes.remove(name);
            }
            if self.pending.len() >= WINDOW || self.send.len() >= SEND_BYTES {
                self.flush(ops, &mut results);
            }
        }
        self.flush(ops, &mut results);
        results
            .into_iter()
            .zip(ops)
            .map(|(result, op)| {
                result.unwrap_or_else(|| {
                    Err(KernelError {
                        op: op.clone(),
                        errno: EIO,
                        message: "no ack from the kernel".into(),
                    })
                })
            })
            .collect()
    }

    fn index(&mut self, name: &str, ops: &[Op], results: &mut Results) -> Result<u32, i32> {
        if let Some(&index) = self.indexes.get(name) {
            return Ok(index);
        }
        // The link may be created by a request still in the buffer.
        self.flush(ops, results);
        let index = self
            .lookup(name)
            .map_err(|e| e.raw_os_error().unwrap_or(EIO))?
            .ok_or(ENODEV)?;
        self.indexes.insert(name.to_owned(), index);
        Ok(index)
    }

    /// The request equal to `op`, and its `nlmsg_flags` besides `NLM_F_REQUEST|NLM_F_ACK`.
    fn request(
        &mut self,
        op: &Op,
        ops: &[Op],
        results: &mut Results,
    ) -> Result<(RouteNetlinkMessage, u16), i32> {
        Ok(match op {
            Op::CreateBridge { name } => (
                RouteNetlinkMessage::NewLink(LinkBridge::new(name).build()),
                NLM_F_CREATE | NLM_F_EXCL,
            ),
            Op::CreateVxlan {
                name,
                vni,
                local,
                dst_port,
            } => {
                let builder = LinkVxlan::new(name, *vni).port(*dst_port).learning(false);
                let builder = match local {
                    IpAddr::V4(v4) => builder.local(*v4),
                    IpAddr::V6(v6) => builder.local6(*v6),
                };
                let message = builder.append_info_data(InfoVxlan::Proxy(true)).build();
                (
                    RouteNetlinkMessage::NewLink(message),
                    NLM_F_CREATE | NLM_F_EXCL,
                )
            }
            Op::DeleteLink { name } => {
                let index = self.index(name, ops, results)?;
                (
                    RouteNetlinkMessage::DelLink(LinkUnspec::new_with_index(index).build()),
                    0,
                )
            }
            Op::SetMaster { link, master } => {
                let index = self.index(link, ops, results)?;
                let master = self.index(master, ops, results)?;
                (
                    RouteNetlinkMessage::SetLink(
                        LinkUnspec::new_with_index(index).controller(master).build(),
                    ),
                    0,
                )
            }
            Op::SetUp { link } => {
                let index = self.index(link, ops, results)?;
                (
                    RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).up().build()),
                    0,
                )
            }
            Op::FdbAppend { dev, mac, dst } => {
                let index = self.index(dev, ops, results)?;
                (
                    RouteNetlinkMessage::NewNeighbour(fdb(index, *mac, *dst)),
                    NLM_F_CREATE | NLM_F_APPEND,
                )
            }
            Op::FdbReplace { dev, mac, dst } => {
                let index = self.index(dev, ops, results)?;
                (
                    RouteNetlinkMessage::NewNeighbour(fdb(index, *mac, *dst)),
                    NLM_F_CREATE | NLM_F_REPLACE,
                )
            }
            Op::FdbDel { dev, mac, dst } => {
                let index = self.index(dev, ops, results)?;
                (RouteNetlinkMessage::DelNeighbour(fdb(index, *mac, *dst)), 0)
            }
            Op::NeighReplace { dev, ip, mac } => {
                let index = self.index(dev, ops, results)?;
                let mut message = neighbour(index, *ip);
                message.header.state = NeighbourState::Permanent;
                message
                    .attributes
                    .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
                (
                    RouteNetlinkMessage::NewNeighbour(message),
                    NLM_F_CREATE | NLM_F_REPLACE,
                )
            }
            Op::NeighDel { dev, ip } => {
                let index = self.index(dev, ops, results)?;
                (RouteNetlinkMessage::DelNeighbour(neighbour(index, *ip)), 0)
            }
        })
    }

    fn queue(&mut self, pos: usize, message: RouteNetlinkMessage, flags: u16) {
        self.seq = self.seq.wrapping_add(1);
        self.serialize(message, NLM_F_REQUEST | NLM_F_ACK | flags);
        self.pending.push_back((self.seq, pos));
        self.unsent += 1;
    }

    fn serialize(&mut self, message: RouteNetlinkMessage, flags: u16) {
        let mut message = NetlinkMessage::from(message);
        message.header.flags = flags;
        message.header.sequence_number = self.seq;
        message.finalize();
        let start = self.send.len();
        self.send.resize(start + message.buffer_len(), 0);
        message.serialize(&mut self.send[start..]);
    }

    /// Sends the buffered requests and reads every pending ack.
    fn flush(&mut self, ops: &[Op], results: &mut Results) {
        if self.unsent > 0 {
            let sent = self.socket.send(&self.send, 0);
            self.send.clear();
            self.unsent = 0;
            if let Err(e) = sent {
                self.fail_pending(ops, results, e.raw_os_error().unwrap_or(EIO));
                return;
            }
        }
        while !self.pending.is_empty() {
            self.recv.clear();
            if let Err(e) = self.socket.recv(&mut self.recv, 0) {
                // ENOBUFS: acks were dropped; their requests' outcome is unknown.
                self.fail_pending(ops, results, e.raw_os_error().unwrap_or(ENOBUFS));
                return;
            }
            let mut at = 0;
            while let Some((kind, seq, body, next)) = split(&self.recv, at) {
                at = next;
                if kind != NLMSG_ERROR || body.len() < 4 {
                    continue;
                }
                let Some(slot) = self.pending.iter().position(|&(s, _)| s == seq) else {
                    continue;
                };
                let Some((_, pos)) = self.pending.remove(slot) else {
                    continue;
                };
                let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                results[pos] = Some(if code == 0 {
                    Ok(())
                } else {
                    if -code == ENODEV {
                        self.indexes.clear();
                    }
                    let mut message = errno_text(-code).to_owned();
                    if let Some(text) = ext_ack_text(body) {
                        message = format!("{message}: {text}");
                    }
                    Err(KernelError {
                        op: ops[pos].clone(),
                        errno: -code,
                        message,
                    })
                });
            }
        }
    }

    fn fail_pending(&mut self, ops: &[Op], results: &mut Results, errno: i32) {
        for (_, pos) in self.pending.drain(..) {
            results[pos] = Some(Err(KernelError::new(&ops[pos], errno)));
        }
    }

    /// `RTM_GETLINK` by `IFLA_IFNAME`: the ifindex, or `None` if there is no such link.
    fn lookup(&mut self, name: &str) -> io::Result<Option<u32>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let message = RouteNetlinkMessage::GetLink(LinkUnspec::new_with_name(name).build());
        self.serialize(message, NLM_F_REQUEST);
        let sent = self.socket.send(&self.send, 0);
        self.send.clear();
        sent?;
        loop {
            self.recv.clear();
            self.socket.recv(&mut self.recv, 0)?;
            let mut at = 0;
            while let Some((kind, got, body, next)) = split(&self.recv, at) {
                at = next;
                if got != seq {
                    continue;
                }
                return match kind {
                    RTM_NEWLINK if body.len() >= 8 => Ok(Some(u32::from_ne_bytes([
                        body[4], body[5], body[6], body[7],
                    ]))),
                    NLMSG_ERROR if body.len() >= 4 => {
                        let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                        if code == -ENODEV {
                            Ok(None)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        }
                    }
                    _ => Err(io::Error::from_raw_os_error(EIO)),
                };
            }
        }
    }
}

/// The message at `at` in a datagram: (type, sequence number, payload, offset of the next one).
fn split(buf: &[u8], at: usize) -> Option<(u16, u32, &[u8], usize)> {
    let header = buf.get(at..at + 16)?;
    let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let kind = u16::from_ne_bytes([header[4], header[5]]);
    let seq = u32::from_ne_bytes([header[8], header[9], header[10], header[11]]);
    if len < 16 {
        return None;
    }
    let body = buf.get(at + 16..at + len)?;
    Some((kind, seq, body, at + ((len + 3) & !3)))
}

/// `NLMSGERR_ATTR_MSG` of an error ack sent with `NETLINK_CAP_ACK`: the TLVs follow the error
/// code and the request's 16-byte header.
fn ext_ack_text(body: &[u8]) -> Option<String> {
    let mut at = 20;
    while let Some(tlv) = body.get(at..at + 4) {
        let len = usize::from(u16::from_ne_bytes([tlv[0], tlv[1]]));
        let kind = u16::from_ne_bytes([tlv[2], tlv[3]]);
        if len < 4 {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = body.get(at + 4..at + len)?;
            let text = text.split(|&b| b == 0).next().unwrap_or(text);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        at += (len + 3) & !3;
    }
    None
}

/// An `AF_BRIDGE` FDB entry of the VXLAN driver: `NTF_SELF`, `NUD_PERMANENT`, `NDA_LLADDR`,
/// `NDA_DST`.
fn fdb(index: u32, mac: Mac, dst: IpAddr) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Bridge;
    message.header.ifindex = index;
    message.header.flags = NeighbourFlags::Own;
    message.header.state = NeighbourState::Permanent;
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
    message
        .attributes
        .push(NeighbourAttribute::Destination(address(dst)));
    message
}

/// An `AF_INET`/`AF_INET6` neighbour entry on `index` with `NDA_DST`.
fn neighbour(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    message.header.ifindex = index;
    message
        .attributes
        .push(NeighbourAttribute::Destination(address(ip)));
    message
}

fn address(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
        IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
    }
}
