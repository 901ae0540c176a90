//! Pins: blobs a running operation of this process still needs although
//! the replicated table does not refer to them yet, e.g. an upload being
//! copied to its backup node before its job is recorded (minutes for a
//! large file). The garbage collector never removes a pinned blob, so a
//! blob whose content equals that of an ended or deleted job (names are
//! content hashes) cannot vanish under the operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone, Default)]
pub struct Pins(Arc<Mutex<HashMap<String, usize>>>);

/// Keeps its blob pinned until dropped.
#[derive(Debug)]
pub struct BlobPin {
    pins: Pins,
    sha256: String,
}

impl Pins {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pins `sha256` until the returned guard is dropped (pins nest).
    pub fn pin(&self, sha256: &str) -> BlobPin {
        *self.lock().entry(sha256.to_string()).or_default() += 1;
        BlobPin {
            pins: self.clone(),
            sha256: sha256.to_string(),
        }
    }

    pub fn is_pinned(&self, sha256: &str) -> bool {
        self.lock().contains_key(sha256)
    }
}

/// Pins are equal when they hold the same blob (outcomes carrying one
/// compare by their content).
impl PartialEq for BlobPin {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256
    }
}

impl Drop for BlobPin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock();
        if let Some(count) = pins.get_mut(&self.sha256) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&self.sha256);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_nest_and_end_with_their_guards() {
        let pins = Pins::default();
        let first = pins.pin("abc");
        let second = pins.pin("abc");
        assert!(pins.is_pinned("abc") && !pins.is_pinned("def"));
        drop(first);
        assert!(pins.is_pinned("abc"), "still pinned by the second");
        drop(second);
        assert!(!pins.is_pinned("abc"));
    }
}
