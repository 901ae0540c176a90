//! Recent cluster events for consoles: a tracing layer keeps the node's
//! own info/warn/error events (node joined or died, job accepted, shard
//! failed, ...) in a small ring buffer that `WatchCluster` sends along.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use vidshard_proto::v1::ClusterEvent;

/// Events kept; older ones are dropped.
pub const KEEP: usize = 100;

#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<VecDeque<ClusterEvent>>>);

impl EventLog {
    pub fn push(&self, level: &str, message: String) {
        let mut events = self.0.lock().unwrap_or_else(|p| p.into_inner());
        events.push_back(ClusterEvent {
            unix_ms: crate::jobs::now_unix_ms(),
            level: level.into(),
            message,
        });
        while events.len() > KEEP {
            events.pop_front();
        }
    }

    /// The kept events, oldest first.
    pub fn recent(&self) -> Vec<ClusterEvent> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// A tracing layer feeding this log with the crate's own events.
    pub fn layer(&self) -> EventLayer {
        EventLayer { log: self.clone() }
    }
}

pub struct EventLayer {
    log: EventLog,
}

/// Renders an event as "message key=value ...".
#[derive(Default)]
struct Render {
    message: String,
    fields: String,
}

impl Visit for Render {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for EventLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("vidshard_node") || *meta.level() > Level::INFO {
            return;
        }
        let mut render = Render::default();
        event.record(&mut render);
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            _ => "info",
        };
        self.log
            .push(level, format!("{}{}", render.message, render.fields));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn crate_events_are_kept_with_fields_and_bounded() {
        let log = EventLog::default();
        let subscriber = tracing_subscriber::registry().with(log.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(node = "n1", "node joined");
            tracing::debug!("too chatty to keep");
            for i in 0..KEEP + 5 {
                tracing::warn!(i, "shard failed");
            }
        });
        let events = log.recent();
        assert_eq!(events.len(), KEEP);
        assert_eq!(
            events.last().map(|e| e.message.as_str()),
            Some("shard failed i=104")
        );
        assert!(events.iter().all(|e| e.level == "warn"));
    }
}
