//! `use <cluster>` (and the bare `break-glass <cluster>`): a shell, or one command, with
//! the decrypted break-glass kubeconfig, a banner saying so, and the session recorded.

use std::io::Write;

use crate::breakglass::audit::{self, Audit};
use crate::breakglass::sealed_file;
use crate::breakglass::session::{SessionFile, Signals, open_for_use, run_child};
use crate::cluster::Identity;
use crate::error::Result;
use crate::fleet::{Cluster, Fleet};
use crate::kubeconfig;
use crate::shell::quote;
use crate::sops::Sops;
use crate::ui::{Style, Ui};

#[derive(Debug, clap::Args)]
pub struct UseArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    #[arg(add = crate::cli::completion::cluster_names())]
    pub cluster: String,
    /// Why the glass is broken: an incident id or a sentence (one line, at most 200
    /// characters). Recorded in the cluster, the local journal and the next rotation's
    /// commit. Asked for on a terminal when missing; required otherwise.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Run this command instead of an interactive $SHELL (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs the session and returns the exit code to leave with: the child's own.
pub async fn run(fleet: &Fleet, args: &UseArgs, ui: &mut Ui) -> Result<u8> {
    let cluster = fleet.cluster(&args.cluster)?;
    let reason = audit::reason::obtain(args.reason.as_deref(), &mut ui.err)?;
    // In-process decryption: a bastion without sops can still open the file.
    let sops = Sops::for_reading(fleet.root())?;
    let rel = cluster.break_glass_rel();
    let plaintext = sealed_file::decrypt(&sops, &cluster).await?;
    let credential = kubeconfig::parse(&plaintext, &rel)?;
    let server = credential.server.clone();
    let dir = open_for_use(&mut |w| ui.warn(w))?;
    // Before the file exists: from here on a signal is handled (the file removed), never
    // the default exit that would leave it behind.
    let signals = Signals::install()?;
    let file = SessionFile::create(dir, &plaintext)?;
    banner(&cluster, &server, ui.err_style, &mut ui.err)?;
    let audit = Audit::start(fleet, &cluster, &credential, reason).await;
    let _ = writeln!(ui.err, "{}", audit.notes.join("\n"));
    let code = run_child(&cluster, &file, &args.command, signals).await;
    drop(file);
    let exit = code.as_ref().map_or(1, |c| *c);
    for warning in audit.end(&cluster, &credential, exit).await {
        ui.warn(&warning);
    }
    let rotate = format!(
        "kube-dc bootstrap break-glass rotate {}",
        quote(cluster.name().as_str())
    );
    let _ = writeln!(
        ui.err,
        "{} break-glass session on {} ended; the kubeconfig was removed. Rotate the token now:\n  {rotate}",
        ui.err_style.bold("kube-dc:"),
        cluster.name()
    );
    code
}

fn banner(cluster: &Cluster, server: &str, style: Style, err: &mut dyn Write) -> Result<()> {
    let id = Identity::for_config(&cluster.config()?);
    let text = format!(
        "{}\ncluster:  {}\nserver:   {server}\nidentity: ServiceAccount/{} (cluster-admin)\naudit:    apiserver logs will record {}, NOT your email\nafter:    kube-dc bootstrap break-glass rotate {}\n",
        style.red_bold("  BREAK-GLASS ACTIVE  "),
        cluster.name(),
        id.service_account,
        id.username(),
        quote(cluster.name().as_str())
    );
    let _ = err.write_all(text.as_bytes());
    Ok(())
}
