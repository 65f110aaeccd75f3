//! Every `--output json` document validated against its published schema in docs/schema/
//! (the contract; docs/json-output.md explains the fields in prose).

mod support;

use serde_json::Value;
use support::{TestEnv, schema};

fn json_of(env: &TestEnv, args: &[&str], code: i32) -> Value {
    let mut full = vec!["bootstrap", "break-glass"];
    full.extend_from_slice(args);
    let out = env.kube_dc().args(&full).output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", support::show(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", support::show(&out)))
}

fn assert_valid(name: &str, document: &Value) {
    let problems = schema::project_violations(name, document);
    assert!(problems.is_empty(), "{name}:\n{problems}\n{document:#}");
}

#[test]
fn status_of_one_cluster_matches_its_schema() {
    let env = TestEnv::new().with_git();
    let alpha = json_of(&env, &["status", "alpha", "-o", "json"], 0);
    assert_eq!(alpha["decryption"]["ok"], true, "{alpha:#}");
    assert!(alpha["last_commit"].is_object(), "{alpha:#}");
    assert_valid("status.schema.json", &alpha);
    let beta = json_of(&env, &["status", "beta", "-o", "json"], 1);
    assert_eq!(beta["problems"][0]["kind"], "not_adopted", "{beta:#}");
    assert_valid("status.schema.json", &beta);
}

#[test]
fn status_of_all_clusters_matches_its_schema() {
    let env = TestEnv::new().with_git();
    // An uncommitted change gives a second kind of problem and sops_lastmodified ages.
    let file = env.break_glass_file("alpha");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text + "\n").unwrap();
    let all = json_of(
        &env,
        &["status", "--all", "--max-age", "90d", "-o", "json"],
        0,
    );
    assert_eq!(all["clusters"].as_array().unwrap().len(), 3, "{all:#}");
    assert_valid("status-all.schema.json", &all);
    let undecrypted = json_of(&env, &["status", "--all", "--no-decrypt", "-o", "json"], 0);
    assert_valid("status-all.schema.json", &undecrypted);
}

#[test]
fn check_report_matches_its_schema() {
    let env = TestEnv::new();
    assert_valid(
        "check.schema.json",
        &json_of(&env, &["check", "-o", "json"], 0),
    );
    let plaintext = format!(
        "apiVersion: v1\nkind: Config\nusers:\n- name: break-glass\n  user:\n    token: {}\n",
        support::canary::TOKEN
    );
    std::fs::write(env.break_glass_file("alpha"), plaintext).unwrap();
    let report = json_of(&env, &["check", "-o", "json"], 1);
    assert!(
        !report["findings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_valid("check.schema.json", &report);
}

#[test]
fn rotate_summary_matches_its_schema() {
    // Rows that failed before reaching a cluster (no admin context); tests/batch.rs has
    // the rotations that succeed against a real control plane.
    let env = TestEnv::new();
    let summary = json_of(
        &env,
        &["rotate", "alpha", "beta", "--no-commit", "-o", "json"],
        1,
    );
    assert_eq!(summary["failed"], 2, "{summary:#}");
    assert_valid("rotate-summary.schema.json", &summary);
}

#[test]
fn the_schemas_reject_what_they_do_not_describe() {
    let env = TestEnv::new();
    let mut report = json_of(&env, &["status", "alpha", "-o", "json"], 0);
    report["surprise"] = Value::Bool(true);
    assert!(schema::project_violations("status.schema.json", &report).contains("surprise"));
    report.as_object_mut().unwrap().remove("surprise");
    report["state"] = "lost".into();
    assert!(!schema::project_violations("status.schema.json", &report).is_empty());
    // status --all refers to the cluster schema by file name: the reference is followed.
    let mut all = json_of(&env, &["status", "--all", "-o", "json"], 0);
    all["clusters"][1]["state"] = "lost".into();
    let problems = schema::project_violations("status-all.schema.json", &all);
    assert!(problems.contains("/clusters/1/state"), "{problems}");
}

/// docs/json-output.md explains in prose every field and value the schemas allow.
#[test]
fn every_schema_field_and_value_is_explained_in_json_output_md() {
    let docs = std::fs::read_to_string(support::repo_root().join("docs/json-output.md")).unwrap();
    let dir = support::repo_root().join("docs/schema");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        collect_names(&serde_json::from_str(&text).unwrap(), &mut names);
    }
    assert!(names.len() > 60, "{names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !docs.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/json-output.md: {missing:?}"
    );
}

/// Property names and enum values anywhere in a schema.
fn collect_names(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                names.extend(props.keys().cloned());
            }
            if let Some(Value::Array(values)) = map.get("enum") {
                names.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            map.values().for_each(|v| collect_names(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}
