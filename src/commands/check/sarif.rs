//! SARIF 2.1.0 (the OASIS Static Analysis Results Interchange Format) for `check`'s
//! findings: what GitHub code scanning and GitLab ingest. Paths stay relative to the fleet
//! root, which is where CI runs `check`.

use serde_json::{Value, json};

use crate::leak_scan::{Finding, RuleId};

const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The SARIF log of one `check` run.
pub fn log(findings: &[Finding]) -> Value {
    let mut rules: Vec<RuleId> = findings.iter().map(|f| f.rule).collect();
    rules.sort();
    rules.dedup();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| result(f, rules.binary_search(&f.rule).unwrap_or_default()))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kube-dc",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|r| json!({"id": r.as_str()})).collect::<Vec<_>>(),
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

fn result(finding: &Finding, rule_index: usize) -> Value {
    json!({
        "ruleId": finding.rule.as_str(),
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": format!("{} Fix: {}", finding.message, finding.fix)},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": uri_path(&finding.path)},
            "region": {"startLine": finding.line.max(1)},
        }}],
    })
}

/// A relative URI reference for a `/`-separated path: every byte outside the unreserved
/// set and `/` percent-encoded, so any file name stays one valid URI.
fn uri_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_relative_uris() {
        assert_eq!(
            uri_path("clusters/eu/dc1/a b.yaml"),
            "clusters/eu/dc1/a%20b.yaml"
        );
        assert_eq!(uri_path("x%#?é"), "x%25%23%3F%C3%A9");
    }

    #[test]
    fn results_point_at_their_rule() {
        let finding = |rule, path: &str| Finding {
            path: path.into(),
            line: 3,
            rule,
            message: "m".into(),
            fix: "f".into(),
        };
        let log = log(&[
            finding(RuleId::ServiceAccountJwt, "b"),
            finding(RuleId::NotEncrypted, "a"),
        ]);
        let run = &log["runs"][0];
        for result in run["results"].as_array().unwrap() {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(
                run["tool"]["driver"]["rules"][index]["id"],
                result["ruleId"]
            );
        }
        assert_eq!(
            run["results"][1]["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
    }
}
