//! The pre-commit scanner's blind spots: every shape in which a credential can reach a
//! commit is reported by `check` (work tree) and `check --staged` (the index, with real
//! Git), an odd file name stops nothing, and encrypted or harmless files pass.

use std::os::unix::ffi::OsStrExt as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::harness::{Case, Scene, run_table};
use crate::secrets::sops_encrypted;
use crate::support::canary::{OTHER, TOKEN};

const BG: &str = "fleet/clusters/alpha/break-glass-kubeconfig.enc.yaml";

type Plant = fn(&Scene);

/// `check` over the work tree, or over the staged files after committing the fixture and
/// staging what `plant` wrote.
fn check(name: &str, plant: Plant, staged: bool) -> Case {
    let mode = if staged { "check --staged" } else { "check" };
    let mut args = vec!["bootstrap", "break-glass", "check"];
    if staged {
        args.push("--staged");
    }
    Case::new(format!("{mode}: {name}"))
        .setup(move |s: &mut Scene| {
            if staged {
                s.commit_all();
            }
            plant(s);
            if staged {
                s.env.git(&["add", "-A"]);
            }
        })
        .args(args)
}

/// The same hostile input through both modes, each flagged with `rule` at `path`.
fn flagged(name: &str, plant: Plant, rule: &str, path: &str) -> [Case; 2] {
    [false, true].map(|staged| {
        check(name, plant, staged)
            .exit(1)
            .says(rule)
            .says(format!("{path}:"))
    })
}

fn passes(name: &str, plant: Plant) -> [Case; 2] {
    [false, true].map(|staged| check(name, plant, staged).exit(0))
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

fn kubeconfig() -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: k, cluster: {{server: 'https://k:6443'}}}}]\nusers:\n- name: u\n  user:\n    token: {OTHER}\n"
    )
}

/// Adds `text` to the fixture's encrypted break-glass file, at its start or end.
fn add_to_break_glass(s: &Scene, text: &str, at_start: bool) {
    let file = std::fs::read_to_string(s.path(BG)).unwrap();
    let changed = match at_start {
        true => format!("{text}{file}"),
        false => format!("{file}{text}"),
    };
    s.write(BG, changed);
}

/// Wraps the canary token over lines of `width` characters, each indented by `indent`.
fn wrapped(width: usize, indent: &str, join: &str) -> String {
    let lines: Vec<String> = TOKEN
        .as_bytes()
        .chunks(width)
        .map(|c| format!("{indent}{}", String::from_utf8_lossy(c)))
        .collect();
    lines.join(join)
}

#[test]
fn credentials_in_every_shape_are_flagged() {
    let cases: Vec<[Case; 2]> = vec![
        flagged(
            "a token base64-encoded in a Secret's data",
            |s| {
                s.write(
                    "fleet/apps/secret.yaml",
                    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: bg\ndata:\n  ca.crt: {}\n  token: {}\n", b64("CA"), b64(TOKEN)),
                );
            },
            "service-account-jwt",
            "apps/secret.yaml:7",
        ),
        flagged(
            "a service-account-token Secret whose token is no JWT",
            |s| {
                s.write(
                    "fleet/apps/sa.yaml",
                    format!("kind: Secret\ntype: kubernetes.io/service-account-token\ndata:\n  token: {}\n", b64(OTHER)),
                );
            },
            "service-account-jwt",
            "apps/sa.yaml:4",
        ),
        flagged(
            "a kubeconfig base64-encoded in a Secret (Cluster API style)",
            |s| {
                s.write(
                    "fleet/capi/c1-kubeconfig.yaml",
                    format!(
                        "kind: Secret\nmetadata: {{name: c1-kubeconfig}}\ndata:\n  value: {}\n",
                        b64(&kubeconfig())
                    ),
                );
            },
            "plaintext-kubeconfig",
            "capi/c1-kubeconfig.yaml:4",
        ),
        flagged(
            "a Secret in minified JSON inside a List",
            |s| {
                s.write(
                    "fleet/apps/list.json",
                    format!(
                        r#"{{"kind":"List","items":[{{"kind":"Secret","data":{{"t":"{}"}}}}]}}"#,
                        b64(TOKEN)
                    ),
                );
            },
            "service-account-jwt",
            "apps/list.json:1",
        ),
        flagged(
            "a kubeconfig in YAML flow style",
            |s| {
                s.write(
                    "fleet/ops/flow.yaml",
                    format!("{{apiVersion: v1, kind: Config, users: [{{name: u, user: {{token: {OTHER}}}}}]}}\n"),
                );
            },
            "plaintext-kubeconfig",
            "ops/flow.yaml:1",
        ),
        flagged(
            "a kubeconfig in minified JSON",
            |s| {
                s.write(
                    "fleet/ops/admin.json",
                    format!(r#"{{"apiVersion":"v1","kind":"Config","users":[{{"name":"u","user":{{"client-key-data":"{}"}}}}]}}"#, b64(OTHER)),
                );
            },
            "plaintext-kubeconfig",
            "ops/admin.json:1",
        ),
        flagged(
            "a kubeconfig with a comment after kind: Config",
            |s| {
                s.write(
                    "fleet/ops/commented.yaml",
                    kubeconfig().replace("kind: Config\n", "kind: Config # admin, do not commit\n"),
                );
            },
            "plaintext-kubeconfig",
            "ops/commented.yaml:7",
        ),
        flagged(
            "a JWT folded in a YAML scalar",
            |s| {
                s.write(
                    "fleet/apps/folded.yaml",
                    format!("a: 1\ntoken: >-\n{}\n", wrapped(50, "  ", "\n")),
                );
            },
            "service-account-jwt",
            "apps/folded.yaml:3",
        ),
        flagged(
            "a JWT wrapped with shell continuations",
            |s| {
                s.write(
                    "fleet/scripts/login.sh",
                    format!("#!/bin/sh\nTOKEN={}\n", wrapped(40, "", "\\\n")),
                );
            },
            "service-account-jwt",
            "scripts/login.sh:2",
        ),
        flagged(
            "a JWT wrapped at 64 columns in notes",
            |s| {
                s.write(
                    "fleet/notes.txt",
                    format!("incident notes\n\n{}\n\nend\n", wrapped(64, "", "\n")),
                );
            },
            "service-account-jwt",
            "notes.txt:3",
        ),
        flagged(
            "a clear JWT in a comment of the encrypted break-glass file",
            |s| add_to_break_glass(s, &format!("# old token: {TOKEN}\n"), false),
            "clear-credential",
            "clusters/alpha/break-glass-kubeconfig.enc.yaml:34",
        ),
        flagged(
            "a folded JWT added to the encrypted break-glass file",
            |s| {
                add_to_break_glass(
                    s,
                    &format!("note: |\n{}\n", wrapped(60, "    ", "\n")),
                    true,
                )
            },
            "clear-credential",
            "clusters/alpha/break-glass-kubeconfig.enc.yaml:2",
        ),
        flagged(
            "a clear credential key added to the encrypted break-glass file",
            |s| add_to_break_glass(s, &format!("client-key-data: {}\n", b64(OTHER)), true),
            "clear-credential",
            "clusters/alpha/break-glass-kubeconfig.enc.yaml:1",
        ),
        flagged(
            "a clear token under sops: in the encrypted break-glass file",
            |s| {
                let file = std::fs::read_to_string(s.path(BG)).unwrap();
                s.write(
                    BG,
                    file.replace(
                        "    version: 3.11.0\n",
                        &format!("    version: 3.11.0\n    token: {OTHER}\n"),
                    ),
                );
            },
            "clear-credential",
            "clusters/alpha/break-glass-kubeconfig.enc.yaml:34",
        ),
        flagged(
            "a leak next to a file whose name is not UTF-8",
            |s| {
                s.write("fleet/ops/leak.yaml", kubeconfig());
                std::fs::write(
                    s.path("fleet/ops")
                        .join(std::ffi::OsStr::from_bytes(b"bad\xff.txt")),
                    "x",
                )
                .unwrap();
            },
            "plaintext-kubeconfig",
            "ops/leak.yaml:7",
        ),
        flagged(
            "a leak in a file whose name is not UTF-8",
            |s| {
                std::fs::create_dir_all(s.path("fleet/ops")).unwrap();
                std::fs::write(
                    s.path("fleet/ops")
                        .join(std::ffi::OsStr::from_bytes(b"bad\xfe.yaml")),
                    kubeconfig(),
                )
                .unwrap();
            },
            "plaintext-kubeconfig",
            r"ops/bad\xfe.yaml:7",
        ),
        flagged(
            "a leak in a file whose name carries terminal escapes",
            |s| {
                s.write("fleet/ops/\u{1b}[8mhidden.yaml", kubeconfig());
            },
            "plaintext-kubeconfig",
            r"ops/\x1b[8mhidden.yaml:7",
        ),
    ];
    run_table(cases.into_iter().flatten().collect());
}

#[test]
fn encrypted_and_harmless_files_pass() {
    let cases: Vec<[Case; 2]> = vec![
        passes("the fixture fleet as it is", |_| {}),
        passes("a sops-encrypted Secret holding a token", |s| {
            let secret = format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bg\ntype: kubernetes.io/service-account-token\ndata:\n  token: {}\nstringData:\n  kubeconfig: |\n{}",
                b64(TOKEN),
                kubeconfig()
                    .lines()
                    .map(|l| format!("    {l}\n"))
                    .collect::<String>()
            );
            let rel = "clusters/alpha/secrets.enc.yaml";
            let encrypted = sops_encrypted(s, rel, &secret);
            s.write(&format!("fleet/{rel}"), encrypted);
        }),
        passes("a README about kubeconfigs and Secrets", |s| {
            s.write(
                "fleet/README.md",
                "# Access\nA kubeconfig has `kind: Config` and a Secret `kind: Secret`:\n```yaml\nkind: Config\nusers:\n- user: {token: <your token here>}\n```\n",
            );
        }),
        passes("an application Secret with ordinary data", |s| {
            s.write(
                "fleet/apps/app.yaml",
                format!(
                    "kind: Secret\ndata:\n  password: {}\n  url: {}\n",
                    b64("app-password"),
                    b64("https://db")
                ),
            );
        }),
        passes(
            "a ConfigMap with a token key and a SecretProviderClass",
            |s| {
                s.write(
                "fleet/apps/cm.yaml",
                "kind: ConfigMap\ndata:\n  token: not-a-secret\n---\nkind: SecretProviderClass\nspec: {token: x}\n",
            );
            },
        ),
        passes("a harmless file whose name is not UTF-8", |s| {
            std::fs::write(
                s.path("fleet")
                    .join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
                "menu\n",
            )
            .unwrap();
        }),
    ];
    run_table(cases.into_iter().flatten().collect());
}

#[test]
fn staged_checks_of_a_first_commit_and_a_sops_yaml_change_see_odd_names() {
    let odd_leak = |s: &Scene| {
        std::fs::create_dir_all(s.path("fleet/ops")).unwrap();
        std::fs::write(
            s.path("fleet/ops")
                .join(std::ffi::OsStr::from_bytes(b"x\xff.yaml")),
            kubeconfig(),
        )
        .unwrap();
    };
    let staged = ["bootstrap", "break-glass", "check", "--staged"];
    run_table(vec![
        Case::new("check --staged before the first commit")
            .setup(move |s: &mut Scene| {
                odd_leak(s);
                s.env.git(&["init", "-q", "-b", "main"]);
                s.env.git(&["add", "-A"]);
            })
            .args(staged)
            .exit(1)
            .says(r"ops/x\xff.yaml:7"),
        Case::new("check --staged with .sops.yaml changed")
            .setup(move |s: &mut Scene| {
                s.commit_all();
                odd_leak(s);
                let config = std::fs::read_to_string(s.path("fleet/.sops.yaml")).unwrap();
                s.write("fleet/.sops.yaml", format!("{config}# reviewed\n"));
                s.env.git(&["add", "-A"]);
            })
            .args(staged)
            .exit(1)
            .says(r"ops/x\xff.yaml:7"),
    ]);
}
