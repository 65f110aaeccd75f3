//! `status <cluster> | --all`: each break-glass file's Git state, last commit, token age,
//! sops metadata and recipients, and (unless `--no-decrypt`) whether it decrypts. Contacts
//! no cluster unless `--live` asks for it; decryption happens in memory only. The report
//! is built by `breakglass::status`; this module holds the flags, the exit code and the
//! renderers (text here and in [`text`], [`markdown`], JSON as the model serializes).

mod markdown;
mod text;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::write_out;
use crate::breakglass::status::live::Access;
use crate::breakglass::status::{self, ClusterStatus, Decryption, FleetStatus, ProblemKind, State};
use crate::error::{Context as _, Error, Result};
use crate::fleet::Fleet;
use crate::shell::quote;
use crate::ui::{StatusFormat, Ui};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["cluster", "all"])))]
pub struct StatusArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    #[arg(add = crate::cli::completion::cluster_names())]
    pub cluster: Option<String>,
    /// Every cluster under clusters/, one row each (including clusters not adopted).
    #[arg(long)]
    pub all: bool,
    /// Output format; `json` is documented in docs/json-output.md; `markdown` is a table
    /// for CI job summaries and merge-request comments.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: StatusFormat,
    /// Mark tokens older than this (time since the last commit of the file), e.g. 90d, 12h.
    #[arg(long, value_name = "DURATION", value_parser = crate::input::max_age)]
    pub max_age: Option<Duration>,
    /// Exit 1 when any cluster is not adopted, too old, uncommitted, unpushed,
    /// undecryptable, not encrypted, or encrypted to other recipients than .sops.yaml says.
    #[arg(long)]
    pub check: bool,
    /// Never run sops: report only what needs no key (for CI without secrets).
    #[arg(long)]
    pub no_decrypt: bool,
    /// Also ask each cluster (read-only) whether it still holds the file's token, and
    /// whether that token was used since the file was written. See docs/live-status.md.
    #[arg(long, conflicts_with = "no_decrypt")]
    pub live: bool,
    /// With --live: kube context with admin rights; may be a template, `{cluster}-admin`.
    /// Default: KUBE_CONTEXT in cluster-config.env, else (one cluster only) the current one.
    #[arg(long, value_name = "CONTEXT", requires = "live")]
    pub kube_context: Option<String>,
    /// With --live: kubeconfig holding the context(s) (default: $KUBECONFIG, ~/.kube/config).
    #[arg(long, value_name = "FILE", requires = "live")]
    pub kubeconfig: Option<PathBuf>,
}

pub async fn run(fleet: &Fleet, args: &StatusArgs, ui: &mut Ui) -> Result<()> {
    let clusters = match &args.cluster {
        Some(name) => vec![fleet.cluster(name)?],
        None => fleet.clusters()?,
    };
    let report = status::collect(fleet, &clusters, &options(args), ui).await?;
    match (&args.cluster, report.clusters.as_slice()) {
        (Some(_), _) if args.output == StatusFormat::Markdown => {
            render_all(&report, args.output, ui)?
        }
        // One cluster asked, one reported: its own view and exit code.
        (Some(_), [one]) => {
            render_one(one, args.output, ui)?;
            usable(one)?;
        }
        _ => render_all(&report, args.output, ui)?,
    }
    if args.check && report.summary.with_problems > 0 {
        return Err(Error::failed(format!(
            "{} of {} cluster(s) need attention",
            report.summary.with_problems, report.summary.clusters
        )));
    }
    Ok(())
}

fn options(args: &StatusArgs) -> status::Options {
    let live = args.live.then(|| Access {
        kube_context: args.kube_context.clone(),
        kubeconfig: args.kubeconfig.clone(),
        single: args.cluster.is_some(),
    });
    status::Options {
        max_age: args.max_age,
        decrypt: !args.no_decrypt,
        live,
    }
}

fn render_one(status: &ClusterStatus, format: StatusFormat, ui: &mut Ui) -> Result<()> {
    let text = match format {
        StatusFormat::Json => to_json(status)?,
        StatusFormat::Table | StatusFormat::Markdown => text::one(status, ui.out_style),
    };
    write_out(ui, &text)
}

fn render_all(report: &FleetStatus, format: StatusFormat, ui: &mut Ui) -> Result<()> {
    let text = match format {
        StatusFormat::Json => to_json(report)?,
        StatusFormat::Markdown => markdown::report(report),
        StatusFormat::Table => text::table(report, ui.out_style),
    };
    write_out(ui, &text)
}

/// `status <cluster>` fails (after its report) when there is no usable file: a script
/// asking about one cluster must not read success from a missing credential.
fn usable(status: &ClusterStatus) -> Result<()> {
    if status.state == State::NotAdopted {
        return Err(Error::failed(format!(
            "cluster {} has no break-glass kubeconfig: {} does not exist",
            status.cluster, status.file
        ))
        .with_hint(format!(
            "create it with `kube-dc bootstrap break-glass adopt {}`",
            quote(&status.cluster)
        )));
    }
    if let Some(problem) = status
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Unreadable)
    {
        return Err(Error::failed(problem.message.clone()).with_hint(problem.fix.clone()));
    }
    // The report above already shows sops' words and the fix: say it once.
    match &status.decryption {
        Some(Decryption { ok: false, fix, .. }) => {
            let err = Error::failed(format!(
                "cannot decrypt {} (the problem is shown above)",
                status.file
            ));
            Err(match fix {
                Some(fix) => err.with_hint(fix.clone()),
                None => err,
            })
        }
        _ => Ok(()),
    }
}

fn to_json(value: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(value).context(|| "JSON".into())? + "\n")
}
