//! Where the tool's words go: stdout for results, stderr for progress, warnings and
//! banners, each coloured only when it is a terminal and the user did not opt out.
//!
//! Much of what is shown comes from files anyone with push access wrote (recipients, sops
//! rules, commit subjects, file names). Everything written goes through [`for_terminal`],
//! so that text reaches the terminal as characters, never as commands (an OSC 52 that
//! fills the clipboard, a carriage return or bidi override that hides a problem line).

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    #[default]
    Table,
    /// One JSON document for scripts (schemas in docs/schema/).
    Json,
}

/// `status --output`: the common formats and a Markdown table for CI job summaries and
/// merge-request comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StatusFormat {
    /// Aligned text for people.
    #[default]
    Table,
    /// One JSON document for scripts (schemas in docs/schema/).
    Json,
    /// A GitHub-flavoured Markdown table (job summaries, merge-request comments).
    Markdown,
}

/// `check --output`: the common formats and SARIF 2.1.0 for code scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CheckFormat {
    /// Aligned text for people.
    #[default]
    Table,
    /// One JSON document for scripts (schemas in docs/schema/).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and GitLab.
    Sarif,
}

/// A count of work done, on stderr (`decrypting 12/900`): drawn only on a terminal and
/// for enough items to be worth it, so that a long wait is not a silent one.
pub struct Counter(indicatif::ProgressBar);

impl Counter {
    pub fn new(len: usize, label: &str) -> Counter {
        if !std::io::stderr().is_terminal() || len < 20 {
            return Counter(indicatif::ProgressBar::hidden());
        }
        let bar = indicatif::ProgressBar::new(len as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
            "{label} {{pos}}/{{len}} {{wide_bar}} {{eta}}"
        )) {
            bar.set_style(style);
        }
        Counter(bar)
    }

    pub fn inc(&self) {
        self.0.inc(1);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// ANSI styling that is either on or off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    pub fn new(choice: ColorChoice, is_terminal: bool) -> Style {
        let enabled = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Style { enabled }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("{STYLE_MARK}[{code}m{text}{STYLE_MARK}[0m")
        } else {
            text.to_string()
        }
    }

    pub fn red_bold(&self, text: &str) -> String {
        self.paint("1;97;41", text)
    }

    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// Our colour codes begin with this, not ESC, until [`for_terminal`] writes them. NUL:
/// JSON output escapes it, so a raw one is ours or from plain text; a hostile one gets no
/// more than one of our own colours.
const STYLE_MARK: char = '\0';

/// The colour codes [`Style`] writes; a mark followed by anything else is shown, not run.
const OUR_CODES: [&str; 6] = ["[0m", "[1m", "[31m", "[32m", "[33m", "[1;97;41m"];

/// `text` as it may reach a terminal: our colour marks become ESC, every other control
/// character and invisible formatting character (bidi overrides, zero-width) is shown as
/// a `\uXXXX` escape, which JSON output reads back as the same character.
pub fn for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
        let ours = (c == STYLE_MARK)
            .then(|| OUR_CODES.iter().find(|code| rest.starts_with(**code)))
            .flatten();
        match (c, ours) {
            (_, Some(code)) => {
                out.push('\x1b');
                out.push_str(code);
                rest = rest.get(code.len()..).unwrap_or_default();
            }
            ('\n' | '\t', _) => out.push(c),
            (c, _) if c.is_control() || crate::redact::is_invisible(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            (c, _) => out.push(c),
        }
    }
    out
}

/// A stream that writes everything through [`for_terminal`]. A character split between
/// two writes is held back until its last byte arrives (or the stream is flushed).
pub struct TerminalSafe<W: Write> {
    inner: W,
    partial: Vec<u8>,
}

impl<W: Write> TerminalSafe<W> {
    pub fn new(inner: W) -> Self {
        TerminalSafe {
            inner,
            partial: Vec::new(),
        }
    }

    /// Writes the first `complete` bytes held (invalid UTF-8 shown as U+FFFD).
    fn pass(&mut self, complete: usize) -> std::io::Result<()> {
        let bytes: Vec<u8> = self.partial.drain(..complete).collect();
        let text = for_terminal(&String::from_utf8_lossy(&bytes));
        self.inner.write_all(text.as_bytes())
    }
}

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        let complete = match std::str::from_utf8(&self.partial) {
            // Only an unfinished character at the end waits for more.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            _ => self.partial.len(),
        };
        self.pass(complete)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.pass(self.partial.len())?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for TerminalSafe<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Writes `text` to stderr through [`for_terminal`]: for the few lines written outside a
/// [`Ui`] (from deep in a step, or on the way out after a signal).
pub fn to_stderr(text: &str) {
    let _ = TerminalSafe::new(std::io::stderr().lock()).write_all(text.as_bytes());
}

/// The two output streams with their styles.
pub struct Ui {
    pub out: Box<dyn Write + Send>,
    pub err: Box<dyn Write + Send>,
    pub out_style: Style,
    pub err_style: Style,
    pub verbose: u8,
}

impl Ui {
    pub fn stdio(color: ColorChoice, verbose: u8) -> Ui {
        Ui {
            out_style: Style::new(color, std::io::stdout().is_terminal()),
            err_style: Style::new(color, std::io::stderr().is_terminal()),
            out: Box::new(TerminalSafe::new(std::io::stdout())),
            err: Box::new(TerminalSafe::new(std::io::stderr())),
            verbose,
        }
    }

    pub fn warn(&mut self, message: &str) {
        let label = self.err_style.yellow("warning:");
        let _ = writeln!(self.err, "{label} {message}");
    }

    /// A line for `-v`.
    pub fn detail(&mut self, message: &str) {
        if self.verbose > 0 {
            let _ = writeln!(self.err, "{message}");
        }
    }
}

/// Left-aligned columns, two spaces apart; colour codes are not counted as width.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| visible_width(s);
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width(cell)),
                None => widths.push(width(cell)),
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                let column = widths.get(i).copied().unwrap_or(0);
                out.push_str(&" ".repeat(column.saturating_sub(width(cell)) + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn visible_width(s: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b' | STYLE_MARK) => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_ignoring_colour() {
        let style = Style { enabled: true };
        let rows = vec![
            vec!["alpha".into(), style.green("ok")],
            vec!["eu/dc1".into(), "missing".into()],
        ];
        let text = for_terminal(&table(&["CLUSTER", "STATE"], &rows));
        let plain: Vec<String> = text
            .lines()
            .map(|l| l.replace("\x1b[32m", "").replace("\x1b[0m", ""))
            .collect();
        assert_eq!(
            plain,
            vec!["CLUSTER  STATE", "alpha    ok", "eu/dc1   missing"]
        );
    }

    #[test]
    fn only_our_colours_reach_the_terminal_as_codes() {
        let style = Style { enabled: true };
        let hostile = "age1x\x1b]52;c;cHduZWQ=\x07\rok\u{202e}txt\0[8mhidden\x7f\u{9b}2J";
        let shown = for_terminal(&format!("{} {hostile}\n", style.red("differ")));
        assert_eq!(
            shown,
            "\x1b[31mdiffer\x1b[0m age1x\\u001b]52;c;cHduZWQ=\\u0007\\u000dok\\u202etxt\\u0000[8mhidden\\u007f\\u009b2J\n"
        );
        assert_eq!(for_terminal("plain\ttext\n"), "plain\ttext\n");
    }

    #[test]
    fn json_written_for_a_terminal_reads_back_the_same() {
        let value = serde_json::json!({"subject": "a\x7fb\u{85}c\u{202e}d\x1be\0f"});
        let shown = for_terminal(&serde_json::to_string(&value).unwrap());
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_character_split_between_writes_arrives_whole() {
        let mut out = TerminalSafe::new(Vec::new());
        let text = "ä€😀\u{1b}";
        for byte in text.as_bytes() {
            out.write_all(&[*byte]).unwrap();
        }
        out.flush().unwrap();
        assert_eq!(String::from_utf8(out.inner.clone()).unwrap(), "ä€😀\\u001b");
    }

    #[test]
    fn colour_choice() {
        assert!(!Style::new(ColorChoice::Never, true).enabled);
        assert!(Style::new(ColorChoice::Always, false).enabled);
        assert!(!Style::new(ColorChoice::Auto, false).enabled);
    }
}
