//! Shell completion through clap's dynamic completion: the shell asks
//! `COMPLETE=<shell> kube-dc -- <words>` on every <TAB>, so cluster names come from the
//! fleet as it is now (a new cluster directory completes without regenerating anything).
//! The fleet is found exactly as the command being completed would find it.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use crate::fleet::Fleet;

/// The completer for a cluster-name argument.
pub fn cluster_names() -> ArgValueCompleter {
    ArgValueCompleter::new(complete_cluster)
}

/// Cluster names starting with what is typed. Anything wrong (no fleet, unreadable
/// directory) completes nothing: an error message would land in the user's command line.
fn complete_cluster(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = current.to_str() else {
        return Vec::new();
    };
    let repo = repo_flag(std::env::args_os());
    let Ok(clusters) = Fleet::discover_here(repo.as_deref()).and_then(|fleet| fleet.clusters())
    else {
        return Vec::new();
    };
    clusters
        .iter()
        .map(|cluster| cluster.name().as_str())
        .filter(|name| name.starts_with(typed))
        .map(CompletionCandidate::new)
        .collect()
}

/// The `--repo` value on the command line being completed (the words after `--`).
fn repo_flag(args: impl IntoIterator<Item = OsString>) -> Option<PathBuf> {
    let mut words = args.into_iter().skip_while(|arg| arg != "--").skip(1);
    let mut repo = None;
    while let Some(word) = words.next() {
        if word == "--repo" {
            repo = words.next().map(PathBuf::from);
        } else if let Some(value) = word.to_str().and_then(|w| w.strip_prefix("--repo=")) {
            repo = Some(PathBuf::from(value));
        }
    }
    repo.filter(|path| !path.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn repo_flag_is_read_from_the_completed_line_only() {
        assert_eq!(
            repo_flag(words(
                "kube-dc -- kube-dc --repo /f bootstrap break-glass use "
            )),
            Some(PathBuf::from("/f"))
        );
        assert_eq!(
            repo_flag(words(
                "kube-dc -- kube-dc bootstrap break-glass --repo=/g use a"
            )),
            Some(PathBuf::from("/g"))
        );
        assert_eq!(repo_flag(words("kube-dc --repo /x -- kube-dc use")), None);
        assert_eq!(repo_flag(words("kube-dc -- kube-dc use --repo")), None);
    }
}
