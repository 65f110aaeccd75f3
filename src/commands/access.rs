//! What adopt and rotate share on the command line: how to reach the clusters, what to do
//! with the written files, and the line saying what was written.

use std::path::PathBuf;
use std::time::Duration;

use super::write_out;
use crate::breakglass::mint::{Outcome, Target, admin_context};
use crate::cluster::AdminAccess;
use crate::cluster::lease::WaitPolicy;
use crate::error::Result;
use crate::fleet::{Cluster, Fleet};
use crate::git::{Action, CommitOptions, GitCli, PushPolicy, Recorder};
use crate::input::{self, ServerUrl};
use crate::ui::Ui;

/// How to reach the clusters and what to do with the written files.
#[derive(Debug, clap::Args)]
pub struct AccessArgs {
    /// Kube context with cluster-admin rights. May be a template: `{cluster}-admin`.
    /// Default: KUBE_CONTEXT in cluster-config.env, else (one cluster only) the
    /// kubeconfig's current context.
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
    /// Kubeconfig holding the context(s) (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// How long to wait for the token controller to fill the token Secret.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = input::token_timeout)]
    pub timeout: Duration,
    /// Do not check the new kubeconfig against the cluster before writing it (for a server
    /// URL that is not reachable from here).
    #[arg(long)]
    pub no_verify: bool,
    /// Print the manifest and every action; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// When another run holds the cluster's rotation lock (Lease break-glass-rotation in the
    /// break-glass namespace), wait for it (default 10m) instead of failing at once. A lock
    /// whose holder died expires 30s after its last renewal.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "10m", value_parser = input::lock_wait)]
    pub wait_lock: Option<Duration>,
    #[command(flatten)]
    pub git: CommitArgs,
}

/// The commit and push flags of commands that write a break-glass file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommitArgs {
    /// Commit message template, with {cluster}, {action}, {server} and {date}. Default:
    /// `commit_message` in the fleet's .kube-dc.yaml, else "{cluster}: adopt break-glass
    /// kubeconfig" / "{cluster}: rotate break-glass token after recovery".
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "no_commit")]
    pub message: Option<String>,
    /// Write the file only: do not commit (or push) it.
    #[arg(long, conflicts_with = "push")]
    pub no_commit: bool,
    /// Push the new commit(s) to the branch's upstream without asking (never forced).
    /// Without it a terminal is asked, and otherwise the push command is printed.
    #[arg(long)]
    pub push: bool,
}

impl CommitArgs {
    /// The recorder for a real run: the user's `git`, asking before a push on a terminal.
    pub fn recorder(&self, fleet: &Fleet) -> Result<Recorder> {
        let options = CommitOptions {
            message: self.message.clone(),
            no_commit: self.no_commit,
        };
        let policy = PushPolicy::from_flag(self.push);
        Recorder::new(fleet, &options, GitCli::system(), policy)
    }
}

impl AccessArgs {
    /// The per-cluster part of a run; `single` allows falling back to the current context.
    pub fn target(
        &self,
        cluster: Cluster,
        server: Option<ServerUrl>,
        single: bool,
    ) -> Result<Target> {
        let context = admin_context(&cluster, self.kube_context.as_deref(), single)?;
        let admin = AdminAccess {
            kubeconfig: self.kubeconfig.clone(),
            context,
        };
        self.target_reached_by(cluster, admin, server)
    }

    pub fn target_reached_by(
        &self,
        cluster: Cluster,
        admin: AdminAccess,
        server: Option<ServerUrl>,
    ) -> Result<Target> {
        let mut target = Target::new(cluster, admin, server, self.timeout, !self.no_verify)?;
        target.lock_wait = WaitPolicy {
            up_to: self.wait_lock,
        };
        Ok(target)
    }
}

/// The line saying what adopt or rotate wrote.
pub fn report_written(
    action: Action,
    target: &Target,
    outcome: &Outcome,
    ui: &mut Ui,
) -> Result<()> {
    let text = format!(
        "{} {}: wrote {} (server {}, token Secret uid {})\n",
        action.as_str(),
        target.cluster.name(),
        target.cluster.break_glass_rel(),
        outcome.server,
        outcome.secret_uid
    );
    write_out(ui, &text)
}
