//! Running the leak rules over many files: one chunk per core, each with its own reader
//! of the bytes (a Git blob or a work-tree file), and the findings in path order.

use serde::Serialize;

use super::{Finding, PathClass, Scanner, classify};
use crate::error::Result;
use crate::sops_config::SopsConfig;

/// What a check found, and over how many files.
#[derive(Debug, Serialize)]
pub struct Report {
    pub checked: usize,
    pub findings: Vec<Finding>,
}

pub fn selected(rel: &str, filters: &[String]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            f.is_empty()
                || rel == f
                || rel
                    .strip_prefix(f.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
}

/// Runs the rules over `rels`, reading a file's bytes only when its path calls for it.
pub fn scan<R>(
    rels: &[String],
    sops_config: &SopsConfig,
    is_cluster_dir: impl Fn(&str) -> bool + Sync,
    reader: impl Fn() -> Result<R> + Sync,
) -> Result<Report>
where
    R: FnMut(&str) -> Result<Vec<u8>>,
{
    let scanner = Scanner::new(sops_config);
    // Reading and parsing thousands of files is the check's whole cost: one chunk per
    // core, each with its own reader (a git2 Repository is not shared across threads).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = rels.len().div_ceil(threads).max(256);
    let parts: Vec<Result<Vec<Finding>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = rels
            .chunks(chunk)
            .map(|part| scope.spawn(|| scan_part(part, &scanner, &is_cluster_dir, reader()?)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut findings = Vec::new();
    for part in parts {
        findings.extend(part?);
    }
    findings.sort_by(|a, b| (&a.path, a.line, a.rule).cmp(&(&b.path, b.line, b.rule)));
    Ok(Report {
        checked: rels.len(),
        findings,
    })
}

fn scan_part(
    rels: &[String],
    scanner: &Scanner,
    is_cluster_dir: &(impl Fn(&str) -> bool + Sync),
    mut read: impl FnMut(&str) -> Result<Vec<u8>>,
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for rel in rels {
        match classify(rel, is_cluster_dir) {
            PathClass::Flagged(finding) => findings.push(finding),
            PathClass::BreakGlass(cluster) => {
                findings.extend(scanner.break_glass(rel, &cluster, &read(rel)?))
            }
            PathClass::Other => findings.extend(scanner.other(rel, &read(rel)?)),
        }
    }
    Ok(findings)
}

/// A path from Git or the file system as text for the report: bytes that are not UTF-8,
/// control characters (a name can carry terminal escapes) and `\` are written `\xNN`, so
/// no two paths look alike and one odd name does not stop the check of the others.
pub fn display_path(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                out.extend(c.to_string().bytes().map(|b| format!("\\x{b:02x}")));
            } else {
                out.push(c);
            }
        }
        out.extend(chunk.invalid().iter().map(|b| format!("\\x{b:02x}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_files_and_directories() {
        let f = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(selected("a/b", &[]));
        assert!(selected("clusters/alpha/x", &f(&["clusters/alpha"])));
        assert!(selected("clusters/alpha", &f(&["clusters/alpha"])));
        assert!(!selected("clusters/alphabet/x", &f(&["clusters/alpha"])));
        assert!(selected("anything", &f(&[""])));
    }

    #[test]
    fn odd_file_names_are_shown_escaped_and_distinct() {
        assert_eq!(display_path(b"clusters/a/ok.yaml"), "clusters/a/ok.yaml");
        assert_eq!(display_path("é.yaml".as_bytes()), "é.yaml");
        assert_eq!(display_path(b"bad\xff.txt"), r"bad\xff.txt");
        assert_eq!(display_path(b"bad\\xff.txt"), r"bad\x5cxff.txt");
        assert_eq!(display_path(b"a\x1b[31m\n.yaml"), r"a\x1b[31m\x0a.yaml");
    }
}
