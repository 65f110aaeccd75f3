//! Fleets whose `.sops.yaml` rule for `*.enc.yaml` is tuned for Secret manifests
//! (`encrypted_regex: ^(data|stringData)$`, the kube-dc convention) would leave a
//! kubeconfig's token in clear. The Go kube-dc tool always passes its own
//! `--encrypted-regex` for break-glass files; we do so only when the rule would leak, so
//! that fleets work unchanged and a rule that encrypts everything keeps doing so. The
//! recipients still come from the rule, and the output is checked again (fail closed).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::credentials::CREDENTIAL_KEYS;
use crate::error::Error;

/// Said once per run: every cluster of a fleet usually matches the same rule.
static ANNOUNCED: AtomicBool = AtomicBool::new(false);

/// The `--encrypted-regex` that encrypts exactly the credential fields (a superset of
/// the Go tool's `^(token|client-key-data|client-certificate-data|password)$`).
pub fn encrypted_regex() -> String {
    format!("^({})$", CREDENTIAL_KEYS.join("|"))
}

pub fn announce(rel: &str, leaked: &[String]) {
    if !ANNOUNCED.swap(true, Ordering::Relaxed) {
        crate::ui::to_stderr(&format!(
            "note: the .sops.yaml rule for {rel} would leave {} in clear (its encrypted_regex or \
             suffix is meant for other files); encrypting break-glass files' credential fields \
             with --encrypted-regex '{}' instead, to the rule's recipients\n",
            leaked.join(", "),
            encrypted_regex()
        ));
    }
}

/// Fail closed: what the rule (and, when sops accepted it, the credential regex) left in
/// clear. `detail` says why the credential regex did not help.
pub fn refusal(rel: &str, leaked: &[String], detail: Option<&str>) -> Error {
    let why = detail.map_or_else(String::new, |d| format!("\n{d}"));
    Error::failed(format!(
        "refusing to write {rel}: the .sops.yaml rule that matches it leaves {} in clear text, also with --encrypted-regex '{}'; nothing was written{why}",
        leaked.join(", "),
        encrypted_regex()
    ))
    .with_hint(
        "the rule's unencrypted_regex/suffix or comment regex keeps credentials in clear; add a rule for break-glass files before it, e.g.\n  - path_regex: ^clusters/.+/break-glass-kubeconfig\\.enc\\.yaml$\n    age: <recipients>\n(no encrypted_regex: encrypt every value)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_regex_covers_the_go_tools_fields_and_matches_whole_keys() {
        let re = regex::Regex::new(&encrypted_regex()).unwrap();
        for key in [
            "token",
            "client-key-data",
            "client-certificate-data",
            "password",
        ] {
            assert!(re.is_match(key), "{key}");
        }
        for key in [
            "server",
            "certificate-authority-data",
            "tokens",
            "name",
            "data",
        ] {
            assert!(!re.is_match(key), "{key}");
        }
    }
}
