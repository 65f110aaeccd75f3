//! The reader parses files from the fleet repo, i.e. hostile input: arbitrary bytes and
//! mutations of a real sops file must come back as a `Failure` or plaintext, never a
//! panic, and quickly.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::{Env, Keyring, decrypt_with};

const FIXTURE: &[u8] =
    include_bytes!("../../fleet-fixture/clusters/alpha/break-glass-kubeconfig.enc.yaml");
const FIXTURE_KEY: &str = include_str!("../../fleet-fixture/TEST-ONLY-age-key.txt");

/// Generous for a debug build on a loaded machine; a hang or blow-up is far past it.
const BOUND: Duration = Duration::from_secs(5);

fn ring() -> Keyring {
    Keyring::load(&Env {
        age_key: Some(Zeroizing::new(FIXTURE_KEY.to_owned())),
        ..Env::default()
    })
}

/// Decrypts (the result does not matter, only that it returns) and checks the time.
fn returns_in_time(ring: &Keyring, text: &[u8]) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let _ = decrypt_with(text, ring);
    let took = started.elapsed();
    prop_assert!(
        took < BOUND,
        "decrypt took {took:?} on {} bytes",
        text.len()
    );
    Ok(())
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn apply(edits: &[Edit]) -> Vec<u8> {
    let mut text = FIXTURE.to_vec();
    for edit in edits {
        let at = |i: usize, len: usize| i % (len + 1);
        match *edit {
            Edit::Flip(i, mask) if !text.is_empty() => {
                let i = i % text.len();
                text[i] ^= mask.max(1);
            }
            Edit::Insert(i, b) => text.insert(at(i, text.len()), b),
            Edit::Delete(i) if !text.is_empty() => {
                text.remove(i % text.len());
            }
            Edit::Truncate(i) => text.truncate(at(i, text.len())),
            _ => {}
        }
    }
    text
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, m)| Edit::Flip(i, m)),
        // YAML's structural bytes, so edits reach the parser's corners, not only values.
        3 => (any::<usize>(), prop::sample::select(b":-[]{}&*!|>'\"#\n \t%@`,?".to_vec()))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        3 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

#[test]
fn the_unmutated_fixture_decrypts() {
    // Without this the mutations below could all be failing at the first step.
    let plain = decrypt_with(FIXTURE, &ring())
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    assert!(plain.starts_with(b"apiVersion"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(text in prop::collection::vec(any::<u8>(), 0..4096)) {
        returns_in_time(&ring(), &text)?;
    }

    #[test]
    fn mutated_sops_files_never_panic(edits in prop::collection::vec(edit(), 1..8)) {
        returns_in_time(&ring(), &apply(&edits))?;
    }
}
