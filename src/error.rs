//! One error type for the whole tool: a message for the operator, an optional hint that
//! says what to do next, and the exit code the binary returns.

use std::fmt;

/// Exit codes the binary documents in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The operation failed (or `check`/`status --check` found problems).
    Failure = 1,
    /// The invocation or the fleet is wrong: bad `--repo`, unknown cluster, bad config.
    Usage = 2,
}

#[derive(Debug)]
pub struct Error {
    message: String,
    hint: Option<String>,
    exit: Exit,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An operation failed for a reason outside the caller's command line.
    pub fn failed(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            hint: None,
            exit: Exit::Failure,
        }
    }

    /// The command line or the fleet layout is wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            hint: None,
            exit: Exit::Usage,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn exit(&self) -> Exit {
        self.exit
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Adds what we were doing to a lower-level error, keeping its own text.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::failed(format!("{}: {e}", what())))
    }
}
/// A failed write or create, in words a person acts on: a full disk or quota says so
/// (the system's "No space left on device" does not name the way out).
pub fn describe_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::ENOSPC) => "the disk is full (no space left on the device)".into(),
        Some(nix::libc::EDQUOT) => "the disk quota is used up".into(),
        _ => e.to_string(),
    }
}
