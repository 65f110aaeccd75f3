//! `status --output markdown`: GitHub-flavoured Markdown for CI job summaries and
//! merge-request comments. Cell text is escaped: nothing in it (a `|`, a newline, markup,
//! HTML) can break the table or turn into links or formatting.

use super::text;
use crate::breakglass::status::FleetStatus;
use crate::ui::{ColorChoice, Style};

/// The table, each problem with its fix as a list item, and the counts.
pub fn report(report: &FleetStatus) -> String {
    let (header, rows) = text::rows(report, Style::new(ColorChoice::Never, false));
    let mut text = table(&header, &rows);
    let problems: Vec<String> = report
        .clusters
        .iter()
        .flat_map(|s| s.problems.iter().map(move |p| (s, p)))
        .map(|(s, p)| {
            format!(
                "- **{}**: {} Fix: {}\n",
                cell(&s.cluster),
                cell(&p.message),
                cell(&p.fix)
            )
        })
        .collect();
    if !problems.is_empty() {
        text += "\n";
        text.extend(problems);
    }
    text + &format!(
        "\n{} cluster(s): {} ok, {} with problems\n",
        report.summary.clusters, report.summary.ok, report.summary.with_problems
    )
}

/// A table with a header row; rows shorter than the header get empty cells.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(header.iter().map(|h| cell(h)).collect());
    out += &line(header.iter().map(|_| "---".to_owned()).collect());
    for row in rows {
        let cells = (0..header.len())
            .map(|i| row.get(i).map_or_else(String::new, |c| cell(c)))
            .collect();
        out += &line(cells);
    }
    out
}

/// Text as it must be written to show literally in a table cell or a paragraph.
pub fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("U+{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_add_markup() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(
            cell("line\nbreak\r\x1b[31m"),
            "lineU+000AbreakU+000DU+001B\\[31m"
        );
        assert_eq!(
            cell("<img src=x> [l](u) `c` \\|"),
            "\\<img src=x\\> \\[l\\](u) \\`c\\` \\\\\\|"
        );
        assert_eq!(cell("eu/dc1"), "eu/dc1");
    }

    #[test]
    fn table_has_a_separator_and_pads_short_rows() {
        let text = table(
            &["A", "B"],
            &[vec!["x|y".into()], vec!["1".into(), "2".into()]],
        );
        assert_eq!(text, "| A | B |\n| --- | --- |\n| x\\|y |  |\n| 1 | 2 |\n");
    }
}
