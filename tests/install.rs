//! What surrounds the tool where fleet maintainers install it: the version, shell
//! completions and man pages, all from the same clap definitions as the tool.

mod support;

use std::process::Command;

use support::TestEnv;

#[test]
fn version_names_the_release_and_the_commit_built_from() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(support::repo_root())
        .output()
        .expect("git is required by this test");
    assert!(head.status.success(), "{}", support::show(&head));
    let head = support::text(&head.stdout).trim().to_owned();
    let out = TestEnv::new().kube_dc().arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    assert_eq!(
        support::text(&out.stdout),
        format!("kube-dc {} (commit {head})\n", env!("CARGO_PKG_VERSION"))
    );
}

/// `COMPLETE=<shell> kube-dc`: the registration script the user sources, checked for
/// syntax by the shell itself.
fn registration(env: &TestEnv, shell: &str) -> String {
    let out = env.kube_dc().env("COMPLETE", shell).output().unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    assert!(out.stderr.is_empty(), "{}", support::show(&out));
    support::text(&out.stdout)
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish_are_valid_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = registration(&env, shell);
        assert!(script.contains("kube-dc"), "{shell}: {script}");
        let file = env.dir.path().join(format!("kube-dc.{shell}"));
        std::fs::write(&file, &script).unwrap();
        let check = Command::new(support::tool(shell))
            .arg("-n")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{shell} -n: {}",
            support::show(&check)
        );
    }
}

/// What bash offers on <TAB> after `line` (ending in the word being completed), options
/// left out: the sourced registration's completion function run the way bash runs it.
fn bash_tab(env: &TestEnv, line: &str) -> Vec<String> {
    let script = format!(
        r#"source <(COMPLETE=bash kube-dc)
COMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}; COMP_TYPE=9
read -r -a COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_clap_complete_kube_dc kube-dc "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    let bin_dir = support::kube_dc_bin().parent().unwrap().join("install-bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let link = bin_dir.join("kube-dc");
    if !link.exists() {
        std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("kube-dc"), &link).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let out = Command::new(support::tool("bash"))
        .args(["--norc", "--noprofile", "-c", &script])
        .env_clear()
        .envs(env.base_env())
        .env("PATH", path)
        .current_dir(&env.fleet)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    assert!(out.stderr.is_empty(), "{}", support::show(&out));
    let mut offered: Vec<String> = support::text(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('-'))
        .map(str::to_owned)
        .collect();
    offered.sort();
    offered
}

#[test]
fn bash_tab_offers_the_fleets_clusters_including_nested_and_new_ones() {
    let env = TestEnv::new();
    let use_line = "kube-dc bootstrap break-glass use ";
    assert_eq!(bash_tab(&env, use_line), ["alpha", "beta", "eu/dc1"]);
    assert_eq!(
        bash_tab(&env, "kube-dc bootstrap break-glass use e"),
        ["eu/dc1"]
    );
    // Dynamic: a cluster directory added after the script was generated completes too.
    let new = env.fleet.join("clusters/eu/dc2");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::copy(
        env.fleet.join("clusters/eu/dc1/cluster-config.env"),
        new.join("cluster-config.env"),
    )
    .unwrap();
    for sub in ["adopt", "rotate", "status"] {
        let line = format!("kube-dc bootstrap break-glass {sub} eu/");
        assert_eq!(bash_tab(&env, &line), ["eu/dc1", "eu/dc2"], "{sub}");
    }
}

#[test]
fn completion_follows_the_repo_flag_and_stays_silent_without_a_fleet() {
    let env = TestEnv::new();
    let elsewhere = env.home.clone();
    let fleet = env.fleet.display().to_string();
    let mut out = env.kube_dc();
    out.current_dir(&elsewhere)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "6")
        .args([
            "--",
            "kube-dc",
            "--repo",
            &fleet,
            "bootstrap",
            "break-glass",
            "use",
            "b",
        ]);
    let out = out.output().unwrap();
    assert_eq!(
        support::text(&out.stdout).trim(),
        "beta",
        "{}",
        support::show(&out)
    );
    let mut none = env.kube_dc();
    none.current_dir(&elsewhere)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "4")
        .args(["--", "kube-dc", "bootstrap", "break-glass", "use", ""]);
    let out = none.output().unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    let offered = support::text(&out.stdout);
    assert!(
        offered.lines().all(|l| l.starts_with("--")),
        "{}",
        support::show(&out)
    );
    assert_eq!(support::text(&out.stderr), "", "{}", support::show(&out));
}

#[test]
fn man_pages_render_without_warnings_with_exit_status_and_environment() {
    let env = TestEnv::new();
    let dir = env.dir.path().join("man1");
    let out = env
        .kube_dc()
        .args(["man", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let sub = |name: &str| format!("kube-dc-bootstrap-break-glass-{name}.1");
    for expected in [
        "kube-dc.1".to_owned(),
        "kube-dc-bootstrap-break-glass.1".to_owned(),
    ]
    .into_iter()
    .chain(["use", "adopt", "rotate", "status", "check"].map(sub))
    {
        assert!(
            pages.contains(&expected),
            "{expected} missing from {pages:?}"
        );
    }
    for page in &pages {
        let rendered = Command::new(support::tool("man"))
            .args(["--warnings", "-l"])
            .arg(dir.join(page))
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let shown = support::show(&rendered);
        assert!(rendered.status.success(), "{page}: {shown}");
        assert!(rendered.stderr.is_empty(), "{page} warns: {shown}");
        let text = support::text(&rendered.stdout);
        for must in [
            "SYNOPSIS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "KUBE_DC_FLEET",
            "NO_COLOR",
            "commit ",
        ] {
            assert!(text.contains(must), "{page} lacks {must}: {text}");
        }
    }
    // The pages are the clap definitions: a subcommand's help text is in its page.
    let rotate = std::fs::read_to_string(dir.join(sub("rotate"))).unwrap();
    assert!(rotate.contains("make\\-before\\-break"), "{rotate}");
}
