//! The stream follower: where a consumer stands in the server's two ordered streams, and what
//! to do with each notification it receives. Pure: the agent and the BGP speaker feed it what
//! their consumer yields and act on the [`Verdict`].
//!
//! The server numbers its fanout casts (`fanout_seq`) and, separately, the casts to each host
//! (`host_seq`), because RabbitMQ orders each queue but not the pair (DESIGN, "Wire
//! compatibility"). A consumer starts unsynced, fetches a snapshot that states both positions
//! (`get_fdb_entries`), calls [`Follower::sync`], and from then on:
//!
//! | received | verdict |
//! |---|---|
//! | the next number of its stream | [`Verdict::Apply`] (the position advances) |
//! | a number already passed | [`Verdict::Duplicate`] (a republish after a server restart, a redelivery) |
//! | a number beyond the next | [`Verdict::Resync`] with [`Resync::Gap`] (a message was lost) |
//! | another server's stream id | [`Verdict::Resync`] with [`Resync::NewStream`] (a new cluster: numbers restart) |
//! | anything while unsynced | [`Verdict::Resync`] with [`Resync::Unsynced`] |
//! | no stream numbers (Neutron's own server) | [`Verdict::Unnumbered`]: apply as Neutron's agents do |
//!
//! The stream id is the first half of oslo's `_unique_id` (see [`crate::message::unique_id`]).

use l2pop_model::Target;

use crate::message::StreamPosition;

/// Which of the two streams a notification belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Fanout,
    Host,
}

impl Stream {
    /// The stream of a notification received from `target`'s queue.
    pub fn of(target: &Target) -> Self {
        match target {
            Target::Fanout => Stream::Fanout,
            Target::Host(_) => Stream::Host,
        }
    }
}

/// Why the consumer must fetch a fresh snapshot before applying anything more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resync {
    /// No snapshot taken yet (or the last one was invalidated).
    Unsynced,
    /// `stream` skipped from `expected` to `got`: the messages between were lost.
    Gap {
        stream: Stream,
        expected: u64,
        got: u64,
    },
    /// The notification comes from another stream (a new cluster or a wiped store).
    NewStream { known: u64, got: u64 },
}

impl std::fmt::Display for Resync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resync::Unsynced => f.write_str("not synced yet"),
            Resync::Gap {
                stream,
                expected,
                got,
            } => write!(f, "{stream:?} stream gap: expected {expected}, got {got}"),
            Resync::NewStream { known, got } => {
                write!(f, "new server stream {got:016x} (was {known:016x})")
            }
        }
    }
}

/// What to do with one received notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The next one of its stream: apply it.
    Apply,
    /// Already applied (or reflected by the snapshot): drop it.
    Duplicate,
    /// Apply nothing more until a snapshot has been fetched and [`Follower::sync`] called.
    Resync(Resync),
    /// Carries no stream numbers (Neutron's server): apply it as Neutron's agents do.
    Unnumbered,
}

/// Positions in the two streams. See the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Follower {
    synced: Option<Positions>,
    /// The server stream the positions belong to, once a numbered message has shown it.
    stream_id: Option<u64>,
}

/// The last applied number of each stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    pub fanout: u64,
    pub host: u64,
}

impl Follower {
    /// An unsynced follower.
    pub fn new() -> Self {
        Follower::default()
    }

    /// The positions, once synced.
    pub fn positions(&self) -> Option<Positions> {
        self.synced
    }

    /// The server stream id seen last, if any.
    pub fn stream_id(&self) -> Option<u64> {
        self.stream_id
    }

    /// Takes the positions a snapshot states: everything numbered up to them is reflected in
    /// it. `stream_id` is the server stream the snapshot comes from; when the snapshot does not
    /// say, it is learnt from the next numbered message (which could then be a stale one of an
    /// earlier server: prefer snapshots that name their stream).
    pub fn sync(&mut self, positions: Positions, stream_id: Option<u64>) {
        self.synced = Some(positions);
        self.stream_id = stream_id;
    }

    /// Forgets the positions: the next numbered message asks for a resync.
    pub fn invalidate(&mut self) {
        self.synced = None;
    }

    /// Classifies one received notification and, when it is to be applied, advances.
    pub fn observe(
        &mut self,
        stream: Stream,
        position: Option<&StreamPosition>,
        unique_id: Option<&str>,
    ) -> Verdict {
        let Some(position) = position else {
            return Verdict::Unnumbered;
        };
        let Some(positions) = self.synced.as_mut() else {
            return Verdict::Resync(Resync::Unsynced);
        };
        if let Some(got) = unique_id.and_then(stream_id_of) {
            match self.stream_id {
                Some(known) if known != got => {
                    self.synced = None;
                    return Verdict::Resync(Resync::NewStream { known, got });
                }
                _ => self.stream_id = Some(got),
            }
        }
        let (last, got) = match stream {
            Stream::Fanout => (&mut positions.fanout, position.fanout_seq),
            Stream::Host => match position.host_seq {
                Some(host_seq) => (&mut positions.host, host_seq),
                // A host cast without a host number is not one of ours: count it as a gap.
                None => {
                    return Verdict::Resync(Resync::Gap {
                        stream,
                        expected: positions.host + 1,
                        got: 0,
                    });
                }
            },
        };
        if got <= *last {
            Verdict::Duplicate
        } else if got == *last + 1 {
            *last = got;
            Verdict::Apply
        } else {
            let expected = *last + 1;
            self.synced = None;
            Verdict::Resync(Resync::Gap {
                stream,
                expected,
                got,
            })
        }
    }
}

/// The server stream id in a `_unique_id` l2pop's server made (16 hex digits of stream id,
/// then 16 of seq); `None` for any other id (oslo's random uuid4 hex has the same length, but
/// only numbered messages, which only l2pop sends, are asked about).
pub fn stream_id_of(unique_id: &str) -> Option<u64> {
    if unique_id.len() != 32 {
        return None;
    }
    u64::from_str_radix(unique_id.get(..16)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::unique_id;

    fn fanout(seq: u64) -> StreamPosition {
        StreamPosition {
            seq,
            fanout_seq: seq,
            host_seq: None,
            source: None,
        }
    }

    fn host(host_seq: u64, fanout_seq: u64) -> StreamPosition {
        StreamPosition {
            seq: 0,
            fanout_seq,
            host_seq: Some(host_seq),
            source: None,
        }
    }

    fn synced(fanout: u64, host: u64) -> Follower {
        let mut follower = Follower::new();
        follower.sync(Positions { fanout, host }, None);
        follower
    }

    #[test]
    fn unsynced_asks_for_a_snapshot_and_unnumbered_is_applied() {
        let mut follower = Follower::new();
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(1)), None),
            Verdict::Resync(Resync::Unsynced)
        );
        assert_eq!(
            follower.observe(Stream::Fanout, None, None),
            Verdict::Unnumbered
        );
    }

    #[test]
    fn each_stream_advances_on_its_own() {
        let mut follower = synced(10, 3);
        assert_eq!(
            follower.observe(Stream::Host, Some(&host(4, 12)), None),
            Verdict::Apply
        );
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(11)), None),
            Verdict::Apply
        );
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(12)), None),
            Verdict::Apply
        );
        assert_eq!(
            follower.positions(),
            Some(Positions {
                fanout: 12,
                host: 4
            })
        );
    }

    #[test]
    fn passed_numbers_are_duplicates() {
        let mut follower = synced(10, 3);
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(10)), None),
            Verdict::Duplicate
        );
        assert_eq!(
            follower.observe(Stream::Host, Some(&host(2, 1)), None),
            Verdict::Duplicate
        );
        assert_eq!(
            follower.positions(),
            Some(Positions {
                fanout: 10,
                host: 3
            })
        );
    }

    #[test]
    fn a_gap_in_either_stream_asks_for_a_resync_until_synced_again() {
        let mut follower = synced(10, 3);
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(12)), None),
            Verdict::Resync(Resync::Gap {
                stream: Stream::Fanout,
                expected: 11,
                got: 12
            })
        );
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(13)), None),
            Verdict::Resync(Resync::Unsynced)
        );
        follower.sync(
            Positions {
                fanout: 13,
                host: 3,
            },
            None,
        );
        assert_eq!(
            follower.observe(Stream::Host, Some(&host(5, 13)), None),
            Verdict::Resync(Resync::Gap {
                stream: Stream::Host,
                expected: 4,
                got: 5
            })
        );
    }

    #[test]
    fn a_stale_message_of_an_earlier_server_is_not_adopted() {
        let mut follower = Follower::new();
        follower.sync(Positions { fanout: 4, host: 0 }, Some(0xbb));
        let stale = unique_id(0xaa, 5);
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(5)), Some(&stale)),
            Verdict::Resync(Resync::NewStream {
                known: 0xbb,
                got: 0xaa
            })
        );
    }

    #[test]
    fn another_server_stream_asks_for_a_resync() {
        let mut follower = synced(0, 0);
        let first = unique_id(0xaa, 1);
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(1)), Some(&first)),
            Verdict::Apply
        );
        assert_eq!(follower.stream_id(), Some(0xaa));
        let other = unique_id(0xbb, 2);
        assert_eq!(
            follower.observe(Stream::Fanout, Some(&fanout(2)), Some(&other)),
            Verdict::Resync(Resync::NewStream {
                known: 0xaa,
                got: 0xbb
            })
        );
        assert_eq!(stream_id_of("short"), None);
    }
}
