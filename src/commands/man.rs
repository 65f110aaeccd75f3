//! `kube-dc man --dir DIR`: man pages for kube-dc and every subcommand, generated from the
//! same clap definitions as `--help` (no hand-written copy to drift), with the exit status
//! and environment sections clap does not know about.

use std::path::{Path, PathBuf};

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages to (created if missing), e.g. /usr/local/share/man/man1.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "The operation failed; for rotate of several clusters, at least one failed; for check and status --check, problems were found.",
    ),
    ("2", "Usage or fleet configuration error."),
    (
        "other",
        "use exits with the code of the shell or command it ran.",
    ),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "KUBE_DC_FLEET",
        "The fleet repo root when --repo is not given. One that is not a fleet is an error.",
    ),
    (
        "KUBE_DC_SOPS",
        "The sops binary for encryption and for the decryption fallback (default: sops on PATH); KUBE_DC_SOPS_DECRYPT=binary decrypts with it instead of in-process.",
    ),
    (
        "SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_AGE_KEY_CMD, SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        "Where sops finds the age identity that decrypts break-glass files (default ~/.config/sops/age/keys.txt). Relative paths are taken from the current directory.",
    ),
    (
        "KUBECONFIG",
        "The admin kubeconfig for adopt, rotate and status --live (unless --kubeconfig). use sets it for its shell to the decrypted break-glass kubeconfig, together with KUBE_DC_BREAK_GLASS=1 and KUBE_DC_BREAK_GLASS_CLUSTER.",
    ),
    (
        "SHELL",
        "The interactive shell use opens when no command is given.",
    ),
    (
        "HOME",
        "Holds ~/.kube-dc/break-glass/ (decrypted kubeconfigs of running use sessions) and the default fleet ~/.kube-dc/fleet.",
    ),
    (
        "NO_COLOR",
        "Set and not empty: no colours with --color auto.",
    ),
    (
        "COMPLETE",
        "COMPLETE=bash|zsh|fish kube-dc prints the shell completion script (see the README).",
    ),
];

/// Writes one page per command (`kube-dc.1`, `kube-dc-bootstrap-break-glass-use.1`, ...)
/// and lists them on stdout.
pub fn run(args: &ManArgs, root: clap::Command, version: &'static str) -> Result<u8> {
    std::fs::create_dir_all(&args.dir).map_err(|e| {
        Error::usage(format!(
            "--dir {}: cannot create the directory: {e}",
            args.dir.display()
        ))
    })?;
    let mut root = root.disable_help_subcommand(true);
    root.build();
    for command in commands(&root) {
        // Every page says which release (and commit) it describes.
        let path = write_page(&args.dir, command.clone().version(version))?;
        println!("{}", path.display());
    }
    Ok(0)
}

/// The command and all its subcommands, depth first.
fn commands(command: &clap::Command) -> Vec<&clap::Command> {
    let mut all = vec![command];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        all.extend(commands(sub));
    }
    all
}

fn write_page(dir: &Path, command: clap::Command) -> Result<PathBuf> {
    let man = Man::new(command.clone());
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    render(&man, &command, &mut page)
        .and_then(|()| std::fs::write(&path, &page))
        .map_err(|e| {
            Error::failed(format!("cannot write man page {}: {e}", path.display()))
                .with_hint("choose a writable --dir")
        })?;
    Ok(path)
}

/// clap_mangen's sections (those `command` has), then ours, in the customary order.
fn render(man: &Man, command: &clap::Command, page: &mut Vec<u8>) -> std::io::Result<()> {
    man.render_title(page)?;
    man.render_name_section(page)?;
    man.render_synopsis_section(page)?;
    man.render_description_section(page)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(page)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(page)?;
    }
    if command.get_after_help().is_some() || command.get_after_long_help().is_some() {
        man.render_extra_section(page)?;
    }
    definitions("EXIT STATUS", EXIT_STATUS).to_writer(page)?;
    definitions("ENVIRONMENT", ENVIRONMENT).to_writer(page)?;
    man.render_version_section(page)
}

/// A section of tagged paragraphs: the term in bold, its meaning below.
fn definitions(title: &str, entries: &[(&str, &str)]) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    for (term, meaning) in entries {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*meaning)]);
    }
    roff
}
