// Hostile input must not panic the tool (issue 10); unit tests may.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use kube_dc::cli::{self, Cli};
use kube_dc::ui::{ColorChoice, Style, TerminalSafe};

fn main() -> ExitCode {
    // `COMPLETE=<shell> kube-dc`: completion answers, before anything else runs.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = Cli::parse();
    let color = cli.color;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                &format!("cannot start the async runtime: {e}"),
                None,
                color,
                1,
            );
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => report(e.message(), e.hint(), color, e.exit() as u8),
    }
}

fn report(message: &str, hint: Option<&str>, color: ColorChoice, code: u8) -> ExitCode {
    let style = Style::new(color, std::io::stderr().is_terminal());
    let mut err = TerminalSafe::new(std::io::stderr().lock());
    let _ = writeln!(err, "{} {message}", style.red("error:"));
    if let Some(hint) = hint {
        let _ = writeln!(err, "{} {hint}", style.bold("hint:"));
    }
    ExitCode::from(code)
}
