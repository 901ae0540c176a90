//! What the console remembers across snapshots: each node's score history
//! (the node only sends its current score, so the sparkline's past is kept
//! here) and which cluster events were already logged (every snapshot
//! repeats the node's recent events).

use std::collections::{HashMap, HashSet, VecDeque};

use vidshard_proto::v1::{ClusterEvent, NodeEntry};

/// Score samples kept per node (one per applied snapshot).
pub const SAMPLES: usize = 120;
/// Event keys remembered for de-duplication.
const SEEN: usize = 1024;

/// Recent scores per node id, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreHistory {
    by_node: HashMap<String, VecDeque<f32>>,
}

impl ScoreHistory {
    /// Adds one sample per node; a dead node gets a gap (NaN, drawn
    /// blank) rather than a made-up score, so its line visibly stops.
    pub fn record(&mut self, nodes: &[NodeEntry]) {
        for node in nodes {
            let samples = self.by_node.entry(node.node_id.clone()).or_default();
            samples.push_back(if node.alive { node.score } else { f32::NAN });
            while samples.len() > SAMPLES {
                samples.pop_front();
            }
        }
    }

    pub fn get(&self, node_id: &str) -> Option<&VecDeque<f32>> {
        self.by_node.get(node_id)
    }
}

/// Block characters of a sparkline, from low to high.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` samples as a sparkline on the fixed score scale
/// 0..=100, right-aligned; missing history and gaps are blank, not zero.
pub fn sparkline(samples: &VecDeque<f32>, width: usize) -> String {
    let skip = samples.len().saturating_sub(width);
    let mut out = " ".repeat(width.saturating_sub(samples.len()));
    for &score in samples.iter().skip(skip) {
        if score.is_nan() {
            out.push(' ');
        } else {
            let level = score.clamp(0.0, 100.0) / 100.0 * 7.0;
            out.push(BARS[(level.round() as usize).min(7)]);
        }
    }
    out
}

/// Remembers cluster events already logged, by (time, level, message).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventDedup {
    order: VecDeque<(u64, String, String)>,
    seen: HashSet<(u64, String, String)>,
}

impl EventDedup {
    /// The events of a snapshot not logged before, oldest first.
    pub fn fresh<'a>(&mut self, events: &'a [ClusterEvent]) -> Vec<&'a ClusterEvent> {
        let mut out = Vec::new();
        for event in events {
            let key = (event.unix_ms, event.level.clone(), event.message.clone());
            if self.seen.insert(key.clone()) {
                self.order.push_back(key);
                out.push(event);
            }
        }
        while self.order.len() > SEEN {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_use_a_fixed_scale_and_pad_left() {
        let samples: VecDeque<f32> = [0.0, 50.0, 100.0, f32::NAN, 150.0].into();
        assert_eq!(sparkline(&samples, 7), "  ▁▅█ █");
        assert_eq!(sparkline(&samples, 2), " █");
        assert_eq!(sparkline(&VecDeque::new(), 3), "   ");
    }

    #[test]
    fn history_is_bounded_and_dead_nodes_get_gaps() {
        let mut history = ScoreHistory::default();
        let live = NodeEntry {
            node_id: "a".into(),
            alive: true,
            score: 10.0,
            ..Default::default()
        };
        let dead = NodeEntry {
            node_id: "b".into(),
            ..Default::default()
        };
        for _ in 0..SAMPLES + 5 {
            history.record(&[live.clone(), dead.clone()]);
        }
        assert_eq!(history.get("a").map(VecDeque::len), Some(SAMPLES));
        let b = history.get("b").expect("dead nodes have a line");
        assert!(b.iter().all(|s| s.is_nan()));
        assert_eq!(sparkline(b, 3), "   ");
    }

    #[test]
    fn events_are_logged_once() {
        let event = |ms: u64, msg: &str| ClusterEvent {
            unix_ms: ms,
            level: "info".into(),
            message: msg.into(),
        };
        let mut dedup = EventDedup::default();
        let first = [event(1, "a"), event(2, "b")];
        assert_eq!(dedup.fresh(&first).len(), 2);
        let second = [event(2, "b"), event(3, "c"), event(3, "c2")];
        let fresh: Vec<&str> = dedup
            .fresh(&second)
            .iter()
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(fresh, vec!["c", "c2"]);
    }
}
