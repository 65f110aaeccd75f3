//! The leak rules, on bytes made up to break them.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::*;

const RECIPIENT: &str = "age1lzrr8t3qcgaq85uypap65mkrfepxm76985e9s26dh2d9fejse92sscaswp";
const BG: &str = "clusters/alpha/break-glass-kubeconfig.enc.yaml";

fn config() -> SopsConfig {
    SopsConfig::parse(&format!(
        "creation_rules:\n  - path_regex: ^clusters/[a-z0-9.-]+(/[a-z0-9.-]+)?/break-glass-kubeconfig\\.enc\\.yaml$\n    age: {RECIPIENT}\n"
    ))
    .unwrap()
}

/// A syntactically valid service-account JWT (unsigned; the check never verifies).
pub(super) fn sa_jwt() -> String {
    let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        enc(r#"{"alg":"RS256","kid":"k1"}"#),
        enc(
            r#"{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"kube-system","sub":"system:serviceaccount:kube-system:break-glass"}"#
        ),
        "c2lnbmF0dXJlLWJ5dGVzLXRoYXQtYXJlLW5vdC1jaGVja2Vk"
    )
}

fn encrypted(recipient: &str, mac: bool) -> String {
    let mac = if mac {
        "    mac: ENC[AES256_GCM,data:m]\n"
    } else {
        ""
    };
    format!(
        "kind: ENC[AES256_GCM,data:x,type:str]\nusers:\n    - user:\n        token: ENC[AES256_GCM,data:t,type:str]\nsops:\n    age:\n        - recipient: {recipient}\n          enc: |\n            x\n    lastmodified: \"2026-01-01T00:00:00Z\"\n{mac}    version: 3.11.0\n"
    )
}

fn cluster() -> ClusterName {
    ClusterName::parse("alpha").unwrap()
}

fn rules(found: &[Finding]) -> Vec<(RuleId, usize)> {
    found.iter().map(|f| (f.rule, f.line)).collect()
}

#[test]
fn encrypted_break_glass_file_passes() {
    let config = config();
    let found =
        Scanner::new(&config).break_glass(BG, &cluster(), encrypted(RECIPIENT, true).as_bytes());
    assert_eq!(found, vec![]);
}

#[test]
fn plaintext_break_glass_file_fails_rule_1() {
    let config = config();
    let text = format!(
        "apiVersion: v1\nkind: Config\nusers:\n- name: bg\n  user:\n    token: {}\n",
        sa_jwt()
    );
    let found = Scanner::new(&config).break_glass(BG, &cluster(), text.as_bytes());
    assert_eq!(
        rules(&found),
        vec![(RuleId::NotEncrypted, 1), (RuleId::ClearCredential, 6)]
    );
    assert!(
        found
            .iter()
            .all(|f| !f.message.contains(&sa_jwt()) && !f.fix.contains(&sa_jwt()))
    );
}

#[test]
fn incomplete_metadata_and_clear_value_fail_rule_1() {
    let config = config();
    let text =
        encrypted(RECIPIENT, false).replace("token: ENC[AES256_GCM,data:t,type:str]", "token: abc");
    let found = Scanner::new(&config).break_glass(BG, &cluster(), text.as_bytes());
    assert_eq!(
        rules(&found),
        vec![(RuleId::NotEncrypted, 5), (RuleId::ClearCredential, 4)]
    );
    assert!(found[0].message.contains("no mac"), "{}", found[0].message);
    assert_eq!(
        found[1].message,
        "users[0].user.token is in clear (not an ENC[...] value)"
    );
}

#[test]
fn wrong_recipients_fail_rule_2_with_updatekeys_fix() {
    let config = config();
    let found =
        Scanner::new(&config).break_glass(BG, &cluster(), encrypted("age1old", true).as_bytes());
    assert_eq!(rules(&found), vec![(RuleId::WrongRecipients, 7)]);
    assert!(found[0].message.contains(&format!("missing [{RECIPIENT}]")));
    assert!(found[0].message.contains("not in .sops.yaml [age1old]"));
    assert!(
        found[0]
            .fix
            .starts_with(&format!("sops updatekeys --yes {BG}"))
    );
    let none = SopsConfig::parse("creation_rules: []\n").unwrap();
    let found =
        Scanner::new(&none).break_glass(BG, &cluster(), encrypted(RECIPIENT, true).as_bytes());
    assert!(found[0].message.contains("no .sops.yaml creation rule"));
}

#[test]
fn path_rules() {
    let rule = |rel: &str| match classify(rel) {
        PathClass::Flagged(f) => Some(f.rule),
        _ => None,
    };
    assert_eq!(classify(BG), PathClass::BreakGlass(cluster()));
    assert!(matches!(
        classify("clusters/eu/dc1/break-glass-kubeconfig.enc.yaml"),
        PathClass::BreakGlass(_)
    ));
    // The Go tool's names and layouts: a directory with only the break-glass file.
    for go in ["Prod", "my_cluster", "region/dc/c1"] {
        let rel = format!("clusters/{go}/break-glass-kubeconfig.enc.yaml");
        let name = ClusterName::parse(go).unwrap();
        assert_eq!(classify(&rel), PathClass::BreakGlass(name), "{rel}");
    }
    for (rel, expected) in [
        (
            "clusters/alpha/.break-glass-kubeconfig.enc.yaml.Ab12Cd.tmp",
            RuleId::LeftoverTempFile,
        ),
        (
            "clusters/alpha/bg-encrypt-123.enc.yaml",
            RuleId::LeftoverTempFile,
        ),
        ("kubeconfig-alpha-x1.yaml", RuleId::DecryptedKubeconfig),
        (
            "clusters/alpha/break-glass-kubeconfig.yaml",
            RuleId::MisplacedBreakGlass,
        ),
        (
            "clusters/alpha/Break_Glass_Kubeconfig.enc.yaml",
            RuleId::MisplacedBreakGlass,
        ),
        (
            "break-glass-kubeconfig.enc.yaml",
            RuleId::MisplacedBreakGlass,
        ),
        (
            "clusters/a/b/c/d/e/break-glass-kubeconfig.enc.yaml",
            RuleId::MisplacedBreakGlass,
        ),
        (
            "clusters/my cluster/break-glass-kubeconfig.enc.yaml",
            RuleId::MisplacedBreakGlass,
        ),
        (
            "clusters/break-glass-kubeconfig.enc.yaml",
            RuleId::MisplacedBreakGlass,
        ),
        (
            "other/alpha/break-glass-kubeconfig.enc.yaml",
            RuleId::MisplacedBreakGlass,
        ),
    ] {
        assert_eq!(rule(rel), Some(expected), "{rel}");
    }
    for unrelated in [
        "clusters/alpha/break-glass-rbac.yaml",
        "clusters/alpha/secrets.enc.yaml",
        "docs/kubeconfig.md",
        "kubeconfig-template.enc.yaml",
        "src/.main.rs.tmp",
    ] {
        assert_eq!(classify(unrelated), PathClass::Other, "{unrelated}");
    }
}

#[test]
fn bare_service_account_jwt_is_found_and_redacted() {
    let config = config();
    let scanner = Scanner::new(&config);
    let text = format!("notes\nexport TOKEN={}\n", sa_jwt());
    let found = scanner.other("notes.sh", text.as_bytes());
    assert_eq!(rules(&found), vec![(RuleId::ServiceAccountJwt, 2)]);
    assert!(
        found[0]
            .message
            .ends_with(&format!("eyJhbGci…({} chars)", sa_jwt().len())),
        "{}",
        found[0].message
    );
    // A JWT that is not a service account's, and eyJ inside prose, are not findings.
    let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let oidc = format!(
        "{}.{}.sig",
        enc(r#"{"alg":"RS256"}"#),
        enc(r#"{"iss":"https://idp"}"#)
    );
    assert_eq!(
        scanner.other("a.txt", format!("id: {oidc}\neyJ and eyJx.y\n").as_bytes()),
        vec![]
    );
}

#[test]
fn plaintext_kubeconfig_is_found_also_inside_a_configmap() {
    let config = config();
    let scanner = Scanner::new(&config);
    let kubeconfig =
        "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    client-key-data: LS0tS0VZ\n";
    let found = scanner.other("ops/admin.yaml", kubeconfig.as_bytes());
    assert_eq!(rules(&found), vec![(RuleId::PlaintextKubeconfig, 6)]);
    let configmap = "kind: ConfigMap\ndata:\n  kubeconfig: |\n    kind: Config\n    users:\n    - user:\n        token: abcdef\n";
    assert_eq!(
        rules(&scanner.other("cm.yaml", configmap.as_bytes())),
        vec![(RuleId::PlaintextKubeconfig, 7)]
    );
    let encrypted = "kind: Config\nusers:\n- user:\n    token: ENC[AES256_GCM,data:x]\n";
    assert_eq!(scanner.other("ok.yaml", encrypted.as_bytes()), vec![]);
}

#[test]
fn prose_about_kubeconfigs_is_not_misreported() {
    let config = config();
    let scanner = Scanner::new(&config);
    let readme = "# Access\n```yaml\nkind: Config\nusers:\n- user:\n    token: <your token here>\n```\nsee `kind: Config`\n";
    assert_eq!(scanner.other("README.md", readme.as_bytes()), vec![]);
    let leaked = format!("{readme}token: {}\n", "QUJDREVGR0hJSktMTU5PUFFSU1RVVg==");
    assert_eq!(
        rules(&scanner.other("README.md", leaked.as_bytes())),
        vec![(RuleId::PlaintextKubeconfig, 9)]
    );
    assert_eq!(
        scanner.other("values.yaml", b"kind: ConfigMap\ntoken: abc\n"),
        vec![]
    );
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

#[test]
fn secret_data_is_decoded_and_scanned() {
    let config = config();
    let scanner = Scanner::new(&config);
    let jwt_secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  other: {}\n  token: {}\n",
        b64("hello"),
        b64(&sa_jwt())
    );
    let found = scanner.other("s.yaml", jwt_secret.as_bytes());
    assert_eq!(rules(&found), vec![(RuleId::ServiceAccountJwt, 7)]);
    assert!(
        found[0].message.starts_with(
            "Secret data.token (base64-encoded) holds a service-account token: eyJhbGci…"
        ),
        "{}",
        found[0].message
    );
    let opaque_token = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"type\":\"kubernetes.io/service-account-token\",\"data\":{{\"token\":\"{}\"}}}}",
        b64("not-a-jwt-but-a-token")
    );
    assert_eq!(
        rules(&scanner.other("s.json", opaque_token.as_bytes())),
        vec![(RuleId::ServiceAccountJwt, 1)]
    );
    let kubeconfig = "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    token: abc\n";
    let capi = format!(
        "kind: List\nitems:\n- kind: Secret\n  metadata: {{name: c1-kubeconfig}}\n  data:\n    value: {}\n",
        b64(kubeconfig)
    );
    let found = scanner.other("capi.yaml", capi.as_bytes());
    assert_eq!(rules(&found), vec![(RuleId::PlaintextKubeconfig, 6)]);
    assert!(
        found[0].message.contains("users[0].user.token"),
        "{}",
        found[0].message
    );
}

#[test]
fn encrypted_and_harmless_secrets_pass() {
    let config = config();
    let scanner = Scanner::new(&config);
    for text in [
        "kind: Secret\ntype: kubernetes.io/service-account-token\ndata:\n    token: ENC[AES256_GCM,data:abc,type:str]\nsops:\n    mac: ENC[x]\n".to_string(),
        format!("kind: Secret\ndata:\n  password: {}\n", b64("app-password")),
        format!("kind: Secret\ndata: {{token: {}}}\n", b64("")),
        "kind: SecretProviderClass\ndata:\n  token: abc\n".to_string(),
    ] {
        assert_eq!(scanner.other("s.yaml", text.as_bytes()), vec![], "{text}");
    }
}

#[test]
fn kubeconfigs_in_every_syntax_are_found() {
    let config = config();
    let scanner = Scanner::new(&config);
    for (text, line) in [
        (
            "{apiVersion: v1, kind: Config, users: [{name: a, user: {token: abcdef}}]}\n",
            1,
        ),
        (
            r#"{"apiVersion":"v1","kind":"Config","users":[{"name":"a","user":{"token":"abcdef"}}]}"#,
            1,
        ),
        (
            "apiVersion: v1\nkind: Config # admin\nusers:\n- name: a\n  user:\n    token: abcdef\n",
            6,
        ),
        (
            "apiVersion: v1\n\"kind\": 'Config'\nusers:\n- {name: a, user: {password: abcdef}}\n",
            1,
        ),
    ] {
        assert_eq!(
            rules(&scanner.other("k.yaml", text.as_bytes())),
            vec![(RuleId::PlaintextKubeconfig, line)],
            "{text}"
        );
    }
}

#[test]
fn clear_additions_to_an_encrypted_break_glass_file_fail_rule_1() {
    let config = config();
    let scanner = Scanner::new(&config);
    let base = encrypted(RECIPIENT, true);
    let jwt = sa_jwt();
    let (a, b) = jwt.split_at(40);
    for (added, line) in [
        (format!("# {jwt}\n"), 1),
        (format!("note: {jwt}\n"), 1),
        (format!("note: >-\n    {a}\n    {b}\n"), 2),
        ("# token: abcdef\n".to_string(), 1),
        ("client-key-data: abcdef\n".to_string(), 1),
    ] {
        let text = format!("{added}{base}");
        let found = scanner.break_glass(BG, &cluster(), text.as_bytes());
        assert_eq!(
            rules(&found),
            vec![(RuleId::ClearCredential, line)],
            "{text}"
        );
        assert!(!found[0].message.contains(&jwt));
    }
    let under_sops = base.replace(
        "    version: 3.11.0\n",
        "    version: 3.11.0\n    token: abcdef\n",
    );
    let found = scanner.break_glass(BG, &cluster(), under_sops.as_bytes());
    assert_eq!(rules(&found), vec![(RuleId::ClearCredential, 13)]);
}

#[test]
fn pathological_inputs_are_scanned_in_bounded_time() {
    let config = config();
    let scanner = Scanner::new(&config);
    for unit in [
        "eyJ\n",
        "eyJhbGciOiJSUzI1NiJ9.eyJ.",
        "kind: Config\ntoken: ",
        "kind: Secret\ndata: {a: b}\n---\n",
        "a\\\n",
    ] {
        let text = unit.repeat(256 * 1024 / unit.len());
        let started = std::time::Instant::now();
        scanner.other("x.yaml", text.as_bytes());
        scanner.break_glass(BG, &cluster(), text.as_bytes());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{unit:?}: {:?}",
            started.elapsed()
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    #[test]
    fn any_bytes_are_scanned_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let config = config();
        let scanner = Scanner::new(&config);
        scanner.other("x", &bytes);
        scanner.break_glass(BG, &cluster(), &bytes);
    }

    #[test]
    fn yaml_like_text_is_scanned_quickly(
        text in "(kind: (Config|Secret)\n|data:\n|  token: |eyJ|[a-zA-Z0-9+/=._-]{0,12}|[{}\\[\\],:#\"' \n-]|---\n|users:\n- user: )*",
    ) {
        let config = config();
        let scanner = Scanner::new(&config);
        let started = std::time::Instant::now();
        let found = scanner.other("x.yaml", text.as_bytes());
        scanner.break_glass(BG, &cluster(), text.as_bytes());
        proptest::prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
        proptest::prop_assert!(found.iter().all(|f| f.line >= 1 && f.line <= text.lines().count().max(1)));
    }

    #[test]
    fn a_service_account_token_is_found_however_it_is_wrapped(
        cuts in proptest::collection::vec(1usize..200, 0..4),
        indent in "[ ]{0,6}",
        before in "[a-z: #\n]{0,30}",
    ) {
        let jwt = sa_jwt();
        let mut pieces = Vec::new();
        let mut rest = jwt.as_str();
        for cut in cuts {
            let (head, tail) = rest.split_at(cut.min(rest.len()));
            if !head.is_empty() { pieces.push(head.to_string()); }
            rest = tail;
        }
        pieces.push(rest.to_string());
        let text = format!("{before}\nkey: >-\n{indent}{}\n", pieces.join(&format!("\n{indent}")));
        let found = Scanner::new(&config()).other("x.yaml", text.as_bytes());
        proptest::prop_assert_eq!(rules(&found).first().map(|r| r.0), Some(RuleId::ServiceAccountJwt));
    }
}
