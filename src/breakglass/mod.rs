//! `kube-dc bootstrap break-glass ...`: the break-glass kubeconfig lifecycle.

pub mod batch;
pub mod check;
pub mod interrupt;
pub mod lifecycle;
pub mod live;
pub mod mint;
pub mod self_rotation;
pub mod session;
pub mod status;

use crate::atomic;
use crate::error::Result;
use crate::fleet::Cluster;
use crate::kubeconfig::{self, BreakGlassCredential};
use crate::sops::Sops;

/// Encrypts the cluster's kubeconfig and atomically replaces its break-glass file.
/// The plaintext exists only in memory and on sops' stdin.
pub async fn seal(sops: &Sops, cluster: &Cluster, credential: &BreakGlassCredential) -> Result<()> {
    let yaml = kubeconfig::to_yaml(&kubeconfig::build(cluster.name(), credential))?;
    let ciphertext = sops
        .encrypt(&cluster.break_glass_rel(), yaml.as_bytes())
        .await?;
    atomic::write(&cluster.break_glass_path(), &ciphertext)
}

/// Decrypts the cluster's break-glass file in memory.
pub async fn open(sops: &Sops, cluster: &Cluster) -> Result<BreakGlassCredential> {
    let rel = cluster.break_glass_rel();
    let plaintext = sops.decrypt(&rel).await?;
    kubeconfig::parse(&plaintext, &rel)
}
