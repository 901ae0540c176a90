//! Media: ffprobe and ffmpeg driven as processes.
//!
//! This module is the only place that builds ffmpeg/ffprobe argv and
//! starts them, each under the node's memory limit ([`limit`]). The
//! options follow the frame-exact pipeline in `docs/media.md`: probe the
//! packets, cut the video stream at closed-GOP keyframes with stream copy,
//! encode each shard with passthrough timing, handle audio and subtitles
//! once (`tracks`), and join
//! with an ffconcat list that carries each shard's exact duration (the
//! join starts early and is fed each shard through a named pipe).
//! `quality` measures how close an encode is to its source. A ladder's
//! rungs are remuxed into fragmented MP4 (`fragment`) and cut into CMAF
//! segments (`cmaf`).

pub mod abilities;
pub mod cmaf;
pub mod colour;
mod encode;
mod encode_rungs;
mod feed;
pub mod fragment;
mod join;
pub mod limit;
pub mod mp4index;
pub mod orient;
pub mod orphans;
mod packets;
mod plan;
mod probe;
pub mod quality;
mod run;
mod split;
pub mod tracks;

pub use abilities::Abilities;
pub use colour::Colour;
pub use encode::{EncodeSpec, EncodeTarget, RungEncode, encode_shard};
pub use encode_rungs::encode_rungs;
pub use feed::{feed_pipe, make_pipes};
pub use join::{SideInputs, ffconcat_list, join};
pub use orient::Orientation;
pub use packets::{MAX_FRAMES, Packet};
pub use plan::{Cut, ShardPlan, plan_shards, plan_shards_with_tail, tail_shards};
pub use probe::{Inspection, MediaInfo, StreamInfo, inspect, list_packets, probe};
pub use run::{MediaError, Progress, Tools};
pub use split::{remux, split_video};
pub use tracks::{TracksPlan, prepare_audio, prepare_subtitles};
