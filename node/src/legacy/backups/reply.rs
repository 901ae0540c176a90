//! What one `RequestBackupData` reply carries (pure): the exact encoded
//! length of each backup, the choice of what fits in one reply (oldest
//! first), and the message naming what was left out and why.

use std::collections::BTreeMap;

use super::index::BackupEntry;
use super::limits::{MAX_REPLY, MAX_REPLY_MESSAGE, human};
use super::names::quoted;

/// Bytes a protobuf varint of `value` takes.
fn varint_len(value: u64) -> u64 {
    prost::encoding::encoded_len_varint(value) as u64
}

/// Bytes a non-empty length-delimited field of `len` bytes takes (every
/// field number here is below 16, so its key is one byte). Saturates, so
/// an absurd size from a damaged index is simply too big, never a panic.
pub(crate) fn field_len(len: u64) -> u64 {
    if len == 0 {
        0
    } else {
        len.saturating_add(1 + varint_len(len))
    }
}

/// Exact bytes one backup adds to a `RequestBackupDataResponse`: the
/// `backup_files` key and length around a `BackupFile` with `video_id`,
/// `file_data`, `container` and `filename` (= video id). Pure.
pub fn backup_file_wire_len(video_id: &str, container: &str, size: u64) -> u64 {
    let id = video_id.len() as u64;
    let inner = [
        field_len(id),
        field_len(size),
        field_len(container.len() as u64),
        field_len(id),
    ]
    .iter()
    .fold(0u64, |sum, len| sum.saturating_add(*len));
    inner.saturating_add(1 + varint_len(inner))
}

/// Backups oldest first (ties by id), the order replies fill in.
pub fn oldest_first(backups: &BTreeMap<String, BackupEntry>) -> Vec<(&str, &BackupEntry)> {
    let mut all: Vec<(&str, &BackupEntry)> =
        backups.iter().map(|(id, e)| (id.as_str(), e)).collect();
    all.sort_by(|a, b| {
        a.1.stored_unix_ms
            .cmp(&b.1.stored_unix_ms)
            .then(a.0.cmp(b.0))
    });
    all
}

/// What goes into one reply: indexes into the oldest-first list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub chosen: Vec<usize>,
    pub left_out: Vec<usize>,
    /// Encoded bytes of the chosen backups.
    pub wire_bytes: u64,
}

/// Picks the backups one reply carries (pure): in the given order
/// (oldest first), each that still fits in `budget` encoded bytes; the
/// others are left out. Nothing is read, so nothing beyond the budget is
/// ever loaded.
pub fn select_reply(entries: &[(&str, &BackupEntry)], budget: u64) -> Selection {
    let mut selection = Selection::default();
    for (i, (id, entry)) in entries.iter().enumerate() {
        let len = backup_file_wire_len(id, &entry.container, entry.size);
        match selection.wire_bytes.checked_add(len) {
            Some(total) if total <= budget => {
                selection.wire_bytes = total;
                selection.chosen.push(i);
            }
            _ => selection.left_out.push(i),
        }
    }
    selection
}

/// Quoted names, comma-separated, cut off (with a count of the rest)
/// before `room` bytes.
fn name_list<'a>(names: impl ExactSizeIterator<Item = &'a str>, room: usize) -> String {
    let total = names.len();
    let mut out = String::new();
    for (shown, name) in names.enumerate() {
        let item = quoted(name);
        if out.len() + item.len() + 2 > room {
            out.push_str(&format!(" … and {} more", total - shown));
            break;
        }
        if shown > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out
}

/// A backup read back for a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBackup {
    pub video_id: String,
    pub container: String,
    pub data: Vec<u8>,
}

/// Backups for one `RequestBackupData` reply, the message saying what
/// was left out, and the bytes of the node's reply budget they hold
/// (released when `permit` is dropped).
#[derive(Debug)]
pub struct Reply {
    pub files: Vec<HeldBackup>,
    pub message: String,
    pub permit: super::budget::ReplyPermit,
}

/// The reply message (pure): how many of how many backups, their bytes,
/// and which were left out and why.
pub fn reply_message(
    held: usize,
    returned: &[&str],
    data_bytes: u64,
    too_big: &[&str],
    unreadable: &[(&str, String)],
) -> String {
    if held == 0 {
        return "no backups held".into();
    }
    let mut message = if returned.len() == held {
        format!("returned all {held} backups ({})", human(data_bytes))
    } else {
        format!(
            "returned {} of {held} backups ({})",
            returned.len(),
            human(data_bytes)
        )
    };
    if !too_big.is_empty() {
        message.push_str(&format!(
            "; the rest exceed the {} reply limit: {}",
            human(MAX_REPLY),
            name_list(too_big.iter().copied(), MAX_REPLY_MESSAGE / 2)
        ));
    }
    if !unreadable.is_empty() {
        let first = unreadable
            .first()
            .map(|(_, why)| why.as_str())
            .unwrap_or("");
        message.push_str(&format!(
            "; unreadable here, not returned: {} (first reason: {})",
            name_list(unreadable.iter().map(|(id, _)| *id), MAX_REPLY_MESSAGE / 4),
            first.chars().take(512).collect::<String>()
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::super::limits::{
        Limits, MAX_BACKUP_VIDEO, MAX_NODE_MESSAGE, MAX_TOTAL, MAX_VIDEO_ID, MIB, REPLY_HEADROOM,
    };
    use super::*;
    use prost::Message;
    use vidshard_proto::replication::{BackupFile, RequestBackupDataResponse};

    fn entry(size: u64, at: u64) -> BackupEntry {
        BackupEntry {
            sha256: "a".repeat(64),
            size,
            container: "mp4".into(),
            stored_unix_ms: at,
        }
    }

    #[test]
    fn wire_length_is_exact() {
        for (id, container, size) in [
            ("v", "mp4", 1u64),
            ("clip.webm", "webm", 300),
            (&*"x".repeat(255), "mov", 70_000),
        ] {
            let file = BackupFile {
                video_id: id.into(),
                file_data: vec![0; size as usize],
                container: container.into(),
                filename: id.into(),
            };
            let reply = RequestBackupDataResponse {
                success: false,
                message: String::new(),
                backup_files: vec![file],
            };
            assert_eq!(
                backup_file_wire_len(id, container, size),
                reply.encoded_len() as u64,
                "{id}"
            );
        }
    }

    #[test]
    fn every_accepted_backup_fits_in_a_reply_alone() {
        let worst = backup_file_wire_len(&"x".repeat(MAX_VIDEO_ID), "webm", MAX_BACKUP_VIDEO);
        assert!(worst <= Limits::DEFAULT.reply_files);
        // `success` and the longest `message` fit in the headroom.
        assert!(2 + field_len(MAX_REPLY_MESSAGE as u64) <= REPLY_HEADROOM);
        assert_eq!(Limits::DEFAULT.reply_files + REPLY_HEADROOM, MAX_REPLY);
        assert!(MAX_REPLY <= MAX_NODE_MESSAGE as u64);
    }

    #[test]
    fn selection_is_oldest_first_and_never_over_budget() {
        let mut backups = BTreeMap::new();
        backups.insert("v3".to_string(), entry(500, 3));
        backups.insert("v1".to_string(), entry(400, 1));
        backups.insert("v2".to_string(), entry(400, 2));
        backups.insert("v4".to_string(), entry(50, 4));
        let entries = oldest_first(&backups);
        let ids: Vec<&str> = entries.iter().map(|e| e.0).collect();
        assert_eq!(ids, ["v1", "v2", "v3", "v4"]);
        let budget = 1000;
        let s = select_reply(&entries, budget);
        assert_eq!(s.chosen, [0, 1, 3], "v3 does not fit, the smaller v4 does");
        assert_eq!(s.left_out, [2]);
        assert!(s.wire_bytes <= budget);
        assert_eq!(
            s.wire_bytes,
            [0, 1, 3]
                .iter()
                .map(|&i| backup_file_wire_len(entries[i].0, "mp4", entries[i].1.size))
                .sum::<u64>()
        );
        assert_eq!(select_reply(&entries, 10).chosen, Vec::<usize>::new());
        assert_eq!(select_reply(&[], 10), Selection::default());
        let huge = entry(u64::MAX - 10, 9);
        let s = select_reply(&[("a", &entry(5, 1)), ("b", &huge)], u64::MAX);
        assert_eq!((s.chosen, s.left_out), (vec![0], vec![1]));
    }

    #[test]
    fn messages_say_what_was_left_out() {
        assert_eq!(reply_message(0, &[], 0, &[], &[]), "no backups held");
        assert_eq!(
            reply_message(2, &["a", "b"], 3 * MIB, &[], &[]),
            "returned all 2 backups (3 MiB)"
        );
        let m = reply_message(5, &["v1", "v2", "v3"], 1288490189, &["v4", "v5"], &[]);
        assert_eq!(
            m,
            "returned 3 of 5 backups (1.2 GiB); the rest exceed the 1 GiB reply limit: \"v4\", \"v5\""
        );
        let many: Vec<String> = (0..5000).map(|i| format!("video-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let m = reply_message(5001, &["x"], 1, &many, &[("bad", "gone".into())]);
        assert!(m.len() <= MAX_REPLY_MESSAGE, "{}", m.len());
        assert!(m.contains("more"), "{m}");
        assert!(m.contains("unreadable here, not returned: \"bad\" (first reason: gone)"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(MAX_TOTAL), "64 GiB");
        assert_eq!(human(3 * MIB + MIB / 2), "3.5 MiB");
        assert_eq!(human(512), "512 bytes");
    }
}
