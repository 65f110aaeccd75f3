//! Rotating many clusters at once, after an incident: selection by name, glob or `--all`,
//! bounded concurrency, live progress, a summary, and commits once all are done. One
//! cluster failing never stops or changes the others.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

use super::interrupt::Interrupts;
use super::lifecycle::{Outcome, Progress, Step, Target};
use super::mint::{self, RotateArgs, StderrProgress, Via, describe};
use crate::error::{Context as _, Error, Result};
use crate::fleet::{Cluster, ClusterName, Fleet};
use crate::git::Action;
use crate::sops::Sops;
use crate::ui::{OutputFormat, Style, Ui, table};

/// Clusters named by `patterns` (names or globs), or with `all` every cluster that has a
/// break-glass file. In the order given, without repeats.
pub fn select(fleet: &Fleet, patterns: &[String], all: bool) -> Result<Vec<Cluster>> {
    let known = fleet.clusters()?;
    if all {
        let adopted: Vec<Cluster> = known
            .into_iter()
            .filter(|c| c.break_glass_path().exists())
            .collect();
        if adopted.is_empty() {
            return Err(Error::usage(
                "--all: no cluster of this fleet has a break-glass file yet",
            ));
        }
        return Ok(adopted);
    }
    let mut chosen: Vec<Cluster> = Vec::new();
    for pattern in patterns {
        let matched = if pattern.contains(['*', '?']) {
            let hits: Vec<Cluster> = known
                .iter()
                .filter(|c| glob_match(pattern, c.name().as_str()))
                .cloned()
                .collect();
            if hits.is_empty() {
                return Err(Error::usage(format!(
                    "{pattern:?} matches no cluster of this fleet"
                )));
            }
            hits
        } else {
            vec![fleet.cluster(pattern)?]
        };
        for cluster in matched {
            if !chosen.iter().any(|c| c.name() == cluster.name()) {
                chosen.push(cluster);
            }
        }
    }
    Ok(chosen)
}

/// `*` matches any run of characters but `/`, `?` one such character. As neither
/// matches `/`, pattern and name match segment by segment.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (mut patterns, mut names) = (pattern.split('/'), name.split('/'));
    loop {
        match (patterns.next(), names.next()) {
            (None, None) => return true,
            (Some(p), Some(n)) if segment_match(p.as_bytes(), n.as_bytes()) => {}
            _ => return false,
        }
    }
}

/// Glob matching without recursion: on a mismatch only the last `*` seen takes one more
/// character (an earlier one never needs to: the last can absorb whatever it would), so
/// the time is at most pattern length times name length, never exponential.
fn segment_match(p: &[u8], n: &[u8]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    // Where to resume after the last `*`: pattern index after it, name index it reached.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = n.get(ni) {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, ni));
            }
            Some(&q) if q == b'?' || q == c => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((after, taken)) => {
                    pi = after;
                    ni = taken + 1;
                    star = Some((after, ni));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// One cluster's result, for the summary.
#[derive(Debug, Serialize)]
pub struct ClusterResult {
    pub cluster: String,
    /// `ok` or `failed`.
    pub result: &'static str,
    pub duration_seconds: f64,
    pub secret_uid: Option<String>,
    pub server: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    action: &'static str,
    ok: usize,
    failed: usize,
    clusters: &'a [ClusterResult],
}

/// Rotates `clusters`, at most `--jobs` at a time; exit code 0 when all succeeded, 1 when
/// any failed.
pub async fn rotate(
    fleet: &Fleet,
    clusters: Vec<Cluster>,
    args: &RotateArgs,
    interrupts: &Interrupts,
    ui: &mut Ui,
) -> Result<u8> {
    let (targets, unusable): (Vec<_>, Vec<_>) = clusters
        .into_iter()
        .map(|c| {
            let name = c.name().clone();
            mint::rotation_target(c, args, None, false, interrupts).map_err(|e| (name, e))
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
    let progress = BatchProgress::new(&targets, ui.err_style);
    let outcomes: Vec<(&Target, Duration, Result<Outcome>)> = stream::iter(&targets)
        .map(|target| {
            let (sops, progress) = (&sops, &progress);
            async move {
                let started = Instant::now();
                let result = mint::rotate_via(args.via, sops, target, progress).await;
                progress.finish(target.cluster.name(), &result, started.elapsed());
                (target, started.elapsed(), result)
            }
        })
        .buffer_unordered(usize::from(args.jobs))
        .collect()
        .await;
    progress.clear();
    let mut done: Vec<(&Target, &Outcome)> = outcomes
        .iter()
        .filter_map(|(t, _, r)| Some((*t, r.as_ref().ok()?)))
        .collect();
    // Rotations finish in any order; commits (and a single commit's list) follow the names.
    done.sort_by(|a, b| a.0.cluster.name().cmp(b.0.cluster.name()));
    let commit_error =
        mint::record(&recorder, &sops, Action::Rotate, &done, args.commits(), ui).err();
    let results = summarize(&outcomes, unusable);
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
        mint::plan_via(via, target, ui).await?;
    }
    for (name, error) in unusable {
        let line = format!("{name}: would be skipped: {error}\n");
        ui.out
            .write_all(line.as_bytes())
            .context(|| "writing to stdout".into())?;
    }
    Ok(if unusable.is_empty() { 0 } else { 1 })
}

fn summarize(
    outcomes: &[(&Target, Duration, Result<Outcome>)],
    unusable: Vec<(ClusterName, Error)>,
) -> Vec<ClusterResult> {
    let mut results: Vec<ClusterResult> = outcomes
        .iter()
        .map(|(target, took, result)| ClusterResult {
            cluster: target.cluster.name().to_string(),
            result: if result.is_ok() { "ok" } else { "failed" },
            duration_seconds: (took.as_secs_f64() * 100.0).round() / 100.0,
            secret_uid: result.as_ref().ok().map(|o| o.secret_uid.clone()),
            server: result.as_ref().ok().map(|o| o.server.clone()),
            error: result.as_ref().err().map(|e| e.to_string()),
        })
        .collect();
    results.extend(unusable.into_iter().map(|(name, e)| ClusterResult {
        cluster: name.to_string(),
        result: "failed",
        duration_seconds: 0.0,
        secret_uid: None,
        server: None,
        error: Some(e.to_string()),
    }));
    results.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    results
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
    ui.out
        .write_all(text.as_bytes())
        .context(|| "writing to stdout".into())
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

/// Progress for many clusters: a line per cluster that changes in place on a terminal,
/// one line per event otherwise.
enum BatchProgress {
    Bars {
        multi: MultiProgress,
        bars: HashMap<ClusterName, ProgressBar>,
        style: Style,
    },
    Lines(StderrProgress),
}

impl BatchProgress {
    fn new(targets: &[Target], style: Style) -> BatchProgress {
        if !std::io::stderr().is_terminal() {
            return BatchProgress::Lines(StderrProgress::new(style));
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
        BatchProgress::Bars {
            multi,
            bars: bars.into_iter().collect(),
            style,
        }
    }

    fn finish(&self, cluster: &ClusterName, result: &Result<Outcome>, took: Duration) {
        let line = match result {
            Ok(_) => format!("done in {:.1}s", took.as_secs_f64()),
            Err(e) => format!("FAILED: {}", e.message().lines().next().unwrap_or_default()),
        };
        match self {
            BatchProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.get(cluster) {
                    bar.finish_with_message(line);
                }
            }
            BatchProgress::Lines(lines) => lines.line(cluster, &line),
        }
    }

    fn clear(&self) {
        if let BatchProgress::Bars { multi, .. } = self {
            let _ = multi.clear();
        }
    }
}

impl Progress for BatchProgress {
    fn step(&self, cluster: &ClusterName, step: Step) {
        match self {
            BatchProgress::Bars { bars, style, multi } => match (&step, bars.get(cluster)) {
                // Warnings stay on screen above the bars.
                (Step::Warning(_), _) => {
                    let _ = multi.println(format!("[{cluster}] {}", describe(&step, *style)));
                }
                (_, Some(bar)) => bar.set_message(describe(&step, *style)),
                (_, None) => {}
            },
            BatchProgress::Lines(lines) => lines.step(cluster, step),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_stay_within_a_segment() {
        assert!(glob_match("eu/*", "eu/dc1"));
        assert!(glob_match("*", "alpha"));
        assert!(!glob_match("*", "eu/dc1"));
        assert!(glob_match("*/*", "eu/dc1"));
        assert!(glob_match("prod-?", "prod-1"));
        assert!(!glob_match("prod-?", "prod-12"));
        assert!(!glob_match("eu/*", "us/dc1"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(glob_match("*x*", "abxcd"));
        assert!(!glob_match("a*b", "acbd"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("e?/d*", "eu/dc1"));
        assert!(!glob_match("eu", "eu/dc1"));
    }

    #[test]
    fn a_hostile_glob_takes_milliseconds() {
        let pattern = format!("{}b", "*a".repeat(200));
        let name = "a".repeat(10_000);
        let started = Instant::now();
        assert!(!glob_match(&pattern, &name));
        assert!(!glob_match(&format!("{pattern}/*"), &format!("{name}/x")));
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "took {:?}",
            started.elapsed()
        );
    }

    /// The obvious exponential definition, as the reference for small inputs.
    fn reference(p: &[u8], n: &[u8]) -> bool {
        match (p.split_first(), n.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => {
                reference(rest, n)
                    || n.split_first()
                        .is_some_and(|(c, tail)| *c != b'/' && reference(p, tail))
            }
            (Some((b'?', rest)), Some((c, tail))) if *c != b'/' => reference(rest, tail),
            (Some((a, rest)), Some((b, tail))) if a == b => reference(rest, tail),
            _ => false,
        }
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_the_reference(pattern in "[ab*?/]{0,12}", name in "[ab/]{0,12}") {
            proptest::prop_assert_eq!(
                glob_match(&pattern, &name),
                reference(pattern.as_bytes(), name.as_bytes())
            );
        }

        #[test]
        fn glob_is_fast_on_any_input(pattern in "[a*?]{0,300}", len in 0usize..5000) {
            let name = "a".repeat(len);
            let started = Instant::now();
            let _ = glob_match(&pattern, &name);
            proptest::prop_assert!(started.elapsed() < Duration::from_millis(200));
        }
    }
}
