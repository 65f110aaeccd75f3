//! Rule 3, for every other file: kubeconfigs with a clear credential (in any YAML or JSON
//! syntax, also embedded as a string) and service-account tokens, bare or in a Secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::lines::{
    jwt_findings, jwt_fix, key_value, kubeconfig_finding, line_where, located, secret_looking_lines,
};
use super::{Finding, RuleId, Scanner};
use crate::credentials;

impl Scanner<'_> {
    /// Rule 3 for any other file: a cheap byte search first, parsing only on a hit.
    pub fn other(&self, rel: &str, bytes: &[u8]) -> Vec<Finding> {
        let mut found = jwt_findings(rel, bytes, "service-account token in clear");
        let Some((text, config, secret)) = self.manifest_kinds(bytes) else {
            return found;
        };
        let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) else {
            // Not YAML (a README, a template): judge credential lines by how they look.
            if config {
                found.extend(secret_looking_lines(text).into_iter().map(|(line, key)| {
                    kubeconfig_finding(rel, line, format!("kubeconfig text with a clear `{key}`"))
                }));
            }
            return found;
        };
        if config {
            found.extend(self.kubeconfig_findings(rel, text, &docs));
        }
        if secret {
            for doc in &docs {
                collect_secrets(doc, &mut |s| {
                    found.extend(self.secret_findings(rel, text, s))
                });
            }
        }
        found
    }

    /// The text and whether it mentions `kind: Config` and `kind: Secret`; `None` when
    /// it mentions neither (or is not UTF-8), so it need not be parsed.
    fn manifest_kinds<'t>(&self, bytes: &'t [u8]) -> Option<(&'t str, bool, bool)> {
        let config = self.config_word.is_match(bytes);
        let secret = self.secret_word.is_match(bytes);
        if !(config || secret) {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let config = config && self.kind_config.is_match(text);
        let secret = secret && self.kind_secret.is_match(text);
        (config || secret).then_some((text, config, secret))
    }

    fn kubeconfig_findings(&self, rel: &str, text: &str, docs: &[Value]) -> Vec<Finding> {
        let mut paths = Vec::new();
        for doc in docs {
            self.collect_kubeconfigs(doc, 0, &mut |cfg| {
                paths.extend(credentials::clear_credentials(cfg))
            });
        }
        located(text, &paths)
            .into_iter()
            .map(|(line, path)| {
                kubeconfig_finding(rel, line, format!("kind: Config with {path} in clear"))
            })
            .collect()
    }

    /// A Secret's `data` values are base64: decoded, they get the rules of any file, and
    /// a service-account token Secret's `data.token` is a token whatever it looks like.
    /// Encrypted values (`ENC[...]`) do not decode and are skipped.
    fn secret_findings(&self, rel: &str, text: &str, secret: &Map<String, Value>) -> Vec<Finding> {
        let Some(Value::Object(data)) = secret.get("data") else {
            return Vec::new();
        };
        let token_secret = secret.get("type").and_then(Value::as_str) == Some(TOKEN_SECRET_TYPE);
        let mut found = Vec::new();
        for (key, value) in data {
            let encoded = value.as_str().unwrap_or_default();
            let Some(decoded) = decode_base64(encoded) else {
                continue;
            };
            let what = format!("Secret data.{key} (base64-encoded)");
            let mut inner = jwt_findings(
                rel,
                &decoded,
                &format!("{what} holds a service-account token"),
            );
            if inner.is_empty() && token_secret && key == "token" && !decoded.is_empty() {
                inner.push(Finding {
                    path: rel.to_string(),
                    line: 1,
                    rule: RuleId::ServiceAccountJwt,
                    message: format!("service-account token Secret with {what} in clear"),
                    fix: jwt_fix(rel),
                });
            }
            if let Ok(inner_text) = std::str::from_utf8(&decoded)
                && self.kind_config.is_match(inner_text)
            {
                let docs = serde_saphyr::from_multiple::<Value>(inner_text).unwrap_or_default();
                let paths = docs.iter().flat_map(credentials::clear_credentials);
                inner.extend(paths.map(|path| {
                    kubeconfig_finding(
                        rel,
                        1,
                        format!("{what} holds a kubeconfig with {path} in clear"),
                    )
                }));
            }
            let line = data_key_line(text, key, encoded);
            found.extend(inner.into_iter().map(|f| Finding { line, ..f }));
        }
        found
    }

    /// Kubeconfig documents, also those embedded as strings (a ConfigMap or Secret
    /// `stringData` holding a kubeconfig).
    fn collect_kubeconfigs(&self, value: &Value, depth: u8, visit: &mut dyn FnMut(&Value)) {
        match value {
            Value::Object(map) if map.get("kind").and_then(Value::as_str) == Some("Config") => {
                visit(value)
            }
            Value::Object(map) => map
                .values()
                .for_each(|v| self.collect_kubeconfigs(v, depth, visit)),
            Value::Array(items) => items
                .iter()
                .for_each(|v| self.collect_kubeconfigs(v, depth, visit)),
            Value::String(s) if depth < 2 && self.kind_config.is_match(s) => {
                for doc in serde_saphyr::from_multiple::<Value>(s).unwrap_or_default() {
                    self.collect_kubeconfigs(&doc, depth + 1, visit);
                }
            }
            _ => {}
        }
    }
}

const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";

/// Secret manifests anywhere in a document (also in a `List`).
fn collect_secrets(value: &Value, visit: &mut dyn FnMut(&Map<String, Value>)) {
    match value {
        Value::Object(map) if map.get("kind").and_then(Value::as_str) == Some("Secret") => {
            visit(map)
        }
        Value::Object(map) => map.values().for_each(|v| collect_secrets(v, visit)),
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, visit)),
        _ => {}
    }
}

/// Base64 as Kubernetes writes it in `data` (standard alphabet, padded); YAML folding
/// may have put whitespace in it.
fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    let compact: String = encoded.split_whitespace().collect();
    STANDARD.decode(compact).ok()
}

/// The line of `key: <encoded>`, else of the first `key:` line, else 1 (flow style).
fn data_key_line(text: &str, key: &str, encoded: &str) -> usize {
    line_where(text, |l| key_value(l, key) == Some(encoded))
        .or_else(|| line_where(text, |l| key_value(l, key).is_some()))
        .unwrap_or(1)
}
