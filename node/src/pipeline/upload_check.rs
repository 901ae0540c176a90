//! The decisions about one upload's bytes, as a pure state machine over
//! plain data: whether the next chunk still fits the node's limit, and
//! whether what arrived in the end is what the client announced (not
//! empty, the announced size, the announced sha256). `upload::ingest` is
//! the async shell around it (streams, timeouts, the blob writer), so the
//! rules can be tested exhaustively without a network or a disk.

/// Why an upload is refused; `Display` is the exact message the client
/// gets (the original protocol's `message`, our `UploadReply.message`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The next chunk would take the upload past the node's limit.
    #[error("upload is larger than the {limit} bytes this node accepts")]
    TooLarge { limit: u64 },
    /// The stream ended without a single byte.
    #[error("the upload is empty: no video data arrived")]
    Empty,
    /// The stream ended before (or after) the announced size.
    #[error("upload truncated: {received} bytes arrived, {announced} were announced")]
    Truncated { received: u64, announced: u64 },
    /// The bytes do not hash to the announced sha256.
    #[error("upload corrupted in transit: sha256 {actual} differs from the announced {announced}")]
    Corrupted { actual: String, announced: String },
    /// The trailer's hash or size differs from the header's.
    #[error("the upload's trailer ({what}) differs from its header")]
    TrailerDisagrees { what: &'static str },
    /// Bytes came after the trailer, which must be the last message.
    #[error("data after the upload trailer: the trailer must be the last message")]
    AfterTrailer,
    #[error(
        "upload too slow: {received} bytes in {seconds:.1} s; an upload must average at least {} KiB/s once it has run for the idle limit",
        MIN_PACE / 1024
    )]
    TooSlow { received: u64, seconds: f64 },
}

/// The slowest average pace (bytes per second) an upload may keep once
/// it has run for the idle limit: 128 kbit/s. Without it a client sending
/// a byte now and then held an upload slot for ever.
pub const MIN_PACE: u64 = 16 * 1024;

/// How long an upload that has `received` bytes may have run before its
/// average pace is below [`MIN_PACE`]; never less than `grace` (pure).
pub fn pace_deadline(received: u64, grace: std::time::Duration) -> std::time::Duration {
    grace.max(std::time::Duration::from_secs_f64(
        received as f64 / MIN_PACE as f64,
    ))
}

/// What is known about an upload in progress. The caller feeds it every
/// chunk's length before storing the chunk and stops at the first
/// refusal; a refused chunk is not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadCheck {
    /// Most bytes this node accepts in one upload.
    pub limit: u64,
    /// Size the client announced; 0 means not announced.
    pub expected_size: u64,
    /// sha256 the client announced, trimmed and lowercased; empty means
    /// not announced.
    pub expected_sha256: String,
    /// Bytes accepted so far.
    pub received: u64,
}

impl UploadCheck {
    /// A fresh check. The announced hash is normalised here (clients send
    /// it in either case, sometimes with a trailing newline from a tool).
    pub fn new(limit: u64, expected_size: u64, expected_sha256: &str) -> Self {
        Self {
            limit,
            expected_size,
            expected_sha256: expected_sha256.trim().to_ascii_lowercase(),
            received: 0,
        }
    }

    /// Accepts a chunk of `len` bytes unless it takes the upload past the
    /// limit. Refusing before the bytes are written means an oversized
    /// upload never costs more than `limit` bytes of disk. Sums that
    /// overflow `u64` are past any limit.
    pub fn on_chunk(&mut self, len: u64) -> Result<(), Refusal> {
        match self.received.checked_add(len) {
            Some(total) if total <= self.limit => {
                self.received = total;
                Ok(())
            }
            _ => Err(Refusal::TooLarge { limit: self.limit }),
        }
    }

    /// Takes what the client's trailer announces (hashed while it sent):
    /// it fills in what the header left unannounced and must agree with
    /// what it did announce. [`UploadCheck::on_end`] then judges the bytes
    /// against it.
    pub fn on_trailer(&mut self, sha256: &str, size: u64) -> Result<(), Refusal> {
        let sha256 = sha256.trim().to_ascii_lowercase();
        if !sha256.is_empty() {
            if !self.expected_sha256.is_empty() && self.expected_sha256 != sha256 {
                return Err(Refusal::TrailerDisagrees { what: "sha256" });
            }
            self.expected_sha256 = sha256;
        }
        if size > 0 {
            if self.expected_size > 0 && self.expected_size != size {
                return Err(Refusal::TrailerDisagrees { what: "size" });
            }
            self.expected_size = size;
        }
        Ok(())
    }

    /// Judges the finished stream, whose bytes hash to `actual_sha256`
    /// (lowercase hex, as the store computes it): it must not be empty,
    /// must have the announced size and the announced hash. Checked in
    /// that order, so the client hears the most basic problem first.
    pub fn on_end(&self, actual_sha256: &str) -> Result<(), Refusal> {
        if self.received == 0 {
            return Err(Refusal::Empty);
        }
        if self.expected_size > 0 && self.expected_size != self.received {
            return Err(Refusal::Truncated {
                received: self.received,
                announced: self.expected_size,
            });
        }
        if !self.expected_sha256.is_empty()
            && !self
                .expected_sha256
                .eq_ignore_ascii_case(actual_sha256.trim())
        {
            return Err(Refusal::Corrupted {
                actual: actual_sha256.to_string(),
                announced: self.expected_sha256.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    use super::*;

    /// Runs a whole upload of `chunks` through the check the way
    /// `ingest` does: stop at the first refusal, judge the end otherwise.
    /// Answers the verdict and how many chunks were accepted.
    fn run(check: &mut UploadCheck, chunks: &[u64], actual: &str) -> (Result<(), Refusal>, usize) {
        for (i, len) in chunks.iter().enumerate() {
            if let Err(refusal) = check.on_chunk(*len) {
                return (Err(refusal), i);
            }
        }
        (check.on_end(actual), chunks.len())
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn a_trickle_runs_out_of_time_and_a_steady_upload_never_does() {
        let grace = std::time::Duration::from_secs(60);
        assert_eq!(pace_deadline(0, grace), grace);
        assert_eq!(pace_deadline(MIN_PACE * 30, grace), grace);
        assert_eq!(
            pace_deadline(MIN_PACE * 600, grace),
            std::time::Duration::from_secs(600)
        );
    }

    #[test]
    fn messages_are_the_ones_clients_see() {
        assert_eq!(
            Refusal::TooLarge { limit: 10 }.to_string(),
            "upload is larger than the 10 bytes this node accepts"
        );
        assert_eq!(
            Refusal::Empty.to_string(),
            "the upload is empty: no video data arrived"
        );
        assert_eq!(
            Refusal::Truncated {
                received: 5,
                announced: 9
            }
            .to_string(),
            "upload truncated: 5 bytes arrived, 9 were announced"
        );
        assert_eq!(
            Refusal::Corrupted {
                actual: "ab".into(),
                announced: "cd".into()
            }
            .to_string(),
            "upload corrupted in transit: sha256 ab differs from the announced cd"
        );
    }

    #[test]
    fn announced_hash_is_trimmed_and_case_insensitive() {
        let real = sha(b"video");
        let mut check = UploadCheck::new(100, 5, &format!("  {}\n", real.to_uppercase()));
        check.on_chunk(5).expect("fits");
        assert_eq!(check.on_end(&real), Ok(()));
        let mut blank = UploadCheck::new(100, 0, " \t\n");
        blank.on_chunk(5).expect("fits");
        assert_eq!(blank.on_end(&real), Ok(()), "a blank hash is not announced");
    }

    #[test]
    fn a_trailer_announces_what_the_header_could_not() {
        let real = sha(b"video");
        // Hashed while sending: only the trailer knows the hash.
        let mut check = UploadCheck::new(100, 5, "");
        check.on_chunk(5).expect("fits");
        assert_eq!(check.on_trailer(&real.to_uppercase(), 5), Ok(()));
        assert_eq!(check.on_end(&real), Ok(()));
        let mut changed = UploadCheck::new(100, 0, "");
        changed.on_chunk(5).expect("fits");
        changed.on_trailer(&real, 0).expect("no size announced");
        assert!(
            matches!(
                changed.on_end(&sha(b"vide0")),
                Err(Refusal::Corrupted { .. })
            ),
            "bytes that do not hash to the trailer's sha256 are refused"
        );
        let mut short = UploadCheck::new(100, 0, "");
        short.on_chunk(4).expect("fits");
        short.on_trailer("", 5).expect("size only");
        assert!(matches!(
            short.on_end(&real),
            Err(Refusal::Truncated { .. })
        ));
        // A trailer contradicting the header is refused at once.
        let mut both = UploadCheck::new(100, 5, &real);
        assert_eq!(
            both.on_trailer(&sha(b"other"), 5),
            Err(Refusal::TrailerDisagrees { what: "sha256" })
        );
        assert_eq!(
            both.on_trailer(&real, 6),
            Err(Refusal::TrailerDisagrees { what: "size" })
        );
        assert_eq!(both.on_trailer(&real, 5), Ok(()));
    }

    #[test]
    fn overflowing_sums_are_refused_not_wrapped() {
        let mut check = UploadCheck::new(u64::MAX, 0, "");
        check
            .on_chunk(u64::MAX - 1)
            .expect("fits exactly below the limit");
        check.on_chunk(1).expect("reaches the limit exactly");
        assert_eq!(
            check.on_chunk(1),
            Err(Refusal::TooLarge { limit: u64::MAX })
        );
        assert_eq!(check.received, u64::MAX);
    }

    /// Chunk lengths: mostly small, sometimes empty, sometimes huge (near
    /// `u64::MAX`, to reach the overflow paths).
    fn chunk_len() -> impl Strategy<Value = u64> {
        prop_oneof![
            6 => 0u64..2048,
            1 => Just(0u64),
            1 => (u64::MAX - 4096)..=u64::MAX,
            1 => any::<u64>(),
        ]
    }

    /// Limits around the interesting places: tiny, typical, the maximum.
    fn limit() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => 0u64..20_000,
            1 => (u64::MAX - 4096)..=u64::MAX,
            1 => any::<u64>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the chunks, limit and announcements: accepted iff the
        /// total is in 1..=limit, the announced size (if any) is the total
        /// and the announced hash (if any) is the real one; a refusal for
        /// size comes at the first chunk that crosses the limit.
        #[test]
        fn accepted_iff_within_limit_and_as_announced(
            chunks in prop::collection::vec(chunk_len(), 0..12),
            any_limit in limit(),
            limit_choice in 0u8..4,
            size_choice in 0u8..4,
            other_size in any::<u64>(),
            sha_choice in 0u8..5,
            other_sha in "[0-9a-fA-F]{64}",
            content in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let real = sha(&content);
            // The true total, if it fits in u64 (else certainly too big).
            let total: Option<u64> = chunks.iter().try_fold(0u64, |a, &b| a.checked_add(b));
            // Often right at the boundary: exactly the total, one less, one more.
            let limit = match (limit_choice, total) {
                (1, Some(t)) => t,
                (2, Some(t)) => t.saturating_sub(1),
                (3, Some(t)) => t.saturating_add(1),
                _ => any_limit,
            };
            let announced_size = match size_choice {
                0 => 0,
                1 => total.unwrap_or(other_size),
                2 => total.map_or(other_size, |t| t.wrapping_add(1)),
                _ => other_size,
            };
            let announced_sha = match sha_choice {
                0 => String::new(),
                1 => real.clone(),
                2 => format!(" {}\n", real.to_uppercase()),
                3 => "   ".to_string(),
                _ => other_sha.clone(),
            };
            let mut check = UploadCheck::new(limit, announced_size, &announced_sha);
            let (verdict, accepted_chunks) = run(&mut check, &chunks, &real);

            // Where the running total first passes the limit, if it does.
            let mut sum: Option<u64> = Some(0);
            let mut crossing = None;
            for (i, len) in chunks.iter().enumerate() {
                sum = sum.and_then(|s| s.checked_add(*len));
                if sum.is_none_or(|s| s > limit) {
                    crossing = Some(i);
                    break;
                }
            }
            let sha_ok = announced_sha.trim().is_empty()
                || announced_sha.trim().eq_ignore_ascii_case(&real);
            let expect_ok = crossing.is_none()
                && total.is_some_and(|t| t > 0 && t <= limit)
                && (announced_size == 0 || Some(announced_size) == total)
                && sha_ok;
            prop_assert_eq!(verdict.is_ok(), expect_ok, "{:?}", verdict);

            match crossing {
                Some(i) => {
                    prop_assert_eq!(&verdict, &Err(Refusal::TooLarge { limit }));
                    prop_assert_eq!(accepted_chunks, i, "refused at the first crossing chunk");
                    let before: u64 = chunks[..i].iter().sum();
                    prop_assert_eq!(check.received, before, "a refused chunk is not counted");
                    prop_assert!(check.received <= limit);
                }
                None => {
                    let total = total.expect("no crossing means the sum fits");
                    prop_assert_eq!(accepted_chunks, chunks.len());
                    prop_assert_eq!(check.received, total);
                    // The end is judged in a fixed order: empty, size, hash.
                    if total == 0 {
                        prop_assert_eq!(&verdict, &Err(Refusal::Empty));
                    } else if announced_size > 0 && announced_size != total {
                        prop_assert_eq!(&verdict, &Err(Refusal::Truncated {
                            received: total,
                            announced: announced_size,
                        }));
                    } else if !sha_ok {
                        let corrupted = matches!(verdict, Err(Refusal::Corrupted { .. }));
                        prop_assert!(corrupted, "{:?}", verdict);
                    }
                }
            }
        }

        /// No sequence of calls panics, whatever order or size.
        #[test]
        fn never_panics(
            limit in any::<u64>(),
            expected_size in any::<u64>(),
            expected_sha in any::<String>(),
            calls in prop::collection::vec((any::<bool>(), any::<u64>(), any::<String>()), 0..20),
        ) {
            let mut check = UploadCheck::new(limit, expected_size, &expected_sha);
            for (is_chunk, len, actual) in calls {
                if is_chunk {
                    let before = check.received;
                    match check.on_chunk(len) {
                        Ok(()) => prop_assert_eq!(check.received, before + len),
                        Err(_) => prop_assert_eq!(check.received, before),
                    }
                } else {
                    let _ = check.on_end(&actual);
                }
                prop_assert!(check.received <= limit);
            }
        }
    }
}
