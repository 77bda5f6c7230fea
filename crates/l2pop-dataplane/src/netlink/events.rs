//! [`Events`]: a multicast socket bound to `RTNLGRP_LINK` and `RTNLGRP_NEIGH` (what
//! `ip monitor link neigh` reads), reduced to "something changed on device X" signals that
//! trigger a reconcile. The signal carries no state: the agent re-plans from its tables.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::MulticastGroup;
use tokio::task::JoinHandle;

use crate::error::ConnectError;

/// One change notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChanged {
    /// A link was added, changed or deleted (`RTM_NEWLINK`/`RTM_DELLINK`), or one of its
    /// neighbour/FDB entries (`RTM_NEWNEIGH`/`RTM_DELNEIGH`; then `name` is `None`).
    Device { ifindex: u32, name: Option<String> },
    /// The socket overflowed (`ENOBUFS`): notifications were lost, reconcile everything.
    Lost,
}

type Messages = Pin<Box<dyn Stream<Item = NetlinkMessage<RouteNetlinkMessage>> + Send>>;

/// The change subscription of one namespace; its connection task ends when it is dropped.
pub struct Events {
    messages: Messages,
    connection: JoinHandle<()>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Events {
    /// Opens the subscription in `netns` (`None`: the caller's namespace).
    pub async fn open(netns: Option<&str>) -> Result<Self, ConnectError> {
        super::in_netns(netns, || {
            let (connection, _, messages) =
                rtnetlink::new_multicast_connection(&[MulticastGroup::Link, MulticastGroup::Neigh])
                    .map_err(ConnectError::Socket)?;
            let connection = tokio::spawn(connection);
            let messages: Messages = Box::pin(messages.map(|(message, _)| message));
            Ok(Events {
                messages,
                connection,
            })
        })
        .await
    }

    /// The next change; `None` when the socket is closed.
    pub async fn next(&mut self) -> Option<DeviceChanged> {
        while let Some(message) = self.messages.next().await {
            match message.payload {
                NetlinkPayload::Overrun(_) => return Some(DeviceChanged::Lost),
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewLink(link) | RouteNetlinkMessage::DelLink(link),
                ) => {
                    let name = link.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(name) => Some(name.clone()),
                        _ => None,
                    });
                    return Some(DeviceChanged::Device {
                        ifindex: link.header.index,
                        name,
                    });
                }
                NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewNeighbour(neighbour)
                    | RouteNetlinkMessage::DelNeighbour(neighbour),
                ) => {
                    return Some(DeviceChanged::Device {
                        ifindex: neighbour.header.ifindex,
                        name: None,
                    });
                }
                _ => {}
            }
        }
        None
    }
}
