//! `rotate <cluster|glob>... | --all`: replace break-glass tokens, one cluster or many at
//! once, with an admin login or `--via break-glass`.

use clap::builder::PossibleValue;

use super::access::{AccessArgs, report_written};
use super::progress::{ClusterLines, StderrProgress};
use super::write_out;
use crate::breakglass::batch::{self, ClusterResult, Summary};
use crate::breakglass::interrupt::Interrupts;
use crate::breakglass::mint::{
    Commits, Outcome, Progress, Stage, Step, Target, Via, record, strategy,
};
use crate::cluster::AdminAccess;
use crate::error::{Context as _, Error, Result};
use crate::fleet::shard::Shard;
use crate::fleet::{Cluster, ClusterName, Fleet};
use crate::git::Action;
use crate::input::{self, ServerUrl};
use crate::sops::Sops;
use crate::ui::{OutputFormat, Style, Ui, table};

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Clusters to rotate: names or globs over names (`eu/*`, `prod-?`).
    #[arg(
        value_name = "CLUSTER",
        required_unless_present = "all",
        add = crate::cli::completion::cluster_names()
    )]
    pub clusters: Vec<String>,
    /// Rotate every cluster that has a break-glass file.
    #[arg(long, conflicts_with = "clusters")]
    pub all: bool,
    /// Rotate only shard I of N of the selected clusters (1 <= I <= N), for N CI runners
    /// that share the work: each cluster falls in exactly one shard, by a hash of its name,
    /// so adding a cluster never moves another. An empty shard is not an error.
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// How many clusters to rotate at once.
    #[arg(long, short, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// API server URL to embed (one cluster only; see adopt).
    #[arg(long, value_name = "URL", value_parser = input::server_flag)]
    pub server: Option<ServerUrl>,
    /// Summary format; `json` is documented in docs/json-output.md.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// Whose credential does the rotation: an admin login (kube context), or the
    /// break-glass credential in the fleet file itself, so that only the age key is
    /// needed (make-before-break; re-run to finish an interrupted run).
    #[arg(long, value_enum, default_value_t, value_name = "CREDENTIAL")]
    pub via: Via,
    /// Commit all rotated files as one commit listing the clusters (default: one commit
    /// per cluster).
    #[arg(long, conflicts_with = "no_commit")]
    pub single_commit: bool,
    /// The incident the rotation follows; named in the default commit messages and
    /// available to --message as {incident}.
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    #[command(flatten)]
    pub access: AccessArgs,
}

/// `--via admin|break-glass`; the strategy itself is the domain's [`Via`].
impl clap::ValueEnum for Via {
    fn value_variants<'a>() -> &'a [Self] {
        &[Via::Admin, Via::BreakGlass]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Via::Admin => "admin",
            Via::BreakGlass => "break-glass",
        }))
    }
}

impl RotateArgs {
    pub fn commits(&self) -> Commits<'_> {
        Commits {
            together: self.single_commit,
            incident: self.incident.as_deref(),
        }
    }
}

pub async fn run(fleet: &Fleet, args: &RotateArgs, ui: &mut Ui) -> Result<u8> {
    let mut clusters = batch::select(fleet, &args.clusters, args.all)?;
    if let Some(shard) = args.shard {
        let selected = clusters.len();
        clusters.retain(|c| shard.contains(c.name()));
        if clusters.is_empty() {
            ui.warn(&format!(
                "shard {shard} holds none of the {selected} selected cluster(s): nothing to rotate"
            ));
            return Ok(0);
        }
    }
    if args.server.is_some() && clusters.len() != 1 {
        return Err(Error::usage(
            "--server names one apiserver: use it with one cluster",
        ));
    }
    if args.via == Via::BreakGlass {
        check_self_rotation_flags(args)?;
    }
    // From here on a Ctrl-C after a revocation finishes the rotation or says how to
    // recover; a dry run revokes nothing and keeps the default.
    let interrupts = match args.access.dry_run {
        true => Interrupts::default(),
        false => Interrupts::catch()?,
    };
    // One cluster reads as adopt does, unless a script asked for the JSON summary.
    if let ([cluster], OutputFormat::Table) = (clusters.as_slice(), args.output) {
        let target = rotation_target(
            cluster.clone(),
            args,
            args.server.clone(),
            true,
            &interrupts,
        )?;
        return rotate_one(fleet, target, args, ui).await.map(|()| 0);
    }
    rotate_many(fleet, clusters, args, &interrupts, ui).await
}

/// The target of one cluster's rotation; `single` as for [`AccessArgs::target`].
fn rotation_target(
    cluster: Cluster,
    args: &RotateArgs,
    server: Option<ServerUrl>,
    single: bool,
    interrupts: &Interrupts,
) -> Result<Target> {
    let mut target = match args.via {
        Via::Admin => args.access.target(cluster, server, single)?,
        // No admin access: the break-glass file is the login.
        Via::BreakGlass => {
            args.access
                .target_reached_by(cluster, AdminAccess::default(), server)?
        }
    };
    target.interrupts = interrupts.clone();
    Ok(target)
}

/// `--via break-glass` logs in with the file and verifies every credential it writes
/// because it goes on working with it: admin-login and `--no-verify` flags are mistakes.
fn check_self_rotation_flags(args: &RotateArgs) -> Result<()> {
    let access = &args.access;
    let misplaced = [
        ("--kube-context", access.kube_context.is_some()),
        ("--kubeconfig", access.kubeconfig.is_some()),
        ("--no-verify", access.no_verify),
    ];
    match misplaced.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(Error::usage(format!(
            "{flag} does not go with --via break-glass, which logs in with the break-glass file and verifies each credential before using it"
        ))),
        None => Ok(()),
    }
}

async fn rotate_one(fleet: &Fleet, target: Target, args: &RotateArgs, ui: &mut Ui) -> Result<()> {
    if args.access.dry_run {
        return write_out(ui, &strategy::plan(args.via, &target).await?);
    }
    let recorder = args.access.git.recorder(fleet)?;
    let sops = Sops::locate(fleet.root()).await?;
    let progress = StderrProgress::new(ui.err_style);
    let outcome = strategy::rotate(args.via, &sops, &target, &progress).await?;
    report_written(Action::Rotate, &target, &outcome, ui)?;
    if args.via == Via::BreakGlass {
        progress.step(target.cluster.name(), Step::SelfRotation(Stage::Record));
    }
    record(
        &recorder,
        &sops,
        Action::Rotate,
        &[(&target, &outcome)],
        args.commits(),
        ui,
    )
}

/// Rotates `clusters`, at most `--jobs` at a time; exit code 0 when all succeeded, 1 when
/// any failed.
async fn rotate_many(
    fleet: &Fleet,
    clusters: Vec<Cluster>,
    args: &RotateArgs,
    interrupts: &Interrupts,
    ui: &mut Ui,
) -> Result<u8> {
    // One cluster (`--output json`) may use the current context and `--server`, as alone.
    let single = clusters.len() == 1;
    let server = args.server.clone().filter(|_| single);
    let (targets, unusable): (Vec<_>, Vec<_>) = clusters
        .into_iter()
        .map(|c| {
            let name = c.name().clone();
            rotation_target(c, args, server.clone(), single, interrupts).map_err(|e| (name, e))
        })
        .partition(|t| t.is_ok());
    let targets: Vec<Target> = targets.into_iter().filter_map(|t| t.ok()).collect();
    let unusable: Vec<(ClusterName, Error)> =
        unusable.into_iter().filter_map(|t| t.err()).collect();
    if args.access.dry_run {
        return dry_run(args.via, &targets, &unusable, ui).await;
    }
    let recorder = args.access.git.recorder(fleet)?;
    let sops = Sops::locate(fleet.root()).await?;
    let progress = ClusterLines::new(&targets, ui.err_style);
    let jobs = usize::from(args.jobs);
    let outcomes = batch::rotate(&targets, args.via, jobs, &sops, &progress).await;
    progress.clear();
    let mut done: Vec<(&Target, &Outcome)> = outcomes
        .iter()
        .filter_map(|(t, _, r)| Some((*t, r.as_ref().ok()?)))
        .collect();
    // Rotations finish in any order; commits (and a single commit's list) follow the names.
    done.sort_by(|a, b| a.0.cluster.name().cmp(b.0.cluster.name()));
    let commit_error = record(&recorder, &sops, Action::Rotate, &done, args.commits(), ui).err();
    let results = batch::summarize(&outcomes, unusable);
    render(&results, args.output, ui)?;
    if let Some(e) = commit_error {
        ui.warn(&format!(
            "the rotated files are written, but committing failed: {e}"
        ));
        return Ok(1);
    }
    Ok(if results.iter().all(|r| r.error.is_none()) {
        0
    } else {
        1
    })
}

async fn dry_run(
    via: Via,
    targets: &[Target],
    unusable: &[(ClusterName, Error)],
    ui: &mut Ui,
) -> Result<u8> {
    for target in targets {
        write_out(ui, &strategy::plan(via, target).await?)?;
    }
    for (name, error) in unusable {
        write_out(ui, &format!("{name}: would be skipped: {error}\n"))?;
    }
    Ok(if unusable.is_empty() { 0 } else { 1 })
}

fn render(results: &[ClusterResult], format: OutputFormat, ui: &mut Ui) -> Result<()> {
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    let text = match format {
        OutputFormat::Json => {
            let summary = Summary {
                action: "rotate",
                ok: results.len() - failed,
                failed,
                clusters: results,
            };
            serde_json::to_string_pretty(&summary).context(|| "JSON".into())? + "\n"
        }
        OutputFormat::Table => {
            let style = ui.out_style;
            let rows: Vec<Vec<String>> = results.iter().map(|r| summary_row(r, style)).collect();
            let mut text = table(
                &["CLUSTER", "RESULT", "DURATION", "SECRET UID", "ERROR"],
                &rows,
            );
            text += &format!("{} rotated, {failed} failed\n", results.len() - failed);
            text
        }
    };
    write_out(ui, &text)
}

fn summary_row(r: &ClusterResult, style: Style) -> Vec<String> {
    let result = if r.error.is_none() {
        style.green("ok")
    } else {
        style.red("FAILED")
    };
    let uid = r
        .secret_uid
        .as_deref()
        .map(|u| u.chars().take(8).collect())
        .unwrap_or_else(|| "-".into());
    // The first line says what failed; the rest (sops' stderr, hints) is in --output json.
    let error = r
        .error
        .as_deref()
        .and_then(|e| e.lines().next())
        .unwrap_or("")
        .to_string();
    vec![
        r.cluster.clone(),
        result,
        format!("{:.1}s", r.duration_seconds),
        uid,
        error,
    ]
}
