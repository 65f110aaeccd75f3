//! Where kubeconfig credentials live, and whether they are in clear.
//!
//! Used twice: after sops encrypts (fail closed when a `.sops.yaml` rule leaves a token in
//! clear) and by `check`, which keeps plaintext credentials out of Git.

use serde_json::Value;

/// Keys whose string values are credentials wherever they appear in a kubeconfig.
pub const CREDENTIAL_KEYS: &[&str] = &[
    "token",
    "client-key-data",
    "client-certificate-data",
    "password",
    "access-token",
    "refresh-token",
    "id-token",
    "client-secret",
];

/// Paths (like `users[0].user.token`) of credential values not encrypted by sops.
pub fn clear_credentials(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(doc, String::new(), false, &mut found);
    found
}

/// As [`clear_credentials`], for YAML text.
pub fn clear_credentials_in_yaml(yaml: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(yaml).map_err(|e| e.to_string())?;
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| crate::redact::yaml_error(&e))?;
    Ok(clear_credentials(&doc))
}

pub fn is_encrypted_value(s: &str) -> bool {
    s.starts_with("ENC[") && s.ends_with(']')
}

/// `secret_scope` is true below `auth-provider.config`, where every string is treated as
/// a secret; in `exec.env` entries the `value` is.
fn walk(value: &Value, path: String, secret_scope: bool, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let in_scope = secret_scope || (key == "config" && path.ends_with("auth-provider"));
                let exec_env_value = key == "value" && path.contains(".exec.env[");
                let is_credential =
                    in_scope || exec_env_value || CREDENTIAL_KEYS.contains(&key.as_str());
                match child {
                    Value::String(s) if is_credential && !is_encrypted_value(s) => {
                        if !s.is_empty() {
                            found.push(child_path)
                        }
                    }
                    _ => walk(child, child_path, in_scope, found),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{i}]"), secret_scope, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_clear_tokens_and_ignores_encrypted_ones() {
        let yaml = br#"
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://x", certificate-authority-data: Zm9v}
users:
- name: a
  user:
    token: ENC[AES256_GCM,data:abc,type:str]
- name: b
  user:
    client-key-data: S0VZ
    password: hunter2
- name: c
  user:
    auth-provider:
      name: oidc
      config: {id-token: eyJ, idp-issuer-url: "https://idp"}
    exec:
      command: x
      env: [{name: K, value: v}]
sops:
  mac: whatever
"#;
        let found = clear_credentials_in_yaml(yaml).unwrap();
        assert_eq!(
            found,
            vec![
                "users[1].user.client-key-data",
                "users[1].user.password",
                "users[2].user.auth-provider.config.id-token",
                "users[2].user.auth-provider.config.idp-issuer-url",
                "users[2].user.exec.env[0].value",
            ]
        );
    }

    #[test]
    fn fully_encrypted_document_is_clean() {
        let yaml = b"users:\n- name: ENC[x]\n  user:\n    token: ENC[AES256_GCM,data:x]\n";
        assert!(clear_credentials_in_yaml(yaml).unwrap().is_empty());
    }
}
