//! Canary secrets. Every fixture that holds a credential holds one of these, and every
//! byte kube-dc prints in the test suite is checked for them: per case by the hostile-input
//! harness ([`leaked`]), and for the whole suite by `scripts/check-canaries.sh` (same rule),
//! which reads the transcripts that [`super::kube_dc_bin`] records.
//!
//! A leak is the [`MARKER`] or any [`WINDOW`]-character piece of a canary: messages that
//! shorten what they quote (a YAML error snippet cut at 80 columns) leak part of a token,
//! not all of it. Pieces of the generic JWT header every RS256 token starts with are not
//! evidence and are not looked for.

/// Appears in every canary and nowhere else: finding it in output means a leak.
pub const MARKER: &str = "KDCcanary";

/// The fixture's break-glass token: shaped like a service-account JWT so that every rule
/// that looks for tokens sees it as one.
pub const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNhbmFyeSJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.KDCcanary-fixture-token-not-a-credential";

/// A second canary for inputs other than the fixture file (plugins, fake sops, hooks).
pub const OTHER: &str = "KDCcanary-other-secret-value-0123456789abcdef";

/// Every canary, for the leak check (scripts/check-canaries.sh reads these constants).
pub const SECRETS: &[&str] = &[TOKEN, OTHER];

/// The length of a canary piece that counts as a leak.
pub const WINDOW: usize = 20;

/// `{"alg":"RS256","kid":` base64-encoded: shared by every RS256 token with a key id.
const GENERIC_JWT_HEADER: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6";

/// The canary piece found in `text`, if any.
pub fn leaked(text: &str) -> Option<String> {
    if text.contains(MARKER) {
        return Some(MARKER.to_string());
    }
    SECRETS
        .iter()
        .flat_map(|secret| secret.as_bytes().windows(WINDOW))
        .filter_map(|piece| std::str::from_utf8(piece).ok())
        .filter(|piece| !GENERIC_JWT_HEADER.contains(piece))
        .find(|piece| text.contains(piece))
        .map(str::to_string)
}

/// Panics (naming `what`) when `bytes` contain a canary or a piece of one.
pub fn assert_absent(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Some(piece) = leaked(&text) {
        panic!("{what} contains a canary secret ({piece:?}):\n{text}");
    }
}
