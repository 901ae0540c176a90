//! What a node can make of a shard: the encoders its ffmpeg has (read
//! once at start from `ffmpeg -encoders`) and the features of its build
//! (turning pictures upright). Every worker lists them in its heartbeat;
//! the master gives a shard only to a worker whose list holds everything
//! the shard's spec needs ([`Abilities::missing_for`]), and fails a job
//! that no live node can run at once, naming what is missing.

use std::collections::BTreeSet;

use super::encode::EncodeSpec;
use super::orient::Orientation;
use super::run::{MediaError, Tools, command, run_output};

/// The feature of turning pictures by a display matrix
/// (`EncodeSettings.orientation`).
pub const ORIENTATION: &str = "orientation";

/// The feature of tone-mapping HDR to SDR (`EncodeSettings.tonemap`):
/// this build, with an ffmpeg that has the zscale and tonemap filters.
pub const TONEMAP: &str = "tonemap";

/// The feature of encoding to a quality target (probing CRFs on the
/// shard, `EncodeSpec.quality_target`): builds since it was added.
pub const TARGET_QUALITY: &str = "target_quality";

/// The feature of encoding a ladder rung (a bitrate cap and keyframes at
/// fixed instants, `EncodeSpec.rung`): builds since ladders exist. An
/// older worker would ignore the rung's fields and cut segments wrong.
pub const LADDER: &str = "ladder";

/// Encoders a worker reports when its ffmpeg has them: the ones a job may
/// ask for, and the audio encoders of the join.
pub const KNOWN_ENCODERS: [&str; 8] = [
    "libx264",
    "libx265",
    "libsvtav1",
    "libaom-av1",
    "librav1e",
    "libvpx-vp9",
    "aac",
    "libopus",
];

/// A node's abilities: encoder names and feature names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Abilities(BTreeSet<String>);

impl Abilities {
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    /// What a vidshard worker that lists nothing can do: one from before
    /// the list existed, which encoded H.264 and VP9, upright only.
    pub fn assumed_for_older_nodes() -> Self {
        Self::new(["libx264", "libvpx-vp9", "aac", "libopus"])
    }

    /// What a worker speaking only the original protocol can do: H.264
    /// from a shard as it is sent.
    pub fn original_worker() -> Self {
        Self::new(["libx264", "aac"])
    }

    /// Abilities from a heartbeat's list (empty: an older node).
    pub fn from_heartbeat(names: &[String]) -> Self {
        if names.is_empty() {
            Self::assumed_for_older_nodes()
        } else {
            Self::new(
                names
                    .iter()
                    .take(64)
                    .map(|n| n.chars().take(64).collect::<String>()),
            )
        }
    }

    /// The names, sorted, as a heartbeat lists them.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// What a shard of `spec` needs that these abilities lack (empty: it
    /// can run here).
    pub fn missing_for(&self, spec: &EncodeSpec) -> Vec<&'static str> {
        needs(spec).into_iter().filter(|n| !self.has(n)).collect()
    }
}

/// Everything a shard of `spec` needs of its worker (pure).
pub fn needs(spec: &EncodeSpec) -> Vec<&'static str> {
    let mut needed = vec![spec.codec.encoder()];
    if spec.orientation != Orientation::Upright {
        needed.push(ORIENTATION);
    }
    if spec.tonemap {
        needed.push(TONEMAP);
    }
    if spec.quality_target.is_some() {
        needed.push(TARGET_QUALITY);
    }
    if spec.rung.is_some() {
        needed.push(LADDER);
    }
    needed
}

/// Why none of `nodes` (id and abilities of every live node) can run
/// shards of `spec`, naming what is needed and what each has (pure);
/// None when one can.
pub fn why_none_can_run(spec: &EncodeSpec, nodes: &[(String, Abilities)]) -> Option<String> {
    if nodes.iter().any(|(_, a)| a.missing_for(spec).is_empty()) {
        return None;
    }
    let has: Vec<String> = nodes
        .iter()
        .map(|(id, a)| format!("{id} has {}", a.names().join(", ")))
        .collect();
    Some(format!(
        "no live node can encode this job: it needs {}; {}",
        needs(spec).join(" and "),
        if has.is_empty() {
            "no node is live".to_string()
        } else {
            has.join("; ")
        }
    ))
}

/// The known encoders named in `ffmpeg -encoders` output (pure): rows
/// like ` V....D libx264              libx264 H.264 …`.
pub fn parse_encoders(listing: &str) -> Vec<&'static str> {
    let listed: BTreeSet<&str> = listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let flags = fields.next()?;
            let name = fields.next()?;
            (flags.len() == 6 && flags.starts_with(['V', 'A'])).then_some(name)
        })
        .collect();
    KNOWN_ENCODERS
        .into_iter()
        .filter(|known| listed.contains(known))
        .collect()
}

/// Whether `ffmpeg -filters` output lists every filter in `wanted`
/// (pure): rows like ` .SC zscale            V->V       Apply …`.
pub fn has_filters(listing: &str, wanted: &[&str]) -> bool {
    let listed: BTreeSet<&str> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    wanted.iter().all(|w| listed.contains(w))
}

/// This node's abilities: its ffmpeg's encoders plus this build's
/// features (tone mapping only with zscale and tonemap).
pub async fn detect(tools: &Tools) -> Result<Abilities, MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-encoders"]);
    let listing = run_output(cmd, 1 << 20).await?;
    let mut names = parse_encoders(&listing);
    names.push(ORIENTATION);
    names.push(TARGET_QUALITY);
    names.push(LADDER);
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-filters"]);
    if has_filters(&run_output(cmd, 1 << 20).await?, &["zscale", "tonemap"]) {
        names.push(TONEMAP);
    }
    Ok(Abilities::new(names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::OutputFormat;

    fn spec(format: OutputFormat, orientation: Orientation) -> EncodeSpec {
        EncodeSpec {
            width: 320,
            height: 180,
            format,
            codec: format.default_codec(),
            pix_fmt: Default::default(),
            preset: "veryfast".into(),
            crf: 23,
            threads: 0,
            orientation,
            colour: Default::default(),
            tonemap: false,
            quality_target: None,
            rung: None,
        }
    }

    #[test]
    fn encoders_are_read_from_the_listing() {
        let listing = "Encoders:\n V..... = Video\n ------\n \
            V....D libx264              libx264 H.264 / AVC\n \
            V....D libvpx-vp9           libvpx VP9\n \
            A....D aac                  AAC (Advanced Audio Coding)\n \
            V....D libfoo               not one we know\n";
        assert_eq!(
            parse_encoders(listing),
            vec!["libx264", "libvpx-vp9", "aac"]
        );
    }

    #[test]
    fn tone_mapping_needs_both_filters() {
        let listing = " ... abench            A->A       Benchmark\n .SC zscale            V->V       Apply resizing\n .S. tonemap           V->V       Conversion\n";
        assert!(has_filters(listing, &["zscale", "tonemap"]));
        assert!(!has_filters(
            " .SC zscale  V->V  x\n",
            &["zscale", "tonemap"]
        ));
        let mut hdr = spec(OutputFormat::Mp4, Orientation::Upright);
        hdr.tonemap = true;
        assert_eq!(Abilities::new(["libx264"]).missing_for(&hdr), vec![TONEMAP]);
    }

    #[test]
    fn a_turned_shard_needs_a_worker_that_turns() {
        let turned = spec(OutputFormat::Mp4, Orientation::Clock);
        assert_eq!(
            Abilities::assumed_for_older_nodes().missing_for(&turned),
            vec![ORIENTATION]
        );
        assert_eq!(
            Abilities::original_worker().missing_for(&turned),
            vec![ORIENTATION]
        );
        let this = Abilities::new(["libx264", ORIENTATION]);
        assert!(this.missing_for(&turned).is_empty());
        let vp9 = spec(OutputFormat::Webm, Orientation::Upright);
        assert_eq!(
            Abilities::original_worker().missing_for(&vp9),
            vec!["libvpx-vp9"]
        );
        assert!(Abilities::from_heartbeat(&[]).missing_for(&vp9).is_empty());
    }

    #[test]
    fn a_job_nobody_can_run_is_refused_naming_what_is_missing() {
        let turned = spec(OutputFormat::Webm, Orientation::Half);
        let nodes = vec![
            ("a".to_string(), Abilities::new(["libx264", ORIENTATION])),
            ("b".to_string(), Abilities::assumed_for_older_nodes()),
        ];
        let why = why_none_can_run(&turned, &nodes).expect("nobody can");
        assert!(why.contains("needs libvpx-vp9 and orientation"), "{why}");
        assert!(why.contains("a has libx264, orientation"), "{why}");
        let upright = spec(OutputFormat::Webm, Orientation::Upright);
        assert_eq!(why_none_can_run(&upright, &nodes), None);
    }
}
