//! The in-process reader against the real sops: for every generated file, our plaintext
//! must equal `sops decrypt`'s byte for byte. CI runs a sample (240 files); the full set
//! is `scripts/sops-differential.sh` (KUBE_DC_DIFFERENTIAL_FILES=1200).

use std::time::{Duration, Instant};

use kube_dc::sops_reader;

use crate::fixture::{Fixture, Identity, RECIPIENTS, RULES};
use crate::generator::{Rng, plaintext};

const DEFAULT_FILES: usize = 240;
const SEED: u64 = 0x005e_ed0f_50b5;
/// sops processes at a time: encryption and decryption dominate the test's time.
const WORKERS: usize = 4;

/// A master key of another kind beside the age stanzas: sops tries age first, so the
/// file still decrypts with the age key alone.
const FAKE_KMS: &str = "sops:\n    kms:\n        - arn: arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000\n          created_at: \"2026-11-27T00:00:00Z\"\n          enc: AQICAHhfakefakefakefake\n          aws_profile: \"\"\n";
const FAKE_PGP: &str = "sops:\n    pgp:\n        - created_at: \"2026-11-27T00:00:00Z\"\n          enc: |-\n            -----BEGIN PGP MESSAGE-----\n\n            wcBMAfakefakefake\n            -----END PGP MESSAGE-----\n          fp: 0000000000000000000000000000000000000000\n";

struct Case {
    rel: String,
    identity: Identity,
    plaintext: String,
}

fn cases(count: usize) -> Vec<Case> {
    (0..count)
        .map(|i| {
            let rule = RULES[i % RULES.len()].0;
            let set = RECIPIENTS[(i / RULES.len()) % RECIPIENTS.len()];
            let identity = match (set, i % 2) {
                ("two", 0) => Identity::Second,
                ("ssh", 1) => Identity::Ssh,
                _ => Identity::First,
            };
            Case {
                rel: format!("{rule}/{set}/f{i}.yaml"),
                identity,
                plaintext: plaintext(&mut Rng::new(SEED + i as u64)),
            }
        })
        .collect()
}

/// Adds a fake kms or pgp stanza to every document's metadata of some files.
fn with_other_master_keys(i: usize, ciphertext: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(ciphertext).unwrap();
    let fake = match i % 8 {
        3 => FAKE_KMS,
        5 => FAKE_PGP,
        _ => return text.into_bytes(),
    };
    text.replace("\nsops:\n", &format!("\n{fake}")).into_bytes()
}

/// The one layout the reader leaves to the sops binary in these files: go-yaml's parser
/// moves a comment that sits between a nested block and a shallower line, and only sops
/// itself knows where to.
const ALLOWED_FALLBACK: &str = "sops moves it";
/// At most this share of the files may need the binary.
const MAX_FALLBACK_PERCENT: usize = 2;

struct Outcome {
    mismatches: Vec<String>,
    fell_back: bool,
    sops_time: Duration,
    reader_time: Duration,
}

fn run_case(fixture: &Fixture, i: usize, case: &Case) -> Outcome {
    let sops_started = Instant::now();
    let ciphertext = with_other_master_keys(i, fixture.encrypt(&case.rel, &case.plaintext));
    let enc_rel = case.rel.replace(".yaml", ".enc.yaml");
    std::fs::write(fixture.root().join(&enc_rel), &ciphertext).unwrap();
    let expected = fixture.sops_decrypt(&enc_rel, case.identity);
    let sops_time = sops_started.elapsed();
    let mut mismatches = Vec::new();
    let mut fell_back = false;
    if !expected.status.success() {
        mismatches.push(format!(
            "{enc_rel}: sops decrypt failed: {}",
            String::from_utf8_lossy(&expected.stderr)
        ));
    }
    let ring = fixture.keyring(case.identity);
    let reader_started = Instant::now();
    let ours = sops_reader::decrypt_with(&ciphertext, &ring);
    let reader_time = reader_started.elapsed();
    match ours {
        Ok(plain) if plain.as_slice() == expected.stdout.as_slice() => {}
        Ok(plain) => mismatches.push(format!(
            "{enc_rel}: plaintext differs from sops decrypt\n{}",
            first_difference(&expected.stdout, &plain)
        )),
        Err(sops_reader::Failure::Unsupported(why)) if why.contains(ALLOWED_FALLBACK) => {
            fell_back = true;
        }
        Err(e) => mismatches.push(format!("{enc_rel}: the reader failed: {e:?}")),
    }
    Outcome {
        mismatches,
        fell_back,
        sops_time,
        reader_time,
    }
}

fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let (e, a) = (
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(actual),
    );
    let (el, al): (Vec<&str>, Vec<&str>) = (e.lines().collect(), a.lines().collect());
    let at = el
        .iter()
        .zip(&al)
        .position(|(x, y)| x != y)
        .unwrap_or(el.len().min(al.len()));
    format!(
        "line {}:\n  sops: {:?}\n  ours: {:?}",
        at + 1,
        el.get(at),
        al.get(at)
    )
}

#[test]
fn plaintext_equals_sops_decrypt_byte_for_byte() {
    let count = std::env::var("KUBE_DC_DIFFERENTIAL_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_FILES);
    let fixture = Fixture::new();
    let cases = cases(count);
    assert_covers_every_feature(&cases);
    let started = Instant::now();
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (fixture, cases) = (&fixture, &cases);
                scope.spawn(move || {
                    (w..cases.len())
                        .step_by(WORKERS)
                        .map(|i| run_case(fixture, i, &cases[i]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mismatches: Vec<&String> = outcomes.iter().flat_map(|o| &o.mismatches).collect();
    let sops_time: Duration = outcomes.iter().map(|o| o.sops_time).sum();
    let reader_time: Duration = outcomes.iter().map(|o| o.reader_time).sum();
    let fell_back = outcomes.iter().filter(|o| o.fell_back).count();
    eprintln!(
        "differential: {count} files in {:.1?} wall ({WORKERS} workers); sops encrypt+decrypt {:.1?} CPU-serial, in-process reader {:.1?}; {} identical, {fell_back} left to the sops binary (a comment sops moves)",
        started.elapsed(),
        sops_time,
        reader_time,
        count - fell_back - mismatches.len()
    );
    assert!(
        fell_back * 100 <= count * MAX_FALLBACK_PERCENT,
        "{fell_back} of {count} files were left to the sops binary"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {count} files differ from sops decrypt:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(10)
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// The sample is only worth something if it has every rule, recipient set and shape.
fn assert_covers_every_feature(cases: &[Case]) {
    for (rule, _) in RULES {
        for set in RECIPIENTS {
            assert!(
                cases
                    .iter()
                    .any(|c| c.rel.starts_with(&format!("{rule}/{set}/"))),
                "no file for {rule} with {set}"
            );
        }
    }
    let has = |what: &str| cases.iter().any(|c| c.plaintext.contains(what));
    for feature in [
        "\n---\n",
        "# comment in a list",
        "# trailing comment",
        ": 0777",
        ": 1e6",
        ": 2001-12-14t21:59:43.10-05:00",
        ": ~",
        ": \"\"",
        ": yes",
        ": |",
        "- - ",
        ": {}",
    ] {
        assert!(has(feature), "no generated file has {feature:?}");
    }
}
