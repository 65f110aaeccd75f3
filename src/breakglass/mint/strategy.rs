//! Whose credential does a rotation: an admin login ([`admin`]) or the break-glass file
//! itself ([`self_rotation`]). Two peer strategies behind one switch.

use super::progress::Progress;
use super::target::{Outcome, Target};
use super::{admin, plan, self_rotation};
use crate::breakglass::interrupt;
use crate::error::Result;
use crate::git::Action;
use crate::sops::Sops;

/// `rotate --via`: whose credential does the rotation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Via {
    #[default]
    Admin,
    BreakGlass,
}

/// Rotates one target the way `via` says.
pub async fn rotate(
    via: Via,
    sops: &Sops,
    target: &Target,
    progress: &dyn Progress,
) -> Result<Outcome> {
    // A bug in one cluster's rotation must not take the others of a batch down with it.
    interrupt::catch_panic(async {
        match via {
            Via::Admin => admin::rotate(sops, target, progress).await,
            Via::BreakGlass => self_rotation::rotate(sops, target, progress).await,
        }
    })
    .await
}

/// The plan `--dry-run` prints for one target's rotation.
pub async fn plan(via: Via, target: &Target) -> Result<String> {
    match via {
        Via::Admin => plan::admin(Action::Rotate, target).await,
        Via::BreakGlass => plan::self_rotation(target),
    }
}
