//! `adopt <cluster>`: mint the break-glass token on a cluster and store its kubeconfig
//! encrypted, once per cluster.

use super::access::{AccessArgs, report_written};
use super::progress::StderrProgress;
use super::write_out;
use crate::breakglass::interrupt::Interrupts;
use crate::breakglass::mint::{Commits, Outcome, Target, admin, plan, record};
use crate::error::Result;
use crate::fleet::Fleet;
use crate::git::Action;
use crate::input::{self, ServerUrl};
use crate::sops::Sops;
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    #[arg(add = crate::cli::completion::cluster_names())]
    pub cluster: String,
    /// API server URL to embed (default: KUBE_API_EXTERNAL_URL in cluster-config.env, else
    /// the URL in the existing file, else the kube context's server).
    #[arg(long, value_name = "URL", value_parser = input::server_flag)]
    pub server: Option<ServerUrl>,
    #[command(flatten)]
    pub access: AccessArgs,
}

pub async fn run(fleet: &Fleet, args: &AdoptArgs, ui: &mut Ui) -> Result<()> {
    let cluster = fleet.cluster(&args.cluster)?;
    let mut target = args.access.target(cluster, args.server.clone(), true)?;
    if args.access.dry_run {
        return write_out(ui, &plan::admin(Action::Adopt, &target).await?);
    }
    // A Ctrl-C or SIGTERM releases the rotation lock before the exit.
    target.interrupts = Interrupts::catch()?;
    let recorder = args.access.git.recorder(fleet)?;
    let sops = Sops::locate(fleet.root()).await?;
    let progress = StderrProgress::new(ui.err_style);
    let outcome = admin::adopt(&sops, &target, &progress).await?;
    if !outcome.written {
        return report_up_to_date(&target, &outcome, ui);
    }
    report_written(Action::Adopt, &target, &outcome, ui)?;
    let commits = Commits::default();
    record(
        &recorder,
        &sops,
        Action::Adopt,
        &[(&target, &outcome)],
        commits,
        ui,
    )
}

fn report_up_to_date(target: &Target, outcome: &Outcome, ui: &mut Ui) -> Result<()> {
    let text = format!(
        "adopt {}: already up to date: {} holds the current token of Secret uid {} and server {}; nothing written or committed\n",
        target.cluster.name(),
        target.cluster.break_glass_rel(),
        outcome.secret_uid,
        outcome.server
    );
    write_out(ui, &text)
}
