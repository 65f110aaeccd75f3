//! Commit messages: a template with `{cluster}`, `{action}`, `{server}` and `{date}`.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::fleet::ClusterName;

/// What happened to a cluster's break-glass file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Adopt,
    Rotate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Adopt => "adopt",
            Action::Rotate => "rotate",
        }
    }

    /// The messages the spec tells operators to type by hand.
    fn default_template(self) -> &'static str {
        match self {
            Action::Adopt => "{cluster}: adopt break-glass kubeconfig",
            Action::Rotate => "{cluster}: rotate break-glass token after recovery",
        }
    }
}

/// One written break-glass file, to be committed.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub cluster: &'a ClusterName,
    pub action: Action,
    /// The API server URL embedded in the kubeconfig.
    pub server: &'a str,
    /// The file, relative to the fleet root.
    pub rel: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Cluster,
    Action,
    Server,
    Date,
}

/// A parsed template; `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate(Vec<Piece>);

const PLACEHOLDERS: &str = "{cluster}, {action}, {server}, {date}";

impl MessageTemplate {
    /// `origin` names where the template came from, for the error message.
    pub fn parse(text: &str, origin: &str) -> Result<MessageTemplate> {
        let bad = |why: String| {
            Error::usage(format!(
                "commit message template {text:?} ({origin}): {why}"
            ))
            .with_hint(format!(
                "placeholders are {PLACEHOLDERS}; write {{{{ and }}}} for literal braces"
            ))
        };
        if text.trim().is_empty() {
            return Err(bad("it is empty".into()));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => literal.push(chars.next().unwrap_or('{')),
                '}' if chars.peek() == Some(&'}') => literal.push(chars.next().unwrap_or('}')),
                '{' => {
                    let rest: String = chars.clone().collect();
                    let Some(end) = rest.find('}') else {
                        return Err(bad(format!("unclosed placeholder {{{rest}")));
                    };
                    let name = &rest[..end];
                    chars.nth(name.chars().count());
                    let piece = match name {
                        "cluster" => Piece::Cluster,
                        "action" => Piece::Action,
                        "server" => Piece::Server,
                        "date" => Piece::Date,
                        _ => return Err(bad(format!("unknown placeholder {{{name}}}"))),
                    };
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    pieces.push(piece);
                }
                '}' => return Err(bad("a `}` without `{`".into())),
                c => literal.push(c),
            }
        }
        pieces.push(Piece::Text(literal));
        pieces.retain(|p| *p != Piece::Text(String::new()));
        Ok(MessageTemplate(pieces))
    }

    pub fn default_for(action: Action) -> MessageTemplate {
        MessageTemplate::parse(action.default_template(), "built-in default")
            .expect("built-in templates parse")
    }

    pub fn render(&self, change: &Change, now: DateTime<Utc>) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.clone(),
                Piece::Cluster => change.cluster.to_string(),
                Piece::Action => change.action.as_str().to_string(),
                Piece::Server => change.server.to_string(),
                Piece::Date => now.format("%Y-%m-%d").to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, action: Action) -> String {
        let name = ClusterName::parse("eu/dc1").unwrap();
        let change = Change {
            cluster: &name,
            action,
            server: "https://kube-api.example:6443",
            rel: "clusters/eu/dc1/break-glass-kubeconfig.enc.yaml",
        };
        let now = DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
            .unwrap()
            .to_utc();
        MessageTemplate::parse(template, "test")
            .unwrap()
            .render(&change, now)
    }

    #[test]
    fn placeholders_and_braces() {
        assert_eq!(
            render(
                "{cluster}: {action} via {server} on {date} {{x}}",
                Action::Rotate
            ),
            "eu/dc1: rotate via https://kube-api.example:6443 on 2026-03-04 {x}"
        );
        assert_eq!(
            MessageTemplate::default_for(Action::Adopt),
            MessageTemplate::parse("{cluster}: adopt break-glass kubeconfig", "x").unwrap()
        );
        assert_eq!(
            render(
                "{cluster}: rotate break-glass token after recovery",
                Action::Rotate
            ),
            "eu/dc1: rotate break-glass token after recovery"
        );
    }

    #[test]
    fn rejects_bad_templates() {
        for (text, why) in [
            ("{cluser}: x", "unknown placeholder {cluser}"),
            ("x }", "without `{`"),
            ("  ", "empty"),
            ("{cluster", "unclosed placeholder {cluster"),
        ] {
            let err = MessageTemplate::parse(text, "--message")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(why) && err.contains("--message"),
                "{text:?}: {err}"
            );
        }
    }
}
