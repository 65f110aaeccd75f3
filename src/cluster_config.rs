//! `clusters/<name>/cluster-config.env`: the shell-variable file each cluster carries.
//!
//! Fleets `source` this file from shell scripts, so we read it the way a POSIX shell
//! assigns variables: `export` prefixes, single and double quotes, backslash escapes,
//! ` # comments` after a value, CRLF endings, last assignment wins. We do not expand
//! `$VAR` or run commands: values are taken literally, which is what the tool needs
//! (URLs, context names) and keeps reading the file free of side effects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::{Namespace, ServerUrl};
use crate::safe_fs;

pub const FILE_NAME: &str = "cluster-config.env";
/// The apiserver URL to embed in break-glass kubeconfigs.
pub const EXTERNAL_URL_KEY: &str = "KUBE_API_EXTERNAL_URL";
/// The namespace of the break-glass objects (default kube-system).
pub const NAMESPACE_KEY: &str = "BREAK_GLASS_NAMESPACE";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    values: BTreeMap<String, String>,
}

impl ClusterConfig {
    /// Reads `rel` below the fleet root `root` (no link followed, bounded: see `safe_fs`).
    pub fn load(root: &Path, rel: &Path) -> Result<Self> {
        let bytes = safe_fs::read_beneath(root, rel, safe_fs::CLUSTER_CONFIG)
            .map_err(safe_fs::FileError::usage)?;
        let path = root.join(rel);
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::usage(format!("{}: not UTF-8 text", path.display())))?;
        Self::parse(&text, &path)
    }

    /// Parses `text`; `path` only names the file in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let at = Location {
                path: path.to_path_buf(),
                line: index + 1,
            };
            if let Some((key, value)) = parse_line(line).map_err(|msg| at.error(msg))? {
                check_value(&key, &value).map_err(|msg| at.error(msg))?;
                values.insert(key, value);
            }
        }
        Ok(ClusterConfig { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `KUBE_API_EXTERNAL_URL`, checked when the file was read.
    pub fn external_url(&self) -> Option<ServerUrl> {
        ServerUrl::parse(self.get(EXTERNAL_URL_KEY)?).ok()
    }

    /// `BREAK_GLASS_NAMESPACE`, checked when the file was read.
    pub fn namespace(&self) -> Option<Namespace> {
        Namespace::parse(self.get(NAMESPACE_KEY)?).ok()
    }
}

/// No value carries control characters (they would reach terminals, paths and API
/// calls), and the values with a known syntax have it.
fn check_value(key: &str, value: &str) -> std::result::Result<(), String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the value of {key} contains the control character U+{:04X}; remove it",
            u32::from(c)
        ));
    }
    let shown = || crate::input::quoted(value);
    let checked = match key {
        _ if value.is_empty() => Ok(()),
        EXTERNAL_URL_KEY => ServerUrl::parse(value).map(|_| ()),
        NAMESPACE_KEY => Namespace::parse(value).map(|_| ()),
        _ => Ok(()),
    };
    checked.map_err(|why| format!("{key}={} is refused: {why}", shown()))
}

struct Location {
    path: PathBuf,
    line: usize,
}

impl Location {
    fn error(&self, msg: String) -> Error {
        Error::usage(format!("{}:{}: {msg}", self.path.display(), self.line))
    }
}

/// One line: `None` for blanks and comments, `Some((key, value))` for an assignment.
fn parse_line(line: &str) -> std::result::Result<Option<(String, String)>, String> {
    let rest = line.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    let rest = strip_export(rest);
    let eq = rest
        .find('=')
        .ok_or_else(|| format!("expected KEY=VALUE, found {rest:?}"))?;
    let key = &rest[..eq];
    if !is_valid_key(key) {
        return Err(format!(
            "invalid variable name {key:?} (letters, digits and _, not starting with a digit; no spaces around =)"
        ));
    }
    let value = parse_value(&rest[eq + 1..])?;
    Ok(Some((key.to_string(), value)))
}

fn strip_export(s: &str) -> &str {
    match s.strip_prefix("export") {
        Some(after) if after.starts_with([' ', '\t']) => after.trim_start(),
        _ => s,
    }
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The value runs to the first unquoted blank; after it only a `# comment` may follow.
fn parse_value(s: &str) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => return trailing(chars.as_str()).map(|()| out),
            '\'' => read_single_quoted(&mut chars, &mut out)?,
            '"' => read_double_quoted(&mut chars, &mut out)?,
            '\\' => match chars.next() {
                Some(escaped) => out.push(escaped),
                None => {
                    return Err(
                        "line ends with a backslash (continuation lines are not supported)".into(),
                    );
                }
            },
            _ => out.push(c),
        }
    }
    Ok(out)
}

fn trailing(rest: &str) -> std::result::Result<(), String> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err(format!(
            "unexpected text after the value: {rest:?} (quote values that contain spaces)"
        ))
    }
}

fn read_single_quoted(
    chars: &mut std::str::Chars<'_>,
    out: &mut String,
) -> std::result::Result<(), String> {
    for c in chars.by_ref() {
        if c == '\'' {
            return Ok(());
        }
        out.push(c);
    }
    Err("unterminated single quote".into())
}

fn read_double_quoted(
    chars: &mut std::str::Chars<'_>,
    out: &mut String,
) -> std::result::Result<(), String> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(()),
            // Inside double quotes a backslash escapes only these, as in sh.
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            _ => out.push(c),
        }
    }
    Err("unterminated double quote".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ClusterConfig {
        ClusterConfig::parse(text, Path::new("c/cluster-config.env")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        ClusterConfig::parse(text, Path::new("c/cluster-config.env"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn plain_export_and_quotes() {
        let c = parse(
            "# header\n\nA=1\nexport B=two\nexport\tC='three # not a comment'\nD=\"four \\\"q\\\" $x\"\n",
        );
        assert_eq!(c.get("A"), Some("1"));
        assert_eq!(c.get("B"), Some("two"));
        assert_eq!(c.get("C"), Some("three # not a comment"));
        assert_eq!(c.get("D"), Some("four \"q\" $x"));
    }

    #[test]
    fn inline_comment_after_unquoted_value() {
        let c = parse("URL=https://k.example:6443   # external\nHASH=a#b\n");
        assert_eq!(c.get("URL"), Some("https://k.example:6443"));
        assert_eq!(
            c.get("HASH"),
            Some("a#b"),
            "# inside a word is not a comment in sh"
        );
    }

    #[test]
    fn duplicate_keys_last_wins_and_crlf() {
        let c = parse("URL=https://old\r\nURL=https://new\r\n");
        assert_eq!(c.get("URL"), Some("https://new"));
    }

    #[test]
    fn empty_value_reads_as_absent() {
        let c = parse("export URL=\nEMPTY=''\n");
        assert_eq!(c.get("URL"), None);
        assert_eq!(c.get("EMPTY"), None);
    }

    #[test]
    fn concatenated_quoting_and_escapes() {
        let c = parse("V=a'b c'\"d\"\\ e\n");
        assert_eq!(c.get("V"), Some("ab cd e"));
    }

    #[test]
    fn variable_named_export_is_a_plain_assignment() {
        let c = parse("export=1\nexported=2\n");
        assert_eq!(c.get("export"), Some("1"));
        assert_eq!(c.get("exported"), Some("2"));
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        assert_eq!(
            parse_err("A=1\nB = 2\n"),
            "c/cluster-config.env:2: invalid variable name \"B \" (letters, digits and _, not starting with a digit; no spaces around =)"
        );
        assert!(
            parse_err("A=1\n\njust words\n")
                .starts_with("c/cluster-config.env:3: expected KEY=VALUE")
        );
        assert!(parse_err("A='open\n").contains(":1: unterminated single quote"));
        assert!(parse_err("A=\"open\n").contains(":1: unterminated double quote"));
        assert!(parse_err("A=two words\n").contains(":1: unexpected text after the value"));
        assert!(parse_err("1A=x\n").contains(":1: invalid variable name"));
    }

    #[test]
    fn control_characters_and_typed_values_are_refused() {
        assert!(parse_err("A=1\nB=\"x\u{1b}[2Jy\"\n").starts_with(
            "c/cluster-config.env:2: the value of B contains the control character U+001B"
        ));
        assert!(parse_err("A='a\rb'\n").contains(":1: the value of A contains"));
        let url = parse_err("KUBE_API_EXTERNAL_URL=http://k:6443\n");
        assert!(
            url.contains(
                ":1: KUBE_API_EXTERNAL_URL=\"http://k:6443\" is refused: it is plain http"
            ),
            "{url}"
        );
        let ns = parse_err("\nBREAK_GLASS_NAMESPACE=../x\n");
        assert!(
            ns.contains(":2: BREAK_GLASS_NAMESPACE=\"../x\" is refused"),
            "{ns}"
        );
        let c = parse("KUBE_API_EXTERNAL_URL=https://k:6443/\nBREAK_GLASS_NAMESPACE=ops\n");
        assert_eq!(c.external_url().unwrap().as_str(), "https://k:6443");
        assert_eq!(c.namespace().unwrap().as_str(), "ops");
    }

    /// A line a shell would read as `KEY=value`, for the round trip below.
    fn single_quoted(value: &str) -> String {
        format!("'{}'", value.replace('\'', "'\\''"))
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(text in "\\PC{0,200}|[A-Z_=#'\" \\\\\t\r\n$a-z]{0,200}") {
            let _ = ClusterConfig::parse(&text, Path::new("f"));
        }

        #[test]
        fn quoted_values_round_trip(key in "[A-Z_][A-Z0-9_]{0,10}", value in "[^\\p{C}]{1,40}") {
            let text = format!("export {key}={}  # comment\n", single_quoted(&value));
            let config = ClusterConfig::parse(&text, Path::new("f"));
            // Keys with a syntax of their own may refuse the value; every other one keeps it.
            if key != EXTERNAL_URL_KEY && key != NAMESPACE_KEY {
                let config = config.map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                proptest::prop_assert_eq!(config.get(&key), Some(value.as_str()));
            }
        }
    }
}
