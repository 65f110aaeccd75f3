//! `check [--staged] [PATH...]`: what `hooks/pre-commit` runs. Applies the leak rules
//! (`leak_scan`) to the staged blobs (what `git commit` records) or to work-tree files,
//! and renders the findings as text, JSON or SARIF. Never decrypts: it needs neither sops
//! nor an age key.

mod sarif;

use std::path::{Path, PathBuf};

use super::write_out;
use crate::error::{Context as _, Error, Result};
use crate::fleet::Fleet;
use crate::leak_scan::scan::Report;
use crate::leak_scan::{staged, work_tree};
use crate::ui::{CheckFormat, Ui};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Check the staged changes (the blobs `git commit` will record), not the work tree.
    #[arg(long)]
    pub staged: bool,
    /// Files or directories to check (default: the whole fleet; with --staged, limits
    /// the staged changes checked).
    pub paths: Vec<PathBuf>,
    /// Output format; `json` lists findings with path, line, rule, message and fix;
    /// `sarif` is SARIF 2.1.0 for code scanning (docs/ci.md).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: CheckFormat,
}

pub fn run(fleet: &Fleet, args: &CheckArgs, ui: &mut Ui) -> Result<()> {
    let cwd = std::env::current_dir().context(|| "current directory".into())?;
    if !args.staged {
        require_existing(&args.paths)?;
    }
    let filters = relative_to_root(fleet.root(), &cwd, &args.paths)?;
    let report = if args.staged {
        staged::check(fleet, &filters)?
    } else {
        work_tree::check(fleet, &filters)?
    };
    ui.detail(&format!("checked {} file(s)", report.checked));
    render(&report, args.output, ui)?;
    match report.findings.len() {
        0 => Ok(()),
        n => Err(Error::failed(format!(
            "break-glass check: {n} problem(s) found"
        ))),
    }
}

/// A work-tree path that does not exist is a typo, not a clean result. (Staged paths may
/// be deletions.)
fn require_existing(paths: &[PathBuf]) -> Result<()> {
    match paths.iter().find(|p| std::fs::symlink_metadata(p).is_err()) {
        Some(missing) => Err(Error::usage(format!(
            "{} does not exist: nothing to check",
            crate::input::quoted(&missing.to_string_lossy())
        ))),
        None => Ok(()),
    }
}

/// Rel paths (`/`-separated, "" for the root) of the PATH arguments, which must be in the fleet.
fn relative_to_root(root: &Path, cwd: &Path, paths: &[PathBuf]) -> Result<Vec<String>> {
    paths
        .iter()
        .map(|p| {
            let abs = cwd.join(p);
            let abs = abs.canonicalize().unwrap_or(abs);
            let rel = abs.strip_prefix(root).map_err(|_| {
                Error::usage(format!(
                    "{} is outside the fleet repo {}",
                    p.display(),
                    root.display()
                ))
            })?;
            Ok(rel.to_string_lossy().into_owned())
        })
        .collect()
}

/// The findings as text (path:line, rule, message, fix), JSON or SARIF.
fn render(report: &Report, format: CheckFormat, ui: &mut Ui) -> Result<()> {
    let text = match format {
        CheckFormat::Json => serde_json::to_string_pretty(report).context(|| "JSON".into())? + "\n",
        CheckFormat::Sarif => {
            let log = sarif::log(&report.findings);
            serde_json::to_string_pretty(&log).context(|| "SARIF".into())? + "\n"
        }
        CheckFormat::Table => report
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{}:{}: {} {}\n    {} {}\n",
                    ui.out_style.bold(&f.path),
                    f.line,
                    ui.out_style.red(f.rule.as_str()),
                    f.message,
                    ui.out_style.green("fix:"),
                    f.fix
                )
            })
            .collect(),
    };
    write_out(ui, &text)
}
