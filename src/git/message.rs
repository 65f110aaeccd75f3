//! Commit messages: a template with `{cluster}`, `{action}`, `{server}`, `{date}` and
//! `{incident}`.

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

    /// The messages the spec tells operators to type by hand (naming the incident when
    /// there is one).
    fn default_template(self, incident: bool) -> &'static str {
        match (self, incident) {
            (Action::Adopt, _) => "{cluster}: adopt break-glass kubeconfig",
            (Action::Rotate, false) => "{cluster}: rotate break-glass token after recovery",
            (Action::Rotate, true) => {
                "{cluster}: rotate break-glass token after incident {incident}"
            }
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
    /// `--incident`: what the rotation was for.
    pub incident: Option<&'a str>,
    /// The break-glass sessions since the cluster's last rotation, one line each (empty
    /// when none): the message body, so the fleet history is the review trail.
    pub sessions: &'a str,
}

const SESSIONS_HEADING: &str =
    "Break-glass sessions since the last rotation (who, from, start - end, reason):";

/// What a template's placeholders stand for.
struct Fields<'a> {
    cluster: &'a str,
    action: Action,
    server: &'a str,
    incident: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Cluster,
    Action,
    Server,
    Date,
    Incident,
}

/// A parsed template; `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate(Vec<Piece>);

const PLACEHOLDERS: &str = "{cluster}, {action}, {server}, {date}, {incident}";

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
                        "incident" => Piece::Incident,
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

    #[allow(
        clippy::expect_used,
        reason = "the built-in templates are constants, covered by the unit tests"
    )]
    pub fn default_for(action: Action, incident: bool) -> MessageTemplate {
        MessageTemplate::parse(action.default_template(incident), "built-in default")
            .expect("built-in templates parse")
    }

    pub fn render(&self, change: &Change, now: DateTime<Utc>) -> String {
        let fields = Fields {
            cluster: change.cluster.as_str(),
            action: change.action,
            server: change.server,
            incident: change.incident,
        };
        let subject = self.fill(&fields, now);
        match change.sessions {
            "" => subject,
            sessions => format!("{subject}\n\n{SESSIONS_HEADING}\n{sessions}"),
        }
    }

    fn fill(&self, fields: &Fields, now: DateTime<Utc>) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.clone(),
                Piece::Cluster => fields.cluster.to_string(),
                Piece::Action => fields.action.as_str().to_string(),
                Piece::Server => fields.server.to_string(),
                Piece::Date => now.format("%Y-%m-%d").to_string(),
                Piece::Incident => fields.incident.unwrap_or_default().to_string(),
            })
            .collect()
    }
}

/// The message of one commit for several changes (`--single-commit`): a subject from
/// `template` with `{cluster}` and `{server}` standing for all of them, or a default
/// naming how many clusters and the incident, then one line per cluster.
pub fn combined_message(
    changes: &[Change],
    template: Option<&MessageTemplate>,
    now: DateTime<Utc>,
) -> String {
    let Some(first) = changes.first() else {
        return String::new();
    };
    let clusters: Vec<&str> = changes.iter().map(|c| c.cluster.as_str()).collect();
    let mut servers: Vec<&str> = changes.iter().map(|c| c.server).collect();
    servers.sort_unstable();
    servers.dedup();
    let fields = Fields {
        cluster: &clusters.join(", "),
        action: first.action,
        server: &servers.join(", "),
        incident: first.incident,
    };
    let subject = match template {
        Some(template) => template.fill(&fields, now),
        None => {
            let why = match first.incident {
                Some(id) => format!("after incident {id}"),
                None => "after recovery".to_string(),
            };
            let verb = first.action.as_str();
            format!(
                "{verb} break-glass kubeconfigs of {} clusters {why}",
                changes.len()
            )
        }
    };
    let body: String = changes
        .iter()
        .map(|c| format!("- {}: {}\n{}", c.cluster, c.server, indented(c.sessions)))
        .collect();
    let heading = match changes.iter().any(|c| !c.sessions.is_empty()) {
        true => {
            "Each cluster with its break-glass sessions since its last rotation (who, from, start - end, reason):\n"
        }
        false => "",
    };
    format!("{subject}\n\n{heading}{body}")
}

fn indented(lines: &str) -> String {
    lines.lines().map(|l| format!("    {l}\n")).collect()
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
            incident: None,
            sessions: "",
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
            MessageTemplate::default_for(Action::Adopt, false),
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
    fn incident_placeholder_and_combined_message() {
        let (alpha, beta) = (
            ClusterName::parse("alpha").unwrap(),
            ClusterName::parse("beta").unwrap(),
        );
        let change = |cluster, server| Change {
            cluster,
            action: Action::Rotate,
            server,
            rel: "clusters/x/break-glass-kubeconfig.enc.yaml",
            incident: Some("INC-42"),
            sessions: "",
        };
        let changes = [
            change(&alpha, "https://a:6443"),
            change(&beta, "https://b:6443"),
        ];
        let now = DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            MessageTemplate::default_for(Action::Rotate, true).render(&changes[0], now),
            "alpha: rotate break-glass token after incident INC-42"
        );
        assert_eq!(
            combined_message(&changes, None, now),
            "rotate break-glass kubeconfigs of 2 clusters after incident INC-42\n\n- alpha: https://a:6443\n- beta: https://b:6443\n"
        );
        let template = MessageTemplate::parse("{incident}: {action} {cluster}", "test").unwrap();
        assert!(
            combined_message(&changes, Some(&template), now)
                .starts_with("INC-42: rotate alpha, beta\n\n")
        );
    }

    #[test]
    fn sessions_are_the_body_of_one_commit_and_listed_per_cluster_in_a_combined_one() {
        let (alpha, beta) = (
            ClusterName::parse("alpha").unwrap(),
            ClusterName::parse("beta").unwrap(),
        );
        let change = |cluster, sessions| Change {
            cluster,
            action: Action::Rotate,
            server: "https://a:6443",
            rel: "clusters/x/break-glass-kubeconfig.enc.yaml",
            incident: None,
            sessions,
        };
        let used = "- Ann (ann@h) 2026-03-04T01:00:00Z - 2026-03-04T01:05:00Z (exit 0): INC-7\n";
        let now = DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
            .unwrap()
            .to_utc();
        let one =
            MessageTemplate::default_for(Action::Rotate, false).render(&change(&alpha, used), now);
        assert_eq!(
            one,
            format!("alpha: rotate break-glass token after recovery\n\n{SESSIONS_HEADING}\n{used}")
        );
        let both = combined_message(&[change(&alpha, used), change(&beta, "")], None, now);
        assert!(
            both.ends_with(&format!(
                "- alpha: https://a:6443\n    {used}- beta: https://a:6443\n"
            )),
            "{both}"
        );
        assert!(
            both.contains("break-glass sessions since its last rotation"),
            "{both}"
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
