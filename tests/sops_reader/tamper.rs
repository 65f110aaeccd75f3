//! Altered files fail in the reader in the same class as in sops: each case runs the real
//! `sops decrypt` and the reader on the same bytes and checks both against the class.

use kube_dc::sops_reader::{self, Failure};

use crate::fixture::{Fixture, Identity};

const PLAIN: &str = "apiVersion: v1\nkind: Config\ntoken: secret-token-value\npassword: hunter2\nnested:\n    user: admin\n    list:\n        - one\n        - two\nnote_unencrypted: clear\n";

/// The classes sops' exit codes draw.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    NoKey,
    WrongKey,
    Tampered,
    Mac,
    NotSops,
    Malformed,
}

impl Class {
    fn sops_exit_code(self) -> i32 {
        match self {
            Class::NoKey | Class::WrongKey => 128,
            Class::Tampered => 25,
            Class::Mac => 51,
            Class::NotSops | Class::Malformed => 1,
        }
    }

    fn of(failure: &Failure) -> Option<Class> {
        Some(match failure {
            Failure::NoKey(_) => Class::NoKey,
            Failure::WrongKey(_) => Class::WrongKey,
            Failure::Tampered(_) => Class::Tampered,
            Failure::MacMismatch(_) => Class::Mac,
            Failure::NotSops => Class::NotSops,
            Failure::Malformed(_) => Class::Malformed,
            Failure::Unsupported(_) | Failure::Refused(_) => return None,
        })
    }
}

fn line_of<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}"))
}

fn enc_of(line: &str) -> &str {
    &line[line.find("ENC[").expect("an encrypted value")..]
}

/// Replaces one character of the base64 after `field` in `line`.
fn flip_after(text: &str, line: &str, field: &str) -> String {
    let at = line.find(field).unwrap() + field.len();
    let mut changed = line.to_string();
    let c = if &line[at..=at] == "A" { "B" } else { "A" };
    changed.replace_range(at..=at, c);
    text.replace(line, &changed)
}

fn swap_lines(text: &str, a: &str, b: &str) -> String {
    text.replace(a, "\u{0}A").replace(b, a).replace("\u{0}A", b)
}

#[test]
fn altered_files_fail_in_the_same_class_as_sops() {
    let fixture = Fixture::new();
    let file = String::from_utf8(fixture.encrypt("default/one/base.yaml", PLAIN)).unwrap();
    let other = String::from_utf8(fixture.encrypt("default/one/other.yaml", PLAIN)).unwrap();
    let token = line_of(&file, "token: ");
    let password = line_of(&file, "password: ");
    let kind = line_of(&file, "kind: ");
    let mac = line_of(&file, "    mac: ");
    let lastmodified = line_of(&file, "    lastmodified: ");
    let user = line_of(&file, "    user: ");
    let other_token = line_of(&other, "token: ");
    let other_mac = line_of(&other, "    mac: ");

    // Most cases alter the file and read it with the first recipient's key.
    let first = |name, text, class| (name, text, Identity::First, class);
    let cases: Vec<(&str, String, Identity, Class)> = vec![
        first(
            "value flipped",
            flip_after(&file, token, "data:"),
            Class::Tampered,
        ),
        first(
            "tag flipped",
            flip_after(&file, token, "tag:"),
            Class::Tampered,
        ),
        first(
            "value moved between keys",
            file.replace(token, &format!("token: {}", enc_of(password))),
            Class::Tampered,
        ),
        first(
            "value copied from another file",
            file.replace(token, other_token),
            Class::Tampered,
        ),
        first(
            "value no longer encrypted",
            file.replace(token, "token: clear-now"),
            Class::Tampered,
        ),
        first("MAC flipped", flip_after(&file, mac, "data:"), Class::Mac),
        first(
            "MAC emptied",
            file.replace(mac, "    mac: \"\""),
            Class::Mac,
        ),
        first(
            "MAC copied from another file",
            file.replace(mac, other_mac),
            Class::Mac,
        ),
        first(
            "lastmodified edited",
            file.replace(lastmodified, "    lastmodified: \"2020-01-01T00:00:00Z\""),
            Class::Mac,
        ),
        first(
            "key added (clear)",
            file.replace(kind, &format!("{kind}\nextra_unencrypted: added")),
            Class::Mac,
        ),
        first(
            "key added (a copied encrypted value)",
            file.replace(kind, &format!("{kind}\nextra: {}", enc_of(token))),
            Class::Tampered,
        ),
        first(
            "key removed",
            file.replace(&format!("{kind}\n"), ""),
            Class::Mac,
        ),
        first(
            "keys reordered",
            swap_lines(&file, token, password),
            Class::Mac,
        ),
        first(
            "duplicate top-level key",
            file.replace(token, &format!("{token}\n{token}")),
            Class::Malformed,
        ),
        first(
            "duplicate nested key",
            file.replace(user, &format!("{user}\n{user}")),
            Class::Mac,
        ),
        (
            "wrong key",
            file.clone(),
            Identity::Stranger,
            Class::WrongKey,
        ),
        ("no key", file.clone(), Identity::Nothing, Class::NoKey),
        first("not a sops file", PLAIN.to_string(), Class::NotSops),
        first("not YAML", "a: [unclosed\n".to_string(), Class::Malformed),
    ];
    let mut failures = Vec::new();
    for (name, text, identity, class) in cases {
        let rel = format!("default/one/{}.enc.yaml", name.replace(' ', "-"));
        std::fs::write(fixture.root().join(&rel), &text).unwrap();
        let sops = fixture.sops_decrypt(&rel, identity);
        let sops_code = sops.status.code();
        let ours = sops_reader::decrypt_with(text.as_bytes(), &fixture.keyring(identity));
        let our_class = ours.as_ref().err().and_then(Class::of);
        if sops_code != Some(class.sops_exit_code()) || our_class != Some(class) {
            failures.push(format!(
                "{name}: expected {class:?}; sops exit {sops_code:?} ({}), reader {:?}",
                String::from_utf8_lossy(&sops.stderr).trim(),
                ours.as_ref().map(|_| "decrypted")
            ));
        }
        if let Err(e) = &ours {
            let shown = format!("{e:?}");
            for secret in ["secret-token-value", "hunter2"] {
                assert!(
                    !shown.contains(secret),
                    "{name}: the error shows plaintext: {shown}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn what_the_reader_does_not_handle_is_left_to_sops() {
    let fixture = Fixture::new();
    let shamir = fixture.encrypt("shamir/file.yaml", PLAIN);
    let newer = String::from_utf8(fixture.encrypt("default/one/newer.yaml", PLAIN))
        .unwrap()
        .replace("    version: 3.11.0", "    version: 3.99.0");
    for (name, text) in [
        ("Shamir key groups", shamir),
        ("a newer sops version", newer.into_bytes()),
    ] {
        let ours = sops_reader::decrypt_with(&text, &fixture.keyring(Identity::First));
        assert!(
            matches!(ours, Err(Failure::Unsupported(_))),
            "{name}: expected Unsupported, got {:?}",
            ours.map(|_| "decrypted")
        );
    }
}

/// sops would expand aliases (without a limit); the reader refuses them instead.
#[test]
fn an_anchor_is_refused_not_left_to_sops() {
    let fixture = Fixture::new();
    let anchored = String::from_utf8(fixture.encrypt("default/one/a.yaml", PLAIN))
        .unwrap()
        .replace("note_unencrypted: clear", "note_unencrypted: &a clear");
    let ours = sops_reader::decrypt_with(anchored.as_bytes(), &fixture.keyring(Identity::First));
    assert!(
        matches!(&ours, Err(Failure::Refused(why)) if why.contains("anchor or alias")),
        "expected Refused, got {:?}",
        ours.map(|_| "decrypted")
    );
}
