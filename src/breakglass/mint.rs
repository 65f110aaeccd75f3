//! The `adopt` and `rotate` commands: arguments, per-cluster targets, `--dry-run`, and
//! progress on stderr. Batch rotation lives in [`super::batch`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::audit::journal::Journal;
use super::batch;
use super::interrupt::{self, Interrupts};
use super::landing;
use super::lifecycle::{self, Outcome, Progress, Step, Target};
use super::self_rotation::{self, Stage};
use crate::cluster::lease::WaitPolicy;
use crate::cluster::{AdminAccess, Identity, Manifest};
use crate::error::{Context as _, Error, Result};
use crate::fleet::shard::Shard;
use crate::fleet::{Cluster, ClusterName, Fleet};
use crate::git::{self, Action, CommitArgs, CommitOutcome, Recorder};
use crate::input::{self, ServerUrl};
use crate::sops::Sops;
use crate::ui::{OutputFormat, Style, Ui};

/// `cluster-config.env` key naming the kube context with admin rights on the cluster.
pub const CONTEXT_KEY: &str = "KUBE_CONTEXT";

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

#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    #[arg(add = crate::completion::cluster_names())]
    pub cluster: String,
    /// API server URL to embed (default: KUBE_API_EXTERNAL_URL in cluster-config.env, else
    /// the URL in the existing file, else the kube context's server).
    #[arg(long, value_name = "URL", value_parser = input::server_flag)]
    pub server: Option<ServerUrl>,
    #[command(flatten)]
    pub access: AccessArgs,
}

pub async fn adopt(fleet: &Fleet, args: &AdoptArgs, ui: &mut Ui) -> Result<()> {
    let cluster = fleet.cluster(&args.cluster)?;
    let mut target = target(cluster, &args.access, args.server.clone(), true)?;
    if args.access.dry_run {
        return dry_run(Action::Adopt, &target, ui).await;
    }
    // A Ctrl-C or SIGTERM releases the rotation lock before the exit.
    target.interrupts = Interrupts::catch()?;
    let recorder = args.access.git.recorder(fleet)?;
    let sops = Sops::locate(fleet.root()).await?;
    let progress = StderrProgress::new(ui.err_style);
    let outcome = lifecycle::adopt(&sops, &target, &progress).await?;
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

/// The per-cluster part of a run; `single` allows falling back to the current context.
pub fn target(
    cluster: Cluster,
    access: &AccessArgs,
    server: Option<ServerUrl>,
    single: bool,
) -> Result<Target> {
    let context = admin_context(&cluster, access.kube_context.as_deref(), single)?;
    let admin = AdminAccess {
        kubeconfig: access.kubeconfig.clone(),
        context,
    };
    target_reached_by(cluster, admin, access, server)
}

fn target_reached_by(
    cluster: Cluster,
    admin: AdminAccess,
    access: &AccessArgs,
    server: Option<ServerUrl>,
) -> Result<Target> {
    // Reading the config checks its values (server URL, namespace) before anything runs.
    let identity = Identity::for_config(&cluster.config()?);
    Ok(Target {
        cluster,
        access: admin,
        server,
        token_timeout: access.timeout,
        verify: !access.no_verify,
        identity,
        interrupts: Interrupts::default(),
        lock_wait: WaitPolicy {
            up_to: access.wait_lock,
        },
    })
}

/// `--kube-context` (with `{cluster}` filled in), else `KUBE_CONTEXT` from the cluster's
/// config, else the current context — but only for a single cluster: for many, one
/// current context cannot be right for all, so it is an error rather than a guess.
pub(crate) fn admin_context(
    cluster: &Cluster,
    flag: Option<&str>,
    single: bool,
) -> Result<Option<String>> {
    if let Some(template) = flag {
        return Ok(Some(template.replace("{cluster}", cluster.name().as_str())));
    }
    if let Some(context) = cluster.config()?.get(CONTEXT_KEY) {
        return Ok(Some(context.to_string()));
    }
    if single {
        return Ok(None);
    }
    Err(
        Error::usage(format!("no admin context for {}", cluster.name())).with_hint(format!(
            "set {CONTEXT_KEY} in {} or pass --kube-context '{{cluster}}-admin'",
            cluster.config_path().display()
        )),
    )
}

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
    ui.out
        .write_all(text.as_bytes())
        .context(|| "writing to stdout".into())
}

/// How the written files go into Git.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commits<'a> {
    /// One commit for all the files instead of one per cluster.
    pub together: bool,
    pub incident: Option<&'a str>,
}

/// Commits the written files (only them), then pushes once, as the git flags say.
pub fn record(
    recorder: &Recorder,
    sops: &Sops,
    action: Action,
    done: &[(&Target, &Outcome)],
    commits: Commits,
    ui: &mut Ui,
) -> Result<()> {
    if done.is_empty() {
        // Nothing was written: nothing to commit or push, and nothing to say about it.
        return Ok(());
    }
    let rels: Vec<String> = done
        .iter()
        .map(|(t, _)| t.cluster.break_glass_rel())
        .collect();
    let reviews: Vec<Review> = done
        .iter()
        .map(|(target, _)| Review::of(action, &target.cluster, ui))
        .collect();
    let changes: Vec<git::Change> = done
        .iter()
        .zip(&rels)
        .zip(&reviews)
        .map(|(((target, outcome), rel), review)| git::Change {
            cluster: target.cluster.name(),
            action,
            server: &outcome.server,
            rel,
            incident: commits.incident,
            sessions: &review.lines,
        })
        .collect();
    if commits.together && !changes.is_empty() {
        let outcome = recorder.commit_together(&changes, ui)?;
        reviews.iter().for_each(|r| r.close(&outcome, ui));
    } else {
        for (change, review) in changes.iter().zip(&reviews) {
            let outcome = recorder.commit(change, ui)?;
            review.close(&outcome, ui);
        }
    }
    // A push that meets others: the clusters decide which break-glass file lands.
    let targets: Vec<&Target> = done.iter().map(|(t, _)| *t).collect();
    let mut resolve =
        |overlaps: &[git::Overlap], ui: &mut Ui| landing::decide_all(sops, &targets, overlaps, ui);
    recorder.push_resolving(ui, &mut resolve).map(|_| ())
}

/// The `use` sessions a rotation's commit lists: those of its cluster no commit listed yet.
struct Review {
    journal: Option<Journal>,
    ids: Vec<String>,
    lines: String,
}

impl Review {
    fn of(action: Action, cluster: &Cluster, ui: &mut Ui) -> Review {
        let none = Review {
            journal: None,
            ids: Vec::new(),
            lines: String::new(),
        };
        if action != Action::Rotate {
            return none;
        }
        let found = Journal::for_fleet(cluster.fleet_root()).and_then(|journal| {
            let sessions = journal.unreviewed(cluster.name().as_str())?;
            Ok((journal, sessions))
        });
        match found {
            Ok((journal, sessions)) => Review {
                journal: Some(journal),
                ids: sessions.iter().map(|s| s.id.clone()).collect(),
                lines: sessions
                    .iter()
                    .map(|s| format!("- {}\n", s.summary()))
                    .collect(),
            },
            Err(e) => {
                ui.warn(&format!(
                    "the commit of {} cannot list its break-glass sessions: {}",
                    cluster.name(),
                    e.message()
                ));
                none
            }
        }
    }

    /// Once the sessions are in a commit, marks them so that no later commit repeats them.
    fn close(&self, outcome: &CommitOutcome, ui: &mut Ui) {
        let (Some(journal), CommitOutcome::Committed(_)) = (&self.journal, outcome) else {
            return;
        };
        if let Err(e) = journal.mark_reviewed(self.ids.clone()) {
            ui.warn(&format!(
                "the sessions are in the commit, but marking them reviewed failed (the next rotation lists them again): {}",
                e.message()
            ));
        }
    }
}

pub async fn dry_run(action: Action, target: &Target, ui: &mut Ui) -> Result<()> {
    let id = &target.identity;
    let conn = target.access.connect().await?;
    let rel = target.cluster.break_glass_rel();
    let mut steps = vec![
        format!("check the fleet side: sops and the .sops.yaml rule for {rel}"),
        format!("connect with context {:?} to {}", conn.context, conn.server),
    ];
    let server = planned_server(target, &conn.server);
    if action == Action::Rotate {
        if target.verify {
            steps.push(format!("check {server} and its CA with the current token"));
        }
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
        steps.push(format!(
            "verify the new kubeconfig against {server}: user {} with cluster-admin",
            id.username()
        ));
    }
    steps.push(format!(
        "encrypt it with sops to {rel} (atomic replace), then commit it"
    ));
    let mut plan = format!(
        "dry run: {} {} (nothing will be changed)\n",
        action.as_str(),
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
    let configured = || target.cluster.config().ok()?.external_url();
    target
        .server
        .clone()
        .or_else(configured)
        .map(|url| url.to_string())
        .unwrap_or_else(|| format!("{context_server} (or the URL in the existing file)"))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("     {l}\n")).collect()
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Clusters to rotate: names or globs over names (`eu/*`, `prod-?`).
    #[arg(
        value_name = "CLUSTER",
        required_unless_present = "all",
        add = crate::completion::cluster_names()
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

impl RotateArgs {
    pub fn commits(&self) -> Commits<'_> {
        Commits {
            together: self.single_commit,
            incident: self.incident.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    #[default]
    Admin,
    BreakGlass,
}

pub async fn rotate(fleet: &Fleet, args: &RotateArgs, ui: &mut Ui) -> Result<u8> {
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
    if let [cluster] = clusters.as_slice() {
        let target = rotation_target(
            cluster.clone(),
            args,
            args.server.clone(),
            true,
            &interrupts,
        )?;
        return rotate_one(fleet, target, args, ui).await.map(|()| 0);
    }
    batch::rotate(fleet, clusters, args, &interrupts, ui).await
}

/// The target of one cluster's rotation; `single` as for [`target`].
pub(super) fn rotation_target(
    cluster: Cluster,
    args: &RotateArgs,
    server: Option<ServerUrl>,
    single: bool,
    interrupts: &Interrupts,
) -> Result<Target> {
    let mut target = match args.via {
        Via::Admin => target(cluster, &args.access, server, single)?,
        // No admin access: the break-glass file is the login.
        Via::BreakGlass => {
            target_reached_by(cluster, AdminAccess::default(), &args.access, server)?
        }
    };
    target.interrupts = interrupts.clone();
    Ok(target)
}

/// Rotates one target the way `via` says.
pub(super) async fn rotate_via(
    via: Via,
    sops: &Sops,
    target: &Target,
    progress: &dyn Progress,
) -> Result<Outcome> {
    // A bug in one cluster's rotation must not take the others of a batch down with it.
    interrupt::catch_panic(async {
        match via {
            Via::Admin => lifecycle::rotate(sops, target, progress).await,
            Via::BreakGlass => self_rotation::rotate(sops, target, progress).await,
        }
    })
    .await
}

/// The plan `--dry-run` prints for one target.
pub(super) async fn plan_via(via: Via, target: &Target, ui: &mut Ui) -> Result<()> {
    match via {
        Via::Admin => dry_run(Action::Rotate, target, ui).await,
        Via::BreakGlass => {
            let plan = self_rotation::plan(target)?;
            ui.out
                .write_all(plan.as_bytes())
                .context(|| "writing to stdout".into())
        }
    }
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
        return plan_via(args.via, &target, ui).await;
    }
    let recorder = args.access.git.recorder(fleet)?;
    let sops = Sops::locate(fleet.root()).await?;
    let progress = StderrProgress::new(ui.err_style);
    let outcome = rotate_via(args.via, &sops, &target, &progress).await?;
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
