//! Rotating many clusters at once, after an incident: selection by name, glob or `--all`,
//! bounded concurrency, and one result per cluster. One cluster failing never stops or
//! changes the others. The command (`commands::rotate`) shows progress and the summary.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::mint::{Outcome, Progress, Target, Via, strategy};
use crate::error::{Error, Result};
use crate::fleet::{Cluster, ClusterName, Fleet};
use crate::sops::Sops;

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

/// `rotate --output json`: the schema is in docs/json-output.md.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub action: &'static str,
    pub ok: usize,
    pub failed: usize,
    pub clusters: &'a [ClusterResult],
}

/// Progress of a batch: each cluster's steps, then its end.
pub trait BatchProgress: Progress {
    fn finished(&self, cluster: &ClusterName, result: &Result<Outcome>, took: Duration);
}

/// One target's rotation: how long it took and how it ended.
pub type Ran<'t> = (&'t Target, Duration, Result<Outcome>);

/// Rotates `targets` the way `via` says, at most `jobs` at a time; in the order they end.
pub async fn rotate<'t>(
    targets: &'t [Target],
    via: Via,
    jobs: usize,
    sops: &Sops,
    progress: &impl BatchProgress,
) -> Vec<Ran<'t>> {
    stream::iter(targets)
        .map(|target| async move {
            let started = Instant::now();
            let result = strategy::rotate(via, sops, target, progress).await;
            progress.finished(target.cluster.name(), &result, started.elapsed());
            (target, started.elapsed(), result)
        })
        .buffer_unordered(jobs)
        .collect()
        .await
}

/// One result per cluster, the unusable ones (no target could be made) included, by name.
pub fn summarize(outcomes: &[Ran], unusable: Vec<(ClusterName, Error)>) -> Vec<ClusterResult> {
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
