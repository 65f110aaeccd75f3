//! Minting progress on stderr: one line per step, or (for a batch on a terminal) a live
//! line per cluster.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::breakglass::batch::BatchProgress;
use crate::breakglass::mint::{Outcome, Progress, Step, Target};
use crate::error::Result;
use crate::fleet::ClusterName;
use crate::ui::{Style, TerminalSafe, for_terminal};

/// What a step looks like on one line.
pub fn describe(step: &Step, style: Style) -> String {
    match step {
        Step::CheckingFleet => "checking sops and the .sops.yaml rule (trial encryption)".into(),
        Step::Connected { server, context } => format!("using context {context:?} ({server})"),
        Step::Applying => "applying ServiceAccount, ClusterRoleBinding and token Secret".into(),
        Step::Revoking => {
            "deleting the token Secret and the ServiceAccount: the old token is revoked".into()
        }
        Step::WaitingForToken => "waiting for the token controller".into(),
        Step::Verifying { server } => format!("verifying the kubeconfig against {server}"),
        Step::VerifySkipped => style.yellow(
            "NOT verified (--no-verify): the kubeconfig was not tested against the cluster",
        ),
        Step::Sealing { file } => format!("encrypting to {file}"),
        Step::Warning(message) => format!("{} {message}", style.yellow("warning:")),
        Step::SelfRotation(stage) => stage.to_string(),
        Step::Lock(note) => note.clone(),
    }
}

/// One line per step on stderr.
pub struct StderrProgress {
    style: Style,
    err: Mutex<TerminalSafe<std::io::Stderr>>,
}

impl StderrProgress {
    pub fn new(style: Style) -> StderrProgress {
        StderrProgress {
            style,
            err: Mutex::new(TerminalSafe::new(std::io::stderr())),
        }
    }
}

impl StderrProgress {
    pub fn line(&self, cluster: &ClusterName, line: &str) {
        let mut err = self.err.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(err, "[{cluster}] {line}");
    }
}

impl Progress for StderrProgress {
    fn step(&self, cluster: &ClusterName, step: Step) {
        self.line(cluster, &describe(&step, self.style));
    }
}

/// Progress for many clusters: a line per cluster that changes in place on a terminal,
/// one line per event otherwise.
pub enum ClusterLines {
    Bars {
        multi: MultiProgress,
        bars: HashMap<ClusterName, ProgressBar>,
        style: Style,
    },
    Lines(StderrProgress),
}

impl ClusterLines {
    pub fn new(targets: &[Target], style: Style) -> ClusterLines {
        if !std::io::stderr().is_terminal() {
            return ClusterLines::Lines(StderrProgress::new(style));
        }
        let multi = MultiProgress::new();
        let width = targets
            .iter()
            .map(|t| t.cluster.name().as_str().len())
            .max()
            .unwrap_or(0);
        let look = ProgressStyle::with_template("{spinner} {prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars: BTreeMap<_, _> = targets
            .iter()
            .map(|t| {
                let bar = multi.add(ProgressBar::new_spinner().with_style(look.clone()));
                bar.set_prefix(format!("{:<width$}", t.cluster.name().as_str()));
                bar.set_message("queued");
                bar.enable_steady_tick(Duration::from_millis(120));
                (t.cluster.name().clone(), bar)
            })
            .collect();
        ClusterLines::Bars {
            multi,
            bars: bars.into_iter().collect(),
            style,
        }
    }

    pub fn clear(&self) {
        if let ClusterLines::Bars { multi, .. } = self {
            let _ = multi.clear();
        }
    }
}

impl Progress for ClusterLines {
    fn step(&self, cluster: &ClusterName, step: Step) {
        match self {
            ClusterLines::Bars { bars, style, multi } => match (&step, bars.get(cluster)) {
                // Warnings stay on screen above the bars.
                (Step::Warning(_), _) => {
                    let line = format!("[{cluster}] {}", describe(&step, *style));
                    let _ = multi.println(for_terminal(&line));
                }
                (_, Some(bar)) => bar.set_message(for_terminal(&describe(&step, *style))),
                (_, None) => {}
            },
            ClusterLines::Lines(lines) => lines.step(cluster, step),
        }
    }
}

impl BatchProgress for ClusterLines {
    fn finished(&self, cluster: &ClusterName, result: &Result<Outcome>, took: Duration) {
        let line = match result {
            Ok(_) => format!("done in {:.1}s", took.as_secs_f64()),
            Err(e) => format!("FAILED: {}", e.message().lines().next().unwrap_or_default()),
        };
        match self {
            ClusterLines::Bars { bars, .. } => {
                if let Some(bar) = bars.get(cluster) {
                    bar.finish_with_message(for_terminal(&line));
                }
            }
            ClusterLines::Lines(lines) => lines.line(cluster, &line),
        }
    }
}
