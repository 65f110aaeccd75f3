//! Commands printed for the user to paste (`fix:` lines, hints) quote what came from
//! outside: a file named with a `'` and a space gives a command that works as printed,
//! and cannot end the quote early to add a command of its own.

use crate::harness::{Case, Scene, run_table};
use crate::support::TestEnv;
use crate::support::canary::OTHER;

/// Under the fleet: a decrypted-kubeconfig name in a directory named with `'` and space.
const DECRYPTED: &str = "notes/it's here/kubeconfig-1.yaml";
/// A plaintext kubeconfig whose name tries to close the quote and run a command.
const PLAINTEXT: &str = "x'; touch pwned; echo '.yaml";

fn plaintext_kubeconfig() -> String {
    format!("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: {OTHER}\n")
}

fn check_finds(name: &str, rel: &'static str, content: fn() -> String, fix: &str) -> Case {
    Case::new(format!("check: {name}"))
        .setup(move |s: &mut Scene| {
            s.write(&format!("fleet/{rel}"), content());
        })
        .args(["bootstrap", "break-glass", "check"])
        .exit(1)
        .says(format!("fix: {fix}"))
}

#[test]
fn fix_lines_quote_file_names() {
    run_table(vec![
        check_finds(
            "a decrypted kubeconfig in a directory named with ' and a space",
            DECRYPTED,
            || "kind: Config\n".into(),
            r"git rm --cached -- 'notes/it'\''s here/kubeconfig-1.yaml';",
        ),
        check_finds(
            "a plaintext kubeconfig whose name closes the quote",
            PLAINTEXT,
            plaintext_kubeconfig,
            r"git rm --cached -- 'x'\''; touch pwned; echo '\''.yaml';",
        ),
    ]);
}

/// The printed command, pasted into a shell as it is, does what it says and nothing else.
#[test]
fn a_printed_fix_works_when_pasted() {
    let env = TestEnv::new().with_git();
    let file = env.fleet.join(PLAINTEXT);
    std::fs::write(&file, plaintext_kubeconfig()).unwrap();
    env.git(&["add", "--", PLAINTEXT]);
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "check", "--staged"])
        .output()
        .unwrap();
    let text = crate::support::show(&out);
    let fix = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("fix: "))
        .unwrap_or_else(|| panic!("no fix line:\n{text}"));
    // The command before the `;` that starts the advice in prose.
    let command = fix.split("; keep").next().unwrap();
    let ran = std::process::Command::new("sh")
        .args(["-c", command])
        .current_dir(&env.fleet)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{command}: {}",
        crate::support::show(&ran)
    );
    assert!(
        !env.fleet.join("pwned").exists(),
        "{command} ran a command of the name's"
    );
    let staged = env.git(&["ls-files", "--", PLAINTEXT]);
    assert!(staged.is_empty(), "{command} left {PLAINTEXT} staged");
}
