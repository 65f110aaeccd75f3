//! The `sops:` block of an encrypted file, read without any key.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

const SOPS_KEY: &str = "sops";

#[derive(Debug, Clone, Deserialize)]
pub struct SopsMetadata {
    #[serde(default)]
    pub age: Vec<AgeStanza>,
    pub lastmodified: Option<String>,
    pub mac: Option<String>,
    pub version: Option<String>,
    pub encrypted_regex: Option<String>,
    pub unencrypted_regex: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_suffix: Option<String>,
    pub encrypted_comment_regex: Option<String>,
    pub unencrypted_comment_regex: Option<String>,
    #[serde(default)]
    pub mac_only_encrypted: bool,
    /// Shamir key groups; only counted.
    #[serde(default)]
    pub key_groups: Vec<IgnoredAny>,
    /// Master keys other than age (pgp, kms, gcp_kms, azure_kv, hc_vault); only counted.
    #[serde(default)]
    pub pgp: Vec<IgnoredAny>,
    #[serde(default)]
    pub kms: Vec<IgnoredAny>,
    #[serde(default)]
    pub gcp_kms: Vec<IgnoredAny>,
    #[serde(default)]
    pub azure_kv: Vec<IgnoredAny>,
    #[serde(default)]
    pub hc_vault: Vec<IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgeStanza {
    pub recipient: String,
    /// The data key, age-encrypted (armored) to `recipient`.
    #[serde(default)]
    pub enc: String,
}

/// A whole sops YAML file (one document), anchors and aliases refused as in
/// [`SopsMetadata::from_yaml`].
pub fn parse(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str_with_options(text, no_anchors())
        .map_err(|e| crate::redact::yaml_error(&e))
}

/// The library's options with a budget of zero anchors and zero aliases.
fn no_anchors() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_anchors = 0;
    budget.max_aliases = 0;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

#[derive(Deserialize)]
struct Envelope {
    sops: Option<SopsMetadata>,
}

impl SopsMetadata {
    /// `Ok(None)` when the YAML has no `sops:` block, i.e. is not encrypted.
    /// Anchors and aliases are refused at the first one, never expanded (sops writes none;
    /// see `sops_reader`'s walk for why they are not left to sops either).
    pub fn from_yaml(text: &str) -> Result<Option<SopsMetadata>, String> {
        let envelope: Envelope = serde_saphyr::from_str_with_options(text, no_anchors())
            .map_err(|e| crate::redact::yaml_error(&e))?;
        Ok(envelope.sops)
    }

    /// The metadata of a file already parsed with [`parse`] (one parse serves every check).
    pub fn from_document(doc: &Value) -> Result<Option<SopsMetadata>, String> {
        match doc.get(SOPS_KEY) {
            None | Some(Value::Null) => Ok(None),
            // serde_json's message would quote the offending value: name the entry only.
            Some(entry) => SopsMetadata::deserialize(entry).map(Some).map_err(|_| {
                format!("the `{SOPS_KEY}:` entry does not have the structure sops writes")
            }),
        }
    }

    /// Whether the file has a master key of another kind than age.
    pub fn has_other_master_keys(&self) -> bool {
        [
            &self.pgp,
            &self.kms,
            &self.gcp_kms,
            &self.azure_kv,
            &self.hc_vault,
        ]
        .iter()
        .any(|keys| !keys.is_empty())
    }

    pub fn age_recipients(&self) -> BTreeSet<String> {
        self.age.iter().map(|a| a.recipient.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_aliases_are_refused_not_expanded() {
        let err =
            SopsMetadata::from_yaml("a: &x 1\nb: *x\nsops:\n    version: 3.11.0\n").unwrap_err();
        assert!(err.contains("anchor or alias"), "{err}");
    }

    #[test]
    fn reads_recipients_and_dates() {
        let text = "token: ENC[x]\nsops:\n    age:\n        - recipient: age1a\n          enc: |\n            x\n        - recipient: age1b\n          enc: y\n    lastmodified: \"2026-11-26T15:40:14Z\"\n    mac: ENC[m]\n    version: 3.11.0\n";
        let meta = SopsMetadata::from_yaml(text).unwrap().unwrap();
        assert_eq!(
            meta.age_recipients(),
            BTreeSet::from(["age1a".into(), "age1b".into()])
        );
        assert_eq!(meta.lastmodified.as_deref(), Some("2026-11-26T15:40:14Z"));
        assert_eq!(meta.version.as_deref(), Some("3.11.0"));
        assert!(SopsMetadata::from_yaml("a: b\n").unwrap().is_none());
    }
}
