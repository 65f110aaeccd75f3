//! The grammar of cluster names: paths below `clusters/` that can never leave it.
//!
//! The Go kube-dc tool takes any name and joins it under `clusters/`; fleets it manages
//! use names like `Prod`, `my_cluster` and `region/dc/c1`. We accept every such name that
//! stays below `clusters/` and that a shell, a glob and a Markdown table can carry as it
//! is: 1 to [`MAX_DEPTH`] `/`-separated segments of the POSIX portable filename characters
//! (`A-Z a-z 0-9 . _ -`), none `.` or `..`, none starting with `-` (it would read as an
//! option in the commands we print), none longer than a file name can be.

use std::fmt;

use crate::error::{Error, Result};

/// Levels below `clusters/`: `region/dc/c1` and one more. Bounded so that listing the
/// clusters of a fleet walks a bounded tree.
pub const MAX_DEPTH: usize = 4;
/// A directory name longer than this cannot exist (Linux `NAME_MAX`).
const MAX_SEGMENT: usize = 255;

/// A validated cluster name (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(name: &str) -> Result<ClusterName> {
        check(name).map_err(|why| {
            Error::usage(format!("invalid cluster name {name:?}: {why}")).with_hint(format!(
                "cluster names are directories under clusters/, like `alpha`, `Prod`, `my_cluster` or `region/dc/c1`: 1 to {MAX_DEPTH} segments of letters, digits, `_`, `-` and `.`"
            ))
        })?;
        Ok(ClusterName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `segment` could be one level of a cluster name (used when walking `clusters/`).
pub fn is_segment(segment: &str) -> bool {
    check_segment(segment).is_ok()
}

/// Why `name` is not a cluster name, checked in the order a reader would notice.
fn check(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "it contains the control character U+{:04X}",
            c as u32
        ));
    }
    if name.starts_with('/') {
        return Err("it is an absolute path".into());
    }
    let segments: Vec<&str> = name.split('/').collect();
    for segment in &segments {
        check_segment(segment)?;
    }
    if segments.len() > MAX_DEPTH {
        return Err(format!("more than {MAX_DEPTH} levels"));
    }
    Ok(())
}

fn check_segment(segment: &str) -> std::result::Result<(), String> {
    if segment.is_empty() {
        return Err("it has an empty segment".into());
    }
    if segment == "." || segment == ".." {
        return Err("`.` and `..` are not allowed".into());
    }
    if let Some(c) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{c:?} is not allowed (only letters, digits, `_`, `-` and `.`)"
        ));
    }
    if segment.starts_with('-') {
        return Err(format!("segment {segment:?} starts with `-`"));
    }
    if segment.len() > MAX_SEGMENT {
        return Err(format!("a segment is longer than {MAX_SEGMENT} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(name: &str) -> String {
        ClusterName::parse(name)
            .err()
            .unwrap_or_else(|| panic!("{name:?} was accepted"))
            .to_string()
    }

    #[test]
    fn names_the_go_tool_fleets_use_are_accepted() {
        for ok in [
            "alpha",
            "eu/dc1",
            "a.b-c",
            "x1",
            "Prod",
            "my_cluster",
            "region/dc/c1",
            "EU/Dc_1/c-1.x",
            "a/b/c/d",
            ".hidden",
            "a..b",
            "_",
            "c-",
        ] {
            assert_eq!(
                ClusterName::parse(ok).map(|n| n.0).ok(),
                Some(ok.into()),
                "{ok}"
            );
        }
        assert!(ClusterName::parse(&"a".repeat(MAX_SEGMENT)).is_ok());
    }

    #[test]
    fn names_that_could_escape_clusters_are_refused() {
        for (bad, why) in [
            ("", "empty"),
            ("..", "`.` and `..`"),
            ("../x", "`.` and `..`"),
            ("a/..", "`.` and `..`"),
            ("a/../../b", "`.` and `..`"),
            ("./a", "`.` and `..`"),
            (".", "`.` and `..`"),
            ("/etc", "absolute"),
            ("/", "absolute"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("a\\..\\b", "'\\\\' is not allowed"),
        ] {
            let err = refusal(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn control_characters_and_unportable_names_are_refused() {
        for (bad, why) in [
            ("alpha\n", "control character U+000A"),
            ("al\u{1b}[31mpha", "control character U+001B"),
            ("a\u{0}b", "control character U+0000"),
            ("a\u{85}b", "control character U+0085"),
            ("a b", "' ' is not allowed"),
            ("a*", "'*' is not allowed"),
            ("eu/dc?", "'?' is not allowed"),
            ("a:b", "':' is not allowed"),
            ("a|b", "'|' is not allowed"),
            ("prod$x", "'$' is not allowed"),
            ("caf\u{e9}", "'é' is not allowed"),
            ("-rf", "starts with `-`"),
            ("eu/-x", "starts with `-`"),
            ("a/b/c/d/e", "more than 4 levels"),
        ] {
            let err = refusal(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let long = "a".repeat(MAX_SEGMENT + 1);
        assert!(refusal(&long).contains("longer than 255"));
    }

    #[test]
    fn refusals_say_what_names_look_like() {
        let err = ClusterName::parse("a b").unwrap_err();
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("region/dc/c1"), "{hint}");
    }
}
