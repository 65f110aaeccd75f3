//! Canary secrets. Every fixture that holds a credential holds one of these, and every
//! byte kube-dc prints in the test suite is checked for [`MARKER`]: per case by the
//! hostile-input harness, and for the whole suite by `scripts/test.sh`, which greps the
//! transcripts that [`super::kube_dc_bin`] records.

/// Appears in every canary and nowhere else: finding it in output means a leak.
pub const MARKER: &str = "KDCcanary";

/// The fixture's break-glass token: shaped like a service-account JWT so that every rule
/// that looks for tokens sees it as one.
pub const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNhbmFyeSJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.KDCcanary-fixture-token-not-a-credential";

/// A second canary for inputs other than the fixture file (plugins, fake sops, hooks).
pub const OTHER: &str = "KDCcanary-other-secret-value-0123456789abcdef";

/// Panics (naming `what`) when `bytes` contain the canary marker.
pub fn assert_absent(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.contains(MARKER),
        "{what} contains a canary secret ({MARKER}):\n{text}"
    );
}
