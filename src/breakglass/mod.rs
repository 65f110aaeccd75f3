//! `kube-dc bootstrap break-glass ...`: the break-glass kubeconfig lifecycle.

pub mod status;
