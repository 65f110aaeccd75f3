//! `status` as text: one cluster's fields, or the fleet's table with every problem and its
//! fix (the Markdown view reuses its rows).

use crate::breakglass::status::live::{LiveState, LiveStatus};
use crate::breakglass::status::{
    AgeSource, ClusterStatus, Decryption, FleetStatus, ProblemKind, State, short_duration,
};
use crate::redact;
use crate::ui::Style;

fn paint_live(style: &Style, state: LiveState) -> String {
    let label = state.label();
    match state {
        LiveState::UnusedSinceRotation => style.green(label),
        LiveState::Unreachable | LiveState::NoAdminContext | LiveState::Error => {
            style.yellow(label)
        }
        _ => style.red(label),
    }
}

fn paint_state(style: &Style, state: State) -> String {
    let label = state.label();
    match state {
        State::Committed => style.green(label),
        State::NotAdopted => style.red(label),
        _ => style.yellow(label),
    }
}

/// One cluster, a field per line, each problem with its fix.
pub fn one(status: &ClusterStatus, style: Style) -> String {
    let dash = || "-".to_string();
    let commit = status.last_commit.as_ref().map_or_else(dash, |c| {
        format!(
            "{} {} {} <{}> {}",
            c.short_id,
            c.date.format("%Y-%m-%d %H:%M UTC"),
            c.author,
            c.email,
            c.subject
        )
    });
    let recipients = status.sops.as_ref().map_or_else(dash, |s| {
        let verdict = if s.recipients_match {
            style.green("match .sops.yaml")
        } else {
            style.red("differ from .sops.yaml")
        };
        format!("{} ({verdict})", s.recipients.join(", "))
    });
    let mut rows = vec![
        ("cluster", status.cluster.clone()),
        ("file", status.path.display().to_string()),
        ("state", paint_state(&style, status.state)),
        ("last commit", commit),
        ("token age", age_cell(status)),
        (
            "sops modified",
            status
                .sops
                .as_ref()
                .and_then(|s| s.lastmodified.clone())
                .unwrap_or_else(dash),
        ),
        ("recipients", recipients),
        ("encrypted", encrypted_cell(status)),
        (
            "encrypted size",
            status
                .encrypted_size_bytes
                .map_or_else(dash, |n| format!("{n} bytes")),
        ),
        (
            "last modified",
            status.modified.map_or_else(dash, |m| {
                format!("{} (file mtime)", m.format("%Y-%m-%d %H:%M:%S UTC"))
            }),
        ),
        ("decrypts", decrypt_cell(&style, status)),
        ("server", status.server.clone().unwrap_or_else(dash)),
    ];
    if let Some(live) = &status.live {
        rows.extend(live_rows(&style, live));
    }
    for problem in &status.problems {
        rows.push((
            "problem",
            format!(
                "{}\n{:<16}fix: {}",
                style.red(&problem.message),
                "",
                problem.fix
            ),
        ));
    }
    let text: String = rows
        .iter()
        .map(|(k, v)| format!("{:<15} {v}\n", format!("{k}:")))
        .collect();
    text
}

fn live_rows(style: &Style, live: &LiveStatus) -> Vec<(&'static str, String)> {
    let dash = || "-".to_string();
    let exists = |e: Option<bool>| match e {
        Some(true) => "exists",
        Some(false) => "MISSING",
        None => "?",
    };
    let token = match (live.token_matches, &live.cluster_token_sha256_prefix) {
        (Some(true), _) => format!(
            "file matches the cluster (sha256 {}…)",
            live.file_token_sha256_prefix
        ),
        (_, Some(cluster)) => format!(
            "file sha256 {}… differs from the cluster's {cluster}…",
            live.file_token_sha256_prefix
        ),
        _ => dash(),
    };
    let last_used =
        live.last_used
            .as_ref()
            .map_or_else(dash, |date| match live.last_used_recorded_at {
                Some(at) => format!("{date} (recorded {})", at.format("%H:%M:%S UTC")),
                None => date.clone(),
            });
    vec![
        (
            "live",
            format!("{} ({})", paint_live(style, live.state), live.message),
        ),
        ("admin context", live.context.clone().unwrap_or_else(dash)),
        (
            "objects",
            format!(
                "ServiceAccount {}, Secret {}{}",
                exists(live.service_account_exists),
                exists(live.secret_exists),
                live.secret_uid
                    .as_ref()
                    .map_or_else(String::new, |u| format!(" (uid {u})"))
            ),
        ),
        ("token", token),
        ("last used", last_used),
        (
            "last session",
            // The annotation is the cluster's word: shown redacted and bounded.
            live.last_session
                .as_ref()
                .map_or_else(dash, |s| redact::untrusted(s.summary().as_bytes())),
        ),
        (
            "invalid since",
            live.invalid_since.clone().unwrap_or_else(dash),
        ),
        (
            "rotation lock",
            live.rotation_lock.as_ref().map_or_else(
                || "free".into(),
                |l| redact::untrusted(l.describe().as_bytes()),
            ),
        ),
    ]
}

fn age_cell(status: &ClusterStatus) -> String {
    match (status.token_age_seconds, status.age_source) {
        (Some(age), Some(AgeSource::Commit)) => {
            format!("{} (since last commit)", short_duration(age))
        }
        (Some(age), _) => format!("{} (sops lastmodified: not committed)", short_duration(age)),
        _ => "-".into(),
    }
}

fn decrypt_cell(style: &Style, status: &ClusterStatus) -> String {
    match &status.decryption {
        None => "-".into(),
        Some(Decryption { ok: true, .. }) => style.green("ok"),
        Some(Decryption { ok: false, .. }) => style.red("FAILED"),
    }
}

/// Where `--live` puts its column: before PROBLEMS.
const LIVE_COLUMN: usize = 6;

/// The fleet as a table, then each problem with its fix, then the counts.
pub fn table(report: &FleetStatus, style: Style) -> String {
    let (header, rows) = rows(report, style);
    let mut text = crate::ui::table(&header, &rows);
    for s in report.clusters.iter().filter(|s| !s.problems.is_empty()) {
        for p in &s.problems {
            text += &format!("{}: {}\n  fix: {}\n", s.cluster, p.message, p.fix);
        }
    }
    text + &format!(
        "{} cluster(s): {} ok, {} with problems\n",
        report.summary.clusters, report.summary.ok, report.summary.with_problems
    )
}

/// The fleet table's header and rows (also the Markdown view's).
pub fn rows(report: &FleetStatus, style: Style) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = report
        .clusters
        .iter()
        .map(|s| {
            let problems: Vec<&str> = s.problems.iter().map(|p| problem_label(p.kind)).collect();
            let mut row = vec![
                s.cluster.clone(),
                paint_state(&style, s.state),
                s.last_commit.as_ref().map_or("-".into(), |c| {
                    format!("{} {}", c.short_id, c.date.format("%Y-%m-%d"))
                }),
                s.token_age_seconds.map_or("-".into(), short_duration),
                s.sops.as_ref().map_or("-".into(), |x| {
                    if x.recipients_match {
                        "ok".into()
                    } else {
                        style.red("mismatch")
                    }
                }),
                decrypt_cell(&style, s),
                if problems.is_empty() {
                    style.green("ok")
                } else {
                    style.red(&problems.join(", "))
                },
            ];
            if report.live {
                let live = s.live.as_ref();
                row.insert(
                    LIVE_COLUMN,
                    live.map_or("-".into(), |l| paint_live(&style, l.state)),
                );
            }
            row
        })
        .collect();
    let mut header = vec![
        "CLUSTER",
        "STATE",
        "LAST COMMIT",
        "AGE",
        "RECIPIENTS",
        "DECRYPTS",
        "PROBLEMS",
    ];
    if report.live {
        header.insert(LIVE_COLUMN, "LIVE");
    }
    (header, rows)
}

fn problem_label(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::NotAdopted => "not adopted",
        ProblemKind::NotEncrypted => "not encrypted",
        ProblemKind::RecipientsMismatch => "recipients",
        ProblemKind::Undecryptable => "undecryptable",
        ProblemKind::Unreadable => "unreadable",
        ProblemKind::TooOld => "too old",
        ProblemKind::Uncommitted => "uncommitted",
        ProblemKind::Unpushed => "unpushed",
        ProblemKind::UsedSinceRotation => "used",
        ProblemKind::Stale => "stale",
        ProblemKind::Revoked => "revoked",
        ProblemKind::LiveUnknown => "live unknown",
    }
}

/// Which values the file holds encrypted: all, or those a selective rule names (the
/// others, such as the server URL, are in clear by design).
fn encrypted_cell(status: &ClusterStatus) -> String {
    match status.sops.as_ref() {
        None => "-".into(),
        Some(sops) => match &sops.selective_rule {
            None => "every value".into(),
            Some(rule) => format!("the values its rule selects ({rule}); the rest in clear"),
        },
    }
}
