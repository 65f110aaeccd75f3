//! The fleet's `.sops.yaml`: which creation rule, and so which age recipients, a path gets.
//! Read without sops so that `status --no-decrypt` and `check` work for people with no key.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{Error, Result};
use crate::safe_fs;

#[derive(Debug)]
pub struct SopsConfig {
    rules: Vec<Rule>,
}

#[derive(Debug)]
pub struct Rule {
    path_regex: Option<Regex>,
    pub age_recipients: BTreeSet<String>,
    has_keys: bool,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    creation_rules: Vec<RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    path_regex: Option<String>,
    age: Option<AgeField>,
    #[serde(default)]
    key_groups: Vec<RawKeyGroup>,
    // The other kinds of keys sops knows: only whether a rule has any matters here.
    pgp: Option<IgnoredAny>,
    kms: Option<IgnoredAny>,
    gcp_kms: Option<IgnoredAny>,
    azure_keyvault: Option<IgnoredAny>,
    hc_vault_transit_uri: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawKeyGroup {
    #[serde(default)]
    age: Vec<String>,
}

/// `age:` is a comma-separated string in sops' docs, but lists are accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum AgeField {
    One(String),
    Many(Vec<String>),
}

impl SopsConfig {
    /// Reads `path` (no link at its last component, bounded: see `safe_fs`).
    pub fn load(path: &Path) -> Result<SopsConfig> {
        let bytes = safe_fs::read_file(path, safe_fs::SOPS_CONFIG).map_err(|e| e.usage())?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::usage(format!("{}: not UTF-8 text", path.display())))?;
        let config = SopsConfig::parse(&text).and_then(|c| c.check_usable().map(|()| c));
        config.map_err(|e| {
            Error::usage(format!("{}: {e}", path.display())).with_hint(
                "fix it so that sops can use it: https://getsops.io/docs/#using-sops-yaml-conf-to-select-kms-pgp-and-age-for-new-files",
            )
        })
    }

    pub fn parse(text: &str) -> std::result::Result<SopsConfig, String> {
        // The parser's first line says where and what; the rest quotes the file.
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let text = e.to_string();
            crate::input::bounded_line(&text)
        })?;
        let rules = raw
            .creation_rules
            .into_iter()
            .map(Rule::from_raw)
            .collect::<std::result::Result<_, _>>()?;
        Ok(SopsConfig { rules })
    }

    /// Whether sops could encrypt anything with it: at least one creation rule, each
    /// naming keys. (A config without is still parsed, e.g. to report findings.)
    fn check_usable(&self) -> std::result::Result<(), String> {
        if self.rules.is_empty() {
            return Err("it has no creation_rules, so sops cannot encrypt any file".into());
        }
        match self.rules.iter().position(|r| !r.has_keys) {
            Some(i) => Err(format!(
                "creation rule {} names no keys (age, key_groups, pgp, kms, ...): sops cannot encrypt with it",
                i + 1
            )),
            None => Ok(()),
        }
    }

    /// The first rule whose `path_regex` matches `rel` (unanchored, as sops does), or
    /// a rule without `path_regex`.
    pub fn rule_for(&self, rel: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.path_regex.as_ref().is_none_or(|re| re.is_match(rel)))
    }
}

impl Rule {
    fn from_raw(raw: RawRule) -> std::result::Result<Rule, String> {
        let has_keys = [
            raw.age.is_some(),
            raw.pgp.is_some(),
            raw.kms.is_some(),
            raw.gcp_kms.is_some(),
            raw.azure_keyvault.is_some(),
            raw.hc_vault_transit_uri.is_some(),
            !raw.key_groups.is_empty(),
        ]
        .contains(&true);
        let path_regex = raw
            .path_regex
            .map(|re| Regex::new(&re).map_err(|e| format!("invalid path_regex {re:?}: {e}")))
            .transpose()?;
        let mut age_recipients: BTreeSet<String> = match raw.age {
            Some(AgeField::One(list)) => split_recipients(&list),
            Some(AgeField::Many(items)) => items.iter().flat_map(|s| split_recipients(s)).collect(),
            None => BTreeSet::new(),
        };
        age_recipients.extend(
            raw.key_groups
                .iter()
                .flat_map(|g| g.age.iter().flat_map(|s| split_recipients(s))),
        );
        Ok(Rule {
            path_regex,
            age_recipients,
            has_keys,
        })
    }
}

fn split_recipients(list: &str) -> BTreeSet<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
creation_rules:
  - path_regex: ^clusters/[^/]+(/[^/]+)?/break-glass-kubeconfig\.enc\.yaml$
    age: >-
      age1aaa,
      age1bbb
  - path_regex: secrets\.enc\.yaml$
    encrypted_regex: ^(data|stringData)$
    key_groups:
      - age: [age1ccc]
  - age: [age1ddd, "age1eee,age1fff"]
"#;

    #[test]
    fn first_matching_rule_wins() {
        let config = SopsConfig::parse(CONFIG).unwrap();
        let bg = config
            .rule_for("clusters/eu/dc1/break-glass-kubeconfig.enc.yaml")
            .unwrap();
        assert_eq!(
            bg.age_recipients,
            BTreeSet::from(["age1aaa".into(), "age1bbb".into()])
        );
        let secrets = config.rule_for("clusters/alpha/secrets.enc.yaml").unwrap();
        assert_eq!(secrets.age_recipients, BTreeSet::from(["age1ccc".into()]));
        let fallback = config.rule_for("other.yaml").unwrap();
        assert_eq!(fallback.age_recipients.len(), 3);
    }

    #[test]
    fn no_rule_and_bad_regex() {
        let config =
            SopsConfig::parse("creation_rules:\n  - path_regex: ^a$\n    age: age1x\n").unwrap();
        assert!(config.rule_for("b").is_none());
        let err =
            SopsConfig::parse("creation_rules:\n  - path_regex: '('\n    age: a\n").unwrap_err();
        assert!(err.contains("invalid path_regex"), "{err}");
    }

    #[test]
    fn configs_sops_cannot_use_are_refused() {
        for (text, why) in [
            ("creation_rules: [\n", ""),
            ("", "no creation_rules"),
            ("creation_rules: []\n", "no creation_rules"),
            ("stores: {}\n", "no creation_rules"),
            (
                "creation_rules:\n  - path_regex: x\n",
                "creation rule 1 names no keys",
            ),
            (
                "creation_rules:\n  - age: a\n  - path_regex: y\n",
                "creation rule 2",
            ),
        ] {
            let err = SopsConfig::parse(text)
                .and_then(|c| c.check_usable())
                .err()
                .unwrap_or_else(|| panic!("{text:?} accepted"));
            assert!(err.contains(why), "{text:?}: {err}");
        }
        for ok in [
            "creation_rules:\n  - pgp: ABC\n",
            "creation_rules:\n  - kms: arn:x\n",
            "creation_rules:\n  - key_groups:\n      - pgp: [ABC]\n",
        ] {
            let usable = SopsConfig::parse(ok).and_then(|c| c.check_usable());
            assert_eq!(usable, Ok(()), "{ok:?}");
        }
    }
}
