//! Break-glass files built to hurt the in-process sops reader (issue 10): deep nesting,
//! huge values, broken `ENC[...]` fields, a second `sops:`
//! block, bytes that are not UTF-8, nested aliases ("billion laughs"), 80,000 keys. `status` and `use` must each fail with a message
//! naming the file, leak no canary, and end within seconds (no stack overflow, no
//! expansion, no hang).

use std::time::Duration;

use crate::harness::{Case, Scene, run_table};

const BREAK_GLASS: &str = "fleet/clusters/alpha/break-glass-kubeconfig.enc.yaml";
/// The cap on the break-glass file's size.
const CAP: usize = 1 << 20;
const FAST: Duration = Duration::from_secs(10);

/// How the fixture's break-glass file is made hostile.
type Mutate = fn(Vec<u8>) -> Vec<u8>;

/// Puts `line` (a top-level entry) before the file's first line.
fn prepend(text: Vec<u8>, line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    out.push(b'\n');
    out.extend(text);
    out
}

/// Replaces the first occurrence of `from` (which must be there) with `to`.
fn replace_first(text: Vec<u8>, from: &str, to: &[u8]) -> Vec<u8> {
    let s = String::from_utf8(text).unwrap();
    let at = s
        .find(from)
        .unwrap_or_else(|| panic!("{from} not in the fixture"));
    let mut out = s.as_bytes()[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&s.as_bytes()[at + from.len()..]);
    out
}

fn deep_flow_sequence(text: Vec<u8>) -> Vec<u8> {
    let line = format!("deep: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    prepend(text, line.as_bytes())
}

fn deep_flow_mapping(text: Vec<u8>) -> Vec<u8> {
    let line = format!("deep: {}x{}", "{a: ".repeat(10_000), "}".repeat(10_000));
    prepend(text, line.as_bytes())
}

fn deep_block_mapping(text: Vec<u8>) -> Vec<u8> {
    // One space more per level: 1,400 levels stay under the 1 MiB cap.
    let mut block = String::from("deep:\n");
    for level in 1..1_400 {
        block.push_str(&" ".repeat(level));
        block.push_str("a:\n");
    }
    block.push_str(&" ".repeat(1_400));
    block.push('x');
    prepend(text, block.as_bytes())
}

fn huge_enc_value(text: Vec<u8>) -> Vec<u8> {
    // Valid base64 up to just under the cap: the tag cannot match.
    let room = CAP - text.len() - 64;
    let data = format!("data:{}", "A".repeat(room / 4 * 4));
    replace_first(text, "data:ND0=", data.as_bytes())
}

fn invalid_base64(text: Vec<u8>) -> Vec<u8> {
    replace_first(text, "data:ND0=", b"data:!!*=")
}

fn wrong_iv_length(text: Vec<u8>) -> Vec<u8> {
    replace_first(
        text,
        "iv:dZUWiV4wafChybXH88ADhfNPDv22nCnWLSuyfvgJkgY=",
        b"iv:AAAA",
    )
}

fn type_mismatch(text: Vec<u8>) -> Vec<u8> {
    // `apiVersion` is "v1": not an int.
    let line = String::from_utf8(text.clone()).unwrap();
    let first = line.lines().next().unwrap().to_owned();
    replace_first(
        text,
        &first,
        first.replace("type:str]", "type:int]").as_bytes(),
    )
}

fn second_sops_document(text: Vec<u8>) -> Vec<u8> {
    let mut out = text.clone();
    out.extend_from_slice(b"---\n");
    out.extend(text);
    out
}

fn not_utf8(text: Vec<u8>) -> Vec<u8> {
    replace_first(text, "data:ND0=", b"data:N\xff\xfe0=")
}

const FILES: [(&str, Mutate, &str); 9] = [
    // The parser bounds its depth: no stack overflow.
    (
        "10,000 levels of [ nesting",
        deep_flow_sequence,
        "recursion limit exceeded",
    ),
    (
        "10,000 levels of {a: nesting",
        deep_flow_mapping,
        "recursion limit exceeded",
    ),
    (
        "1,400 levels of block a: nesting",
        deep_block_mapping,
        "recursion limit exceeded",
    ),
    ("an ENC value just under 1 MiB", huge_enc_value, "tampered"),
    (
        "an ENC value with invalid base64",
        invalid_base64,
        "not in sops' encrypted format",
    ),
    (
        "an ENC value with a 3-byte iv",
        wrong_iv_length,
        "failed authentication",
    ),
    ("an ENC str value typed int", type_mismatch, "int"),
    (
        "a second document with its own sops block",
        second_sops_document,
        "MAC mismatch",
    ),
    ("bytes that are not UTF-8", not_utf8, "UTF-8"),
];

/// Nine levels of nine aliases each: 9^9 (387 million) leaves once expanded, in 1 KiB.
fn alias_bomb(text: Vec<u8>) -> Vec<u8> {
    let mut bomb = String::from("l0: &l0 lol\n");
    for level in 1..=9 {
        bomb.push_str(&format!("l{level}: &l{level}\n"));
        for _ in 0..9 {
            bomb.push_str(&format!("    - *l{}\n", level - 1));
        }
    }
    prepend(text, bomb.trim_end().as_bytes())
}

/// 80,000 top-level keys with empty values (sops leaves those in clear): still a good file.
fn many_keys(text: Vec<u8>) -> Vec<u8> {
    let keys: String = (0..80_000).map(|i| format!("k{i:05x}: \"\"\n")).collect();
    prepend(text, keys.trim_end().as_bytes())
}

/// 80,000 clear `token:` keys in a list: 80,000 findings, each to be given its line.
fn many_clear_tokens(text: Vec<u8>) -> Vec<u8> {
    let keys: String = (0..80_000).map(|_| "- token: x\n").collect();
    prepend(text, format!("extra:\n{}", keys.trim_end()).as_bytes())
}

const STATUS_ALPHA: [&str; 4] = ["bootstrap", "break-glass", "status", "alpha"];
const USE_ALPHA: [&str; 8] = crate::support::USE_ALPHA;

fn hostile(what: &str, mutate: Mutate, command: &str, args: &[&str]) -> Case {
    Case::new(format!("{command} on a break-glass file with {what}"))
        .setup(move |s: &mut Scene| {
            let text = std::fs::read(s.path(BREAK_GLASS)).unwrap();
            let out = mutate(text);
            assert!(out.len() <= CAP, "{} bytes is over the cap", out.len());
            s.write(BREAK_GLASS, out);
        })
        .args(args.iter().copied())
        .exit(1)
        .says("break-glass-kubeconfig.enc.yaml")
        .within(FAST)
}

#[test]
fn hostile_sops_files_fail_clearly_and_fast() {
    let mut cases = Vec::new();
    for (what, mutate, says) in FILES {
        cases.push(hostile(what, mutate, "status", &STATUS_ALPHA).says(says));
        cases.push(hostile(what, mutate, "use", &USE_ALPHA).says(says));
    }
    run_table(cases);
}

/// Refused at the first anchor, in-process: never expanded, never handed to the sops
/// binary (which expands aliases without a limit).
#[test]
fn an_alias_bomb_is_refused_not_expanded() {
    let quick = Duration::from_secs(5);
    let bomb = |command: &str, args: &[&str]| {
        hostile("nested aliases", alias_bomb, command, args)
            .says("anchor or alias")
            .within(quick)
    };
    run_table(vec![
        bomb("status", &STATUS_ALPHA),
        bomb(
            "status --all --check",
            &["bootstrap", "break-glass", "status", "--all", "--check"],
        ),
        bomb("use", &USE_ALPHA),
    ]);
}

/// Linear time in the number of keys. Each case costs about 4.5 s of CPU in a debug build
/// (three parses of 880 KB: scanner, reader, kubeconfig), so the bound is in wall time on
/// a 2-core machine that runs other builds. Locating 80,000 clear keys took minutes before
/// (a scan of the text per key); 80,000 plain keys took 5.7 s of CPU (four parses).
#[test]
fn very_many_keys_cost_linear_time() {
    let linear = Duration::from_secs(20);
    run_table(vec![
        hostile("80,000 keys", many_keys, "status", &STATUS_ALPHA)
            .exit(0)
            .says("decrypts:       ok")
            .within(linear),
        hostile(
            "80,000 clear tokens",
            many_clear_tokens,
            "status",
            &STATUS_ALPHA,
        )
        .says("extra[79999].token is in clear")
        .within(linear),
    ]);
}
