//! Text we did not write, made fit for a message: a subprocess's stderr (sops, git, a
//! credential plugin), an apiserver's or a library's error text. It may hold a credential
//! (a hostile or confused `sops` can print a decrypted kubeconfig), terminal escapes, or
//! megabytes. [`untrusted`] reads a bounded prefix, removes escapes and control
//! characters, masks anything credential-shaped and keeps a few short lines.
//!
//! Decrypted content never goes through here: it is never quoted at all, only described
//! by where it is wrong ([`yaml_error`]).

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Lines and characters per line a message keeps.
pub const MAX_LINES: usize = 20;
pub const MAX_LINE_CHARS: usize = 200;
/// Only this much of the input is read, so a gigantic output costs bounded time.
const MAX_INPUT: usize = 64 * 1024;
/// What a masked value becomes.
pub const HIDDEN: &str = "[hidden]";

/// `text` bounded, printable and with credential-shaped parts replaced by [`HIDDEN`].
pub fn untrusted(text: &[u8]) -> String {
    let window = text.get(..MAX_INPUT).unwrap_or(text);
    let mut clean = printable(&String::from_utf8_lossy(window));
    if window.len() < text.len() {
        // The cut may have split a secret: drop its visible start too.
        let end = clean.trim_end_matches(|c: char| !c.is_whitespace()).len();
        clean.truncate(end);
    }
    bounded(&mask(&clean), window.len() < text.len())
}

/// [`untrusted`], indented by two spaces for a "sops said:" block; "  (nothing)" if empty.
pub fn block(text: &[u8]) -> String {
    let shown = untrusted(text);
    if shown.is_empty() {
        return "  (nothing)".into();
    }
    shown
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What is wrong with a YAML (or JSON) document, without quoting it: the library's own
/// text carries snippets and values (`invalid type: string "<the token>"`).
pub fn yaml_error(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach;
    let e = e.without_snippet();
    let what = match e {
        E::AliasError { error, .. } => return yaml_error(error),
        E::SerdeInvalidType { expected, .. } | E::SerdeInvalidValue { expected, .. } => {
            format!(
                "a value has the wrong type (expected {})",
                untrusted(expected.as_bytes())
            )
        }
        E::Unexpected { expected, .. } => {
            format!("a value has the wrong type (expected {expected})")
        }
        E::SerdeMissingField { field, .. } => format!("the required field `{field}` is missing"),
        E::DuplicateMappingKey { .. } => "a key appears twice in one mapping".into(),
        E::MultipleDocuments { .. } => "more than one YAML document".into(),
        E::Eof { .. } => "the document ends too early".into(),
        E::InvalidUtf8Input => "not UTF-8".into(),
        E::Budget {
            breach: BudgetBreach::Anchors { .. } | BudgetBreach::Aliases { .. },
            ..
        } => "a YAML anchor or alias (`&name`/`*name`), refused".into(),
        E::Budget { .. } => "the document is too large or too deeply nested".into(),
        E::UnknownAnchor { .. } => "an alias refers to an unknown anchor".into(),
        E::ExternalMessage { .. } => "not valid YAML (syntax error)".into(),
        _ => "not the expected structure".into(),
    };
    match e.location() {
        Some(at) if at.line() > 0 => {
            format!("line {}, column {}: {what}", at.line(), at.column())
        }
        _ => what,
    }
}

/// Removes terminal escape sequences and control characters (keeping newlines), and the
/// invisible Unicode characters that can reorder or hide text on a terminal.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\n' => out.push('\n'),
            '\t' => out.push(' '),
            c if c.is_control() || is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips what follows an ESC: a CSI sequence up to its final byte, an OSC/DCS/APC/PM
/// string up to BEL or ST, or a single character.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars>) {
    match chars.next() {
        Some('[') => {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                    break;
                }
            }
        }
        _ => {}
    }
}

pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

// The patterns below are constants (`expect` cannot fail on any input) and every one is
// exercised by the unit tests.

/// Words that make the value after them (`word: value`, `word=value`) a credential.
const SECRET_WORDS: &str = r"token|secret|password|passwd|credentials?|key-data|certificate-data|api[-_]?key|private[-_]?key|authorization|cookie";

#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static BLOCK_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)^(\s*)(?:- )?["']?[\w.-]*(?:{SECRET_WORDS})["']?\s*:\s*[|>][-+0-9]*\s*$"#
    ))
    .expect("valid regex")
});
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static PEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN [A-Z0-9 ]{0,64}-----.*?(?:-----END [A-Z0-9 ]{0,64}-----|\z)")
        .expect("valid regex")
});
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)([\w.-]*(?:{SECRET_WORDS})\\?["']?\s*[:=]\s*)("[^"\n]*"?|'[^'\n]*'?|[^\s,;}}\]][^,;}}\]\n]*)"#
    ))
    .expect("valid regex")
});
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static SCHEME_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer|basic)\s+[^\s,;}\]]+").expect("valid regex"));
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static URL_USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"//[^/\s@:]+:[^/\s@]+@").expect("valid regex"));
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static AGE_SECRET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"AGE-SECRET-KEY-1[0-9A-Z]+").expect("valid regex"));
/// A JWT, also folded over lines (the parts after a line break are hidden with it).
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"eyJ[A-Za-z0-9_-]+(?:(?:\.|\\?\r?\n[ \t]*)[A-Za-z0-9_-]*)*").expect("valid regex")
});
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_=-]{20,}").expect("valid regex"));

fn mask(text: &str) -> String {
    let text = mask_block_values(text);
    let text = PEM.replace_all(&text, "[PEM block hidden]");
    let text = AGE_SECRET.replace_all(&text, HIDDEN);
    // Before key: value, which would leave a folded token's later lines behind.
    let text = JWT.replace_all(&text, HIDDEN);
    let text = KEY_VALUE.replace_all(&text, |c: &Captures| format!("{}{HIDDEN}", &c[1]));
    let text = SCHEME_VALUE.replace_all(&text, |c: &Captures| format!("{} {HIDDEN}", &c[1]));
    let text = URL_USERINFO.replace_all(&text, "//[hidden]@");
    RUN.replace_all(&text, |c: &Captures| mask_run(&c[0]))
        .into_owned()
}

/// `token: |` (or `>`) followed by more-indented lines: the lines are the value.
fn mask_block_values(text: &str) -> String {
    let mut out = Vec::new();
    let mut hiding: Option<usize> = None;
    for line in text.split('\n') {
        let indent = line.len() - line.trim_start().len();
        if let Some(key_indent) = hiding {
            if line.trim().is_empty() || indent > key_indent {
                continue;
            }
            hiding = None;
        }
        if let Some(c) = BLOCK_KEY.captures(line) {
            hiding = Some(c.get(1).map_or(0, |m| m.len()));
            out.push(format!("{}{HIDDEN}", line.trim_end()));
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n")
}

/// A run of base64/base64url characters is hidden when it looks random: long, with
/// letters and digits. A path (`/a/b`) is judged segment by segment, so a temp dir's
/// name stays readable but a key in it does not.
fn mask_run(run: &str) -> String {
    if run.starts_with('/') || run.starts_with("./") {
        return run
            .split('/')
            .map(|seg| if looks_random(seg, 32) { HIDDEN } else { seg })
            .collect::<Vec<_>>()
            .join("/");
    }
    if looks_random(run, 20) {
        HIDDEN.to_string()
    } else {
        run.to_string()
    }
}

fn looks_random(s: &str, min: usize) -> bool {
    let has = |f: fn(&char) -> bool| s.chars().any(|c| f(&c));
    let (upper, lower, digit) = (
        has(char::is_ascii_uppercase),
        has(char::is_ascii_lowercase),
        has(char::is_ascii_digit),
    );
    let hex = s.chars().all(|c| c.is_ascii_hexdigit());
    // age recipients are public keys, and errors that name them are more useful.
    let public = s.starts_with("age1") && !upper;
    s.len() >= min
        && !public
        && ((upper && lower && digit) || (s.len() >= 40 && (upper || lower) && digit && !hex))
}

/// At most [`MAX_LINES`] non-blank lines of at most [`MAX_LINE_CHARS`] characters, with a
/// note when something was left out.
fn bounded(text: &str, cut: bool) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut out: Vec<String> = lines
        .iter()
        .take(MAX_LINES)
        .map(|l| match l.char_indices().nth(MAX_LINE_CHARS) {
            Some((end, _)) => format!("{}…", &l[..end]),
            None => l.to_string(),
        })
        .collect();
    let left = lines.len().saturating_sub(MAX_LINES);
    if left > 0 || cut {
        out.push(match cut {
            true => "… (output cut: it was too long)".to_string(),
            false => format!("… ({left} more line(s) not shown)"),
        });
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "Zk9vQmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZg";

    fn hides(input: &str) {
        let shown = untrusted(input.as_bytes());
        assert!(!shown.contains(SECRET), "{input:?} -> {shown:?}");
        assert!(!shown.contains("KDCcanary"), "{input:?} -> {shown:?}");
    }

    #[test]
    fn credential_shapes_are_hidden() {
        let jwt =
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJLRENjYW5hcnkifQ.KDCcanary-signature-without-digits";
        for input in [
            format!("token: {SECRET}"),
            "token: KDCcanary-short".to_string(),
            "users: [{name: a, user: {token: KDCcanary-x}}]".to_string(),
            r#"{"status":{"token":"KDCcanary-1"}}"#.to_string(),
            r#"{\"token\":\"KDCcanary-2\"}"#.to_string(),
            "    client-key-data: KDCcanary3\n".to_string(),
            "password=KDCcanary pass".to_string(),
            "Authorization: Bearer KDCcanary".to_string(),
            "curl -H 'Authorization: Bearer KDCcanary'".to_string(),
            "https://user:KDCcanary@host/x".to_string(),
            format!("here is {jwt} ok"),
            format!("bare {SECRET} run"),
            "token: |\n  KDCcanary-a\n  KDCcanary-b\nnext: 1".to_string(),
            "- token: >-\n    KDCcanary\n".to_string(),
            "-----BEGIN RSA PRIVATE KEY-----\nKDCcanary\n-----END RSA PRIVATE KEY-----".to_string(),
            "-----BEGIN EC PRIVATE KEY-----\nKDCcanary (cut)".to_string(),
            "AGE-SECRET-KEY-1QQQQKDCCANARY".to_string(),
            format!("\u{1b}[31mtoken\u{1b}[0m: {SECRET}"),
            format!("error: {}\n{}\n", &jwt[..30], &jwt[30..]),
            format!("token: {}\n  {}\nnext", &jwt[..45], &jwt[45..]),
            format!("t={}\\\n.KDCcanary-no-digits-here\n", &jwt[..45]),
        ] {
            hides(&input);
        }
        assert!(!untrusted(b"AGE-SECRET-KEY-1QQQQKDCCANARYZZ").contains("QQQQ"));
    }

    #[test]
    fn ordinary_error_text_stays_readable() {
        for keep in [
            "Failed to get the data key required to decrypt the SOPS file.",
            "error: open /tmp/kube-dc-test-Ab12Cd/fleet/clusters/alpha/x.yaml: permission denied",
            "no identity matched any of the recipients age1lzrr8t3qcgaq85uypap65mkrfepxm76985e9s26dh2d9fejse92sscaswp",
            "commit 0123456789abcdef0123456789abcdef01234567 rejected",
            "dial tcp 127.0.0.1:6443: connect: connection refused",
        ] {
            assert_eq!(untrusted(keep.as_bytes()), keep);
        }
    }

    #[test]
    fn escapes_and_controls_are_removed() {
        let shown = untrusted(b"\x1b[2J\x1b]0;title\x07red\x1b[0m\r\x07 \xe2\x80\xaeevil\x00");
        assert_eq!(shown, "red evil");
    }

    #[test]
    fn output_is_bounded() {
        let many = "line\n".repeat(100);
        let shown = untrusted(many.as_bytes());
        assert_eq!(shown.lines().count(), MAX_LINES + 1);
        assert!(shown.ends_with("(80 more line(s) not shown)"), "{shown}");
        let long = "x ".repeat(1000);
        assert!(untrusted(long.as_bytes()).chars().count() <= MAX_LINE_CHARS + 1);
        let huge = format!("{}{SECRET}", "a ".repeat(MAX_INPUT / 2 - 5));
        let shown = untrusted(huge.as_bytes());
        assert!(shown.ends_with("(output cut: it was too long)"), "{shown}");
        assert!(
            !shown.contains("Zk9v"),
            "a secret cut in half is still hidden"
        );
        assert_eq!(block(b" \n"), "  (nothing)");
        assert_eq!(block(b"a\nb"), "  a\n  b");
    }

    #[test]
    fn yaml_errors_say_where_not_what() {
        let yaml =
            "users:\n- name: u\n  user:\n    token: KDCcanary-secret\n    username: [oops]\n";
        let err = serde_saphyr::from_str::<kube::config::Kubeconfig>(yaml).unwrap_err();
        let said = yaml_error(&err);
        assert!(said.starts_with("line 5, column "), "{said}");
        assert!(said.contains("wrong type"), "{said}");
        assert!(!said.contains("KDCcanary"), "{said}");
        let err = serde_saphyr::from_str::<serde_json::Value>("a: 'KDCcanary\n").unwrap_err();
        assert!(!yaml_error(&err).contains("KDCcanary"));
    }

    proptest! {
        #[test]
        fn any_input_is_bounded_and_printable(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let shown = untrusted(&bytes);
            prop_assert!(shown.lines().count() <= MAX_LINES + 1);
            prop_assert!(shown.lines().all(|l| l.chars().count() <= MAX_LINE_CHARS + 1));
            prop_assert!(!shown.chars().any(|c| c.is_control() && c != '\n'));
        }

        #[test]
        fn a_keyed_secret_never_shows(
            key in "(token|password|client-key-data|id-token|refresh_token|clientSecret)",
            secret in "[A-Za-z0-9+/]{8,40}",
            sep in "(: |:|=|\": \"| = )",
            before in "[ -~\n]{0,40}",
        ) {
            let secret = format!("KDC{secret}");
            let text = format!("{before}\n{key}{sep}{secret}\n");
            prop_assert!(!untrusted(text.as_bytes()).contains(&secret));
        }
    }
}
