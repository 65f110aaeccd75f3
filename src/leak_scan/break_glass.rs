//! Rules 1 and 2, for break-glass files: encrypted (complete sops metadata, no clear
//! credential, nothing added in clear) and to the recipients `.sops.yaml` names.

use std::collections::HashSet;

use serde_json::Value;

use super::lines::{key_value, line_where, located, redact};
use super::{Finding, RuleId, Scanner, jwt};
use crate::credentials::{self, CREDENTIAL_KEYS};
use crate::fleet::ClusterName;
use crate::shell::quote;
use crate::sops_file::{self, SopsMetadata};

impl Scanner<'_> {
    /// Rules 1 and 2 for a break-glass file.
    pub fn break_glass(&self, rel: &str, cluster: &ClusterName, bytes: &[u8]) -> Vec<Finding> {
        self.scan_break_glass(rel, cluster, bytes).0
    }

    /// [`Scanner::break_glass`], also returning the sops metadata it read (for `status`,
    /// so that the file is parsed once).
    pub fn scan_break_glass(
        &self,
        rel: &str,
        cluster: &ClusterName,
        bytes: &[u8],
    ) -> (Vec<Finding>, Option<SopsMetadata>) {
        let finding = |line, rule, message: String, fix: String| Finding {
            path: rel.to_string(),
            line,
            rule,
            message,
            fix,
        };
        let (path, cluster) = (quote(rel), quote(cluster.as_str()));
        let encrypt_fix = format!(
            "sops encrypt --in-place {path} && git add {path} (or `kube-dc bootstrap break-glass rotate {cluster}`); rotate if the plaintext ever left this machine"
        );
        let Ok(text) = std::str::from_utf8(bytes) else {
            let message = "not a sops-encrypted YAML file (not UTF-8)".into();
            return (
                vec![finding(1, RuleId::NotEncrypted, message, encrypt_fix)],
                None,
            );
        };
        let parsed =
            sops_file::parse(text).and_then(|doc| Ok((SopsMetadata::from_document(&doc)?, doc)));
        let (meta, doc) = match parsed {
            Ok((Some(meta), doc)) => (meta, doc),
            Ok((None, doc)) => {
                let mut found = vec![finding(
                    1,
                    RuleId::NotEncrypted,
                    "not encrypted: no sops metadata".into(),
                    encrypt_fix.clone(),
                )];
                found.extend(self.clear_credential_findings(rel, text, &doc, &encrypt_fix));
                return (found, None);
            }
            Err(e) => {
                let message = format!("not a sops-encrypted YAML file: {e}");
                return (
                    vec![finding(1, RuleId::NotEncrypted, message, encrypt_fix)],
                    None,
                );
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
        // `sops encrypt` refuses a file that has sops metadata: a new file is the repair.
        let rewrite_fix = format!(
            "sops cannot re-encrypt a file it already encrypted: `kube-dc bootstrap break-glass rotate {cluster}` writes it anew, fully encrypted, with a new token (treat the one in clear as leaked)"
        );
        found.extend(self.clear_credential_findings(rel, text, &doc, &rewrite_fix));
        let added = added_in_clear(rel, text, &found, &rewrite_fix);
        found.extend(added);
        if !meta.age.is_empty() {
            found.extend(self.recipient_finding(rel, text, &meta));
        }
        (found, Some(meta))
    }

    fn clear_credential_findings(
        &self,
        rel: &str,
        text: &str,
        doc: &Value,
        fix: &str,
    ) -> Vec<Finding> {
        let paths = credentials::clear_credentials(doc);
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
                fix: format!(
                    "add a creation_rules entry whose path_regex matches {}",
                    quote(rel)
                ),
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
                "sops updatekeys --yes {path} && git add {path} (needs a key of a current recipient)",
                path = quote(rel)
            ),
        })
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

/// Rule 1 for what a structural look misses in an encrypted break-glass file: a clear
/// JWT anywhere (a comment, a new key) and a credential key in clear on any line (in a
/// comment, under `sops:`), each line reported once.
fn added_in_clear(rel: &str, text: &str, known: &[Finding], fix: &str) -> Vec<Finding> {
    // Sets, not scans of the lists: a hostile file can hold a clear key on every line.
    let mut reported: HashSet<usize> = known.iter().map(|f| f.line).collect();
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
        if reported.insert(line) {
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
