//! The break-glass file itself: sealing a credential into it (sops-encrypted, replaced
//! atomically) and opening it again, in memory only.

use zeroize::Zeroizing;

use crate::atomic;
use crate::error::{Error, Result};
use crate::fleet::{BREAK_GLASS_FILE, Cluster};
use crate::kubeconfig::{self, BreakGlassCredential};
use crate::safe_fs;
use crate::shell::quote;
use crate::sops::Sops;

/// Encrypts the cluster's kubeconfig and atomically replaces its break-glass file.
/// The plaintext exists only in memory and on sops' stdin.
pub async fn seal(sops: &Sops, cluster: &Cluster, credential: &BreakGlassCredential) -> Result<()> {
    let yaml = kubeconfig::to_yaml(&kubeconfig::build(cluster.name(), credential))?;
    let ciphertext = sops
        .encrypt(&cluster.break_glass_rel(), yaml.as_bytes())
        .await?;
    atomic::write(&cluster.open_dir()?, BREAK_GLASS_FILE, &ciphertext)
}

/// Decrypts the cluster's break-glass file in memory.
pub async fn open(sops: &Sops, cluster: &Cluster) -> Result<BreakGlassCredential> {
    let rel = cluster.break_glass_rel();
    let plaintext = decrypt(sops, cluster).await?;
    kubeconfig::parse(&plaintext, &rel)
}

/// The decrypted break-glass file. sops gets the ciphertext on stdin, read by us as
/// `safe_fs` reads files: it never opens a fleet path itself, so a link, FIFO or device
/// planted under the file's name cannot make it follow, block or read without end.
pub async fn decrypt(sops: &Sops, cluster: &Cluster) -> Result<Zeroizing<Vec<u8>>> {
    let ciphertext = cluster
        .open_break_glass()
        .and_then(|file| file.read_all(safe_fs::BREAK_GLASS))
        .map_err(|e| match e.is_not_found() {
            true => not_adopted(cluster),
            false => e.failed(),
        })?;
    sops.decrypt(&cluster.break_glass_rel(), &ciphertext).await
}

fn not_adopted(cluster: &Cluster) -> Error {
    Error::failed(format!(
        "cluster {} is not adopted: {} does not exist",
        cluster.name(),
        cluster.break_glass_rel()
    ))
    .with_hint(format!(
        "create it with `kube-dc bootstrap break-glass adopt {}` (with an admin context)",
        quote(cluster.name().as_str())
    ))
}
