//! What the client can tell of a file before it sends a byte: with an
//! ffprobe on this machine, whether the job's options suit the source
//! (an HDR source to an 8-bit output needs `--tonemap`). The rules are the
//! node's own (`vidshard_proto::params`); without ffprobe, or when it
//! cannot read the file, nothing is decided here and the node decides.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;
use vidshard_proto::params::{JobParams, check_hdr, is_high_depth};

/// The first video stream's transfer and pixel format, as ffprobe names
/// them (pure over ffprobe's JSON).
fn video_of(json: &str) -> Option<(String, String)> {
    let root: Value = serde_json::from_str(json).ok()?;
    let stream = root.get("streams")?.as_array()?.first()?;
    let text = |key: &str| {
        stream
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Some((text("color_transfer"), text("pix_fmt")))
}

/// Refuses `params` for `file` when the node would (HDR to 8 bits).
pub async fn source(file: &Path, params: &JobParams) -> Result<()> {
    let probe = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=color_transfer,pix_fmt", "-of", "json"])
        .arg(file)
        .kill_on_drop(true)
        .output();
    let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(20), probe).await else {
        return Ok(());
    };
    let Some((transfer, pix_fmt)) = video_of(&String::from_utf8_lossy(&out.stdout)) else {
        return Ok(());
    };
    let codec = params.codec();
    let output = params.pix_fmt.resolve(codec, is_high_depth(&pix_fmt));
    if let Err(refused) = check_hdr(&transfer, codec, output, params.tonemap) {
        bail!("{refused}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_video_stream_is_read_from_ffprobe_json() {
        let json =
            r#"{"programs":[],"streams":[{"pix_fmt":"yuv420p10le","color_transfer":"smpte2084"}]}"#;
        assert_eq!(
            video_of(json),
            Some(("smpte2084".to_string(), "yuv420p10le".to_string()))
        );
        assert_eq!(video_of(r#"{"streams":[]}"#), None);
        assert_eq!(video_of("not json"), None);
    }
}
