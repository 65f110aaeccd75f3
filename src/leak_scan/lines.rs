//! Where in a file's text a finding is: lines of keys and values, and the findings
//! that carry them (with credentials redacted).

use std::collections::HashMap;

use super::{Finding, RuleId, jwt};
use crate::credentials::{self, CREDENTIAL_KEYS};
use crate::shell::quote;
/// Rule 3's service-account tokens in `bytes`, each reported as `what`.
pub(super) fn jwt_findings(rel: &str, bytes: &[u8], what: &str) -> Vec<Finding> {
    jwt::find(bytes)
        .into_iter()
        .map(|hit| Finding {
            path: rel.to_string(),
            line: hit.line,
            rule: RuleId::ServiceAccountJwt,
            message: format!("{what}: {}", redact(&hit.token)),
            fix: jwt_fix(rel),
        })
        .collect()
}

pub(super) fn jwt_fix(rel: &str) -> String {
    format!(
        "git rm --cached -- {}, remove the token, and rotate it if it was ever pushed",
        quote(rel)
    )
}

pub(super) fn kubeconfig_finding(rel: &str, line: usize, message: String) -> Finding {
    Finding {
        path: rel.to_string(),
        line,
        rule: RuleId::PlaintextKubeconfig,
        message,
        fix: format!(
            "git rm --cached -- {}; keep kubeconfigs out of Git or sops-encrypt them, and rotate credentials that were pushed",
            quote(rel)
        ),
    }
}

/// A token shown to a person: a prefix and the length, never the whole value.
pub fn redact(token: &str) -> String {
    let prefix: String = token.chars().take(8).collect();
    format!("{prefix}…({} chars)", token.chars().count())
}

pub(super) fn line_where(text: &str, pred: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines().position(pred).map(|i| i + 1)
}

/// Pairs each credential path (`users[0].user.token`) with the line of its key: the n-th
/// clear `token:` line for the n-th clear token. Line 1 when the YAML is flow-style.
/// Each key's lines are found in one pass over the text, however many paths share it.
pub(super) fn located(text: &str, paths: &[String]) -> Vec<(usize, String)> {
    let mut lines: HashMap<&str, std::vec::IntoIter<usize>> = HashMap::new();
    paths
        .iter()
        .map(|path| {
            let leaf = leaf_key(path);
            let next = lines
                .entry(leaf)
                .or_insert_with(|| clear_key_lines(text, leaf).collect::<Vec<_>>().into_iter())
                .next();
            (next.unwrap_or(1), path.clone())
        })
        .collect()
}

fn leaf_key(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// Lines (1-based) holding `key: <value that is not ENC[...]>`.
fn clear_key_lines<'t>(text: &'t str, key: &'t str) -> impl Iterator<Item = usize> + 't {
    text.lines().enumerate().filter_map(move |(i, line)| {
        let value = key_value(line, key)?;
        (!value.is_empty() && !credentials::is_encrypted_value(value)).then_some(i + 1)
    })
}

/// The value of `key` on a `key: value` (or `- key: value`, `"key": value`) line.
pub(super) fn key_value<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let rest = line.trim_start().trim_start_matches("- ").trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let rest = rest.strip_prefix(key)?;
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let value = rest.strip_prefix(':')?.trim();
    Some(value.trim_matches(|c| c == '"' || c == '\'' || c == ','))
}

/// For text that is not YAML: credential keys whose value looks like real key material
/// (long, no spaces, base64 alphabet), so placeholders like `<token>` are not reported.
pub(super) fn secret_looking_lines(text: &str) -> Vec<(usize, &'static str)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            CREDENTIAL_KEYS
                .iter()
                .find(|key| key_value(line, key).is_some_and(looks_like_secret))
                .map(|key| (i + 1, *key))
        })
        .collect()
}

fn looks_like_secret(value: &str) -> bool {
    value.len() >= 16
        && !credentials::is_encrypted_value(value)
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'.')
        })
}
