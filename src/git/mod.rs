//! The fleet repo as a Git repository.
//!
//! Reading (the state of a file, the last commit that touched it, how far the branch is
//! ahead of its upstream) goes through git2. Writing (commit, push) runs the `git` CLI,
//! so the user's hooks (our pre-commit hook included), signing (`commit.gpgsign`,
//! `gpg.format=ssh`), identity and credentials apply exactly as for a hand-made commit:
//! libgit2 honours none of them.
//!
//! All paths in this API are relative to the **fleet root** and `/`-separated, as
//! [`Cluster::break_glass_rel`](crate::fleet::Cluster::break_glass_rel) returns them; the
//! fleet root may be a subdirectory of the work tree.
//!
//! # For commands that write a break-glass file (adopt, rotate)
//!
//! ```ignore
//! // --message TEMPLATE, --no-commit and --push (commands::access::CommitArgs).
//! let options = git::CommitOptions { message, no_commit };
//! let policy = git::PushPolicy::from_flag(push);
//! // Before contacting the cluster: rejects a bad template or a fleet outside Git.
//! let recorder = git::Recorder::new(&fleet, &options, git::GitCli::system(), policy)?;
//! sealed_file::seal(&sops, &cluster, &credential).await?;
//! let change = git::Change {
//!     cluster: cluster.name(),
//!     action: git::Action::Adopt,
//!     server: &credential.server,
//!     rel: &cluster.break_glass_rel(),
//! };
//! recorder.commit(&change, ui)?; // one commit per cluster, only that file
//! recorder.push(ui)?;            // once, after the last commit
//! ```
//!
//! [`Recorder::commit`] commits only the file (other staged and unstaged changes stay as
//! they were); a rejecting hook is an error that says the file is written but not
//! committed. The message comes from `--message`, else `commit_message` in the fleet's
//! `.kube-dc.yaml`, else the action's default; placeholders: `{cluster}`, `{action}`,
//! `{server}`, `{date}`. [`Recorder::push`] pushes with `--push`, asks on a terminal, and
//! otherwise prints the exact command; it never forces. Both block: they run `git`.
//!
//! The lower level, for other callers: [`Repo::discover`], [`Repo::commit_paths`],
//! [`Repo::push_plan`], [`Repo::push`], [`Repo::path_states`], [`Repo::last_commits`],
//! [`Repo::head`].

mod cli;
mod commit;
mod history;
mod message;
mod push;
mod raw_tree;
mod record;
mod repo;
mod state;
mod sync;
mod tree_paths;

pub(crate) use tree_paths::TreePaths;

pub use cli::GitCli;
pub use message::{Action, Change, MessageTemplate, combined_message};
pub use push::{PushPlan, PushPolicy};
pub use record::{CommitOptions, PUSH_ATTEMPTS, PushOutcome, Recorder, Resolve};
pub use repo::{CommitInfo, CommitOutcome, Repo};
pub use state::{Head, PathState, Tracking};
pub use sync::{Keep, Overlap};
