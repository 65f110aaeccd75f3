//! The command line: the top-level parser, dispatch to the commands (`crate::commands`),
//! and what every run does first (sweep stale sessions, find the fleet, check .sops.yaml).

pub mod completion;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::breakglass;
use crate::commands::{adopt, check, man, rotate, status, r#use};
use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::sops_config::SopsConfig;
use crate::ui::{ColorChoice, Ui};

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 the operation failed, 2 usage or fleet configuration error.

The fleet repo is found from --repo, else $KUBE_DC_FLEET, else the nearest parent of the
current directory holding .sops.yaml and clusters/, else ~/.kube-dc/fleet.";

/// `kube-dc --version`: the release and the Git commit it was built from (see build.rs).
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KUBE_DC_BUILD_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "kube-dc", version = VERSION, about = "Kubernetes fleet tooling: break-glass kubeconfigs kept SOPS-encrypted in the fleet repo", after_help = AFTER_HELP)]
pub struct Cli {
    /// Fleet repo root (holds .sops.yaml and clusters/).
    #[arg(long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// When to colour output (NO_COLOR is honoured in `auto`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorChoice,
    /// Say more about each step (on stderr).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per run, parsed once: boxing would buy nothing"
)]
pub enum Command {
    /// Set up cluster access that works without the identity provider.
    Bootstrap {
        #[command(subcommand)]
        command: Bootstrap,
    },
    /// Write the man pages (kube-dc.1 and one per subcommand) to a directory.
    Man(man::ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum Bootstrap {
    /// The per-cluster static cluster-admin kubeconfig for when OIDC is down.
    ///
    /// Each cluster's kubeconfig (token of ServiceAccount/break-glass in kube-system) is kept
    /// SOPS-encrypted at clusters/<name>/break-glass-kubeconfig.enc.yaml.
    #[command(name = "break-glass")]
    BreakGlass(BreakGlassCommand),
}

/// `break-glass <cluster>` alone is `break-glass use <cluster>`, as in the runbook.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BreakGlassCommand {
    #[command(subcommand)]
    command: Option<BreakGlass>,
    #[command(flatten)]
    bare_use: Option<r#use::UseArgs>,
}

#[derive(Debug, Subcommand)]
pub enum BreakGlass {
    /// Open a shell (or run one command) with the cluster's break-glass kubeconfig.
    ///
    /// Decrypts to ~/.kube-dc/break-glass/kubeconfig-*.yaml (0600, directory 0700), sets
    /// KUBECONFIG, KUBE_DC_BREAK_GLASS=1 and KUBE_DC_BREAK_GLASS_CLUSTER, prints a banner,
    /// and removes the file when the shell exits or kube-dc gets SIGINT/SIGTERM/SIGHUP.
    /// Exits with the shell's (or command's) exit code. Rotate afterwards.
    ///   kube-dc bootstrap break-glass use alpha -- kubectl get nodes
    Use(r#use::UseArgs),
    /// Mint the break-glass token on a cluster and store its kubeconfig encrypted.
    ///
    /// Applies ServiceAccount/break-glass, ClusterRoleBinding/break-glass (cluster-admin) and
    /// Secret/break-glass-token in kube-system, waits for the token controller, checks the new
    /// kubeconfig against the cluster, and SOPS-encrypts it atomically to
    /// clusters/<cluster>/break-glass-kubeconfig.enc.yaml. Idempotent: re-running keeps the
    /// current token (use rotate for a new one). Run it with an admin context:
    ///   unset KUBECONFIG; kube-dc bootstrap break-glass adopt <cluster> --kube-context <admin>
    Adopt(adopt::AdoptArgs),
    /// Replace break-glass tokens (after every session; many clusters after an incident).
    ///
    /// With an admin context: checks the server URL with the current token, revokes it
    /// (deletes the token Secret and the ServiceAccount), re-applies, waits for a new token,
    /// verifies it and re-encrypts the file. If a step after the revocation fails, the error
    /// says so and prints the adopt command that recovers.
    /// Several clusters (names, globs like 'eu/*', or --all) run --jobs at a time, with a
    /// summary; exit 1 when any failed.
    ///
    /// With --via break-glass: no admin login at all, only the fleet file and the age key;
    /// make-before-break through a stand-in account, resumable after any interruption.
    Rotate(rotate::RotateArgs),
    /// Report break-glass files (one cluster, or --all) without contacting any cluster.
    ///
    /// Shows the file's Git state (committed, unpushed, modified, staged, untracked, not
    /// adopted), the last commit that touched it and the token's age since then, sops'
    /// lastmodified, whether the age recipients match .sops.yaml, and whether it decrypts
    /// (in memory; --no-decrypt needs no key). --check exits 1 when anything needs attention.
    Status(status::StatusArgs),
    /// Keep plaintext break-glass credentials out of Git (what hooks/pre-commit runs).
    ///
    /// Checks that break-glass files are encrypted to the .sops.yaml recipients and that no
    /// file holds a clear kubeconfig credential or service-account token. Never decrypts.
    /// Exit 0 clean, 1 findings, 2 usage error.
    Check(check::CheckArgs),
}

/// Runs the command; the `Ok` value is the process exit code.
pub async fn run(cli: Cli) -> Result<u8> {
    let break_glass = match cli.command {
        Command::Man(args) => return man::run(&args, Cli::command(), VERSION),
        Command::Bootstrap {
            command: Bootstrap::BreakGlass(break_glass),
        } => break_glass,
    };
    let mut ui = Ui::stdio(cli.color, cli.verbose);
    crate::sops::report_fallbacks(cli.verbose > 0);
    sweep_stale_sessions(&mut ui);
    let fleet = Fleet::discover_here(cli.repo.as_deref())?;
    ui.detail(&format!("fleet: {}", fleet.root().display()));
    // A broken .sops.yaml is a fleet configuration error for every command (exit 2),
    // found before anything runs.
    SopsConfig::load(&fleet.sops_config_path())?;
    let command = match (break_glass.command, break_glass.bare_use) {
        (Some(command), _) => command,
        (None, Some(args)) => BreakGlass::Use(args),
        (None, None) => return Err(Error::usage("name a cluster or a subcommand (see --help)")),
    };
    let done = |result: Result<()>| result.map(|()| 0);
    match command {
        BreakGlass::Use(args) => {
            fleet.adopted_cluster(&args.cluster)?;
            r#use::run(&fleet, &args, &mut ui).await
        }
        BreakGlass::Adopt(args) => done(adopt::run(&fleet, &args, &mut ui).await),
        BreakGlass::Rotate(args) => rotate::run(&fleet, &args, &mut ui).await,
        BreakGlass::Status(args) => done(status::run(&fleet, &args, &mut ui).await),
        BreakGlass::Check(args) => done(check::run(&fleet, &args, &mut ui)),
    }
}

/// Every run cleans up after `use` sessions that were killed before they could.
fn sweep_stale_sessions(ui: &mut Ui) {
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return;
    };
    let sweep = breakglass::session::sweep_stale(std::path::Path::new(&home));
    for warning in &sweep.warnings {
        ui.warn(warning);
    }
    if sweep.removed > 0 {
        ui.warn(&format!(
            "removed {} decrypted break-glass kubeconfig(s) left by killed sessions",
            sweep.removed
        ));
    }
}
