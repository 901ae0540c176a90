//! Signed links: the grant that opens one job's package over HTTP for a
//! while, and the URLs built around it (pure).
//!
//! A grant is `{expires_unix}.{hex(hmac_sha256(key, "{job}\n{expires_unix}"))}`
//! and travels as a path prefix (`/s/{grant}/…`), never as a query
//! string: players resolve every playlist and MPD URI relative to the one
//! they loaded, which keeps the prefix and drops the query. The key is
//! derived one-way from the join token, so every member checks every
//! other member's links and nobody outside the cluster can forge one.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Longest `expires_unix` accepted, in digits (u64::MAX has 20).
const MAX_EXPIRY_DIGITS: usize = 20;

/// The key links are signed with: sha256 of a fixed label and the join
/// token, so the key is not the token itself (a leaked key lets one make
/// links, not join the cluster) and differs from the operator token.
pub fn link_key(join_token: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"vidshard http links\0")
        .chain_update(join_token.as_bytes())
        .finalize()
        .into()
}

/// The HMAC of `job` until `expires_unix`. A 32-byte key is zero-padded
/// to SHA-256's 64-byte block, exactly what HMAC does with a short key,
/// so the infallible `Mac::new` gives the same MAC as `new_from_slice`.
fn mac(key: &[u8; 32], job: &str, expires_unix: u64) -> HmacSha256 {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <HmacSha256 as Mac>::new(&block.into());
    mac.update(job.as_bytes());
    mac.update(b"\n");
    mac.update(expires_unix.to_string().as_bytes());
    mac
}

/// The grant for `job` until `expires_unix`.
pub fn grant(key: &[u8; 32], job: &str, expires_unix: u64) -> String {
    let tag = mac(key, job, expires_unix).finalize().into_bytes();
    format!("{expires_unix}.{}", hex::encode(tag))
}

/// The player page of `job` under `grant` (hls.js; add `?player=dash`
/// for dash.js).
pub fn watch_path(grant: &str, job: &str) -> String {
    format!("/s/{grant}/watch/{job}")
}

/// The HLS master playlist of `job` under `grant`.
pub fn hls_path(grant: &str, job: &str) -> String {
    format!("/s/{grant}/v/{job}/master.m3u8")
}

/// The DASH MPD of `job` under `grant`.
pub fn dash_path(grant: &str, job: &str) -> String {
    format!("/s/{grant}/v/{job}/manifest.mpd")
}

/// Why a grant opens nothing; the message is the 403's one-line body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("malformed link: expected /s/EXPIRES.SIGNATURE/…")]
    Malformed,
    /// Authentic, but its time is over.
    #[error("link expired at {expired_unix} (unix time): ask for a new one")]
    Expired { expired_unix: u64 },
    /// Signed for another job, altered, or signed by another cluster.
    #[error("link not valid for this video")]
    BadSignature,
    /// This node has no join token, so no key to check against.
    #[error("this node has no join token, so it cannot check links")]
    NoKey,
}

/// Checks that `grant` opens `job` at `now_unix`. The signature is
/// checked (in constant time) before the expiry, so a grant whose expiry
/// was edited reads as altered, not as expired.
pub fn verify(
    key: Option<&[u8; 32]>,
    grant: &str,
    job: &str,
    now_unix: u64,
) -> Result<(), GrantError> {
    let key = key.ok_or(GrantError::NoKey)?;
    let (expires, tag) = split(grant).ok_or(GrantError::Malformed)?;
    mac(key, job, expires)
        .verify_slice(&tag)
        .map_err(|_| GrantError::BadSignature)?;
    if now_unix >= expires {
        return Err(GrantError::Expired {
            expired_unix: expires,
        });
    }
    Ok(())
}

/// `EXPIRES.HEX` into its parts: plain decimal digits (no sign, no
/// leading zero, within u64) and 64 lowercase hex digits.
fn split(grant: &str) -> Option<(u64, [u8; 32])> {
    let (expires, tag) = grant.split_once('.')?;
    let plain = !expires.is_empty()
        && expires.len() <= MAX_EXPIRY_DIGITS
        && expires.bytes().all(|b| b.is_ascii_digit())
        && (expires == "0" || !expires.starts_with('0'));
    let lower_hex = tag.len() == 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !plain || !lower_hex {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(tag, &mut bytes).ok()?;
    Some((expires.parse().ok()?, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn the_padded_key_gives_the_standard_hmac() {
        let mut standard = HmacSha256::new_from_slice(&KEY).expect("any length");
        standard.update(b"clip.mp4\n1700000000");
        assert_eq!(
            mac(&KEY, "clip.mp4", 1_700_000_000).finalize().into_bytes(),
            standard.finalize().into_bytes()
        );
    }

    #[test]
    fn a_grant_opens_its_job_until_it_expires() {
        let g = grant(&KEY, "clip.mp4", 1000);
        assert!(g.starts_with("1000.") && g.len() == 5 + 64, "{g}");
        assert_eq!(verify(Some(&KEY), &g, "clip.mp4", 999), Ok(()));
        assert_eq!(
            verify(Some(&KEY), &g, "clip.mp4", 1000),
            Err(GrantError::Expired { expired_unix: 1000 })
        );
        assert_eq!(
            verify(Some(&KEY), &g, "clip.mp4", u64::MAX),
            Err(GrantError::Expired { expired_unix: 1000 })
        );
    }

    #[test]
    fn another_job_another_key_or_an_edit_is_refused() {
        let g = grant(&KEY, "clip.mp4", 1000);
        assert_eq!(
            verify(Some(&KEY), &g, "other.mp4", 1),
            Err(GrantError::BadSignature)
        );
        assert_eq!(
            verify(Some(&[8; 32]), &g, "clip.mp4", 1),
            Err(GrantError::BadSignature)
        );
        // A later expiry with the old signature: altered, not expired.
        let stretched = g.replacen("1000.", "9000.", 1);
        assert_eq!(
            verify(Some(&KEY), &stretched, "clip.mp4", 1),
            Err(GrantError::BadSignature)
        );
        let mut flipped = g.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(
            verify(Some(&KEY), &flipped, "clip.mp4", 1),
            Err(GrantError::BadSignature)
        );
        // The job and expiry are separated: "a\n1" + "0" ≠ "a" + "\n10".
        assert_ne!(grant(&KEY, "a1", 0), grant(&KEY, "a", 10));
    }

    #[test]
    fn malformed_grants_say_so() {
        let sig = "ab".repeat(32);
        for bad in [
            String::new(),
            "1000".into(),
            format!("1000{sig}"),
            format!(".{sig}"),
            format!("-1.{sig}"),
            format!("+1.{sig}"),
            format!("01.{sig}"),
            format!("1 .{sig}"),
            format!("{}.{sig}", "9".repeat(21)),
            format!("99999999999999999999.{sig}"), // 20 digits, > u64::MAX
            format!("1000.{}", "AB".repeat(32)),
            format!("1000.{}", "ab".repeat(31)),
            format!("1000.{sig}00"),
            format!("1000.{sig}.1"),
            format!("1000.{}", "zz".repeat(32)),
        ] {
            assert_eq!(
                verify(Some(&KEY), &bad, "clip.mp4", 1),
                Err(GrantError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify(None, &grant(&KEY, "clip.mp4", 9), "clip.mp4", 1),
            Err(GrantError::NoKey)
        );
    }

    #[test]
    fn the_key_depends_on_the_token_only() {
        assert_eq!(link_key("join-abc"), link_key("join-abc"));
        assert_ne!(link_key("join-abc"), link_key("join-abd"));
        let plain: [u8; 32] = Sha256::digest(b"join-abc").into();
        assert_ne!(link_key("join-abc"), plain);
    }

    #[test]
    fn paths_carry_the_grant_as_a_prefix() {
        assert_eq!(watch_path("5.ab", "clip.mp4"), "/s/5.ab/watch/clip.mp4");
        assert_eq!(hls_path("5.ab", "c"), "/s/5.ab/v/c/master.m3u8");
        assert_eq!(dash_path("5.ab", "c"), "/s/5.ab/v/c/manifest.mpd");
    }
}
