//! Byte ranges (RFC 9110 §14): which part of a body a request asks for
//! (pure). One range is served as a 206; several are answered with the
//! whole body (a 200, as §14.2 allows: players ask for one range, and a
//! multipart body would have to be built in memory or in two passes);
//! anything we cannot parse is ignored as §14.2 requires, so the client
//! gets the whole body rather than an error.

/// What to send of a body of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The whole body, 200.
    Whole,
    /// Bytes `first..=last`, 206 with `Content-Range`.
    Part { first: u64, last: u64 },
    /// No byte of the range exists: 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

impl Span {
    /// First byte and length to read from a body of `size` bytes.
    pub fn window(self, size: u64) -> (u64, u64) {
        match self {
            Span::Part { first, last } => (first, last - first + 1),
            Span::Whole | Span::Unsatisfiable => (0, size),
        }
    }
}

/// The span a `Range` header value asks of a body of `size` bytes.
pub fn span(range: Option<&str>, size: u64) -> Span {
    let Some(range) = range else {
        return Span::Whole;
    };
    let Some((unit, set)) = range.trim().split_once('=') else {
        return Span::Whole;
    };
    // An empty body has no byte to address (and no `Content-Range` that
    // could describe one): it is sent whole.
    if !unit.trim().eq_ignore_ascii_case("bytes") || size == 0 || set.contains(',') {
        return Span::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Span::Whole;
    };
    match (number(first), number(last)) {
        // bytes=-n: the last n bytes (all of them when n ≥ size).
        (None, Some(n)) if first.is_empty() => match n {
            0 => Span::Unsatisfiable,
            n => Span::Part {
                first: size.saturating_sub(n),
                last: size - 1,
            },
        },
        // bytes=a-: from a to the end.
        (Some(first), None) if last.is_empty() => from(first, size - 1, size),
        // bytes=a-b: b beyond the end means the end.
        (Some(first), Some(last)) if first <= last => from(first, last.min(size - 1), size),
        _ => Span::Whole,
    }
}

fn from(first: u64, last: u64, size: u64) -> Span {
    if first >= size {
        Span::Unsatisfiable
    } else {
        Span::Part { first, last }
    }
}

/// A run of ASCII digits, saturating at `u64::MAX` (a position past any
/// body is still a position: `bytes=99999999999999999999-` is a 416);
/// `None` for anything else, the empty string included.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// `Content-Range` of a 206.
pub fn content_range(first: u64, last: u64, size: u64) -> String {
    format!("bytes {first}-{last}/{size}")
}

/// `Content-Range` of a 416.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(first: u64, last: u64) -> Span {
        Span::Part { first, last }
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(span(Some("bytes=0-99"), 1000), part(0, 99));
        assert_eq!(span(Some("bytes=10-10"), 1000), part(10, 10));
        assert_eq!(span(Some("bytes=900-"), 1000), part(900, 999));
        assert_eq!(span(Some("bytes=-100"), 1000), part(900, 999));
        assert_eq!(span(Some("bytes=0-"), 1000), part(0, 999));
        assert_eq!(span(Some("Bytes = 5-6 "), 1000), part(5, 6));
        assert_eq!(span(None, 1000), Span::Whole);
    }

    #[test]
    fn ends_past_the_body_are_clamped() {
        assert_eq!(span(Some("bytes=990-5000"), 1000), part(990, 999));
        assert_eq!(span(Some("bytes=-5000"), 1000), part(0, 999));
        assert_eq!(
            span(Some("bytes=0-99999999999999999999999"), 1000),
            part(0, 999)
        );
        assert_eq!(
            span(Some("bytes=-99999999999999999999999"), 1000),
            part(0, 999)
        );
    }

    #[test]
    fn ranges_past_the_end_are_416() {
        assert_eq!(span(Some("bytes=1000-"), 1000), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=1000-2000"), 1000), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=-0"), 1000), Span::Unsatisfiable);
        assert_eq!(
            span(Some("bytes=99999999999999999999999-"), 1000),
            Span::Unsatisfiable
        );
        assert_eq!(unsatisfied_range(1000), "bytes */1000");
    }

    #[test]
    fn what_we_cannot_parse_is_ignored() {
        for header in [
            "bytes=",
            "bytes=-",
            "bytes=abc",
            "bytes=5-1",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=1--2",
            "bytes=0x1-2",
            "bytes 0-1",
            "items=0-1",
            "=0-1",
            "",
        ] {
            assert_eq!(span(Some(header), 1000), Span::Whole, "{header:?}");
        }
    }

    #[test]
    fn several_ranges_get_the_whole_body() {
        assert_eq!(span(Some("bytes=0-1,5-6"), 1000), Span::Whole);
        assert_eq!(span(Some("bytes=0-1, -5"), 1000), Span::Whole);
    }

    #[test]
    fn an_empty_body_is_sent_whole() {
        assert_eq!(span(Some("bytes=0-"), 0), Span::Whole);
        assert_eq!(span(Some("bytes=-1"), 0), Span::Whole);
    }

    #[test]
    fn windows_and_headers() {
        assert_eq!(part(900, 999).window(1000), (900, 100));
        assert_eq!(Span::Whole.window(1000), (0, 1000));
        assert_eq!(content_range(0, 99, 1000), "bytes 0-99/1000");
    }
}
