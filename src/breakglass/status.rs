//! `status <cluster>`: what the encrypted file holds, read without touching the cluster.
//! Decryption happens in memory only.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Context as _, Error, Result};
use crate::fleet::{Cluster, Fleet};
use crate::sops::Sops;
use crate::ui::{OutputFormat, Ui};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Cluster name, as its directory under clusters/ (e.g. `alpha`, `eu/dc1`).
    pub cluster: String,
    /// Output format; `json` is documented in docs/json-output.md.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// One cluster's break-glass file, as `status` reports it.
#[derive(Debug, Serialize)]
pub struct FileStatus {
    pub cluster: String,
    /// Relative to the fleet root.
    pub file: String,
    pub path: PathBuf,
    pub encrypted_size_bytes: u64,
    /// File modification time: after a clone this is the checkout time.
    pub modified: DateTime<Utc>,
    pub server: String,
}

pub async fn run(fleet: &Fleet, args: &StatusArgs, ui: &mut Ui) -> Result<()> {
    let cluster = fleet.cluster(&args.cluster)?;
    let sops = Sops::locate(fleet.root()).await?;
    let status = inspect(&cluster, &sops).await?;
    render(&status, args.output, ui)
}

pub async fn inspect(cluster: &Cluster, sops: &Sops) -> Result<FileStatus> {
    let path = cluster.break_glass_path();
    let rel = cluster.break_glass_rel();
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::failed(format!(
            "cluster {} has no break-glass kubeconfig: {rel} does not exist",
            cluster.name()
        ))
        .with_hint(format!(
            "create it with `kube-dc bootstrap break-glass adopt {}`",
            cluster.name()
        )),
        _ => Error::failed(format!("cannot read {}: {e}", path.display())),
    })?;
    let credential = super::open(sops, cluster).await?;
    let modified = meta
        .modified()
        .context(|| format!("mtime of {}", path.display()))?;
    Ok(FileStatus {
        cluster: cluster.name().to_string(),
        file: rel,
        path,
        encrypted_size_bytes: meta.len(),
        modified: modified.into(),
        server: credential.server,
    })
}

fn render(status: &FileStatus, format: OutputFormat, ui: &mut Ui) -> Result<()> {
    let text = match format {
        OutputFormat::Json => {
            serde_json::to_string_pretty(status).context(|| "JSON".into())? + "\n"
        }
        OutputFormat::Table => {
            let rows = [
                ("cluster", status.cluster.clone()),
                ("file", status.path.display().to_string()),
                (
                    "encrypted size",
                    format!("{} bytes", status.encrypted_size_bytes),
                ),
                (
                    "last modified",
                    format!(
                        "{} (file mtime)",
                        status.modified.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                ),
                ("server", status.server.clone()),
            ];
            rows.iter()
                .map(|(k, v)| format!("{:<15} {v}\n", format!("{k}:")))
                .collect()
        }
    };
    ui.out
        .write_all(text.as_bytes())
        .context(|| "writing to stdout".into())
}
