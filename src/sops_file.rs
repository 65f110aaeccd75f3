//! The `sops:` block of an encrypted file, read without any key.

use std::collections::BTreeSet;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct SopsMetadata {
    #[serde(default)]
    pub age: Vec<AgeStanza>,
    pub lastmodified: Option<String>,
    pub mac: Option<String>,
    pub version: Option<String>,
    pub encrypted_regex: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgeStanza {
    pub recipient: String,
}

#[derive(Deserialize)]
struct Envelope {
    sops: Option<SopsMetadata>,
}

impl SopsMetadata {
    /// `Ok(None)` when the YAML has no `sops:` block, i.e. is not encrypted.
    pub fn from_yaml(text: &str) -> Result<Option<SopsMetadata>, String> {
        let envelope: Envelope =
            serde_saphyr::from_str(text).map_err(|e| crate::redact::yaml_error(&e))?;
        Ok(envelope.sops)
    }

    pub fn age_recipients(&self) -> BTreeSet<String> {
        self.age.iter().map(|a| a.recipient.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
