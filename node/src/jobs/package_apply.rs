//! How the ladder commands change a job's package (pure, part of
//! `commands::apply`): the plan sets the renditions, `Published` appends
//! segments in order. A segment that does not start where its rendition
//! ends (a deposed leader's late entry, a repeat) is ignored, so the
//! recorded timeline never has a gap or an overlap and a viewer's
//! playlist only ever grows.

use serde::{Deserialize, Serialize};

use super::model::JobRecord;
use super::package::{Package, Segment};
use crate::store::BlobRef;

/// A rendition's init segment and what was read from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedInit {
    pub blob: BlobRef,
    pub codecs: String,
    pub timescale: u32,
}

/// The package of a (re)planned job: a resumed job whose renditions are
/// the same keeps everything it published; any other plan starts afresh.
pub fn plan(job: &mut JobRecord, planned: Option<&Package>, same_plan: bool) {
    let Some(planned) = planned else {
        job.package = None;
        return;
    };
    let ids = |p: &Package| {
        p.renditions
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>()
    };
    let keep = same_plan
        && job.package.as_ref().is_some_and(|old| {
            ids(old) == ids(planned) && old.segment_seconds == planned.segment_seconds
        });
    if !keep {
        job.package = Some(planned.clone());
    }
}

/// Appends a rendition's init and segments; false when nothing applied.
pub fn publish(
    job: &mut JobRecord,
    rendition: &str,
    (init, segments): (Option<&PublishedInit>, &[Segment]),
    shards_packaged: u32,
    holders: &[String],
    at_ms: u64,
) -> bool {
    let Some(package) = job.package.as_mut() else {
        return false;
    };
    for holder in holders {
        if !package.holders.contains(holder) {
            package.holders.push(holder.clone());
        }
    }
    let Some(r) = package.renditions.iter_mut().find(|r| r.id == rendition) else {
        return false;
    };
    if let Some(init) = init {
        match &r.init {
            None => {
                r.init = Some(init.blob.clone());
                r.codecs = init.codecs.clone();
                r.timescale = init.timescale;
            }
            // The same init again (a resumed packager): fine.
            Some(blob) if *blob == init.blob => {}
            // A different init would change the segments' meaning.
            Some(_) => return false,
        }
    }
    if r.init.is_none() && !segments.is_empty() {
        return false;
    }
    let continues = segments
        .iter()
        .try_fold(r.end(), |end, s| {
            (s.start == end).then_some(end + s.duration)
        })
        .is_some();
    if !continues || shards_packaged < r.shards_packaged {
        return false;
    }
    r.segments.extend(segments.iter().cloned());
    r.shards_packaged = shards_packaged;
    if package.first_playable_ms.is_none() && package.playable() {
        package.first_playable_ms = Some(at_ms);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::package::{Rendition, RenditionKind};

    fn blob(n: u8) -> BlobRef {
        BlobRef {
            sha256: format!("{n:02x}").repeat(32),
            size: 100,
        }
    }

    fn segment(n: u8, start: u64, duration: u64) -> Segment {
        Segment {
            blob: blob(n),
            start,
            duration,
        }
    }

    fn package() -> Package {
        let rung = |id: &str| Rendition {
            id: id.into(),
            kind: RenditionKind::Video {
                width: 640,
                height: 360,
                frame_rate: (30, 1),
            },
            codecs: String::new(),
            timescale: 0,
            nominal_bitrate: 700_000,
            init: None,
            segments: Vec::new(),
            shards_packaged: 0,
        };
        Package {
            packages: Default::default(),
            segment_seconds: 4,
            renditions: vec![rung("360p"), rung("240p")],
            finished: false,
            first_playable_ms: None,
            holders: Vec::new(),
        }
    }

    fn job() -> JobRecord {
        let mut table = crate::jobs::JobTable::default();
        let params = crate::params::RawParams::default()
            .validate()
            .expect("params");
        let id = table.accept("j", params, blob(9), vec![], 1);
        let mut job = table.get(&id).expect("job").clone();
        plan(&mut job, Some(&package()), false);
        job
    }

    fn put(
        job: &mut JobRecord,
        rendition: &str,
        init: Option<&PublishedInit>,
        segments: &[Segment],
        shards_packaged: u32,
        at_ms: u64,
    ) -> bool {
        publish(
            job,
            rendition,
            (init, segments),
            shards_packaged,
            &[],
            at_ms,
        )
    }

    fn init(n: u8) -> PublishedInit {
        PublishedInit {
            blob: blob(n),
            codecs: "avc1.64001e".into(),
            timescale: 15360,
        }
    }

    #[test]
    fn segments_are_appended_only_where_their_rendition_ends() {
        let mut job = job();
        assert!(
            !put(&mut job, "360p", None, &[segment(1, 0, 10)], 0, 5),
            "no init yet"
        );
        assert!(put(
            &mut job,
            "360p",
            Some(&init(7)),
            &[segment(1, 0, 10)],
            0,
            5
        ));
        assert!(
            !put(&mut job, "360p", None, &[segment(2, 11, 10)], 0, 6),
            "a gap"
        );
        assert!(
            !put(&mut job, "360p", None, &[segment(2, 5, 10)], 0, 6),
            "an overlap"
        );
        assert!(put(
            &mut job,
            "360p",
            None,
            &[segment(2, 10, 10), segment(3, 20, 5)],
            1,
            6
        ));
        assert!(
            !put(&mut job, "360p", Some(&init(8)), &[], 1, 7),
            "another init"
        );
        assert!(
            !put(&mut job, "480p", Some(&init(7)), &[], 0, 7),
            "unknown rendition"
        );
        let package = job.package.as_ref().expect("package");
        assert_eq!(package.renditions[0].end(), 25);
        assert_eq!(package.renditions[0].shards_packaged, 1);
        assert_eq!(package.first_playable_ms, None, "240p has nothing yet");
        assert!(put(
            &mut job,
            "240p",
            Some(&init(6)),
            &[segment(4, 0, 10)],
            0,
            9
        ));
        assert_eq!(
            job.package.as_ref().and_then(|p| p.first_playable_ms),
            Some(9)
        );
    }

    #[test]
    fn a_resumed_plan_keeps_what_was_published() {
        let mut job = job();
        assert!(put(
            &mut job,
            "360p",
            Some(&init(7)),
            &[segment(1, 0, 10)],
            1,
            5
        ));
        plan(&mut job, Some(&package()), true);
        assert_eq!(
            job.package.as_ref().expect("kept").renditions[0]
                .segments
                .len(),
            1
        );
        plan(&mut job, Some(&package()), false);
        assert!(
            job.package.as_ref().expect("fresh").renditions[0]
                .segments
                .is_empty()
        );
        plan(&mut job, None, false);
        assert!(job.package.is_none());
    }

    #[test]
    fn a_deleted_ladder_leaves_its_segments_as_garbage() {
        let mut table = crate::jobs::JobTable::default();
        let params = crate::params::RawParams::default()
            .validate()
            .expect("params");
        let id = table.accept("j", params, blob(9), vec![], 1);
        table.update(&id, |job| {
            plan(job, Some(&package()), false);
            assert!(put(job, "360p", Some(&init(7)), &[segment(1, 0, 10)], 1, 5));
        });
        assert!(table.remove(&id, 10));
        let garbage: Vec<&str> = table.tombstones().collect();
        for sha in [blob(7).sha256, blob(1).sha256, blob(9).sha256] {
            assert!(garbage.contains(&sha.as_str()), "{sha} not collected");
        }
    }
}
