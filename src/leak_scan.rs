//! The rules that keep plaintext break-glass credentials out of Git, as pure functions of
//! a path and its bytes: no Git, no sops, no key. `breakglass::check` feeds them the staged
//! blobs or work-tree files.
//!
//! Cost model: most files in a commit are unrelated to clusters, so [`classify`] decides
//! from the path alone, and [`Scanner::other`] only parses a file when a byte search finds
//! a JWT prefix, or `kind: Config` or `kind: Secret` (block or flow style, JSON) in it.

mod jwt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;
use regex::bytes::Regex as BytesRegex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::credentials::{self, CREDENTIAL_KEYS};
use crate::fleet::{BREAK_GLASS_FILE, CLUSTERS_DIR, ClusterName};
use crate::sops_config::SopsConfig;
use crate::sops_file::SopsMetadata;

/// What a finding breaks; the numbers are the rules of the pre-commit check (docs/pre-commit.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleId {
    /// 1: a break-glass file without complete sops metadata.
    NotEncrypted,
    /// 1: a credential value in a break-glass file that is not `ENC[...]`.
    ClearCredential,
    /// 2: recipients differ from the `.sops.yaml` rule for the path (or no rule matches).
    WrongRecipients,
    /// 3: a `kind: Config` document with a credential in clear.
    PlaintextKubeconfig,
    /// 3: a bare service-account token.
    ServiceAccountJwt,
    /// 3: a `kubeconfig-*.yaml` written by `break-glass use`.
    DecryptedKubeconfig,
    /// 3: a temp file left by an interrupted encryption (ours or the Go tool's).
    LeftoverTempFile,
    /// 4: a break-glass file outside a cluster directory, or misnamed.
    MisplacedBreakGlass,
}

impl RuleId {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::NotEncrypted => "not-encrypted",
            RuleId::ClearCredential => "clear-credential",
            RuleId::WrongRecipients => "wrong-recipients",
            RuleId::PlaintextKubeconfig => "plaintext-kubeconfig",
            RuleId::ServiceAccountJwt => "service-account-jwt",
            RuleId::DecryptedKubeconfig => "decrypted-kubeconfig",
            RuleId::LeftoverTempFile => "leftover-temp-file",
            RuleId::MisplacedBreakGlass => "misplaced-break-glass",
        }
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Relative to the fleet root, `/`-separated.
    pub path: String,
    /// 1-based.
    pub line: usize,
    pub rule: RuleId,
    pub message: String,
    pub fix: String,
}

/// What a path is, decided without reading it.
#[derive(Debug, PartialEq, Eq)]
pub enum PathClass {
    /// `clusters/<cluster>/break-glass-kubeconfig.enc.yaml` in a cluster directory.
    BreakGlass(ClusterName),
    /// Wrong by its name alone: its content does not matter.
    Flagged(Finding),
    Other,
}

/// A break-glass file makes its directory a cluster (see `fleet::discovery`), so it is
/// misplaced only outside `clusters/` or below a directory that cannot be a cluster name.
pub fn classify(rel: &str) -> PathClass {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let flag = |rule, message: String, fix: String| {
        PathClass::Flagged(Finding {
            path: rel.to_string(),
            line: 1,
            rule,
            message,
            fix,
        })
    };
    if is_leftover_temp(name) {
        return flag(
            RuleId::LeftoverTempFile,
            "temp file left by an interrupted encryption; it may hold the plaintext".into(),
            format!("git rm --cached -- '{rel}' && rm -- '{rel}'"),
        );
    }
    if is_decrypted_kubeconfig(name) {
        return flag(
            RuleId::DecryptedKubeconfig,
            "looks like a decrypted break-glass kubeconfig (kubeconfig-*.yaml)".into(),
            format!(
                "git rm --cached -- '{rel}'; decrypted kubeconfigs belong in ~/.kube-dc/break-glass/ only"
            ),
        );
    }
    if name == BREAK_GLASS_FILE {
        return match cluster_of(dir) {
            Some(cluster) => PathClass::BreakGlass(cluster),
            None => flag(
                RuleId::MisplacedBreakGlass,
                format!(
                    "break-glass file outside a cluster directory ({dir:?} is not clusters/<cluster name>)"
                ),
                format!("git mv -- '{rel}' {CLUSTERS_DIR}/<cluster>/{BREAK_GLASS_FILE}"),
            ),
        };
    }
    if is_misnamed_break_glass(name) {
        let target = if dir.is_empty() {
            BREAK_GLASS_FILE.to_string()
        } else {
            format!("{dir}/{BREAK_GLASS_FILE}")
        };
        return flag(
            RuleId::MisplacedBreakGlass,
            format!("misnamed break-glass file: kube-dc and .sops.yaml expect {BREAK_GLASS_FILE}"),
            format!("git mv -- '{rel}' '{target}'"),
        );
    }
    PathClass::Other
}

/// `atomic::write` temps (`.<name>.<random>.tmp`) and the Go tool's `bg-encrypt-*.enc.yaml`.
fn is_leftover_temp(name: &str) -> bool {
    (name.starts_with("bg-encrypt-") && name.ends_with(".enc.yaml"))
        || (name.starts_with('.') && name.ends_with(".tmp") && name.contains(".enc.yaml."))
}

fn is_decrypted_kubeconfig(name: &str) -> bool {
    name.starts_with("kubeconfig-")
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.ends_with(".enc.yaml")
}

/// `break-glass-kubeconfig.yaml`, `Break_Glass_Kubeconfig.enc.yml`...: a name meant to be the
/// break-glass file, which `.sops.yaml` and `kube-dc` will not treat as one.
fn is_misnamed_break_glass(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    squashed.contains("breakglass") && squashed.contains("kubeconfig")
}

fn cluster_of(dir: &str) -> Option<ClusterName> {
    let name = dir.strip_prefix(CLUSTERS_DIR)?.strip_prefix('/')?;
    ClusterName::parse(name).ok()
}

/// Applies the content rules. Built once per run: it holds the compiled searches.
pub struct Scanner<'a> {
    sops_config: &'a SopsConfig,
    config_word: BytesRegex,
    secret_word: BytesRegex,
    kind_config: Regex,
    kind_secret: Regex,
}

impl<'a> Scanner<'a> {
    #[allow(
        clippy::expect_used,
        reason = "four constant patterns, compiled by the unit tests"
    )]
    pub fn new(sops_config: &'a SopsConfig) -> Scanner<'a> {
        Scanner {
            sops_config,
            // Literal searches: the regex engine runs them as a vectorised substring search.
            // All four patterns are constants: `expect` cannot fail on any input.
            config_word: BytesRegex::new("Config").expect("valid regex"),
            secret_word: BytesRegex::new("Secret").expect("valid regex"),
            // Anywhere on a line: flow style, minified JSON, a trailing comment.
            kind_config: Regex::new(r#"\bkind["']?[ \t]*:[ \t]*["']?Config\b"#)
                .expect("valid regex"),
            kind_secret: Regex::new(r#"\bkind["']?[ \t]*:[ \t]*["']?Secret\b"#)
                .expect("valid regex"),
        }
    }

    /// Rules 1 and 2 for a break-glass file.
    pub fn break_glass(&self, rel: &str, cluster: &ClusterName, bytes: &[u8]) -> Vec<Finding> {
        let finding = |line, rule, message: String, fix: String| Finding {
            path: rel.to_string(),
            line,
            rule,
            message,
            fix,
        };
        let encrypt_fix = format!(
            "sops encrypt --in-place '{rel}' && git add '{rel}' (or `kube-dc bootstrap break-glass rotate {cluster}`); rotate if the plaintext ever left this machine"
        );
        let Ok(text) = std::str::from_utf8(bytes) else {
            return vec![finding(
                1,
                RuleId::NotEncrypted,
                "not a sops-encrypted YAML file (not UTF-8)".into(),
                encrypt_fix,
            )];
        };
        let meta = match SopsMetadata::from_yaml(text) {
            Ok(Some(meta)) => meta,
            Ok(None) => {
                let mut found = vec![finding(
                    1,
                    RuleId::NotEncrypted,
                    "not encrypted: no sops metadata".into(),
                    encrypt_fix.clone(),
                )];
                found.extend(self.clear_credential_findings(rel, text, &encrypt_fix));
                return found;
            }
            Err(e) => {
                return vec![finding(
                    1,
                    RuleId::NotEncrypted,
                    format!("not a sops-encrypted YAML file: {e}"),
                    encrypt_fix,
                )];
            }
        };
        let sops_line = line_where(text, |l| l.starts_with("sops:")).unwrap_or(1);
        let missing = missing_metadata(&meta);
        let mut found = Vec::new();
        if !missing.is_empty() {
            found.push(finding(
                sops_line,
                RuleId::NotEncrypted,
                format!("incomplete sops metadata: no {}", missing.join(", ")),
                format!("restore the file as sops wrote it, or re-create it with `kube-dc bootstrap break-glass rotate {cluster}`"),
            ));
        }
        found.extend(self.clear_credential_findings(rel, text, &encrypt_fix));
        let added = added_in_clear(rel, text, &found, &encrypt_fix);
        found.extend(added);
        if !meta.age.is_empty() {
            found.extend(self.recipient_finding(rel, text, &meta));
        }
        found
    }

    fn clear_credential_findings(&self, rel: &str, text: &str, fix: &str) -> Vec<Finding> {
        let paths = credentials::clear_credentials_in_yaml(text.as_bytes()).unwrap_or_default();
        located(text, &paths)
            .into_iter()
            .map(|(line, path)| Finding {
                path: rel.to_string(),
                line,
                rule: RuleId::ClearCredential,
                message: format!("{path} is in clear (not an ENC[...] value)"),
                fix: fix.to_string(),
            })
            .collect()
    }

    fn recipient_finding(&self, rel: &str, text: &str, meta: &SopsMetadata) -> Option<Finding> {
        let line = line_where(text, |l| l.trim_start().starts_with("- recipient:"))
            .or_else(|| line_where(text, |l| l.starts_with("sops:")))
            .unwrap_or(1);
        let Some(rule) = self.sops_config.rule_for(rel) else {
            return Some(Finding {
                path: rel.to_string(),
                line,
                rule: RuleId::WrongRecipients,
                message: "no .sops.yaml creation rule matches this path".into(),
                fix: format!("add a creation_rules entry whose path_regex matches '{rel}'"),
            });
        };
        let actual = meta.age_recipients();
        if actual == rule.age_recipients {
            return None;
        }
        let missing: Vec<&str> = rule
            .age_recipients
            .difference(&actual)
            .map(String::as_str)
            .collect();
        let extra: Vec<&str> = actual
            .difference(&rule.age_recipients)
            .map(String::as_str)
            .collect();
        Some(Finding {
            path: rel.to_string(),
            line,
            rule: RuleId::WrongRecipients,
            message: format!(
                "age recipients differ from .sops.yaml: missing [{}], not in .sops.yaml [{}]",
                missing.join(", "),
                extra.join(", ")
            ),
            fix: format!(
                "sops updatekeys --yes '{rel}' && git add '{rel}' (needs a key of a current recipient)"
            ),
        })
    }

    /// Rule 3 for any other file: a cheap byte search first, parsing only on a hit.
    pub fn other(&self, rel: &str, bytes: &[u8]) -> Vec<Finding> {
        let mut found = jwt_findings(rel, bytes, "service-account token in clear");
        let Some((text, config, secret)) = self.manifest_kinds(bytes) else {
            return found;
        };
        let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) else {
            // Not YAML (a README, a template): judge credential lines by how they look.
            if config {
                found.extend(secret_looking_lines(text).into_iter().map(|(line, key)| {
                    kubeconfig_finding(rel, line, format!("kubeconfig text with a clear `{key}`"))
                }));
            }
            return found;
        };
        if config {
            found.extend(self.kubeconfig_findings(rel, text, &docs));
        }
        if secret {
            for doc in &docs {
                collect_secrets(doc, &mut |s| {
                    found.extend(self.secret_findings(rel, text, s))
                });
            }
        }
        found
    }

    /// The text and whether it mentions `kind: Config` and `kind: Secret`; `None` when
    /// it mentions neither (or is not UTF-8), so it need not be parsed.
    fn manifest_kinds<'t>(&self, bytes: &'t [u8]) -> Option<(&'t str, bool, bool)> {
        let config = self.config_word.is_match(bytes);
        let secret = self.secret_word.is_match(bytes);
        if !(config || secret) {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let config = config && self.kind_config.is_match(text);
        let secret = secret && self.kind_secret.is_match(text);
        (config || secret).then_some((text, config, secret))
    }

    fn kubeconfig_findings(&self, rel: &str, text: &str, docs: &[Value]) -> Vec<Finding> {
        let mut paths = Vec::new();
        for doc in docs {
            self.collect_kubeconfigs(doc, 0, &mut |cfg| {
                paths.extend(credentials::clear_credentials(cfg))
            });
        }
        located(text, &paths)
            .into_iter()
            .map(|(line, path)| {
                kubeconfig_finding(rel, line, format!("kind: Config with {path} in clear"))
            })
            .collect()
    }

    /// A Secret's `data` values are base64: decoded, they get the rules of any file, and
    /// a service-account token Secret's `data.token` is a token whatever it looks like.
    /// Encrypted values (`ENC[...]`) do not decode and are skipped.
    fn secret_findings(&self, rel: &str, text: &str, secret: &Map<String, Value>) -> Vec<Finding> {
        let Some(Value::Object(data)) = secret.get("data") else {
            return Vec::new();
        };
        let token_secret = secret.get("type").and_then(Value::as_str) == Some(TOKEN_SECRET_TYPE);
        let mut found = Vec::new();
        for (key, value) in data {
            let encoded = value.as_str().unwrap_or_default();
            let Some(decoded) = decode_base64(encoded) else {
                continue;
            };
            let what = format!("Secret data.{key} (base64-encoded)");
            let mut inner = jwt_findings(
                rel,
                &decoded,
                &format!("{what} holds a service-account token"),
            );
            if inner.is_empty() && token_secret && key == "token" && !decoded.is_empty() {
                inner.push(Finding {
                    path: rel.to_string(),
                    line: 1,
                    rule: RuleId::ServiceAccountJwt,
                    message: format!("service-account token Secret with {what} in clear"),
                    fix: jwt_fix(rel),
                });
            }
            if let Ok(inner_text) = std::str::from_utf8(&decoded)
                && self.kind_config.is_match(inner_text)
            {
                let docs = serde_saphyr::from_multiple::<Value>(inner_text).unwrap_or_default();
                let paths = docs.iter().flat_map(credentials::clear_credentials);
                inner.extend(paths.map(|path| {
                    kubeconfig_finding(
                        rel,
                        1,
                        format!("{what} holds a kubeconfig with {path} in clear"),
                    )
                }));
            }
            let line = data_key_line(text, key, encoded);
            found.extend(inner.into_iter().map(|f| Finding { line, ..f }));
        }
        found
    }

    /// Kubeconfig documents, also those embedded as strings (a ConfigMap or Secret
    /// `stringData` holding a kubeconfig).
    fn collect_kubeconfigs(&self, value: &Value, depth: u8, visit: &mut dyn FnMut(&Value)) {
        match value {
            Value::Object(map) if map.get("kind").and_then(Value::as_str) == Some("Config") => {
                visit(value)
            }
            Value::Object(map) => map
                .values()
                .for_each(|v| self.collect_kubeconfigs(v, depth, visit)),
            Value::Array(items) => items
                .iter()
                .for_each(|v| self.collect_kubeconfigs(v, depth, visit)),
            Value::String(s) if depth < 2 && self.kind_config.is_match(s) => {
                for doc in serde_saphyr::from_multiple::<Value>(s).unwrap_or_default() {
                    self.collect_kubeconfigs(&doc, depth + 1, visit);
                }
            }
            _ => {}
        }
    }
}

fn missing_metadata(meta: &SopsMetadata) -> Vec<&'static str> {
    [
        ("mac", meta.mac.is_none()),
        ("version", meta.version.is_none()),
        ("lastmodified", meta.lastmodified.is_none()),
        ("age recipient", meta.age.is_empty()),
    ]
    .into_iter()
    .filter_map(|(what, absent)| absent.then_some(what))
    .collect()
}

const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";

/// Secret manifests anywhere in a document (also in a `List`).
fn collect_secrets(value: &Value, visit: &mut dyn FnMut(&Map<String, Value>)) {
    match value {
        Value::Object(map) if map.get("kind").and_then(Value::as_str) == Some("Secret") => {
            visit(map)
        }
        Value::Object(map) => map.values().for_each(|v| collect_secrets(v, visit)),
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, visit)),
        _ => {}
    }
}

/// Rule 3's service-account tokens in `bytes`, each reported as `what`.
fn jwt_findings(rel: &str, bytes: &[u8], what: &str) -> Vec<Finding> {
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

fn jwt_fix(rel: &str) -> String {
    format!("git rm --cached -- '{rel}', remove the token, and rotate it if it was ever pushed")
}

fn kubeconfig_finding(rel: &str, line: usize, message: String) -> Finding {
    Finding {
        path: rel.to_string(),
        line,
        rule: RuleId::PlaintextKubeconfig,
        message,
        fix: format!(
            "git rm --cached -- '{rel}'; keep kubeconfigs out of Git or sops-encrypt them, and rotate credentials that were pushed"
        ),
    }
}

/// Rule 1 for what a structural look misses in an encrypted break-glass file: a clear
/// JWT anywhere (a comment, a new key) and a credential key in clear on any line (in a
/// comment, under `sops:`), each line reported once.
fn added_in_clear(rel: &str, text: &str, known: &[Finding], fix: &str) -> Vec<Finding> {
    let reported = |line: usize| known.iter().any(|f| f.line == line);
    let jwts = jwt::find(text.as_bytes()).into_iter().map(|hit| {
        (
            hit.line,
            format!("a service-account token in clear: {}", redact(&hit.token)),
        )
    });
    let keys = text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim_start().trim_start_matches('#');
        let key = CREDENTIAL_KEYS.iter().find(|key| {
            key_value(line, key)
                .is_some_and(|v| !v.is_empty() && !credentials::is_encrypted_value(v))
        })?;
        Some((i + 1, format!("a clear `{key}` line in an encrypted file")))
    });
    let mut found: Vec<Finding> = Vec::new();
    for (line, message) in jwts.chain(keys) {
        if !reported(line) && !found.iter().any(|f| f.line == line) {
            found.push(Finding {
                path: rel.to_string(),
                line,
                rule: RuleId::ClearCredential,
                message,
                fix: fix.to_string(),
            });
        }
    }
    found
}

/// Base64 as Kubernetes writes it in `data` (standard alphabet, padded); YAML folding
/// may have put whitespace in it.
fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    let compact: String = encoded.split_whitespace().collect();
    STANDARD.decode(compact).ok()
}

/// The line of `key: <encoded>`, else of the first `key:` line, else 1 (flow style).
fn data_key_line(text: &str, key: &str, encoded: &str) -> usize {
    line_where(text, |l| key_value(l, key) == Some(encoded))
        .or_else(|| line_where(text, |l| key_value(l, key).is_some()))
        .unwrap_or(1)
}

/// A token shown to a person: a prefix and the length, never the whole value.
pub fn redact(token: &str) -> String {
    let prefix: String = token.chars().take(8).collect();
    format!("{prefix}…({} chars)", token.chars().count())
}

fn line_where(text: &str, pred: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines().position(pred).map(|i| i + 1)
}

/// Pairs each credential path (`users[0].user.token`) with the line of its key: the n-th
/// clear `token:` line for the n-th clear token. Line 1 when the YAML is flow-style.
fn located(text: &str, paths: &[String]) -> Vec<(usize, String)> {
    let mut seen: Vec<&str> = Vec::new();
    paths
        .iter()
        .map(|path| {
            let leaf = leaf_key(path);
            let nth = seen.iter().filter(|k| **k == leaf).count();
            seen.push(leaf);
            let line = clear_key_lines(text, leaf).nth(nth).unwrap_or(1);
            (line, path.clone())
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
fn key_value<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let rest = line.trim_start().trim_start_matches("- ").trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let rest = rest.strip_prefix(key)?;
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let value = rest.strip_prefix(':')?.trim();
    Some(value.trim_matches(|c| c == '"' || c == '\'' || c == ','))
}

/// For text that is not YAML: credential keys whose value looks like real key material
/// (long, no spaces, base64 alphabet), so placeholders like `<token>` are not reported.
fn secret_looking_lines(text: &str) -> Vec<(usize, &'static str)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const RECIPIENT: &str = "age1lzrr8t3qcgaq85uypap65mkrfepxm76985e9s26dh2d9fejse92sscaswp";
    const BG: &str = "clusters/alpha/break-glass-kubeconfig.enc.yaml";

    fn config() -> SopsConfig {
        SopsConfig::parse(&format!(
            "creation_rules:\n  - path_regex: ^clusters/[a-z0-9.-]+(/[a-z0-9.-]+)?/break-glass-kubeconfig\\.enc\\.yaml$\n    age: {RECIPIENT}\n"
        ))
        .unwrap()
    }

    /// A syntactically valid service-account JWT (unsigned; the check never verifies).
    pub(super) fn sa_jwt() -> String {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            enc(r#"{"alg":"RS256","kid":"k1"}"#),
            enc(
                r#"{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"kube-system","sub":"system:serviceaccount:kube-system:break-glass"}"#
            ),
            "c2lnbmF0dXJlLWJ5dGVzLXRoYXQtYXJlLW5vdC1jaGVja2Vk"
        )
    }

    fn encrypted(recipient: &str, mac: bool) -> String {
        let mac = if mac {
            "    mac: ENC[AES256_GCM,data:m]\n"
        } else {
            ""
        };
        format!(
            "kind: ENC[AES256_GCM,data:x,type:str]\nusers:\n    - user:\n        token: ENC[AES256_GCM,data:t,type:str]\nsops:\n    age:\n        - recipient: {recipient}\n          enc: |\n            x\n    lastmodified: \"2026-01-01T00:00:00Z\"\n{mac}    version: 3.11.0\n"
        )
    }

    fn cluster() -> ClusterName {
        ClusterName::parse("alpha").unwrap()
    }

    fn rules(found: &[Finding]) -> Vec<(RuleId, usize)> {
        found.iter().map(|f| (f.rule, f.line)).collect()
    }

    #[test]
    fn encrypted_break_glass_file_passes() {
        let config = config();
        let found = Scanner::new(&config).break_glass(
            BG,
            &cluster(),
            encrypted(RECIPIENT, true).as_bytes(),
        );
        assert_eq!(found, vec![]);
    }

    #[test]
    fn plaintext_break_glass_file_fails_rule_1() {
        let config = config();
        let text = format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: bg\n  user:\n    token: {}\n",
            sa_jwt()
        );
        let found = Scanner::new(&config).break_glass(BG, &cluster(), text.as_bytes());
        assert_eq!(
            rules(&found),
            vec![(RuleId::NotEncrypted, 1), (RuleId::ClearCredential, 6)]
        );
        assert!(
            found
                .iter()
                .all(|f| !f.message.contains(&sa_jwt()) && !f.fix.contains(&sa_jwt()))
        );
    }

    #[test]
    fn incomplete_metadata_and_clear_value_fail_rule_1() {
        let config = config();
        let text = encrypted(RECIPIENT, false)
            .replace("token: ENC[AES256_GCM,data:t,type:str]", "token: abc");
        let found = Scanner::new(&config).break_glass(BG, &cluster(), text.as_bytes());
        assert_eq!(
            rules(&found),
            vec![(RuleId::NotEncrypted, 5), (RuleId::ClearCredential, 4)]
        );
        assert!(found[0].message.contains("no mac"), "{}", found[0].message);
        assert_eq!(
            found[1].message,
            "users[0].user.token is in clear (not an ENC[...] value)"
        );
    }

    #[test]
    fn wrong_recipients_fail_rule_2_with_updatekeys_fix() {
        let config = config();
        let found = Scanner::new(&config).break_glass(
            BG,
            &cluster(),
            encrypted("age1old", true).as_bytes(),
        );
        assert_eq!(rules(&found), vec![(RuleId::WrongRecipients, 7)]);
        assert!(found[0].message.contains(&format!("missing [{RECIPIENT}]")));
        assert!(found[0].message.contains("not in .sops.yaml [age1old]"));
        assert!(
            found[0]
                .fix
                .starts_with(&format!("sops updatekeys --yes '{BG}'"))
        );
        let none = SopsConfig::parse("creation_rules: []\n").unwrap();
        let found =
            Scanner::new(&none).break_glass(BG, &cluster(), encrypted(RECIPIENT, true).as_bytes());
        assert!(found[0].message.contains("no .sops.yaml creation rule"));
    }

    #[test]
    fn path_rules() {
        let rule = |rel: &str| match classify(rel) {
            PathClass::Flagged(f) => Some(f.rule),
            _ => None,
        };
        assert_eq!(classify(BG), PathClass::BreakGlass(cluster()));
        assert!(matches!(
            classify("clusters/eu/dc1/break-glass-kubeconfig.enc.yaml"),
            PathClass::BreakGlass(_)
        ));
        // The Go tool's names and layouts: a directory with only the break-glass file.
        for go in ["Prod", "my_cluster", "region/dc/c1"] {
            let rel = format!("clusters/{go}/break-glass-kubeconfig.enc.yaml");
            let name = ClusterName::parse(go).unwrap();
            assert_eq!(classify(&rel), PathClass::BreakGlass(name), "{rel}");
        }
        for (rel, expected) in [
            (
                "clusters/alpha/.break-glass-kubeconfig.enc.yaml.Ab12Cd.tmp",
                RuleId::LeftoverTempFile,
            ),
            (
                "clusters/alpha/bg-encrypt-123.enc.yaml",
                RuleId::LeftoverTempFile,
            ),
            ("kubeconfig-alpha-x1.yaml", RuleId::DecryptedKubeconfig),
            (
                "clusters/alpha/break-glass-kubeconfig.yaml",
                RuleId::MisplacedBreakGlass,
            ),
            (
                "clusters/alpha/Break_Glass_Kubeconfig.enc.yaml",
                RuleId::MisplacedBreakGlass,
            ),
            (
                "break-glass-kubeconfig.enc.yaml",
                RuleId::MisplacedBreakGlass,
            ),
            (
                "clusters/a/b/c/d/e/break-glass-kubeconfig.enc.yaml",
                RuleId::MisplacedBreakGlass,
            ),
            (
                "clusters/my cluster/break-glass-kubeconfig.enc.yaml",
                RuleId::MisplacedBreakGlass,
            ),
            (
                "clusters/break-glass-kubeconfig.enc.yaml",
                RuleId::MisplacedBreakGlass,
            ),
            (
                "other/alpha/break-glass-kubeconfig.enc.yaml",
                RuleId::MisplacedBreakGlass,
            ),
        ] {
            assert_eq!(rule(rel), Some(expected), "{rel}");
        }
        for unrelated in [
            "clusters/alpha/break-glass-rbac.yaml",
            "clusters/alpha/secrets.enc.yaml",
            "docs/kubeconfig.md",
            "kubeconfig-template.enc.yaml",
            "src/.main.rs.tmp",
        ] {
            assert_eq!(classify(unrelated), PathClass::Other, "{unrelated}");
        }
    }

    #[test]
    fn bare_service_account_jwt_is_found_and_redacted() {
        let config = config();
        let scanner = Scanner::new(&config);
        let text = format!("notes\nexport TOKEN={}\n", sa_jwt());
        let found = scanner.other("notes.sh", text.as_bytes());
        assert_eq!(rules(&found), vec![(RuleId::ServiceAccountJwt, 2)]);
        assert!(
            found[0]
                .message
                .ends_with(&format!("eyJhbGci…({} chars)", sa_jwt().len())),
            "{}",
            found[0].message
        );
        // A JWT that is not a service account's, and eyJ inside prose, are not findings.
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let oidc = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"iss":"https://idp"}"#)
        );
        assert_eq!(
            scanner.other("a.txt", format!("id: {oidc}\neyJ and eyJx.y\n").as_bytes()),
            vec![]
        );
    }

    #[test]
    fn plaintext_kubeconfig_is_found_also_inside_a_configmap() {
        let config = config();
        let scanner = Scanner::new(&config);
        let kubeconfig = "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    client-key-data: LS0tS0VZ\n";
        let found = scanner.other("ops/admin.yaml", kubeconfig.as_bytes());
        assert_eq!(rules(&found), vec![(RuleId::PlaintextKubeconfig, 6)]);
        let configmap = "kind: ConfigMap\ndata:\n  kubeconfig: |\n    kind: Config\n    users:\n    - user:\n        token: abcdef\n";
        assert_eq!(
            rules(&scanner.other("cm.yaml", configmap.as_bytes())),
            vec![(RuleId::PlaintextKubeconfig, 7)]
        );
        let encrypted = "kind: Config\nusers:\n- user:\n    token: ENC[AES256_GCM,data:x]\n";
        assert_eq!(scanner.other("ok.yaml", encrypted.as_bytes()), vec![]);
    }

    #[test]
    fn prose_about_kubeconfigs_is_not_misreported() {
        let config = config();
        let scanner = Scanner::new(&config);
        let readme = "# Access\n```yaml\nkind: Config\nusers:\n- user:\n    token: <your token here>\n```\nsee `kind: Config`\n";
        assert_eq!(scanner.other("README.md", readme.as_bytes()), vec![]);
        let leaked = format!("{readme}token: {}\n", "QUJDREVGR0hJSktMTU5PUFFSU1RVVg==");
        assert_eq!(
            rules(&scanner.other("README.md", leaked.as_bytes())),
            vec![(RuleId::PlaintextKubeconfig, 9)]
        );
        assert_eq!(
            scanner.other("values.yaml", b"kind: ConfigMap\ntoken: abc\n"),
            vec![]
        );
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn secret_data_is_decoded_and_scanned() {
        let config = config();
        let scanner = Scanner::new(&config);
        let jwt_secret = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  other: {}\n  token: {}\n",
            b64("hello"),
            b64(&sa_jwt())
        );
        let found = scanner.other("s.yaml", jwt_secret.as_bytes());
        assert_eq!(rules(&found), vec![(RuleId::ServiceAccountJwt, 7)]);
        assert!(
            found[0].message.starts_with(
                "Secret data.token (base64-encoded) holds a service-account token: eyJhbGci…"
            ),
            "{}",
            found[0].message
        );
        let opaque_token = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"kubernetes.io/service-account-token\",\"data\":{{\"token\":\"{}\"}}}}",
            b64("not-a-jwt-but-a-token")
        );
        assert_eq!(
            rules(&scanner.other("s.json", opaque_token.as_bytes())),
            vec![(RuleId::ServiceAccountJwt, 1)]
        );
        let kubeconfig =
            "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    token: abc\n";
        let capi = format!(
            "kind: List\nitems:\n- kind: Secret\n  metadata: {{name: c1-kubeconfig}}\n  data:\n    value: {}\n",
            b64(kubeconfig)
        );
        let found = scanner.other("capi.yaml", capi.as_bytes());
        assert_eq!(rules(&found), vec![(RuleId::PlaintextKubeconfig, 6)]);
        assert!(
            found[0].message.contains("users[0].user.token"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn encrypted_and_harmless_secrets_pass() {
        let config = config();
        let scanner = Scanner::new(&config);
        for text in [
            "kind: Secret\ntype: kubernetes.io/service-account-token\ndata:\n    token: ENC[AES256_GCM,data:abc,type:str]\nsops:\n    mac: ENC[x]\n".to_string(),
            format!("kind: Secret\ndata:\n  password: {}\n", b64("app-password")),
            format!("kind: Secret\ndata: {{token: {}}}\n", b64("")),
            "kind: SecretProviderClass\ndata:\n  token: abc\n".to_string(),
        ] {
            assert_eq!(scanner.other("s.yaml", text.as_bytes()), vec![], "{text}");
        }
    }

    #[test]
    fn kubeconfigs_in_every_syntax_are_found() {
        let config = config();
        let scanner = Scanner::new(&config);
        for (text, line) in [
            (
                "{apiVersion: v1, kind: Config, users: [{name: a, user: {token: abcdef}}]}\n",
                1,
            ),
            (
                r#"{"apiVersion":"v1","kind":"Config","users":[{"name":"a","user":{"token":"abcdef"}}]}"#,
                1,
            ),
            (
                "apiVersion: v1\nkind: Config # admin\nusers:\n- name: a\n  user:\n    token: abcdef\n",
                6,
            ),
            (
                "apiVersion: v1\n\"kind\": 'Config'\nusers:\n- {name: a, user: {password: abcdef}}\n",
                1,
            ),
        ] {
            assert_eq!(
                rules(&scanner.other("k.yaml", text.as_bytes())),
                vec![(RuleId::PlaintextKubeconfig, line)],
                "{text}"
            );
        }
    }

    #[test]
    fn clear_additions_to_an_encrypted_break_glass_file_fail_rule_1() {
        let config = config();
        let scanner = Scanner::new(&config);
        let base = encrypted(RECIPIENT, true);
        let jwt = sa_jwt();
        let (a, b) = jwt.split_at(40);
        for (added, line) in [
            (format!("# {jwt}\n"), 1),
            (format!("note: {jwt}\n"), 1),
            (format!("note: >-\n    {a}\n    {b}\n"), 2),
            ("# token: abcdef\n".to_string(), 1),
            ("client-key-data: abcdef\n".to_string(), 1),
        ] {
            let text = format!("{added}{base}");
            let found = scanner.break_glass(BG, &cluster(), text.as_bytes());
            assert_eq!(
                rules(&found),
                vec![(RuleId::ClearCredential, line)],
                "{text}"
            );
            assert!(!found[0].message.contains(&jwt));
        }
        let under_sops = base.replace(
            "    version: 3.11.0\n",
            "    version: 3.11.0\n    token: abcdef\n",
        );
        let found = scanner.break_glass(BG, &cluster(), under_sops.as_bytes());
        assert_eq!(rules(&found), vec![(RuleId::ClearCredential, 13)]);
    }

    #[test]
    fn pathological_inputs_are_scanned_in_bounded_time() {
        let config = config();
        let scanner = Scanner::new(&config);
        for unit in [
            "eyJ\n",
            "eyJhbGciOiJSUzI1NiJ9.eyJ.",
            "kind: Config\ntoken: ",
            "kind: Secret\ndata: {a: b}\n---\n",
            "a\\\n",
        ] {
            let text = unit.repeat(256 * 1024 / unit.len());
            let started = std::time::Instant::now();
            scanner.other("x.yaml", text.as_bytes());
            scanner.break_glass(BG, &cluster(), text.as_bytes());
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{unit:?}: {:?}",
                started.elapsed()
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn any_bytes_are_scanned_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let config = config();
            let scanner = Scanner::new(&config);
            scanner.other("x", &bytes);
            scanner.break_glass(BG, &cluster(), &bytes);
        }

        #[test]
        fn yaml_like_text_is_scanned_quickly(
            text in "(kind: (Config|Secret)\n|data:\n|  token: |eyJ|[a-zA-Z0-9+/=._-]{0,12}|[{}\\[\\],:#\"' \n-]|---\n|users:\n- user: )*",
        ) {
            let config = config();
            let scanner = Scanner::new(&config);
            let started = std::time::Instant::now();
            let found = scanner.other("x.yaml", text.as_bytes());
            scanner.break_glass(BG, &cluster(), text.as_bytes());
            proptest::prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
            proptest::prop_assert!(found.iter().all(|f| f.line >= 1 && f.line <= text.lines().count().max(1)));
        }

        #[test]
        fn a_service_account_token_is_found_however_it_is_wrapped(
            cuts in proptest::collection::vec(1usize..200, 0..4),
            indent in "[ ]{0,6}",
            before in "[a-z: #\n]{0,30}",
        ) {
            let jwt = sa_jwt();
            let mut pieces = Vec::new();
            let mut rest = jwt.as_str();
            for cut in cuts {
                let (head, tail) = rest.split_at(cut.min(rest.len()));
                if !head.is_empty() { pieces.push(head.to_string()); }
                rest = tail;
            }
            pieces.push(rest.to_string());
            let text = format!("{before}\nkey: >-\n{indent}{}\n", pieces.join(&format!("\n{indent}")));
            let found = Scanner::new(&config()).other("x.yaml", text.as_bytes());
            proptest::prop_assert_eq!(rules(&found).first().map(|r| r.0), Some(RuleId::ServiceAccountJwt));
        }
    }
}
