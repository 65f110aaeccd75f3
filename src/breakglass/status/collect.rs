//! Collecting the status report: Git facts from one status and one history walk, file
//! facts (sops metadata, recipients, the leak rules) and in-process decryption on the
//! other core, the sops binary for what the reader leaves, `--live` and the local journal;
//! then [`super::judge`] adds the problems.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::judge::judge;
use super::live::{self, TokenDigest};
use super::model::{
    AgeSource, ClusterStatus, Decryption, FleetStatus, Problem, ProblemKind, RepositoryInfo,
    SopsInfo, State, Summary,
};
use crate::breakglass::audit::journal::Journal;
use crate::breakglass::audit::{Session, reason};
use crate::error::{Error, Result};
use crate::fleet::{Cluster, Fleet};
use crate::git::{CommitInfo, Head, PathState, Repo};
use crate::kubeconfig::{self, BreakGlassCredential};
use crate::leak_scan::{Finding, RuleId, Scanner};
use crate::safe_fs::BREAK_GLASS;
use crate::shell::quote;
use crate::sops::Sops;
use crate::sops_config::SopsConfig;
use crate::sops_file::SopsMetadata;
use crate::ui::{Counter, Ui};

/// What to collect, as the command line asks.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--max-age`.
    pub max_age: Option<Duration>,
    /// Decrypt the files (no `--no-decrypt`).
    pub decrypt: bool,
    /// `--live`: ask the clusters, with this admin login.
    pub live: Option<live::Access>,
}

/// Everything but decryption is read first; then the files are decrypted in parallel.
pub async fn collect(
    fleet: &Fleet,
    clusters: &[Cluster],
    options: &Options,
    ui: &mut Ui,
) -> Result<FleetStatus> {
    let rels: Vec<String> = clusters.iter().map(Cluster::break_glass_rel).collect();
    let sops_config = SopsConfig::load(&fleet.sops_config_path())?;
    let scanner = Scanner::new(&sops_config);
    // A wrong sops setting is a configuration error even when no file needs the binary.
    let sops = match options.decrypt {
        false => None,
        true => Some(Sops::for_reading(fleet.root())?),
    };
    let now = Utc::now();
    // The history walk and reading the files are independent: use both cores, the
    // walk's thread taking files too once the walk is done.
    let files = SharedList::new(clusters);
    let read = |c: &Cluster| FileFacts::read(c, &sops_config, &scanner, options.decrypt);
    let git = std::thread::scope(|scope| {
        let git = scope.spawn(|| {
            let git = GitFacts::read(fleet, &rels, ui);
            files.work(read);
            git
        });
        files.work(read);
        // A panic on the Git thread stays a panic, with its own message.
        git.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    let files = files.results();
    let git = git?;
    let mut left_to_binary = Vec::new();
    let mut statuses: Vec<ClusterStatus> = Vec::with_capacity(clusters.len());
    for (i, (cluster, file)) in clusters.iter().zip(files).enumerate() {
        let mut file =
            file.ok_or_else(|| Error::failed(format!("{}: not read", cluster.name())))??;
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
    if let Some(access) = &options.live {
        add_live(clusters, access, &mut statuses).await;
    }
    let mut journaled = journaled_sessions(fleet, ui);
    for status in &mut statuses {
        status.unreviewed_sessions = unreviewed_sessions(&mut journaled, status);
        judge(status, options.max_age, git.upstream.as_deref());
    }
    let with_problems = statuses.iter().filter(|s| !s.problems.is_empty()).count();
    Ok(FleetStatus {
        fleet: fleet.root().to_path_buf(),
        generated_at: now,
        repository: git.repository,
        max_age_seconds: options.max_age.map(|d| d.as_secs()),
        decrypted: options.decrypt,
        live: options.live.is_some(),
        summary: Summary {
            clusters: statuses.len(),
            ok: statuses.len() - with_problems,
            with_problems,
        },
        clusters: statuses,
    })
}

/// A list worked through by several threads, each taking the next item; results stay in
/// the list's order.
struct SharedList<'a, T, R> {
    items: &'a [T],
    next: AtomicUsize,
    results: Vec<OnceLock<R>>,
}

impl<'a, T, R> SharedList<'a, T, R> {
    fn new(items: &'a [T]) -> Self {
        SharedList {
            items,
            next: AtomicUsize::new(0),
            results: items.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Takes items until none is left.
    fn work(&self, f: impl Fn(&T) -> R) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let (Some(item), Some(slot)) = (self.items.get(i), self.results.get(i)) else {
                return;
            };
            let _ = slot.set(f(item));
        }
    }

    /// Every item's result in order, once all threads are done; `None` for an item whose
    /// thread panicked (the panic is passed on, so none is expected).
    fn results(self) -> Vec<Option<R>> {
        self.results.into_iter().map(OnceLock::into_inner).collect()
    }
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
        let (findings, sops_meta) = scanner.scan_break_glass(&rel, cluster.name(), &bytes);
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
            problems: findings.into_iter().map(problem_from_finding).collect(),
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
                "replace {rel} with the regular file from Git (`git checkout -- {}`) or re-run adopt",
                quote(&rel)
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
        selective_rule: selective_rule(meta),
    }
}

/// The rule in the file's metadata that leaves some values in clear, if any. sops records
/// `unencrypted_suffix: _unencrypted` when no rule was given: no kubeconfig key has it.
fn selective_rule(meta: &SopsMetadata) -> Option<String> {
    let rules = [
        ("encrypted_regex", &meta.encrypted_regex),
        ("unencrypted_regex", &meta.unencrypted_regex),
        ("encrypted_suffix", &meta.encrypted_suffix),
        ("unencrypted_suffix", &meta.unencrypted_suffix),
    ];
    let (name, value) = rules.into_iter().find_map(|(name, value)| {
        let value = value.as_deref()?;
        (name != "unencrypted_suffix" || value != "_unencrypted").then_some((name, value))
    })?;
    // From the file: printable and bounded before it reaches a terminal.
    Some(format!("{name}: {}", reason::printable(value, 200)))
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
    let progress = Counter::new(todo.len(), "decrypting");
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
        progress.inc();
    }
    progress.finish();
    Ok(())
}

/// Asks the cluster of every decrypted file, with admin contexts found as rotate finds them.
async fn add_live(clusters: &[Cluster], access: &live::Access, statuses: &mut [ClusterStatus]) {
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
    for (i, live) in live::inspect_all(queries, access.clone()).await {
        if let Some(status) = statuses.get_mut(i) {
            status.live = Some(live);
        }
    }
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
