//! One module per command: its clap arguments, its orchestration and its rendering. The
//! work itself is done below, in modules free of the command line (`breakglass`, `git`,
//! `leak_scan`, ...).

pub mod access;
pub mod adopt;
pub mod check;
pub mod man;
pub mod progress;
pub mod rotate;
pub mod status;
pub mod r#use;

use std::io::Write;

use crate::error::{Context as _, Result};
use crate::ui::Ui;

/// A command's report on stdout.
pub fn write_out(ui: &mut Ui, text: &str) -> Result<()> {
    ui.out
        .write_all(text.as_bytes())
        .context(|| "writing to stdout".into())
}
