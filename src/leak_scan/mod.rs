//! Keeping plaintext break-glass credentials out of Git.
//!
//! The rules are pure functions of a path and its bytes (no Git, no sops, no key): this
//! file classifies paths and holds the [`Scanner`]; [`break_glass`] has rules 1 and 2 (for
//! break-glass files), [`manifests`] rule 3 (every other file), with [`lines`] and [`jwt`]
//! locating what they find. Where the bytes come from is the other half: [`staged`] (the
//! blobs `git commit` records) and [`work_tree`], both run through [`scan`].
//!
//! Cost model: most files in a commit are unrelated to clusters, so [`classify`] decides
//! from the path alone, and [`Scanner::other`] only parses a file when a byte search finds
//! a JWT prefix, or `kind: Config` or `kind: Secret` (block or flow style, JSON) in it.

mod break_glass;
mod jwt;
mod lines;
mod manifests;
pub mod scan;
pub mod staged;
#[cfg(test)]
mod tests;
pub mod work_tree;

use regex::Regex;
use regex::bytes::Regex as BytesRegex;
use serde::Serialize;

use crate::fleet::{BREAK_GLASS_FILE, CLUSTERS_DIR, ClusterName};
use crate::shell::quote;
use crate::sops_config::SopsConfig;

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
    let path = quote(rel);
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
            format!("git rm --cached -- {path} && rm -- {path}"),
        );
    }
    if is_decrypted_kubeconfig(name) {
        return flag(
            RuleId::DecryptedKubeconfig,
            "looks like a decrypted break-glass kubeconfig (kubeconfig-*.yaml)".into(),
            format!(
                "git rm --cached -- {path}; decrypted kubeconfigs belong in ~/.kube-dc/break-glass/ only"
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
                format!("git mv -- {path} {CLUSTERS_DIR}/<cluster>/{BREAK_GLASS_FILE}"),
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
            format!("git mv -- {path} {}", quote(&target)),
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
}
