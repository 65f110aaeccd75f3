//! Service-account JWTs in a file's bytes, also when folded across lines (a YAML folded
//! scalar, a token wrapped by an editor or with shell `\` continuations).

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regex::bytes::Regex;

/// A literal search: the regex engine runs it as a vectorised substring search. A constant
/// pattern: `expect` cannot fail on any input.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the unit tests"
)]
static PREFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new("eyJ").expect("valid regex"));

/// A token found: its 1-based line and the token itself, to be shown abbreviated.
pub struct Hit {
    pub line: usize,
    pub token: String,
}

/// Every service-account JWT in `bytes`, as written or with its line breaks removed.
pub fn find(bytes: &[u8]) -> Vec<Hit> {
    if !PREFIX.is_match(bytes) {
        return Vec::new();
    }
    let mut hits = find_unfolded(bytes, &[]);
    if let Some((joined, joins)) = unfold(bytes) {
        for hit in find_unfolded(&joined, &joins) {
            if !hits.iter().any(|h| h.line == hit.line) {
                hits.push(hit);
            }
        }
    }
    hits
}

/// JWTs in `bytes`; `joins` are offsets where line breaks were removed (for line numbers).
fn find_unfolded(bytes: &[u8], joins: &[usize]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut at = 0;
    while let Some(hit) = PREFIX.find_at(bytes, at) {
        let start = hit.start();
        let rest = bytes.get(start..).unwrap_or_default();
        let len = rest.iter().take_while(|b| is_jwt_byte(**b)).count();
        let candidate = rest.get(..len).unwrap_or_default();
        if is_service_account_jwt(candidate) {
            let removed = joins.partition_point(|j| *j <= start);
            hits.push(Hit {
                line: line_of_offset(bytes, start) + removed,
                token: String::from_utf8_lossy(candidate).into_owned(),
            });
        }
        at = start + len.max(1);
    }
    hits
}

/// `bytes` with each line break removed where a line ending in JWT characters (or in
/// `\` after them) is followed by a line of only JWT characters after its indentation;
/// `None` when there is no such place. Also returns the offsets of the removed breaks.
fn unfold(bytes: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut joins = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let body = line.trim_ascii_start();
        let pure = body.strip_suffix(b"\\").unwrap_or(body);
        let continues = !pure.is_empty() && pure.iter().all(|b| is_jwt_byte(*b));
        if i > 0 && continues && ends_in_jwt(&mut out) {
            joins.push(out.len());
            out.extend_from_slice(body);
        } else {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(line);
        }
    }
    (!joins.is_empty()).then_some((out, joins))
}

/// Whether the text so far ends in a JWT character, dropping a trailing `\` after one.
fn ends_in_jwt(out: &mut Vec<u8>) -> bool {
    match out.as_slice() {
        [.., b, b'\\'] if is_jwt_byte(*b) => {
            out.pop();
            true
        }
        [.., b] => is_jwt_byte(*b),
        [] => false,
    }
}

fn is_jwt_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// Three base64url segments whose header names an algorithm and whose claims name a
/// Kubernetes service account (legacy Secret tokens and bound tokens both do).
fn is_service_account_jwt(candidate: &[u8]) -> bool {
    let mut parts = candidate.split(|b| *b == b'.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let decode = |part: &[u8]| URL_SAFE_NO_PAD.decode(part).ok();
    !signature.is_empty()
        && decode(header).is_some_and(|h| contains(&h, b"\"alg\""))
        && decode(claims)
            .is_some_and(|c| contains(&c, b"serviceaccount") || contains(&c, b"kubernetes.io"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    let before = bytes.get(..offset).unwrap_or(bytes);
    before.iter().filter(|b| **b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::super::tests::sa_jwt;
    use super::*;

    fn lines(text: &str) -> Vec<usize> {
        find(text.as_bytes()).iter().map(|h| h.line).collect()
    }

    #[test]
    fn folded_tokens_are_found_on_their_first_line() {
        let jwt = sa_jwt();
        let (a, rest) = jwt.split_at(30);
        let (b, c) = rest.split_at(70);
        for (text, line) in [
            (format!("x\ntoken: {jwt}\n"), 2),
            (
                format!("a: 1\ntoken: >-\n  {a}\n  {b}\n  {c}\nnext: 2\n"),
                3,
            ),
            (format!("one\r\ntwo\r\nexport T={a}\\\n{b}\\\n{c}\n"), 3),
            (format!("t: {a}\n{b}{c}\n"), 1),
        ] {
            assert_eq!(lines(&text), vec![line], "{text}");
        }
    }

    #[test]
    fn a_whole_token_next_to_jwt_like_lines_is_still_found() {
        let jwt = sa_jwt();
        assert_eq!(lines(&format!("eyJhead\n{jwt}\nabc\n")), vec![2]);
        assert_eq!(lines(&format!("{jwt}\n{jwt}\n")), vec![1, 2]);
    }

    #[test]
    fn non_tokens_are_not_found() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let oidc = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"iss":"https://idp"}"#)
        );
        assert!(lines(&format!("id: {oidc}\neyJ and eyJx.y\n")).is_empty());
        assert!(lines("eyJ\neyJ\neyJ\n").is_empty());
    }
}
