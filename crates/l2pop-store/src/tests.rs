#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_batch_must_start_right_after_the_log() {
    check_continues(0, 1).unwrap();
    check_continues(41, 42).unwrap();
    for (last, first) in [(0, 0), (0, 2), (41, 41), (41, 43), (41, 1)] {
        let err = check_continues(last, first).unwrap_err();
        assert!(
            matches!(err, StoreError::OutOfSequence { last: l, expected: e, first: f }
                if l == last && e == last + 1 && f == first),
            "{err:?}"
        );
        assert!(err.to_string().contains(&format!("not {first}")), "{err}");
    }
}

#[test]
fn seqs_must_fit_bigint() {
    assert_eq!(to_db(0).unwrap(), 0);
    assert_eq!(to_db(i64::MAX as u64).unwrap(), i64::MAX);
    assert!(matches!(
        to_db(i64::MAX as u64 + 1),
        Err(StoreError::SeqOutOfRange(_))
    ));
    assert_eq!(from_db("x", 7).unwrap(), 7);
    assert!(matches!(
        from_db("x", -1),
        Err(StoreError::Corrupt { what: "x", .. })
    ));
    assert!(matches!(
        parse_u64("meta.cluster_id", "12ab"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn the_leader_lock_key_never_changes() {
    // Old and new versions of the server must contend for the same lock during an upgrade.
    assert_eq!(
        LEADER_LOCK_KEY,
        postgres::fnv1a_i64(b"l2pop-store/leader/v1")
    );
    assert_eq!(LEADER_LOCK_KEY as u64, 0x6785_7bad_abb6_0fc6);
}

#[test]
fn cluster_ids_are_random() {
    assert_ne!(new_cluster_id(), new_cluster_id());
}

#[test]
fn default_holder_names_this_process() {
    let holder = default_holder();
    assert!(
        holder.ends_with(&format!(":{}", std::process::id())),
        "{holder}"
    );
}
