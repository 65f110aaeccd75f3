//! docs/ci/: the GitHub Actions workflows pass actionlint and the GitHub workflow schema,
//! the GitLab file passes GitLab's CI schema (offline, vendored in check-jsonschema), and
//! the kube-dc commands inside them run against the fixture as the CI systems run them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::TestEnv;

const GITHUB: [&str; 3] = [
    "break-glass-check.yml",
    "break-glass-status.yml",
    "break-glass-rotate.yml",
];
const GITLAB: &str = "gitlab-ci.yml";

fn ci_dir() -> PathBuf {
    support::repo_root().join("docs/ci")
}

fn github_file(name: &str) -> PathBuf {
    ci_dir().join("github").join(name)
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn github_workflows_pass_actionlint() {
    let out = Command::new(support::tool("actionlint"))
        .args([
            "-no-color",
            "-shellcheck",
            support::tool("shellcheck").to_str().unwrap(),
        ])
        .args(GITHUB.map(github_file))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    assert!(out.stdout.is_empty(), "{}", support::show(&out));
}

#[test]
fn ci_files_pass_their_schemas() {
    let check = |schema: &str, files: Vec<PathBuf>| {
        let out = Command::new(support::tool("check-jsonschema"))
            .args(["--builtin-schema", schema])
            .args(files)
            .output()
            .unwrap();
        assert!(out.status.success(), "{schema}: {}", support::show(&out));
    };
    check("vendor.gitlab-ci", vec![ci_dir().join(GITLAB)]);
    check("vendor.github-workflows", GITHUB.map(github_file).to_vec());
}

/// The `run:` scripts of a workflow's steps that call kube-dc, in order.
fn github_scripts(name: &str) -> Vec<String> {
    let workflow = yaml(&github_file(name));
    let jobs = workflow["jobs"].as_object().unwrap();
    jobs.values()
        .flat_map(|job| job["steps"].as_array().unwrap().iter())
        .filter_map(|step| step["run"].as_str())
        .filter(|run| run.contains("kube-dc bootstrap"))
        .map(str::to_owned)
        .collect()
}

/// A GitLab job's `script:` lines, as GitLab's shell runs them (one script, `-eo pipefail`).
fn gitlab_script(job: &str) -> String {
    let file = yaml(&ci_dir().join(GITLAB));
    let lines: Vec<&str> = file[job]["script"]
        .as_array()
        .unwrap_or_else(|| panic!("no job {job} in {GITLAB}"))
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    lines.join("\n")
}

/// Runs `script` as the CI systems run a step: bash with `-eo pipefail`, in the fleet's
/// checkout, kube-dc on PATH, and the variables the step may write to.
fn run_step(env: &TestEnv, script: &str) -> Output {
    step_command(env, script).output().unwrap()
}

/// A CI step's script as the runner starts it, with kube-dc on PATH.
fn step_command(env: &TestEnv, script: &str) -> Command {
    let bin = support::kube_dc_bin();
    let tools = env.dir.path().join("ci-bin");
    std::fs::create_dir_all(&tools).unwrap();
    let link = tools.join("kube-dc");
    if !link.exists() {
        std::os::unix::fs::symlink(&bin, &link).unwrap();
    }
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", tools.display());
    let mut cmd = Command::new(support::tool("bash"));
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .env_clear()
        .envs(env.base_env())
        .env("PATH", path)
        .env("GITHUB_OUTPUT", env.dir.path().join("github-output"))
        .env(
            "GITHUB_STEP_SUMMARY",
            env.dir.path().join("step-summary.md"),
        )
        .current_dir(&env.fleet);
    cmd
}

fn plant_plaintext_kubeconfig(env: &TestEnv) {
    let plaintext = format!(
        "apiVersion: v1\nkind: Config\nusers:\n- name: break-glass\n  user:\n    token: {}\n",
        support::canary::TOKEN
    );
    std::fs::write(
        env.fleet
            .join("clusters/beta/break-glass-kubeconfig.enc.yaml"),
        plaintext,
    )
    .unwrap();
}

fn read(env: &TestEnv, name: &str) -> String {
    std::fs::read_to_string(env.dir.path().join(name)).unwrap_or_default()
}

#[test]
fn github_check_workflow_passes_a_clean_fleet_and_reports_findings_as_sarif() {
    let scripts = github_scripts("break-glass-check.yml");
    let [sarif_step, fail_step] = scripts.as_slice() else {
        panic!("expected the SARIF and the failing step: {scripts:?}");
    };
    let env = TestEnv::new().with_git();
    let out = run_step(&env, sarif_step);
    assert!(out.status.success(), "{}", support::show(&out));
    assert_eq!(read(&env, "github-output"), "exit=0\n");
    plant_plaintext_kubeconfig(&env);
    let out = run_step(&env, sarif_step);
    assert!(
        out.status.success(),
        "findings must still upload: {}",
        support::show(&out)
    );
    assert_eq!(read(&env, "github-output"), "exit=0\nexit=1\n");
    let sarif: Value =
        serde_json::from_slice(&std::fs::read(env.fleet.join("kube-dc.sarif")).unwrap()).unwrap();
    let problems = support::schema::violations(
        &support::schema::installed("sarif-schema-2.1.0.json"),
        &sarif,
    );
    assert!(problems.is_empty(), "{problems}");
    assert!(
        !sarif["runs"][0]["results"].as_array().unwrap().is_empty(),
        "{sarif:#}"
    );
    let out = run_step(&env, fail_step);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    assert!(
        support::text(&out.stdout).contains("not-encrypted"),
        "{}",
        support::show(&out)
    );
}

#[test]
fn github_status_workflow_writes_the_table_to_the_job_summary_and_fails_on_attention() {
    let scripts = github_scripts("break-glass-status.yml");
    let [status_step] = scripts.as_slice() else {
        panic!("{scripts:?}")
    };
    assert!(
        status_step.contains("--all --check --no-decrypt --max-age 90d"),
        "{status_step}"
    );
    let env = TestEnv::new().with_git();
    // The fixture has clusters that are not adopted: the scheduled job must fail.
    let out = run_step(&env, status_step);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let summary = read(&env, "step-summary.md");
    assert!(summary.starts_with("| CLUSTER | STATE |"), "{summary}");
    assert!(summary.contains("| beta | not adopted |"), "{summary}");
}

#[test]
fn gitlab_jobs_run_against_the_fixture() {
    let env = TestEnv::new().with_git();
    let check = gitlab_script("break-glass-check");
    let out = run_step(&env, &check);
    assert!(out.status.success(), "{}", support::show(&out));
    assert!(env.fleet.join("kube-dc.sarif").is_file());
    plant_plaintext_kubeconfig(&env);
    let out = run_step(&env, &check);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let status = gitlab_script("break-glass-status");
    assert!(
        status.contains("--all --check --no-decrypt --max-age 90d"),
        "{status}"
    );
    let out = run_step(&env, &status);
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let table = std::fs::read_to_string(env.fleet.join("break-glass-status.md")).unwrap();
    assert!(table.contains("| eu/dc1 | not adopted |"), "{table}");
}

/// The sharded rotation of both CI systems: every shard's command, run as a dry run with
/// the shard the CI system fills in, plans the fixture's adopted cluster exactly once.
#[test]
fn sharded_rotation_jobs_cover_every_cluster_exactly_once() {
    let github = github_scripts("break-glass-rotate.yml");
    let [github_step] = github.as_slice() else {
        panic!("{github:?}")
    };
    let workflow = yaml(&github_file("break-glass-rotate.yml"));
    let shards = workflow["jobs"]["rotate"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .len();
    let gitlab = gitlab_script("break-glass-rotate");
    let file = yaml(&ci_dir().join(GITLAB));
    assert_eq!(
        file["break-glass-rotate"]["parallel"].as_u64(),
        Some(shards as u64)
    );
    let gitlab_step = gitlab
        .lines()
        .find(|l| l.contains("kube-dc bootstrap break-glass rotate"))
        .unwrap()
        .to_string();
    for step in [github_step.clone(), gitlab_step] {
        assert!(
            step.contains("--push") && step.contains("--all --shard"),
            "{step}"
        );
        let env = TestEnv::new().with_git();
        let mut planned = 0;
        for shard in 1..=shards {
            let script = step
                .replace("${{ matrix.shard }}", &shard.to_string())
                .replace("${{ strategy.job-total }}", &shards.to_string())
                .replace("| tee rotation.json", "")
                .replace("--push", "--dry-run");
            let out = step_command(&env, &script)
                .env("INCIDENT", "INC-1")
                .env("CI_NODE_INDEX", shard.to_string())
                .env("CI_NODE_TOTAL", shards.to_string())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "shard {shard}: {}",
                support::show(&out)
            );
            planned += support::text(&out.stdout)
                .matches("dry run: rotate alpha")
                .count();
        }
        assert_eq!(planned, 1, "alpha planned by {planned} shards of {step}");
    }
}
