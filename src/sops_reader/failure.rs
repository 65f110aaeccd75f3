//! What every part of the reader reports: why a file did not decrypt, and the key that
//! marks sops' metadata.

/// The top-level key of sops' metadata in every document.
pub const SOPS_KEY: &str = "sops";

/// Why a file did not decrypt, in the classes sops' exit codes draw. No variant carries
/// any decrypted text.
#[derive(Debug)]
pub enum Failure {
    /// No `sops:` metadata (sops: "sops metadata not found").
    NotSops,
    /// Not YAML, or metadata sops itself rejects (sops exit code 1).
    Malformed(String),
    /// No age identity found at all (exit code 128).
    NoKey(String),
    /// Identities found, none of them a recipient of the file (exit code 128).
    WrongKey(String),
    /// A value failed to open (exit code 25).
    Tampered(String),
    /// The MAC does not match the values (exit code 51).
    MacMismatch(String),
    /// Something only the sops binary handles.
    Unsupported(String),
    /// Something kube-dc refuses even though sops might read it (anchors and aliases):
    /// never handed to the binary.
    Refused(String),
}
