//! `use --reason`: why the glass is broken. It goes into cluster objects and commit
//! messages, so it is one line of printable text of bounded length.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::{Error, Result};

/// Characters a reason may have: an incident id or a sentence, not an essay.
pub const MAX_CHARS: usize = 200;
/// Empty answers tolerated at the prompt before giving up.
const ATTEMPTS: usize = 3;

/// The reason from `--reason`, or asked for on a terminal; without either, a usage error
/// naming the flag.
pub fn obtain(flag: Option<&str>, err: &mut dyn Write) -> Result<String> {
    if let Some(text) = flag {
        return validate(text).map_err(|why| {
            Error::usage(format!("--reason: {why}"))
                .with_hint(format!("pass one line of at most {MAX_CHARS} printable characters, e.g. --reason \"INC-7 OIDC down\""))
        });
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::usage(
            "use needs a reason: no --reason was given and there is no terminal to ask on",
        )
        .with_hint(
            "pass --reason TEXT (an incident id or a sentence), e.g. --reason \"INC-7 OIDC down\"",
        ));
    }
    ask(&mut stdin.lock(), err)
}

/// Asks on the terminal until a valid reason is typed, at most [`ATTEMPTS`] times.
fn ask(input: &mut dyn BufRead, err: &mut dyn Write) -> Result<String> {
    for _ in 0..ATTEMPTS {
        let _ = write!(
            err,
            "reason for breaking glass (incident id or sentence, required): "
        );
        let _ = err.flush();
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match validate(line.trim_end_matches(['\n', '\r'])) {
            Ok(reason) => return Ok(reason),
            Err(why) => {
                let _ = writeln!(err, "not accepted: {why}");
            }
        }
    }
    Err(
        Error::usage("use needs a reason: none was given at the prompt")
            .with_hint("pass --reason TEXT (an incident id or a sentence)"),
    )
}

/// The reason, trimmed, or why it is refused.
pub fn validate(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the reason is empty".into());
    }
    if text.chars().any(char::is_control) {
        return Err("the reason contains a control character (e.g. a newline)".into());
    }
    let count = text.chars().count();
    if count > MAX_CHARS {
        return Err(format!(
            "the reason has {count} characters, more than {MAX_CHARS}"
        ));
    }
    Ok(text.to_string())
}

/// `text` with control characters replaced and cut to `max` characters: for values we
/// take from the environment (Git config, user and host names) into records.
pub fn printable(text: &str, max: usize) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_refuses_empty_control_and_long() {
        assert_eq!(validate("  INC-7 OIDC down ").unwrap(), "INC-7 OIDC down");
        assert!(validate("   ").unwrap_err().contains("empty"));
        assert!(validate("a\nb").unwrap_err().contains("control"));
        assert!(validate("a\u{1b}[31m").unwrap_err().contains("control"));
        let long = "x".repeat(MAX_CHARS + 1);
        assert!(validate(&long).unwrap_err().contains("201"));
    }

    #[test]
    fn ask_re_asks_after_empty_and_gives_up_after_the_bound() {
        let mut err = Vec::new();
        let got = ask(&mut &b"\n  \nINC-9\n"[..], &mut err).unwrap();
        assert_eq!(got, "INC-9");
        assert_eq!(
            String::from_utf8_lossy(&err)
                .matches("not accepted")
                .count(),
            2
        );
        let e = ask(&mut &b"\n\n\n\nINC-9\n"[..], &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("reason"), "{e}");
    }
}
