//! The `sops:` entry of the first document: which values are encrypted, the MAC and its
//! date, and whether this reader knows the file's format.

use regex::Regex;

use super::failure::Failure;
use super::timestamp::Timestamp;
use crate::sops_file::SopsMetadata;

/// The newest sops minor version whose files this reader was checked against.
const NEWEST_KNOWN_MINOR: u32 = 11;

/// sops' default when a file names no rule.
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// Which values sops encrypted, by the keys on their path (`shouldBeEncrypted`).
#[derive(Debug)]
pub enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
}

impl Rule {
    pub fn encrypts(&self, path: &[String]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
        }
    }
}

/// What the reader uses of the metadata.
#[derive(Debug)]
pub struct Metadata {
    pub raw: SopsMetadata,
    pub rule: Rule,
    /// The MAC's additional data: `lastmodified` as Go's `time.RFC3339`.
    pub mac_aad: String,
}

impl Metadata {
    /// Parses the first document's `sops:` entry (`None`: there is none).
    pub fn read(entry: Option<&str>) -> Result<Metadata, Failure> {
        let entry = entry.ok_or(Failure::NotSops)?;
        let raw = SopsMetadata::from_yaml(entry)
            .map_err(|e| Failure::Malformed(format!("its sops metadata is unreadable: {e}")))?
            .ok_or(Failure::NotSops)?;
        check_version(raw.version.as_deref())?;
        if !raw.key_groups.is_empty() {
            return Err(Failure::Unsupported("Shamir key groups".into()));
        }
        let lastmodified = raw.lastmodified.as_deref().unwrap_or_default();
        let mac_aad = Timestamp::parse_rfc3339(lastmodified)
            .ok_or_else(|| {
                Failure::Malformed(format!(
                    "its sops lastmodified {lastmodified:?} is not an RFC 3339 time"
                ))
            })?
            .rfc3339();
        let rule = rule(&raw)?;
        Ok(Metadata { raw, rule, mac_aad })
    }
}

fn check_version(version: Option<&str>) -> Result<(), Failure> {
    let known = version.and_then(|v| {
        let mut parts = v.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        Some(major == 3 && minor <= NEWEST_KNOWN_MINOR)
    });
    match known {
        Some(true) => Ok(()),
        _ => Err(Failure::Unsupported(format!(
            "sops format version {:?} (known: 3.0 to 3.{NEWEST_KNOWN_MINOR})",
            version.unwrap_or_default()
        ))),
    }
}

fn rule(raw: &SopsMetadata) -> Result<Rule, Failure> {
    if raw.encrypted_comment_regex.is_some() || raw.unencrypted_comment_regex.is_some() {
        return Err(Failure::Unsupported(
            "encrypted_comment_regex / unencrypted_comment_regex".into(),
        ));
    }
    let regex =
        |r: &str| Regex::new(r).map_err(|_| Failure::Unsupported(format!("the rule regex {r:?}")));
    fn set(o: &Option<String>) -> Option<&str> {
        o.as_deref().filter(|s| !s.is_empty())
    }
    let mut rules = Vec::new();
    if let Some(s) = set(&raw.unencrypted_suffix) {
        rules.push(Rule::UnencryptedSuffix(s.into()));
    }
    if let Some(s) = set(&raw.encrypted_suffix) {
        rules.push(Rule::EncryptedSuffix(s.into()));
    }
    if let Some(r) = set(&raw.unencrypted_regex) {
        rules.push(Rule::UnencryptedRegex(regex(r)?));
    }
    if let Some(r) = set(&raw.encrypted_regex) {
        rules.push(Rule::EncryptedRegex(regex(r)?));
    }
    if rules.len() > 1 {
        return Err(Failure::Malformed(
            "its sops metadata names more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex".into(),
        ));
    }
    Ok(rules
        .pop()
        .unwrap_or(Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(extra: &str) -> String {
        format!(
            "sops:\n    lastmodified: \"2026-11-26T15:40:14Z\"\n    mac: x\n    version: 3.11.0\n{extra}"
        )
    }

    #[test]
    fn rules_follow_sops() {
        let m = Metadata::read(Some(&entry(""))).unwrap();
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(m.rule.encrypts(&path(&["a", "b"])));
        assert!(!m.rule.encrypts(&path(&["a_unencrypted", "b"])));
        let m = Metadata::read(Some(&entry("    encrypted_regex: ^data$\n"))).unwrap();
        assert!(m.rule.encrypts(&path(&["data", "x"])));
        assert!(!m.rule.encrypts(&path(&["x"])));
        assert_eq!(m.mac_aad, "2026-11-26T15:40:14Z");
    }

    #[test]
    fn what_is_not_known_falls_back() {
        let newer = entry("").replace("3.11.0", "3.12.0");
        assert!(matches!(
            Metadata::read(Some(&newer)),
            Err(Failure::Unsupported(_))
        ));
        let shamir = entry("    key_groups:\n        - age: []\n");
        assert!(matches!(
            Metadata::read(Some(&shamir)),
            Err(Failure::Unsupported(_))
        ));
        assert!(matches!(Metadata::read(None), Err(Failure::NotSops)));
    }
}
