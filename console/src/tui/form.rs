//! The upload form, the retrieve path prompt, and Tab completion of paths.
//!
//! Completion is a pure function over a directory listing that the caller
//! passes in ([`complete`]): the app asks the executor to list the
//! directory ([`listing_dir`]) and applies the answer, so nothing here
//! touches the file system and everything is testable.

use std::path::PathBuf;

/// Output containers offered by the form (the node's vocabulary).
pub const FORMATS: [&str; 4] = ["mp4", "mkv", "webm", "mov"];

/// Video codecs offered by the form; "auto" is the container's default
/// (h264, or vp9 for webm).
pub const CODECS: [&str; 5] = ["auto", "h264", "hevc", "av1", "vp9"];

/// The fields of the upload form, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Path,
    Width,
    Height,
    Format,
    Codec,
}

const FIELDS: [Field; 5] = [
    Field::Path,
    Field::Width,
    Field::Height,
    Field::Format,
    Field::Codec,
];

/// A validated upload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSpec {
    pub path: String,
    pub width: i32,
    pub height: i32,
    pub format: &'static str,
    /// "" for the container's default.
    pub codec: &'static str,
}

/// What the user typed so far in the upload form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadForm {
    pub path: String,
    pub width: String,
    pub height: String,
    /// Index into [`FORMATS`].
    pub format: usize,
    /// Index into [`CODECS`].
    pub codec: usize,
    pub field: Field,
    /// Candidates shown after an ambiguous Tab.
    pub matches: Vec<String>,
    /// Why the last submit or completion failed.
    pub error: Option<String>,
}

impl Default for UploadForm {
    fn default() -> Self {
        // 1280 wide keeping the aspect ratio: a sane default to edit.
        UploadForm {
            path: String::new(),
            width: "1280".into(),
            height: "-1".into(),
            format: 0,
            codec: 0,
            field: Field::Path,
            matches: Vec::new(),
            error: None,
        }
    }
}

impl UploadForm {
    fn current(&mut self) -> Option<&mut String> {
        match self.field {
            Field::Path => Some(&mut self.path),
            Field::Width => Some(&mut self.width),
            Field::Height => Some(&mut self.height),
            Field::Format | Field::Codec => None,
        }
    }

    /// Types a character into the current field (sizes take digits and a
    /// leading minus only).
    pub fn type_char(&mut self, c: char) {
        let field = self.field;
        let Some(text) = self.current() else { return };
        let ok = match field {
            Field::Path => !c.is_control(),
            _ => c.is_ascii_digit() || (c == '-' && text.is_empty()),
        };
        if ok {
            text.push(c);
        }
        self.matches.clear();
        self.error = None;
    }

    pub fn backspace(&mut self) {
        if let Some(text) = self.current() {
            text.pop();
        }
        self.matches.clear();
    }

    pub fn clear_field(&mut self) {
        if let Some(text) = self.current() {
            text.clear();
        }
        self.matches.clear();
    }

    /// Moves to the next (`+1`) or previous (`-1`) field, wrapping.
    pub fn move_field(&mut self, delta: isize) {
        let at = FIELDS.iter().position(|f| *f == self.field).unwrap_or(0) as isize;
        let len = FIELDS.len() as isize;
        self.field = FIELDS[(at + delta).rem_euclid(len) as usize];
        self.matches.clear();
    }

    /// Cycles the format or the codec, whichever has the focus.
    pub fn cycle_format(&mut self, delta: isize) {
        let (choice, len) = match self.field {
            Field::Format => (&mut self.format, FORMATS.len()),
            Field::Codec => (&mut self.codec, CODECS.len()),
            _ => return,
        };
        *choice = (*choice as isize + delta).rem_euclid(len as isize) as usize;
        self.error = None;
    }

    /// The request, or why it is not ready.
    pub fn validate(&self) -> Result<UploadSpec, String> {
        let path = self.path.trim();
        if path.is_empty() {
            return Err("the file path is empty".into());
        }
        let size = |name: &str, text: &str| -> Result<i32, String> {
            match text.trim() {
                "" => Ok(0),
                number => number.parse::<i32>().map_err(|_| {
                    format!("{name} must be a whole number (0 or -1 keeps the aspect)")
                }),
            }
        };
        let spec = UploadSpec {
            path: path.to_owned(),
            width: size("width", &self.width)?,
            height: size("height", &self.height)?,
            format: FORMATS.get(self.format).copied().unwrap_or("mp4"),
            codec: match CODECS.get(self.codec).copied() {
                None | Some("auto") => "",
                Some(codec) => codec,
            },
        };
        // The node's own rules, before a byte is sent.
        vidshard_proto::params::RawParams {
            target_width: spec.width,
            target_height: spec.height,
            output_format: spec.format.into(),
            codec: spec.codec.into(),
            ..Default::default()
        }
        .validate()
        .map_err(|bad| bad.to_string())?;
        Ok(spec)
    }
}

/// The path prompt of `r` (retrieve the selected job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrompt {
    pub job_id: String,
    pub path: String,
    pub matches: Vec<String>,
    pub error: Option<String>,
}

/// One directory entry, as listed by the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// The result of a Tab press on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The new text of the field.
    pub text: String,
    /// Candidates to show when the prefix is ambiguous (dirs end in `/`).
    pub matches: Vec<String>,
}

/// Splits `dir/part` into the directory part (with its slash) and the
/// name being typed.
pub fn split(input: &str) -> (&str, &str) {
    match input.rfind('/') {
        Some(i) => input.split_at(i + 1),
        None => ("", input),
    }
}

/// The directory to list for completing `input` (`~/` is the home dir).
pub fn listing_dir(input: &str, home: Option<&str>) -> PathBuf {
    let (dir, _) = split(input);
    if dir.is_empty() {
        return PathBuf::from(".");
    }
    expand_home(dir, home)
}

/// Expands a leading `~/` with `home`, if known.
pub fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Completes `input` against the entries of its directory: one match is
/// completed whole (a directory gets its `/`), several extend to their
/// longest common prefix and are listed. Hidden entries only match a
/// prefix that starts with a dot.
pub fn complete(input: &str, entries: &[Entry]) -> Completion {
    let (dir, prefix) = split(input);
    let mut found: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.name.starts_with(prefix))
        .filter(|e| prefix.starts_with('.') || !e.name.starts_with('.'))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    match found.as_slice() {
        [] => Completion {
            text: input.to_owned(),
            matches: Vec::new(),
        },
        [one] => Completion {
            text: format!("{dir}{}{}", one.name, if one.is_dir { "/" } else { "" }),
            matches: Vec::new(),
        },
        many => {
            let common = many
                .iter()
                .map(|e| e.name.as_str())
                .reduce(common_prefix)
                .unwrap_or(prefix);
            Completion {
                text: format!("{dir}{common}"),
                matches: many
                    .iter()
                    .map(|e| format!("{}{}", e.name, if e.is_dir { "/" } else { "" }))
                    .collect(),
            }
        }
    }
}

/// The longest common prefix of two strings, on character boundaries.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| a.len().min(b.len()));
    &a[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[(&str, bool)]) -> Vec<Entry> {
        names
            .iter()
            .map(|(name, is_dir)| Entry {
                name: (*name).to_owned(),
                is_dir: *is_dir,
            })
            .collect()
    }

    #[test]
    fn completion_extends_a_unique_match_and_marks_dirs() {
        let list = entries(&[("clips", true), ("clip.mp4", false), (".hidden", false)]);
        let c = complete("videos/clips", &list);
        assert_eq!(c.text, "videos/clips/");
        assert!(c.matches.is_empty());
        let c = complete("clip.", &list);
        assert_eq!(c.text, "clip.mp4");
    }

    #[test]
    fn completion_lists_ambiguous_matches_after_the_common_prefix() {
        let list = entries(&[
            ("clip-a.mp4", false),
            ("clip-b.mp4", false),
            ("clips", true),
        ]);
        let c = complete("cl", &list);
        assert_eq!(c.text, "clip");
        assert_eq!(c.matches, vec!["clip-a.mp4", "clip-b.mp4", "clips/"]);
        let c = complete("clip-", &list);
        assert_eq!(c.text, "clip-");
        assert_eq!(c.matches.len(), 2);
    }

    #[test]
    fn completion_hides_dotfiles_and_keeps_unknown_input() {
        let list = entries(&[(".env", false), ("a", false)]);
        assert_eq!(complete("", &list).text, "a");
        assert_eq!(complete(".", &list).text, ".env");
        let none = complete("zzz", &list);
        assert_eq!(none.text, "zzz");
        assert!(none.matches.is_empty());
        let accents = entries(&[("été-1", false), ("été-2", false)]);
        assert_eq!(complete("é", &accents).text, "été-");
    }

    #[test]
    fn listing_dirs_expand_home() {
        assert_eq!(listing_dir("clip", None), PathBuf::from("."));
        assert_eq!(listing_dir("/tmp/cl", None), PathBuf::from("/tmp/"));
        assert_eq!(
            listing_dir("~/v/x", Some("/home/op")),
            PathBuf::from("/home/op/v/")
        );
        assert_eq!(expand_home("~/a.mp4", None), PathBuf::from("~/a.mp4"));
    }

    #[test]
    fn form_edits_and_validates() {
        let mut form = UploadForm::default();
        assert_eq!(form.validate(), Err("the file path is empty".into()));
        for c in "in.mp4".chars() {
            form.type_char(c);
        }
        form.move_field(1);
        form.clear_field();
        for c in "-7x2".chars() {
            form.type_char(c);
        }
        assert_eq!(form.width, "-72", "letters and late minus are refused");
        form.move_field(-3);
        assert_eq!(form.field, Field::Format, "fields wrap");
        form.cycle_format(1);
        let negative = form.validate().unwrap_err();
        assert!(negative.contains("width -72 is negative"), "{negative}");
        form.field = Field::Width;
        form.clear_field();
        for c in "72".chars() {
            form.type_char(c);
        }
        let spec = form.validate().expect("valid");
        assert_eq!((spec.width, spec.height, spec.format), (72, -1, "mkv"));
        form.field = Field::Height;
        form.clear_field();
        let source_height = form.validate().expect("an empty side keeps the aspect");
        assert_eq!(source_height.height, 0);
    }

    #[test]
    fn the_codec_is_chosen_and_checked_against_the_container() {
        let mut form = UploadForm {
            path: "in.mp4".into(),
            ..Default::default()
        };
        assert_eq!(
            form.validate().expect("valid").codec,
            "",
            "auto: the default"
        );
        form.field = Field::Codec;
        form.cycle_format(2);
        assert_eq!(form.validate().expect("valid").codec, "hevc");
        form.field = Field::Format;
        form.cycle_format(2);
        let refused = form.validate().expect_err("hevc in webm");
        assert!(refused.contains("hevc cannot go in webm"), "{refused}");
        form.field = Field::Codec;
        form.cycle_format(-3);
        assert_eq!(form.validate().expect("valid").codec, "vp9", "wraps");
    }
}
