//! Re-running `adopt` where the break-glass file already holds the cluster's current
//! credential. sops would re-encrypt it with a new data key and date: a changed file and
//! a commit with nothing new in them. Idempotent means the file is left as it is.

use secrecy::ExposeSecret;

use crate::breakglass::sealed_file;
use crate::cluster::MintedToken;
use crate::fleet::Cluster;
use crate::sops::Sops;

/// Whether the cluster's break-glass file already holds `minted` for `server` (token, CA
/// and URL alike; the kubeconfig's names may differ, e.g. in a file of the Go tool). A
/// file that cannot be read (none yet, no key, not a kubeconfig) does not: adopt then
/// writes one, as before.
pub async fn holds(sops: &Sops, cluster: &Cluster, server: &str, minted: &MintedToken) -> bool {
    let Ok(current) = sealed_file::open(sops, cluster).await else {
        return false;
    };
    current.server == server
        && current.ca_pem == minted.ca_pem
        && current.token.expose_secret() == minted.token.expose_secret()
}
