//! The Kubernetes side of break-glass, through the `kube` crate: the three objects, the
//! token the service-account token controller fills in, and checks of what a credential
//! can do. Every call is bounded in time so an unreachable apiserver fails, never hangs.

mod api;
mod carried;
mod checks;
mod identity;
pub mod lease;
mod objects;
mod record;
mod user_agent;

pub use api::{AdminAccess, Connection, connect_with};
pub use carried::Carried;
pub use checks::{
    LAST_USED_LABEL, LiveObjects, ReadFailure, forget_last_use, is_cluster_admin, read_objects,
    whoami, whoami_unless_rejected,
};
pub use identity::Identity;
pub use objects::{Manifest, MintedToken, apply, current_token, remove, revoke, wait_for_token};
pub use record::{account_event, annotate_account};
