//! HDR through three nodes: an HDR10 source stays HDR10 in HEVC and AV1
//! (10-bit, BT.2020 PQ tags, mastering display and light level on the
//! output's frames), and goes to an 8-bit H.264 output only tone-mapped:
//! refused by the client before a byte is sent, by the node when a
//! client that cannot tell sends it anyway.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::client::{encode_with_cli as encode, vidshard};
use common::clips::{decode_errors, hevc_clip, report, video_entry};
use common::cluster::{Cluster, lazy_channel};
use common::{Params, upload_file, wait_finished};
use serde_json::Value;

const HDR10: &str = "hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:range=limited:\
    master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400";

/// The side data of the first video frame, by type.
fn first_frame_side_data(path: &Path) -> Vec<Value> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args(["-show_frames", "-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let root: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    root["frames"][0]["side_data_list"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// ffprobe's "num/den" as a number.
fn ratio(value: &Value) -> f64 {
    let text = value.as_str().unwrap_or_default();
    let (num, den) = text.split_once('/').unwrap_or((text, "1"));
    num.parse::<f64>().unwrap_or(f64::NAN) / den.parse::<f64>().unwrap_or(f64::NAN)
}

fn side_data<'a>(list: &'a [Value], kind: &str) -> Option<&'a Value> {
    list.iter().find(|d| d["side_data_type"] == kind)
}

/// range, matrix, transfer, primaries (ffprobe's order).
fn tags(path: &Path) -> String {
    video_entry(
        path,
        "color_primaries,color_transfer,color_space,color_range",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn hdr10_stays_hdr10_and_goes_to_sdr_only_tone_mapped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = hevc_clip(&dir.path().join("hdr.mkv"), 4, HDR10);
    let frames = report(&source).frames;
    assert_eq!(tags(&source), "tv,bt2020nc,smpte2084,bt2020");
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let master = cluster.formed().await;

    for (options, name) in [
        (&["--codec", "hevc"][..], "hevc.mp4"),
        (&["--codec", "av1", "--format", "mkv"], "av1.mkv"),
    ] {
        let out = dir.path().join(name);
        encode(&cluster, &master, &source, &out, options);
        assert_eq!(report(&out).frames, frames, "{name}: every frame");
        assert_eq!(video_entry(&out, "pix_fmt"), "yuv420p10le", "{name}");
        assert_eq!(tags(&out), "tv,bt2020nc,smpte2084,bt2020", "{name}");
        let list = first_frame_side_data(&out);
        let mastering = side_data(&list, "Mastering display metadata")
            .unwrap_or_else(|| panic!("{name}: no mastering display in {list:?}"));
        // HEVC keeps the SEI's units (1/50000), AV1 its own (1/65536):
        // the same figures either way.
        for (key, value) in [
            ("green_x", 0.265),
            ("white_point_y", 0.329),
            ("max_luminance", 1000.0),
            ("min_luminance", 0.0001),
        ] {
            let got = ratio(&mastering[key]);
            // AV1 stores the minimum luminance in steps of 1/16384.
            assert!(
                (got - value).abs() <= (value * 0.001).max(1.0 / 16384.0),
                "{name}: {key} {got} vs {value}"
            );
        }
        let light = side_data(&list, "Content light level metadata")
            .unwrap_or_else(|| panic!("{name}: no light level in {list:?}"));
        assert_eq!(
            (light["max_content"].as_u64(), light["max_average"].as_u64()),
            (Some(1000), Some(400)),
            "{name}"
        );
        assert_eq!(decode_errors(&out), "", "{name} decodes cleanly");
    }

    // The client refuses HDR to 8-bit H.264 before it connects.
    let refused = vidshard("127.0.0.1:1", &["upload", source.to_str().expect("utf8")]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--tonemap") && !err.contains("127.0.0.1:1"),
        "{err}"
    );

    // A client that cannot tell (the original protocol) is refused by
    // the node, with the reason.
    let channel = lazy_channel(&master);
    let id = upload_file(
        channel.clone(),
        "hdr.mkv",
        &source,
        &Params::size(0, 0, "mp4"),
    )
    .await;
    let info = wait_finished(channel, &id, Duration::from_secs(120)).await;
    assert_eq!(info.status, "failed_segmentation", "{}", info.message);
    assert!(info.message.contains("--tonemap"), "{}", info.message);

    // Tone-mapped: SDR BT.709, 8-bit, every frame.
    let sdr = dir.path().join("sdr.mp4");
    encode(&cluster, &master, &source, &sdr, &["--tonemap"]);
    assert_eq!(report(&sdr).frames, frames);
    assert_eq!(video_entry(&sdr, "pix_fmt"), "yuv420p");
    assert_eq!(tags(&sdr), "tv,bt709,bt709,bt709");
    assert!(side_data(&first_frame_side_data(&sdr), "Mastering display metadata").is_none());
    assert_eq!(decode_errors(&sdr), "");
}
