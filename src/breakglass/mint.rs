//! The `adopt` and `rotate` commands: arguments, `--dry-run`, and progress on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::lifecycle::{self, Outcome, Progress, Step, Target};
use crate::cluster::{AdminAccess, Identity, Manifest};
use crate::error::{Context as _, Result};
use crate::fleet::{ClusterName, Fleet};
use crate::sops::Sops;
use crate::ui::{Style, Ui};

#[derive(Debug, clap::Args)]
pub struct MintArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    pub cluster: String,
    /// Kube context with cluster-admin rights (default: the kubeconfig's current context).
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
    /// Kubeconfig holding that context (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// API server URL to embed (default: KUBE_API_EXTERNAL_URL in cluster-config.env, else
    /// the URL in the existing file, else the kube context's server).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// How long to wait for the token controller to fill the token Secret.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Do not check the new kubeconfig against the cluster before writing it (for a server
    /// URL that is not reachable from here).
    #[arg(long)]
    pub no_verify: bool,
    /// Print the manifest and every action; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Adopt,
    Rotate,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Adopt => "adopt",
            Action::Rotate => "rotate",
        }
    }
}

pub async fn run(fleet: &Fleet, action: Action, args: &MintArgs, ui: &mut Ui) -> Result<()> {
    let target = Target {
        cluster: fleet.cluster(&args.cluster)?,
        access: AdminAccess {
            kubeconfig: args.kubeconfig.clone(),
            context: args.kube_context.clone(),
        },
        server: args.server.clone(),
        token_timeout: args.timeout,
        verify: !args.no_verify,
        identity: Identity::default(),
    };
    if args.dry_run {
        return dry_run(action, &target, ui).await;
    }
    let sops = Sops::locate(fleet.root()).await?;
    let progress = StderrProgress::new(ui.err_style);
    let outcome = match action {
        Action::Adopt => lifecycle::adopt(&sops, &target, &progress).await?,
        Action::Rotate => lifecycle::rotate(&sops, &target, &progress).await?,
    };
    report_done(action, &target, &outcome, ui)
}

fn report_done(action: Action, target: &Target, outcome: &Outcome, ui: &mut Ui) -> Result<()> {
    let name = target.cluster.name();
    let rel = target.cluster.break_glass_rel();
    let message = match action {
        Action::Adopt => format!("{name}: adopt break-glass kubeconfig"),
        Action::Rotate => format!("{name}: rotate break-glass token after recovery"),
    };
    let text = format!(
        "{} {name}: wrote {rel} (server {}, token Secret uid {})\nCommit and push it so the team gets it:\n  git add {rel}\n  git commit -m \"{message}\"\n  git push\n",
        action.verb(),
        outcome.server,
        outcome.secret_uid
    );
    ui.out
        .write_all(text.as_bytes())
        .context(|| "writing to stdout".into())
}

async fn dry_run(action: Action, target: &Target, ui: &mut Ui) -> Result<()> {
    let id = &target.identity;
    let conn = target.access.connect().await?;
    let rel = target.cluster.break_glass_rel();
    let mut steps = vec![
        format!("check the fleet side: sops and the .sops.yaml rule for {rel}"),
        format!("connect with context {:?} to {}", conn.context, conn.server),
    ];
    if action == Action::Rotate {
        steps.push(format!(
            "delete Secret {}/{} and ServiceAccount {} (revokes the current break-glass token)",
            id.namespace, id.secret, id.service_account
        ));
    }
    let manifest = indent(&Manifest::new(id).to_yaml()?);
    steps.push(format!(
        "server-side apply (field manager kube-dc):\n{manifest}"
    ));
    steps.push(format!(
        "wait up to {}s for the token controller to fill data.token and data.ca.crt",
        target.token_timeout.as_secs()
    ));
    if target.verify {
        let server = planned_server(target, &conn.server);
        steps.push(format!(
            "verify the new kubeconfig against {server}: user {} with cluster-admin",
            id.username()
        ));
    }
    steps.push(format!("encrypt it with sops to {rel} (atomic replace)"));
    let mut plan = format!(
        "dry run: {} {} (nothing will be changed)\n",
        action.verb(),
        target.cluster.name()
    );
    for (n, step) in steps.iter().enumerate() {
        plan += &format!("{}. {}\n", n + 1, step.trim_end());
    }
    ui.out
        .write_all(plan.as_bytes())
        .context(|| "writing to stdout".into())
}

/// The server a real run would embed, as far as it is known without decrypting.
fn planned_server(target: &Target, context_server: &str) -> String {
    let configured = || {
        let config = target.cluster.config().ok()?;
        config.get("KUBE_API_EXTERNAL_URL").map(String::from)
    };
    target
        .server
        .clone()
        .or_else(configured)
        .unwrap_or_else(|| format!("{context_server} (or the URL in the existing file)"))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("     {l}\n")).collect()
}

/// One line per step on stderr.
pub struct StderrProgress {
    style: Style,
    err: Mutex<std::io::Stderr>,
}

impl StderrProgress {
    pub fn new(style: Style) -> StderrProgress {
        StderrProgress {
            style,
            err: Mutex::new(std::io::stderr()),
        }
    }
}

impl Progress for StderrProgress {
    fn step(&self, cluster: &ClusterName, step: Step) {
        let line = match step {
            Step::CheckingFleet => {
                "checking sops and the .sops.yaml rule (trial encryption)".to_string()
            }
            Step::Connected { server, context } => format!("using context {context:?} ({server})"),
            Step::Applying => {
                "applying ServiceAccount, ClusterRoleBinding and token Secret".to_string()
            }
            Step::Revoking => {
                "deleting the token Secret and the ServiceAccount: the old token is revoked".into()
            }
            Step::WaitingForToken => "waiting for the token controller".to_string(),
            Step::Verifying { server } => format!("verifying the new kubeconfig against {server}"),
            Step::VerifySkipped => self.style.yellow(
                "NOT verified (--no-verify): the kubeconfig was not tested against the cluster",
            ),
            Step::Sealing { file } => format!("encrypting to {file}"),
            Step::Warning(message) => format!("{} {message}", self.style.yellow("warning:")),
        };
        let mut err = self.err.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(err, "[{cluster}] {line}");
    }
}
