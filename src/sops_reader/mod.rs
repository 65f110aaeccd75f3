//! `sops decrypt` for YAML files, in-process: the data key is unwrapped from an age
//! stanza with the user's identities, each value opened with AES-256-GCM, the MAC
//! verified, and the plaintext printed byte-identical to what sops 3.11 prints, in
//! zeroizing memory.
//!
//! What it does not do (Shamir key groups, pgp/kms-only files, passphrase or plugin
//! identities, comment-regex rules, sops versions newer than it knows, layouts sops never
//! writes) comes back as [`Failure::Unsupported`], for the caller to use the sops binary;
//! what is refused outright (YAML anchors and aliases) as [`Failure::Refused`].

mod cipher;
mod document;
mod failure;
mod keyring;
mod metadata;
mod scalar;
mod secret_buf;
mod timestamp;

#[cfg(test)]
mod fuzz;

use std::io::Read;

use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use cipher::{DataKey, OpenError, Opened};
use document::{Leaf, LeafKind, Outline};
pub use failure::Failure;
pub use keyring::{Env, Keyring};
use metadata::Metadata;
use scalar::Value;
use secret_buf::SecretBuf;

/// `sops.MACOnlyEncryptedInitialization`: hashed first when only encrypted values count.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Decrypts a sops YAML file with the identities of this process's environment.
pub fn decrypt(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
    decrypt_with(text, &keyring::keyring())
}

/// Decrypts a sops YAML file with the given identities.
pub fn decrypt_with(text: &[u8], ring: &Keyring) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let text =
        std::str::from_utf8(text).map_err(|_| Failure::Malformed("not UTF-8 text".into()))?;
    let outline = match document::outline(text) {
        Err(Failure::Unsupported(_)) if !has_top_level_sops_key(text) => Err(Failure::NotSops),
        other => other,
    }?;
    let meta = Metadata::read(outline.metadata)?;
    let key = data_key(&meta, ring)?;
    let (plaintext, computed_mac) = open_leaves(text, &outline, &meta, &key)?;
    verify_mac(&meta, &key, &computed_mac)?;
    Ok(plaintext)
}

fn has_top_level_sops_key(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("sops:"))
}

/// The first age stanza, in file order, that one of the identities unwraps.
fn data_key(meta: &Metadata, ring: &Keyring) -> Result<DataKey, Failure> {
    if meta.raw.age.is_empty() {
        return Err(Failure::Unsupported(
            "a file without age recipients (pgp/kms/vault only)".into(),
        ));
    }
    if let Some(key) = meta
        .raw
        .age
        .iter()
        .find_map(|s| unwrap_stanza(&s.enc, ring))
    {
        return Ok(key);
    }
    if !ring.needs_binary.is_empty() || meta.raw.has_other_master_keys() {
        let mut what = ring.needs_binary.clone();
        if meta.raw.has_other_master_keys() {
            what.push("the file's pgp/kms/vault keys".into());
        }
        return Err(Failure::Unsupported(format!(
            "no age identity here unwraps the data key; only sops can try {}",
            what.join(", ")
        )));
    }
    let detail = key_search_report(ring);
    if ring.identities.is_empty() {
        Err(Failure::NoKey(format!("no age identity found. {detail}")))
    } else {
        Err(Failure::WrongKey(format!(
            "none of the {} age identities found did match any of the file's {} recipients. {detail}",
            ring.identities.len(),
            meta.raw.age.len()
        )))
    }
}

fn key_search_report(ring: &Keyring) -> String {
    let mut parts = Vec::new();
    if !ring.problems.is_empty() {
        parts.push(format!(
            "Errors while loading age identities: {}.",
            ring.problems.join("; ")
        ));
    }
    if !ring.empty_places.is_empty() {
        parts.push(format!(
            "Did not find keys in: {}.",
            ring.empty_places.join(", ")
        ));
    }
    parts.join(" ")
}

fn unwrap_stanza(armored: &str, ring: &Keyring) -> Option<DataKey> {
    let reader = age::armor::ArmoredReader::new(armored.as_bytes());
    let decryptor = age::Decryptor::new(reader).ok()?;
    if decryptor.is_scrypt() {
        return None;
    }
    let mut stream = decryptor
        .decrypt(ring.identities.iter().map(keyring::Identity::as_dyn))
        .ok()?;
    let mut key = Zeroizing::new(Vec::with_capacity(64));
    stream.read_to_end(&mut key).ok()?;
    let key: [u8; 32] = key.as_slice().try_into().ok()?;
    Some(Zeroizing::new(key))
}

/// Opens every value and comment sops would, writing the plaintext as it goes, and
/// hashes the values for the MAC.
fn open_leaves(
    text: &str,
    outline: &Outline,
    meta: &Metadata,
    key: &DataKey,
) -> Result<(Zeroizing<Vec<u8>>, String), Failure> {
    let mut out = SecretBuf::with_capacity(text.len() + 256);
    let mut hasher = Sha512::new();
    let mac_only = meta.raw.mac_only_encrypted;
    if mac_only {
        hasher.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut copier = Copier {
        text,
        cuts: &outline.cuts,
        pos: 0,
    };
    for leaf in &outline.leaves {
        let encrypted = meta.rule.encrypts(&leaf.path);
        if let Some(item_start) = leaf
            .item_start
            .filter(|_| encrypted && is_comment_item(leaf))
        {
            copier.copy_to(&mut out, item_start)?;
            write_comment_item(&mut out, leaf, key)?;
            copier.pos = leaf.span.end;
            continue;
        }
        copier.copy_to(&mut out, leaf.span.start)?;
        let swallow_newline = match &leaf.kind {
            LeafKind::Comment { text: comment } => {
                write_comment(&mut out, leaf, comment, encrypted, key)?;
                false
            }
            LeafKind::Scalar { literal_indent, .. } => {
                let value = leaf.kind.source_value()?;
                let (opened, ends_line) = if encrypted && !matches!(value, Value::Null) {
                    open_value(&mut out, leaf, &value, *literal_indent, key)?
                } else {
                    out.push(text[leaf.span.clone()].as_bytes());
                    (value, false)
                };
                if let Some(bytes) = opened.mac_bytes().filter(|_| !mac_only || encrypted) {
                    hasher.update(bytes.as_slice());
                }
                ends_line
            }
        };
        copier.pos = leaf.span.end;
        if swallow_newline && text[copier.pos..].starts_with('\n') {
            copier.pos += 1;
        }
    }
    copier.copy_to(&mut out, text.len())?;
    let mac = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    Ok((out.into_inner(), mac))
}

/// Copies the text between leaves, leaving out the `sops:` entries.
struct Copier<'a> {
    text: &'a str,
    cuts: &'a [std::ops::Range<usize>],
    pos: usize,
}

impl Copier<'_> {
    fn copy_to(&mut self, out: &mut SecretBuf, until: usize) -> Result<(), Failure> {
        while self.pos < until {
            let cut = self
                .cuts
                .iter()
                .find(|c| c.end > self.pos && c.start < until);
            let (end, next) = match cut {
                Some(c) => (c.start.max(self.pos), c.end),
                None => (until, until),
            };
            // Offsets come from the parser; one outside the text is a parser fault, not a panic.
            let piece = self.text.as_bytes().get(self.pos..end).ok_or_else(|| {
                Failure::Unsupported(format!("a YAML offset outside the file ({end})"))
            })?;
            out.push(piece);
            self.pos = next;
        }
        Ok(())
    }
}

/// A comment in an encrypted place is decrypted if it opens; sops leaves one that does
/// not as it is (files from older sops versions have clear comments there).
fn write_comment(
    out: &mut SecretBuf,
    leaf: &Leaf,
    comment: &str,
    encrypted: bool,
    key: &DataKey,
) -> Result<(), Failure> {
    let opened = encrypted.then(|| cipher::open(key, comment, &leaf.aad()));
    match opened {
        Some(Ok(Opened::Comment(text))) => {
            out.push(b"#");
            out.push(text.as_bytes());
        }
        Some(Ok(Opened::Value(_))) => {
            return Err(Failure::Unsupported(format!(
                "a comment under {} encrypted as a value",
                where_(leaf)
            )));
        }
        Some(Err(_)) | None => {
            out.push(b"#");
            out.push(comment.as_bytes());
        }
    }
    Ok(())
}

/// sops 3.11 encrypts a comment inside a list into a list item; decrypted, it is a
/// comment again, printed on its own line where the item was, and not part of the MAC.
fn is_comment_item(leaf: &Leaf) -> bool {
    matches!(&leaf.kind, LeafKind::Scalar { text, plain: true, .. }
        if text.starts_with("ENC[") && text.ends_with(",type:comment]"))
}

fn write_comment_item(out: &mut SecretBuf, leaf: &Leaf, key: &DataKey) -> Result<(), Failure> {
    let LeafKind::Scalar { text, .. } = &leaf.kind else {
        return Ok(());
    };
    match cipher::open(key, text, &leaf.aad()) {
        Ok(Opened::Comment(comment)) => {
            out.push(b"#");
            out.push(comment.as_bytes());
            Ok(())
        }
        Ok(Opened::Value(_)) => Err(Failure::Unsupported(format!(
            "a list item under {} of two types",
            where_(leaf)
        ))),
        Err(e) => Err(open_failure(e, leaf)),
    }
}

fn open_failure(e: OpenError, leaf: &Leaf) -> Failure {
    match e {
        OpenError::NotSealed => Failure::Tampered(format!(
            "the value at {} is not in sops' encrypted format",
            where_(leaf)
        )),
        OpenError::Forged => Failure::Tampered(format!(
            "the value at {} failed authentication",
            where_(leaf)
        )),
        OpenError::BadType(kind) => Failure::Tampered(format!(
            "the value at {} does not decrypt to its declared type {kind:?}",
            where_(leaf)
        )),
    }
}

/// Opens one encrypted value and writes it; returns it (for the MAC) and whether the
/// written text ends its line.
fn open_value(
    out: &mut SecretBuf,
    leaf: &Leaf,
    value: &Value,
    literal_indent: usize,
    key: &DataKey,
) -> Result<(Value, bool), Failure> {
    let Value::Str(sealed) = value else {
        return Err(Failure::Unsupported(format!(
            "a clear non-string value at {}, where sops expects an encrypted one",
            where_(leaf)
        )));
    };
    let opened = cipher::open(key, sealed, &leaf.aad()).map_err(|e| open_failure(e, leaf))?;
    let Opened::Value(plain) = opened else {
        return Err(Failure::Unsupported(format!(
            "a value at {} encrypted as a comment",
            where_(leaf)
        )));
    };
    let ends_line = if sealed.is_empty() {
        out.push(b"\"\"");
        false
    } else {
        scalar::emit(out, &plain, literal_indent)
            .map_err(|what| Failure::Unsupported(format!("{what} at {}", where_(leaf))))?
    };
    Ok((plain, ends_line))
}

/// A leaf's place for messages: its key path, never its value.
fn where_(leaf: &Leaf) -> String {
    if leaf.path.is_empty() {
        "the top level".into()
    } else {
        format!("key {:?}", leaf.path.join("."))
    }
}

fn verify_mac(meta: &Metadata, key: &DataKey, computed: &str) -> Result<(), Failure> {
    let stored = meta.raw.mac.as_deref().unwrap_or_default();
    match cipher::open(key, stored, &meta.mac_aad) {
        Ok(Opened::Value(Value::Str(mac))) if mac.as_str() == computed => Ok(()),
        Ok(_) if stored.is_empty() => Err(Failure::MacMismatch("the file has no MAC".into())),
        Ok(_) => Err(Failure::MacMismatch(
            "the MAC does not match the file's values".into(),
        )),
        Err(_) => Err(Failure::MacMismatch(
            "the MAC cannot be decrypted (it or lastmodified was edited)".into(),
        )),
    }
}
