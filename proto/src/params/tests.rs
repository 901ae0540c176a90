//! The job option rules, case by case.

use super::*;

fn raw(w: i32, h: i32) -> RawParams {
    RawParams {
        target_width: w,
        target_height: h,
        ..Default::default()
    }
}

#[test]
fn pictures_beyond_8k_are_refused() {
    assert!(check_pixels(8192, 4320).is_ok());
    assert!(check_pixels(4320, 8192).is_ok());
    let big = check_pixels(8192, 8192).unwrap_err();
    assert!(big.to_string().contains("67.1 megapixels"), "{big}");
}

#[test]
fn defaults_are_mp4_veryfast_crf23() {
    let p = raw(320, 180).validate().expect("valid");
    assert_eq!(p.format, OutputFormat::Mp4);
    assert_eq!(p.preset, "veryfast");
    assert_eq!(p.crf, 23);
    assert_eq!(p.upscale, None);
    let webm = RawParams {
        output_format: "WEBM".into(),
        ..raw(320, 180)
    };
    assert_eq!(webm.validate().expect("valid").crf, 32);
}

#[test]
fn bad_sizes_are_refused_with_a_reason() {
    assert!(
        raw(-5, 180)
            .validate()
            .unwrap_err()
            .to_string()
            .contains("negative")
    );
    assert!(
        raw(100000, 180)
            .validate()
            .unwrap_err()
            .to_string()
            .contains("8192")
    );
    let bad_format = RawParams {
        output_format: "avi".into(),
        ..raw(320, 180)
    };
    assert!(
        bad_format
            .validate()
            .unwrap_err()
            .to_string()
            .contains("avi")
    );
}

#[test]
fn odd_sizes_round_to_even() {
    let p = raw(321, 181).validate().expect("valid");
    assert_eq!(p.target.width, Some(322));
    assert_eq!(p.target.height, Some(182));
    assert_eq!(output_size(&p, 640, 360), (322, 182));
}

#[test]
fn zero_side_keeps_aspect() {
    let p = raw(0, 180).validate().expect("valid");
    assert_eq!(output_size(&p, 640, 360), (320, 180));
    let p = raw(320, -1).validate().expect("valid");
    assert_eq!(output_size(&p, 1280, 720), (320, 180));
    assert_eq!(output_size(&p, 640, 480), (320, 240));
}

#[test]
fn codecs_go_in_the_containers_that_carry_them() {
    let with = |format: &str, codec: &str, crf: i32| RawParams {
        output_format: format.into(),
        codec: codec.into(),
        crf,
        ..raw(320, 180)
    };
    let hevc = with("mp4", "h265", 0).validate().expect("hevc in mp4");
    assert_eq!((hevc.codec(), hevc.crf), (VideoCodec::Hevc, 28));
    let av1 = with("webm", "av1", 50).validate().expect("av1 in webm");
    assert_eq!((av1.codec(), av1.crf), (VideoCodec::Av1, 50));
    assert_eq!(
        with("mkv", "", 0).validate().unwrap().codec(),
        VideoCodec::H264
    );
    let vp9_in_mp4 = with("mp4", "vp9", 0).validate().unwrap_err().to_string();
    assert!(
        vp9_in_mp4.contains("vp9 cannot go in mp4: use h264 or hevc or av1"),
        "{vp9_in_mp4}"
    );
    let hevc_in_webm = with("webm", "hevc", 0).validate().unwrap_err().to_string();
    assert!(hevc_in_webm.contains("use vp9 or av1"), "{hevc_in_webm}");
    let unknown = with("mp4", "mpeg2", 0).validate().unwrap_err().to_string();
    assert!(unknown.contains("unknown codec \"mpeg2\""), "{unknown}");
    let crf = with("mp4", "hevc", 60).validate().unwrap_err().to_string();
    assert!(crf.contains("1..=51 for hevc"), "{crf}");
}

#[test]
fn ten_bits_are_kept_for_hevc_and_av1_or_when_asked() {
    let auto = PixFmtChoice::parse("").expect("auto");
    assert_eq!(auto.resolve(VideoCodec::Hevc, true), PixFmt::Yuv420p10le);
    assert_eq!(auto.resolve(VideoCodec::Av1, true), PixFmt::Yuv420p10le);
    assert_eq!(auto.resolve(VideoCodec::H264, true), PixFmt::Yuv420p);
    assert_eq!(auto.resolve(VideoCodec::Hevc, false), PixFmt::Yuv420p);
    let asked = PixFmtChoice::parse("yuv420p10le").expect("10-bit");
    assert_eq!(asked.resolve(VideoCodec::H264, false), PixFmt::Yuv420p10le);
    let bad = PixFmtChoice::parse("rgb24").unwrap_err().to_string();
    assert!(bad.contains("unknown pixel format \"rgb24\""), "{bad}");
    assert_eq!(PixFmt::parse(""), Some(PixFmt::Yuv420p));
}

#[test]
fn hdr_goes_to_eight_bits_only_tone_mapped() {
    let refused = check_hdr("smpte2084", VideoCodec::H264, PixFmt::Yuv420p, false)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("--tonemap"), "{refused}");
    assert!(check_hdr("smpte2084", VideoCodec::H264, PixFmt::Yuv420p, true).is_ok());
    assert!(check_hdr("arib-std-b67", VideoCodec::Hevc, PixFmt::Yuv420p10le, false).is_ok());
    assert!(check_hdr("arib-std-b67", VideoCodec::Hevc, PixFmt::Yuv420p, false).is_err());
    assert!(check_hdr("bt709", VideoCodec::H264, PixFmt::Yuv420p, false).is_ok());
}

#[test]
fn jobs_recorded_before_codecs_keep_their_format_default() {
    let old = r#"{"target":{"width":320,"height":null},"upscale":null,"format":"webm","preset":"veryfast","crf":32,"original_filename":"a.webm"}"#;
    let params: JobParams = serde_json::from_str(old).expect("an old record");
    assert_eq!(params.codec(), VideoCodec::Vp9);
}

#[test]
fn no_size_keeps_the_source_size() {
    for (w, h) in [(0, 0), (-1, -1), (0, -1)] {
        let p = raw(w, h).validate().expect("valid");
        assert_eq!(output_size(&p, 1280, 720), (1280, 720));
        assert_eq!(output_size(&p, 181, 321), (182, 322));
    }
}

#[test]
fn never_upscales_without_asking() {
    let p = raw(1920, 1080).validate().expect("valid");
    assert_eq!(output_size(&p, 1280, 720), (1280, 720));
    assert_eq!(output_size(&p, 320, 180), (320, 180));
}

#[test]
fn upscale_size_wins_and_may_exceed_source() {
    let p = RawParams {
        upscale_width: 640,
        upscale_height: 0,
        ..raw(160, 90)
    }
    .validate()
    .expect("valid");
    assert_eq!(output_size(&p, 320, 180), (640, 360));
    assert!(
        RawParams {
            upscale_width: 9000,
            ..raw(160, 90)
        }
        .validate()
        .is_err()
    );
}

#[test]
fn priority_defaults_to_ten_and_is_checked() {
    assert_eq!(raw(0, 0).validate().expect("valid").priority, 10);
    let weighted = |p| {
        RawParams {
            priority: Some(p),
            ..raw(0, 0)
        }
        .validate()
    };
    assert_eq!(weighted(1).expect("valid").priority, 1);
    assert_eq!(weighted(100).expect("valid").priority, 100);
    for bad in [0, 101] {
        let err = weighted(bad).expect_err("out of range");
        assert!(err.to_string().contains("use 1..=100"), "{err}");
    }
}

#[test]
fn records_from_before_priorities_read_as_the_default() {
    let mut json = serde_json::to_value(raw(0, 0).validate().expect("valid")).expect("json");
    json.as_object_mut().expect("object").remove("priority");
    let old: JobParams = serde_json::from_value(json).expect("old record");
    assert_eq!(old.priority, 10);
}
