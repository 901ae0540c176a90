//! A video stream as a table of packets in decode order: what the planner
//! cuts shards from, read from an MP4/MOV index (`mp4index`) or listed by
//! ffprobe (`probe`). A leaf both of them use.

use serde::{Deserialize, Serialize};

/// Most video frames we accept in one input (about 23 h at 60 fps).
pub const MAX_FRAMES: usize = 5_000_000;

/// One video packet in decode order, in stream time-base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub pts: Option<i64>,
    pub duration: Option<i64>,
    pub key: bool,
}
