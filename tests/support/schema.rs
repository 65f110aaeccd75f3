//! JSON Schema validation for the tests: the project's published schemas (docs/schema/,
//! which refer to each other by file name) and schemas installed by
//! scripts/install-test-deps.sh (the official SARIF one).

use std::path::PathBuf;

use serde_json::Value;

/// Every way `document` breaks the project's `docs/schema/<name>`, one per line (empty
/// when valid).
pub fn project_violations(name: &str, document: &Value) -> String {
    let dir = super::repo_root().join("docs/schema");
    let base = format!("file://{}/", dir.display());
    let mut registry = jsonschema::Registry::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        registry = registry
            .add(format!("{base}{file}"), read_json(&path))
            .unwrap();
    }
    let registry = registry.prepare().unwrap();
    let validator = jsonschema::options()
        .with_base_uri(base.clone())
        .with_registry(&registry)
        .build(&read_json(&dir.join(name)))
        .unwrap_or_else(|e| panic!("docs/schema/{name} does not compile: {e}"));
    errors(&validator, document)
}

/// A schema installed by scripts/install-test-deps.sh into the tools cache. Never a skip.
pub fn installed(name: &str) -> Value {
    let tools = std::env::var_os("KUBE_DC_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kube-dc/tools")))
        .expect("HOME is set");
    let path = tools.join("schemas").join(name);
    if !path.is_file() {
        panic!(
            "{} is required by this test; run scripts/install-test-deps.sh",
            path.display()
        );
    }
    read_json(&path)
}

/// Every way `document` breaks the self-contained `schema`, one per line.
pub fn violations(schema: &Value, document: &Value) -> String {
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    errors(&validator, document)
}

fn errors(validator: &jsonschema::Validator, document: &Value) -> String {
    validator
        .iter_errors(document)
        .map(|e| format!("{e} at {}\n", e.instance_path()))
        .collect()
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
