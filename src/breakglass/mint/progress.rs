//! What minting reports as it goes: one [`Step`] at a time, through a [`Progress`] the
//! caller chooses (a line on stderr, a live line per cluster), never the terminal itself.

use std::fmt;

use crate::fleet::ClusterName;

/// What happens, step by step, for one cluster.
#[derive(Debug, Clone)]
pub enum Step {
    CheckingFleet,
    Connected {
        server: String,
        context: String,
    },
    Applying,
    Revoking,
    WaitingForToken,
    Verifying {
        server: String,
    },
    VerifySkipped,
    Sealing {
        file: String,
    },
    Warning(String),
    /// A stage of `rotate --via break-glass`, announced before it runs.
    SelfRotation(Stage),
    /// Waiting for the cluster's rotation lock, or taking over one left behind.
    Lock(String),
}

pub trait Progress: Send + Sync {
    fn step(&self, cluster: &ClusterName, step: Step);
}

/// The stages of a self-rotation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Identify,
    MintStandIn,
    SealStandIn,
    Replace,
    SealNew,
    RemoveStandIn,
    Record,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Identify,
        Stage::MintStandIn,
        Stage::SealStandIn,
        Stage::Replace,
        Stage::SealNew,
        Stage::RemoveStandIn,
        Stage::Record,
    ];

    fn text(self) -> &'static str {
        match self {
            Stage::Identify => {
                "decrypting the break-glass file and asking the cluster whose credential it holds"
            }
            Stage::MintStandIn => "creating the stand-in account and waiting for its token",
            Stage::SealStandIn => "verifying the stand-in's credential and writing it to the file",
            Stage::Replace => {
                "as the stand-in: revoking the old break-glass token and minting a new one"
            }
            Stage::SealNew => "verifying the new break-glass credential and writing it to the file",
            Stage::RemoveStandIn => {
                "with the credential now in the file: deleting the stand-in account"
            }
            Stage::Record => "recording the file in Git",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = *self as usize + 1;
        write!(f, "step {number}/{}: {}", Stage::ALL.len(), self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_numbered_in_order() {
        assert_eq!(
            Stage::Identify.to_string(),
            format!("step 1/7: {}", Stage::Identify.text())
        );
        assert!(Stage::Record.to_string().starts_with("step 7/7: "));
    }
}
