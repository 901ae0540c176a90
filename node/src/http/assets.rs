//! The files built into the binary: the browser players (hls.js, dash.js
//! from npm, pinned in `node/assets/players/players.lock` by
//! `scripts/update-players.sh`) and the watch page's template. Nothing is
//! fetched at run time, so a node serves its pages on a network without
//! a way out; the test below fails the build of a player file that no
//! longer hashes to what the lock recorded (a hand edit, a bad merge).

use std::sync::LazyLock;

use serde::Deserialize;

use super::route::Asset;

pub const HLS_JS: &[u8] = include_bytes!("../../assets/players/hls.min.js");
pub const DASH_JS: &[u8] = include_bytes!("../../assets/players/dash.all.min.js");
/// What `scripts/update-players.sh` fetched, with every file's sha256.
pub const LOCK: &str = include_str!("../../assets/players/players.lock");
/// The watch page (`page.rs` fills it in).
pub const WATCH_HTML: &str = include_str!("../../assets/watch.html");

/// A player script's bytes and its path in the lock.
pub fn player(asset: Asset) -> (&'static [u8], &'static str) {
    match asset {
        Asset::Hls => (HLS_JS, "hls.min.js"),
        Asset::Dash => (DASH_JS, "dash.all.min.js"),
    }
}

/// What the server reads of `players.lock` (the test reads it all).
#[derive(Debug, Deserialize)]
struct Lock {
    player: Vec<LockedFiles>,
}

#[derive(Debug, Deserialize)]
struct LockedFiles {
    file: Vec<LockedFile>,
}

#[derive(Debug, Deserialize)]
struct LockedFile {
    path: String,
    sha256: String,
}

static PARSED: LazyLock<Option<Lock>> = LazyLock::new(|| toml::from_str(LOCK).ok());

/// The sha256 the lock records for `path` (the test below guarantees it
/// is the embedded file's): the script's entity tag, without hashing a
/// megabyte on a request.
pub fn locked_sha256(path: &str) -> Option<&'static str> {
    PARSED
        .as_ref()?
        .player
        .iter()
        .flat_map(|p| &p.file)
        .find(|f| f.path == path)
        .map(|f| f.sha256.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/players");

    /// `players.lock`, as the update script writes it.
    #[derive(Debug, Deserialize)]
    struct FullLock {
        player: Vec<LockedPlayer>,
    }

    #[derive(Debug, Deserialize)]
    struct LockedPlayer {
        name: String,
        version: String,
        license: String,
        tarball: String,
        integrity: String,
        file: Vec<LockedFile>,
    }

    #[test]
    fn every_locked_file_hashes_to_what_the_lock_says() {
        let lock: FullLock = toml::from_str(LOCK).expect("players.lock parses");
        assert_eq!(lock.player.len(), 2);
        for p in &lock.player {
            assert!(p.integrity.starts_with("sha512-"), "{}", p.name);
            assert!(
                p.tarball.starts_with("https://registry.npmjs.org/")
                    && p.tarball.ends_with(&format!("-{}.tgz", p.version)),
                "{}",
                p.tarball
            );
            assert!(!p.license.is_empty());
            for f in &p.file {
                let bytes = std::fs::read(format!("{DIR}/{}", f.path)).expect("locked file exists");
                assert_eq!(
                    hex::encode(Sha256::digest(&bytes)),
                    f.sha256,
                    "{} differs from players.lock: run scripts/update-players.sh instead of editing it",
                    f.path
                );
            }
        }
    }

    #[test]
    fn the_embedded_players_are_the_locked_ones() {
        for asset in [Asset::Hls, Asset::Dash] {
            let (bytes, path) = player(asset);
            assert_eq!(
                Some(hex::encode(Sha256::digest(bytes)).as_str()),
                locked_sha256(path),
                "{path}"
            );
        }
        let lock: FullLock = toml::from_str(LOCK).expect("players.lock parses");
        let names: Vec<&str> = lock.player.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hls.js", "dashjs"]);
    }

    #[test]
    fn licenses_ship_with_the_players() {
        for license in ["LICENSE.hls.js", "LICENSE.dashjs.md"] {
            assert!(locked_sha256(license).is_some(), "{license} is locked");
        }
    }
}
