//! Reports for CI systems: `check --output sarif` against the official SARIF 2.1.0
//! schema, and `status --output markdown` for job summaries and merge-request comments.

mod support;

use support::{TestEnv, schema};

fn write(env: &TestEnv, rel: &str, content: &str) {
    let path = env.fleet.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn plaintext_kubeconfig() -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: beta\n  cluster:\n    server: https://beta.example.test:6443\nusers:\n- name: break-glass\n  user:\n    token: {}\n",
        support::canary::TOKEN
    )
}

fn check(env: &TestEnv, format: &str) -> (std::process::Output, serde_json::Value) {
    let out = env
        .kube_dc()
        .args(["bootstrap", "break-glass", "check", "--output", format])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", support::show(&out));
    let doc = serde_json::from_slice(&out.stdout).expect("one JSON document");
    (out, doc)
}

#[test]
fn check_sarif_is_valid_sarif_2_1_0_with_every_finding() {
    let env = TestEnv::new();
    write(
        &env,
        "clusters/beta/break-glass-kubeconfig.enc.yaml",
        &plaintext_kubeconfig(),
    );
    write(&env, "notes/odd name #1.yaml", &plaintext_kubeconfig());
    let (out, sarif) = check(&env, "sarif");
    assert!(
        support::canary::leaked(&support::text(&out.stdout)).is_none(),
        "SARIF leaks the token"
    );
    let problems = schema::violations(&schema::installed("sarif-schema-2.1.0.json"), &sarif);
    assert!(problems.is_empty(), "{problems}\n{sarif:#}");
    let (_, json) = check(&env, "json");
    let findings = json["findings"].as_array().unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len(), "{sarif:#}");
    for (result, finding) in results.iter().zip(findings) {
        assert_eq!(result["ruleId"], finding["rule"]);
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["region"]["startLine"], finding["line"]);
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        let path = finding["path"].as_str().unwrap();
        assert_eq!(uri, path.replace(' ', "%20").replace('#', "%23"));
    }
    assert!(
        results.iter().any(
            |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                == "notes/odd%20name%20%231.yaml"
        ),
        "{sarif:#}"
    );
}

#[test]
fn the_schema_check_can_fail() {
    // Proof that `violations` sees a broken log: a result without a message.
    let mut broken = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "kube-dc"}}, "results": [{"ruleId": "x"}]}]});
    let schema = schema::installed("sarif-schema-2.1.0.json");
    assert!(!schema::violations(&schema, &broken).is_empty());
    broken["runs"][0]["results"][0]["message"] = serde_json::json!({"text": "m"});
    assert_eq!(schema::violations(&schema, &broken), "");
}

#[test]
fn status_markdown_is_one_table_with_problems_and_counts() {
    let env = TestEnv::new().with_git();
    let out = env
        .kube_dc()
        .args([
            "bootstrap",
            "break-glass",
            "status",
            "--all",
            "--no-decrypt",
            "--output",
            "markdown",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::show(&out));
    let text = support::text(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "| CLUSTER | STATE | LAST COMMIT | AGE | RECIPIENTS | DECRYPTS | PROBLEMS |",
        "{text}"
    );
    assert_eq!(
        lines[1], "| --- | --- | --- | --- | --- | --- | --- |",
        "{text}"
    );
    let rows: Vec<&str> = lines[2..]
        .iter()
        .take_while(|l| l.starts_with('|'))
        .copied()
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    for row in &rows {
        assert_eq!(row.matches(" | ").count(), 6, "{row}");
    }
    assert!(rows[0].starts_with("| alpha | committed |"), "{text}");
    assert!(rows[2].starts_with("| eu/dc1 | not adopted |"), "{text}");
    assert!(text.contains("- **beta**: "), "{text}");
    assert!(
        text.ends_with("\n3 cluster(s): 1 ok, 2 with problems\n"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "{text}");
    // One cluster gives the same table with one row.
    let one = env
        .kube_dc()
        .args([
            "bootstrap",
            "break-glass",
            "status",
            "alpha",
            "--no-decrypt",
            "-o",
            "markdown",
        ])
        .output()
        .unwrap();
    let one = support::text(&one.stdout);
    // The AGE cell may tick by a second between the two runs.
    let without_age = |row: &str| {
        let mut cells: Vec<String> = row.split(" | ").map(str::to_owned).collect();
        cells.remove(3);
        cells
    };
    assert_eq!(
        one.lines().nth(2).map(without_age),
        Some(without_age(rows[0])),
        "{one}"
    );
}
