//! `status <cluster> | --all`: each break-glass file's Git state, last commit, token age,
//! sops metadata and recipients, and (unless `--no-decrypt`) whether it decrypts. Contacts
//! no cluster unless `--live` asks for it ([`super::live`]); decryption happens in memory only.
//!
//! Git metadata for every cluster comes from one history walk (`git::Repo::last_commits`);
//! decryptions run in parallel with a bound. The JSON schema is docs/json-output.md.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::{Context as _, Error, Result};
use crate::fleet::{Cluster, Fleet};
use crate::git::{CommitInfo, Head, PathState, Repo};
use crate::kubeconfig::{self, BreakGlassCredential};
use crate::leak_scan::{Finding, RuleId, Scanner};
use crate::redact;
use crate::safe_fs::BREAK_GLASS;
use crate::sops::Sops;
use crate::sops_config::SopsConfig;
use crate::sops_file::SopsMetadata;
use crate::ui::{ColorChoice, StatusFormat, Style, Ui, table};

use super::audit::Session;
use super::audit::journal::Journal;
use super::live::{self, LiveState, LiveStatus, TokenDigest};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["cluster", "all"])))]
pub struct StatusArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    #[arg(add = crate::completion::cluster_names())]
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

/// Where the break-glass file stands in Git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Committed,
    /// Committed, but the commit is not on the upstream yet.
    Unpushed,
    Modified,
    Staged,
    Untracked,
    NotAdopted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    NotAdopted,
    NotEncrypted,
    RecipientsMismatch,
    Undecryptable,
    /// The path is not a regular file kube-dc may read (a link, FIFO, device, too large).
    Unreadable,
    TooOld,
    Uncommitted,
    Unpushed,
    UsedSinceRotation,
    Stale,
    Revoked,
    /// `--live` could not tell: unreachable, no admin context, or an error.
    LiveUnknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
    /// What to run or do.
    pub fix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeSource {
    /// The last commit that touched the file.
    Commit,
    /// The file is not committed as it is: sops' `lastmodified`.
    SopsLastmodified,
}

/// One cluster's break-glass file, as `status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    /// Relative to the fleet root.
    pub file: String,
    pub path: PathBuf,
    pub state: State,
    pub last_commit: Option<CommitInfo>,
    pub token_age_seconds: Option<i64>,
    pub age_source: Option<AgeSource>,
    pub encrypted_size_bytes: Option<u64>,
    /// File modification time: after a clone this is the checkout time, not the token's age.
    pub modified: Option<DateTime<Utc>>,
    pub sops: Option<SopsInfo>,
    /// `null` with `--no-decrypt` or when there is no file.
    pub decryption: Option<Decryption>,
    /// The API server URL in the kubeconfig (only known after decryption).
    pub server: Option<String>,
    /// `null` without `--live` or when the file did not decrypt.
    pub live: Option<LiveStatus>,
    /// `use` sessions journaled on this machine since the file's last commit that no
    /// rotation commit has listed yet (see `audit::journal`).
    pub unreviewed_sessions: Vec<Session>,
    pub problems: Vec<Problem>,
    /// The decrypted token's digest, for `--live`.
    #[serde(skip)]
    token_digest: Option<TokenDigest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SopsInfo {
    pub lastmodified: Option<String>,
    pub recipients: Vec<String>,
    /// The age recipients of the `.sops.yaml` rule for this path.
    pub expected_recipients: Vec<String>,
    pub recipients_match: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decryption {
    pub ok: bool,
    pub error: Option<String>,
    /// What to do about `error` (e.g. how to provide an age key): the problem's fix.
    #[serde(skip)]
    pub fix: Option<String>,
}

/// `status --all`: the fleet-wide report.
#[derive(Debug, Serialize)]
pub struct FleetStatus {
    pub fleet: PathBuf,
    pub generated_at: DateTime<Utc>,
    pub repository: Option<RepositoryInfo>,
    pub max_age_seconds: Option<u64>,
    pub decrypted: bool,
    /// The clusters were asked too (`--live`).
    pub live: bool,
    pub clusters: Vec<ClusterStatus>,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct RepositoryInfo {
    /// `null` when HEAD is detached or there are no commits.
    pub branch: Option<String>,
    pub detached: bool,
    /// `remote/branch`, `null` without an upstream.
    pub upstream: Option<String>,
    pub ahead: usize,
    pub behind: usize,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub clusters: usize,
    pub ok: usize,
    pub with_problems: usize,
}

pub async fn run(fleet: &Fleet, args: &StatusArgs, ui: &mut Ui) -> Result<()> {
    let clusters = match &args.cluster {
        Some(name) => vec![fleet.cluster(name)?],
        None => fleet.clusters()?,
    };
    let report = collect(fleet, &clusters, args, ui).await?;
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
            status.cluster
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

/// Everything but decryption is read first; then the files are decrypted in parallel.
async fn collect(
    fleet: &Fleet,
    clusters: &[Cluster],
    args: &StatusArgs,
    ui: &mut Ui,
) -> Result<FleetStatus> {
    let rels: Vec<String> = clusters.iter().map(Cluster::break_glass_rel).collect();
    let sops_config = SopsConfig::load(&fleet.sops_config_path())?;
    let scanner = Scanner::new(&sops_config);
    // A wrong sops setting is a configuration error even when no file needs the binary.
    let sops = match args.no_decrypt {
        true => None,
        false => Some(Sops::for_reading(fleet.root())?),
    };
    let now = Utc::now();
    // The history walk and reading the files are independent: use both cores.
    let (git, files) = std::thread::scope(|scope| {
        let git = scope.spawn(|| GitFacts::read(fleet, &rels, ui));
        let files: Vec<Result<Option<FileFacts>>> = clusters
            .iter()
            .map(|c| FileFacts::read(c, &sops_config, &scanner, !args.no_decrypt))
            .collect();
        // A panic on the Git thread stays a panic, with its own message.
        let git = git.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (git, files)
    });
    let git = git?;
    let mut left_to_binary = Vec::new();
    let mut statuses: Vec<ClusterStatus> = Vec::with_capacity(clusters.len());
    for (i, (cluster, file)) in clusters.iter().zip(files).enumerate() {
        let mut file = file?;
        let decrypted = file.as_mut().map(|f| std::mem::take(&mut f.decrypted));
        let mut status = inspect(cluster, &git, file, now);
        match decrypted {
            Some(Decrypted::Done(opened)) => record(&mut status, opened),
            Some(Decrypted::LeftToBinary(ciphertext)) => left_to_binary.push((i, ciphertext)),
            Some(Decrypted::NotTried) | None => {}
        }
        statuses.push(status);
    }
    if let Some(sops) = sops {
        decrypt_with_binary(&sops, clusters, left_to_binary, &mut statuses).await?;
    }
    if args.live {
        add_live(clusters, args, &mut statuses).await;
    }
    let mut journaled = journaled_sessions(fleet, ui);
    for status in &mut statuses {
        status.unreviewed_sessions = unreviewed_sessions(&mut journaled, status);
        judge(status, args.max_age, &git);
    }
    let with_problems = statuses.iter().filter(|s| !s.problems.is_empty()).count();
    Ok(FleetStatus {
        fleet: fleet.root().to_path_buf(),
        generated_at: now,
        repository: git.repository,
        max_age_seconds: args.max_age.map(|d| d.as_secs()),
        decrypted: !args.no_decrypt,
        live: args.live,
        summary: Summary {
            clusters: statuses.len(),
            ok: statuses.len() - with_problems,
            with_problems,
        },
        clusters: statuses,
    })
}

/// What Git says about all the files: one status, one history walk, the upstream.
#[derive(Default)]
struct GitFacts {
    states: HashMap<String, PathState>,
    commits: HashMap<String, CommitInfo>,
    /// Ids of commits not on the upstream.
    unpushed: std::collections::HashSet<String>,
    upstream: Option<String>,
    repository: Option<RepositoryInfo>,
}

impl GitFacts {
    fn read(fleet: &Fleet, rels: &[String], ui: &mut Ui) -> Result<GitFacts> {
        let repo = match Repo::discover(fleet.root()) {
            Ok(repo) => repo,
            Err(e) => {
                ui.warn(&format!("{}: reporting files as untracked", e.message()));
                return Ok(GitFacts::default());
            }
        };
        let mut facts = GitFacts {
            states: repo.path_states(rels)?,
            commits: repo.last_commits(rels)?,
            ..GitFacts::default()
        };
        let (branch, detached, tracking) = match repo.head()? {
            Head::Unborn => (None, false, None),
            Head::Detached(_) => (None, true, None),
            Head::Branch { name, tracking } => (Some(name), false, tracking),
        };
        let upstream = tracking
            .as_ref()
            .map(|t| format!("{}/{}", t.remote, t.remote_branch));
        facts.repository = Some(RepositoryInfo {
            branch,
            detached,
            upstream: upstream.clone(),
            ahead: tracking.as_ref().map_or(0, |t| t.ahead.len()),
            behind: tracking.as_ref().map_or(0, |t| t.behind),
        });
        facts.unpushed = tracking.map(|t| t.ahead).unwrap_or_default();
        facts.upstream = upstream;
        Ok(facts)
    }

    fn state(&self, rel: &str, commit: Option<&CommitInfo>) -> State {
        match self.states.get(rel) {
            Some(PathState::Missing) => State::NotAdopted,
            Some(PathState::Modified) => State::Modified,
            Some(PathState::Staged) => State::Staged,
            Some(PathState::Untracked) | None => State::Untracked,
            Some(PathState::Clean) if commit.is_some_and(|c| self.unpushed.contains(&c.id)) => {
                State::Unpushed
            }
            Some(PathState::Clean) => State::Committed,
        }
    }
}

/// What the break-glass file itself says, read without Git or a key.
struct FileFacts {
    decrypted: Decrypted,
    /// Why the file cannot be read at all; then nothing else is known about it.
    unreadable: Option<String>,
    size: u64,
    modified: Option<DateTime<Utc>>,
    sops: Option<SopsInfo>,
    sops_lastmodified: Option<DateTime<Utc>>,
    problems: Vec<Problem>,
}

impl FileFacts {
    /// `None` when the cluster has no break-glass file.
    /// With `decrypt`, also decrypts in-process: this runs while the Git history is walked
    /// on the other core, which is most of what `status --all` costs.
    fn read(
        cluster: &Cluster,
        config: &SopsConfig,
        scanner: &Scanner,
        decrypt: bool,
    ) -> Result<Option<FileFacts>> {
        let rel = cluster.break_glass_rel();
        let file = match cluster.open_break_glass() {
            Ok(file) => file,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Ok(Some(FileFacts::unreadable(e.failed()))),
        };
        let meta = file.meta.clone();
        let bytes = match file.read_all(BREAK_GLASS) {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Some(FileFacts::unreadable(e.failed()))),
        };
        let sops_meta = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| SopsMetadata::from_yaml(t).ok().flatten());
        let decrypted = match decrypt {
            true => Decrypted::of(&rel, bytes.clone()),
            false => Decrypted::NotTried,
        };
        Ok(Some(FileFacts {
            decrypted,
            unreadable: None,
            size: meta.len(),
            modified: meta.modified().ok().map(DateTime::<Utc>::from),
            sops: sops_meta
                .as_ref()
                .map(|m| sops_info(m, config.rule_for(&rel).map(|r| &r.age_recipients))),
            sops_lastmodified: sops_meta.and_then(|m| m.lastmodified?.parse().ok()),
            problems: scanner
                .break_glass(&rel, cluster.name(), &bytes)
                .into_iter()
                .map(problem_from_finding)
                .collect(),
        }))
    }
}

impl FileFacts {
    /// One hostile or broken file is a row with a problem, not the end of the report.
    fn unreadable(e: Error) -> FileFacts {
        FileFacts {
            decrypted: Decrypted::NotTried,
            unreadable: Some(e.to_string()),
            size: 0,
            modified: None,
            sops: None,
            sops_lastmodified: None,
            problems: Vec::new(),
        }
    }
}

fn inspect(
    cluster: &Cluster,
    git: &GitFacts,
    file: Option<FileFacts>,
    now: DateTime<Utc>,
) -> ClusterStatus {
    let rel = cluster.break_glass_rel();
    let last_commit = git.commits.get(&rel).cloned();
    let mut status = ClusterStatus {
        cluster: cluster.name().to_string(),
        file: rel.clone(),
        path: cluster.break_glass_path(),
        state: git.state(&rel, last_commit.as_ref()),
        last_commit,
        token_age_seconds: None,
        age_source: None,
        encrypted_size_bytes: None,
        modified: None,
        sops: None,
        decryption: None,
        server: None,
        live: None,
        unreviewed_sessions: Vec::new(),
        problems: Vec::new(),
        token_digest: None,
    };
    let Some(file) = file else {
        status.state = State::NotAdopted;
        return status;
    };
    if let Some(why) = file.unreadable {
        status.problems.push(Problem {
            kind: ProblemKind::Unreadable,
            message: why,
            fix: format!(
                "replace {rel} with the regular file from Git (`git checkout -- {rel}`) or re-run adopt"
            ),
        });
        return status;
    }
    status.encrypted_size_bytes = Some(file.size);
    status.modified = file.modified;
    status.sops = file.sops;
    status.problems = file.problems;
    let (age_from, source) = match (&status.state, &status.last_commit) {
        (State::Committed | State::Unpushed, Some(c)) => (Some(c.date), AgeSource::Commit),
        _ => (file.sops_lastmodified, AgeSource::SopsLastmodified),
    };
    if let Some(from) = age_from {
        status.token_age_seconds = Some((now - from).num_seconds().max(0));
        status.age_source = Some(source);
    }
    status
}

fn sops_info(
    meta: &SopsMetadata,
    expected: Option<&std::collections::BTreeSet<String>>,
) -> SopsInfo {
    let recipients = meta.age_recipients();
    SopsInfo {
        lastmodified: meta.lastmodified.clone(),
        recipients_match: expected == Some(&recipients),
        recipients: recipients.into_iter().collect(),
        expected_recipients: expected
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

/// The pre-commit check's rules 1 and 2 are status problems too; one implementation.
fn problem_from_finding(finding: Finding) -> Problem {
    let kind = match finding.rule {
        RuleId::WrongRecipients => ProblemKind::RecipientsMismatch,
        _ => ProblemKind::NotEncrypted,
    };
    Problem {
        kind,
        message: finding.message,
        fix: finding.fix,
    }
}

/// Decrypts every existing file, a bounded number at a time, with a progress bar on a
/// terminal.
/// A file's decryption as far as the file-reading thread got.
#[derive(Default)]
enum Decrypted {
    #[default]
    NotTried,
    Done(Result<BreakGlassCredential>),
    /// The in-process reader does not handle it (or the binary is forced): the ciphertext,
    /// for the sops binary.
    LeftToBinary(Vec<u8>),
}

impl Decrypted {
    fn of(rel: &str, ciphertext: Vec<u8>) -> Decrypted {
        match Sops::decrypt_in_process(rel, &ciphertext) {
            Ok(Some(plaintext)) => Decrypted::Done(kubeconfig::parse(&plaintext, rel)),
            Ok(None) => Decrypted::LeftToBinary(ciphertext),
            Err(e) => Decrypted::Done(Err(e)),
        }
    }
}

fn record(status: &mut ClusterStatus, opened: Result<BreakGlassCredential>) {
    status.decryption = Some(match opened {
        Ok(credential) => {
            status.token_digest = Some(TokenDigest::of(&credential.token));
            status.server = Some(credential.server);
            Decryption {
                ok: true,
                error: None,
                fix: None,
            }
        }
        Err(e) => Decryption {
            ok: false,
            error: Some(e.message().to_string()),
            fix: e.hint().map(String::from),
        },
    });
}

/// What the in-process reader left to the sops binary, a few processes at a time.
async fn decrypt_with_binary(
    sops: &Sops,
    clusters: &[Cluster],
    todo: Vec<(usize, Vec<u8>)>,
    statuses: &mut [ClusterStatus],
) -> Result<()> {
    if todo.is_empty() {
        return Ok(());
    }
    let limit = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    let permits = Arc::new(Semaphore::new(limit));
    let progress = progress_bar(todo.len());
    let mut tasks = JoinSet::new();
    for (i, ciphertext) in todo {
        let Some(cluster) = clusters.get(i) else {
            continue;
        };
        let (sops, rel, permits) = (sops.clone(), cluster.break_glass_rel(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let opened = sops
                .decrypt(&rel, &ciphertext)
                .await
                .and_then(|plaintext| kubeconfig::parse(&plaintext, &rel));
            (i, opened)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (i, opened) = joined.map_err(|e| Error::failed(format!("decryption task: {e}")))?;
        if let Some(status) = statuses.get_mut(i) {
            record(status, opened);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(())
}

/// Asks the cluster of every decrypted file, with admin contexts found as rotate finds them.
async fn add_live(clusters: &[Cluster], args: &StatusArgs, statuses: &mut [ClusterStatus]) {
    let queries = statuses
        .iter()
        .zip(clusters)
        .enumerate()
        .filter_map(|(i, (status, cluster))| {
            let query = live::Query {
                cluster: cluster.clone(),
                file_token: status.token_digest.clone()?,
                file_written_at: status
                    .sops
                    .as_ref()
                    .and_then(|s| s.lastmodified.as_ref()?.parse().ok()),
            };
            Some((i, query))
        })
        .collect();
    let access = live::Access {
        kube_context: args.kube_context.clone(),
        kubeconfig: args.kubeconfig.clone(),
        single: args.cluster.is_some(),
    };
    for (i, live) in live::inspect_all(queries, access).await {
        if let Some(status) = statuses.get_mut(i) {
            status.live = Some(live);
        }
    }
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() || len < 20 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("decrypting {pos}/{len} {wide_bar} {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Adds the problems that depend on Git, age and decryption.
fn judge(status: &mut ClusterStatus, max_age: Option<Duration>, git: &GitFacts) {
    let name = &status.cluster;
    let file = &status.file;
    let mut add =
        |kind, message: String, fix: String| status.problems.push(Problem { kind, message, fix });
    match status.state {
        State::NotAdopted => add(
            ProblemKind::NotAdopted,
            "no break-glass kubeconfig".into(),
            format!("kube-dc bootstrap break-glass adopt {name}"),
        ),
        State::Modified | State::Staged | State::Untracked => add(
            ProblemKind::Uncommitted,
            format!("{} and not committed", state_label(status.state)),
            format!(
                "git add '{file}' && git commit -m '{name}: break-glass kubeconfig' -- '{file}'"
            ),
        ),
        State::Unpushed => add(
            ProblemKind::Unpushed,
            format!(
                "committed but not pushed to {}",
                git.upstream.as_deref().unwrap_or("the upstream")
            ),
            "git push".into(),
        ),
        State::Committed => {}
    }
    if let (Some(max), Some(age)) = (max_age, status.token_age_seconds)
        && age > max.as_secs() as i64
    {
        add(
            ProblemKind::TooOld,
            format!(
                "token is {} old (limit {})",
                short_duration(age),
                short_duration(max.as_secs() as i64)
            ),
            format!("kube-dc bootstrap break-glass rotate {name}"),
        );
    }
    if let Some(Decryption {
        ok: false,
        error: Some(error),
        fix,
    }) = &status.decryption
    {
        add(
            ProblemKind::Undecryptable,
            error.clone(),
            fix.clone().unwrap_or_else(|| {
                "see the message; restore the file from Git or re-run adopt".into()
            }),
        );
    }
    if let Some(live) = &status.live
        && let Some((kind, fix)) = live_problem(live.state, name)
    {
        add(
            kind,
            format!("{}: {}", live.state.label(), live.message),
            fix,
        );
    }
    if let Some(problem) = journal_problem(status) {
        status.problems.push(problem);
    }
    status.problems.sort_by_key(|p| p.kind as u8);
}

/// The sessions journaled on this machine that no rotation commit has listed, by cluster.
fn journaled_sessions(fleet: &Fleet, ui: &mut Ui) -> BTreeMap<String, Vec<Session>> {
    match Journal::for_fleet(fleet.root()).and_then(|j| j.unreviewed_all()) {
        Ok(sessions) => sessions,
        Err(e) => {
            ui.warn(&format!("cannot read the session journal: {}", e.message()));
            BTreeMap::new()
        }
    }
}

/// The cluster's journaled sessions, leaving out those before the file's last commit (a
/// rotation made on another machine reviewed them).
fn unreviewed_sessions(
    journaled: &mut BTreeMap<String, Vec<Session>>,
    status: &ClusterStatus,
) -> Vec<Session> {
    let sessions = journaled.remove(&status.cluster).unwrap_or_default();
    sessions
        .into_iter()
        .filter(|s| status.last_commit.as_ref().is_none_or(|c| s.start > c.date))
        .collect()
}

/// A cluster used since its last rotation, as this machine's journal knows it (without
/// `--live`, or when the cluster cannot be asked).
fn journal_problem(status: &ClusterStatus) -> Option<Problem> {
    let last = status.unreviewed_sessions.last()?;
    let already = status
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::UsedSinceRotation);
    (!already).then(|| Problem {
        kind: ProblemKind::UsedSinceRotation,
        message: format!(
            "used since last rotation: {} session(s) in the local journal, the last by {}",
            status.unreviewed_sessions.len(),
            last.summary()
        ),
        fix: format!("kube-dc bootstrap break-glass rotate {}", status.cluster),
    })
}

/// `--check` accepts only `unused since rotation`.
fn live_problem(state: LiveState, name: &str) -> Option<(ProblemKind, String)> {
    let rotate = format!("kube-dc bootstrap break-glass rotate {name}");
    Some(match state {
        LiveState::UnusedSinceRotation => return None,
        LiveState::UsedSinceRotation => (ProblemKind::UsedSinceRotation, rotate),
        LiveState::Stale => (
            ProblemKind::Stale,
            format!(
                "find the file with the cluster's token (another branch or clone, an uncommitted rotation), or {rotate}"
            ),
        ),
        LiveState::Revoked => (ProblemKind::Revoked, rotate),
        LiveState::Unreachable | LiveState::NoAdminContext | LiveState::Error => (
            ProblemKind::LiveUnknown,
            "see the message; --kube-context/--kubeconfig choose the admin login".into(),
        ),
    })
}

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

fn state_label(state: State) -> &'static str {
    match state {
        State::Committed => "committed",
        State::Unpushed => "unpushed",
        State::Modified => "modified",
        State::Staged => "staged",
        State::Untracked => "untracked",
        State::NotAdopted => "not adopted",
    }
}

fn paint_state(style: &Style, state: State) -> String {
    let label = state_label(state);
    match state {
        State::Committed => style.green(label),
        State::NotAdopted => style.red(label),
        _ => style.yellow(label),
    }
}

/// `3d 4h`, `5h 12m`, `7m`, `42s`: enough precision for a token's age.
fn short_duration(seconds: i64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn write_out(ui: &mut Ui, text: &str) -> Result<()> {
    ui.out
        .write_all(text.as_bytes())
        .context(|| "writing to stdout".into())
}

fn to_json(value: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(value).context(|| "JSON".into())? + "\n")
}

fn render_one(status: &ClusterStatus, format: StatusFormat, ui: &mut Ui) -> Result<()> {
    if format == StatusFormat::Json {
        return write_out(ui, &to_json(status)?);
    }
    let style = ui.out_style;
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
    write_out(ui, &text)
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

fn render_all(report: &FleetStatus, format: StatusFormat, ui: &mut Ui) -> Result<()> {
    if format == StatusFormat::Json {
        return write_out(ui, &to_json(report)?);
    }
    let markdown = format == StatusFormat::Markdown;
    let style = match markdown {
        true => Style::new(ColorChoice::Never, false),
        false => ui.out_style,
    };
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
    if markdown {
        return write_out(ui, &markdown_report(report, &header, &rows));
    }
    let mut text = table(&header, &rows);
    for s in report.clusters.iter().filter(|s| !s.problems.is_empty()) {
        for p in &s.problems {
            text += &format!("{}: {}\n  fix: {}\n", s.cluster, p.message, p.fix);
        }
    }
    text += &format!(
        "{} cluster(s): {} ok, {} with problems\n",
        report.summary.clusters, report.summary.ok, report.summary.with_problems
    );
    write_out(ui, &text)
}

/// The table, each problem with its fix as a list item, and the counts.
fn markdown_report(report: &FleetStatus, header: &[&str], rows: &[Vec<String>]) -> String {
    use crate::markdown::{cell, table};
    let mut text = table(header, rows);
    let problems: Vec<String> = report
        .clusters
        .iter()
        .flat_map(|s| s.problems.iter().map(move |p| (s, p)))
        .map(|(s, p)| {
            format!(
                "- **{}**: {} Fix: {}\n",
                cell(&s.cluster),
                cell(&p.message),
                cell(&p.fix)
            )
        })
        .collect();
    if !problems.is_empty() {
        text += "\n";
        text.extend(problems);
    }
    text + &format!(
        "\n{} cluster(s): {} ok, {} with problems\n",
        report.summary.clusters, report.summary.ok, report.summary.with_problems
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short() {
        assert_eq!(short_duration(42), "42s");
        assert_eq!(short_duration(7 * 60 + 5), "7m");
        assert_eq!(short_duration(5 * 3600 + 12 * 60), "5h 12m");
        assert_eq!(short_duration(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
