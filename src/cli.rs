//! The command line: argument definitions and dispatch to the commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::breakglass;
use crate::breakglass::mint::Action;
use crate::error::Result;
use crate::fleet::{FLEET_ENV, Fleet};
use crate::ui::{ColorChoice, Ui};

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 the operation failed, 2 usage or fleet configuration error.

The fleet repo is found from --repo, else $KUBE_DC_FLEET, else the nearest parent of the
current directory holding .sops.yaml and clusters/, else ~/.kube-dc/fleet.";

#[derive(Debug, Parser)]
#[command(name = "kube-dc", version, about = "Kubernetes fleet tooling: break-glass kubeconfigs kept SOPS-encrypted in the fleet repo", after_help = AFTER_HELP)]
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
pub enum Command {
    /// Set up cluster access that works without the identity provider.
    Bootstrap {
        #[command(subcommand)]
        command: Bootstrap,
    },
}

#[derive(Debug, Subcommand)]
pub enum Bootstrap {
    /// The per-cluster static cluster-admin kubeconfig for when OIDC is down.
    ///
    /// Each cluster's kubeconfig (token of ServiceAccount/break-glass in kube-system) is kept
    /// SOPS-encrypted at clusters/<name>/break-glass-kubeconfig.enc.yaml.
    #[command(name = "break-glass")]
    BreakGlass {
        #[command(subcommand)]
        command: BreakGlass,
    },
}

#[derive(Debug, Subcommand)]
pub enum BreakGlass {
    /// Mint the break-glass token on a cluster and store its kubeconfig encrypted.
    ///
    /// Applies ServiceAccount/break-glass, ClusterRoleBinding/break-glass (cluster-admin) and
    /// Secret/break-glass-token in kube-system, waits for the token controller, checks the new
    /// kubeconfig against the cluster, and SOPS-encrypts it atomically to
    /// clusters/<cluster>/break-glass-kubeconfig.enc.yaml. Idempotent: re-running keeps the
    /// current token (use rotate for a new one). Run it with an admin context:
    ///   unset KUBECONFIG; kube-dc bootstrap break-glass adopt <cluster> --kube-context <admin>
    Adopt(breakglass::mint::MintArgs),
    /// Replace a cluster's break-glass token (after every break-glass session).
    ///
    /// Deletes the token Secret (revoking the old token), re-applies, waits for a new token,
    /// verifies it and re-encrypts the file. If a step after the delete fails, the error says
    /// so and prints the adopt command that recovers.
    Rotate(breakglass::mint::MintArgs),
    /// Report a cluster's break-glass file without contacting the cluster.
    ///
    /// Decrypts in memory (never to disk) and prints the cluster, file path, encrypted size,
    /// last-modified time and embedded server URL.
    Status(breakglass::status::StatusArgs),
    /// Keep plaintext break-glass credentials out of Git (what hooks/pre-commit runs).
    ///
    /// Checks that break-glass files are encrypted to the .sops.yaml recipients and that no
    /// file holds a clear kubeconfig credential or service-account token. Never decrypts.
    /// Exit 0 clean, 1 findings, 2 usage error.
    Check(breakglass::check::CheckArgs),
}

pub async fn run(cli: Cli) -> Result<()> {
    let mut ui = Ui::stdio(cli.color, cli.verbose);
    let fleet = discover_fleet(cli.repo.as_deref())?;
    ui.detail(&format!("fleet: {}", fleet.root().display()));
    match cli.command {
        Command::Bootstrap {
            command: Bootstrap::BreakGlass { command },
        } => match command {
            BreakGlass::Adopt(args) => {
                breakglass::mint::run(&fleet, Action::Adopt, &args, &mut ui).await
            }
            BreakGlass::Rotate(args) => {
                breakglass::mint::run(&fleet, Action::Rotate, &args, &mut ui).await
            }
            BreakGlass::Status(args) => breakglass::status::run(&fleet, &args, &mut ui).await,
            BreakGlass::Check(args) => breakglass::check::run(&fleet, &args, &mut ui),
        },
    }
}

fn discover_fleet(flag: Option<&std::path::Path>) -> Result<Fleet> {
    let env = std::env::var_os(FLEET_ENV).map(PathBuf::from);
    let cwd = std::env::current_dir()
        .map_err(|e| crate::error::Error::failed(format!("current directory: {e}")))?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    Fleet::discover(flag, env.as_deref(), &cwd, home.as_deref())
}
