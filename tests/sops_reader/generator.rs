//! Random sops-acceptable YAML plaintexts, seeded so a failure can be reproduced: nested
//! mappings and lists, every scalar type go-yaml knows (strings that need each quoting
//! style, ints incl. octal and hex, floats, bools, timestamps, nulls, empty strings),
//! comments (incl. inside lists) and several documents.

/// splitmix64: small, seedable, good enough to pick shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Keys chosen so that every rule in `RULES` both encrypts and leaves some values.
const KEYS: &[&str] = &[
    "name",
    "token",
    "password",
    "data",
    "config",
    "server",
    "kind",
    "metadata",
    "secret_key",
    "user_secret",
    "host_clear",
    "note_unencrypted",
    "y",
    "on",
    "\"123\"",
    "key with spaces",
    "dash-key",
    "ünïcode",
];

/// Scalars as they would be written in a hand-made plaintext file.
const SCALARS: &[&str] = &[
    "plain",
    "two words",
    "\"yes\"",
    "yes",
    "no",
    "on",
    "\"123\"",
    "123",
    "-42",
    "0777",
    "0x1F",
    "1_000",
    "9223372036854775807",
    "1.5",
    // Not -0.0: sops itself breaks its MAC on it when it stays clear (it writes -0 and
    // reads that back as the integer 0).
    "-1.25",
    "1e6",
    "1e-7",
    "123456.789",
    ".inf",
    "-.inf",
    ".nan",
    "true",
    "False",
    "~",
    "null",
    "",
    "\"\"",
    "''",
    "2001-12-14t21:59:43.10-05:00",
    "2002-12-14",
    "2001-12-14 21:59:43.10",
    "2026-11-27T03:48:21Z",
    "'a: b'",
    "'- leading dash'",
    "' leading space'",
    "'trailing space '",
    "\"tab\\there\"",
    "\"control \\x01 char\"",
    "café",
    "日本語のテキスト",
    "\"emoji \\U0001F600\"",
    "'it''s quoted'",
    "\"back\\\\slash\"",
    "'# not a comment'",
    "'url: https://example.test/a?b=c#d'",
    "https://example.test/a?b=c#d",
    "https://kube.example.test:6443",
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkekNDQVIyZ0F3SUJBZ0lCQURBS0JnZ3Foa2pPUFFRREFqQWpNU0V3SHdZRFZRUUREQmhyTTNNdApjMlZ5ZG1WeUxXTmhRREUzTURBd01EQXdNREF3SGhjTk1qUXdNVEF4TURBd01EQXdXaGNOTXpRd01UQXhNREF3TURBd1dqQWpNU0V3SHdZRFZRUUREQmhyTTNNdApjMlZ5ZG1WeUxXTmhRREUzTURBd01EQXdNREF3V1RBVEJnY3Foa2pPUFFJQkJnZ3Foa2pPUFFNQkJ3TkNBQVM=",
    "\"1:30\"",
    "\"a very long string with spaces that goes well past eighty columns, to check that nothing folds it\"",
    "'@at'",
    "\"%percent\"",
    "'{not: flow}'",
    "'[not, flow]'",
    "'*star'",
    "'&amp'",
    "'!bang'",
    "'|pipe'",
    "'>gt'",
    "'---'",
];

/// Multi-line strings, as literal blocks (the body lines, unindented).
const BLOCKS: &[(&str, &str)] = &[
    ("|", "line one\nline two"),
    ("|-", "no final break\nsecond"),
    ("|-", "with # hash\n- dash line\nkey: value"),
    ("|", "tab\there\nend"),
    ("|", "trailing space \nend"),
];

/// A block whose first line starts with spaces (a mapping value, so `|2` is exact).
const INDENTED_BLOCK: (&str, &str) = ("|2", "  indented first\nsecond");

pub struct Shape<'r> {
    rng: &'r mut Rng,
    out: String,
}

/// A plaintext YAML file of one to three documents.
pub fn plaintext(rng: &mut Rng) -> String {
    let documents = 1 + usize::from(rng.chance(25)) + usize::from(rng.chance(10));
    let mut shape = Shape {
        rng,
        out: String::new(),
    };
    for i in 0..documents {
        if i > 0 {
            shape.out.push_str("---\n");
        }
        if shape.rng.chance(30) {
            shape.out.push_str("# document head comment\n");
        }
        shape.mapping(0, 3);
        if shape.rng.chance(20) {
            shape.out.push_str("# trailing comment\n");
        }
    }
    shape.out
}

impl Shape<'_> {
    fn line(&mut self, indent: usize, text: &str) {
        self.out.push_str(&" ".repeat(indent));
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn mapping(&mut self, indent: usize, depth: usize) {
        let n = 1 + self.rng.below(6);
        let mut used = Vec::new();
        for _ in 0..n {
            let key = *self.rng.pick(KEYS);
            if used.contains(&key) {
                continue;
            }
            used.push(key);
            if self.rng.chance(15) {
                self.line(indent, "# a head comment");
            }
            self.entry(indent, key, depth);
        }
        if self.rng.chance(10) {
            self.line(indent, "# foot comment of a mapping");
        }
    }

    fn entry(&mut self, indent: usize, key: &str, depth: usize) {
        let roll = self.rng.below(100);
        if depth > 0 && roll < 20 {
            self.line(indent, &format!("{key}:"));
            self.mapping(indent + 2, depth - 1);
        } else if depth > 0 && roll < 35 {
            self.line(indent, &format!("{key}:"));
            self.sequence(indent + 2, depth - 1);
        } else if roll < 42 {
            let (indicator, body) = if self.rng.chance(20) {
                INDENTED_BLOCK
            } else {
                *self.rng.pick(BLOCKS)
            };
            self.line(indent, &format!("{key}: {indicator}"));
            for l in body.lines() {
                self.line(indent + 2, l);
            }
        } else if roll < 45 {
            let empty = if self.rng.chance(50) { "{}" } else { "[]" };
            self.line(indent, &format!("{key}: {empty}"));
        } else {
            let value = *self.rng.pick(SCALARS);
            let comment = if self.rng.chance(5) {
                " # line comment"
            } else {
                ""
            };
            self.line(indent, &format!("{key}: {value}{comment}"));
        }
    }

    fn sequence(&mut self, indent: usize, depth: usize) {
        let n = 1 + self.rng.below(4);
        for i in 0..n {
            if self.rng.chance(20) {
                self.line(indent, &format!("# comment in a list, before item {i}"));
            }
            let roll = self.rng.below(100);
            if depth > 0 && roll < 20 {
                let key = *self.rng.pick(KEYS);
                let value = *self.rng.pick(SCALARS);
                self.line(indent, &format!("- {key}: {value}"));
                let other = *self.rng.pick(KEYS);
                if other != key {
                    let value = *self.rng.pick(SCALARS);
                    self.line(indent + 2, &format!("{other}: {value}"));
                }
            } else if depth > 0 && roll < 28 {
                let value = *self.rng.pick(SCALARS);
                self.line(indent, &format!("- - {value}"));
            } else if roll < 33 {
                let (indicator, body) = *self.rng.pick(BLOCKS);
                self.line(indent, &format!("- {indicator}"));
                for l in body.lines() {
                    self.line(indent + 2, l);
                }
            } else {
                let value = *self.rng.pick(SCALARS);
                self.line(indent, &format!("- {value}"));
            }
        }
        if self.rng.chance(15) {
            self.line(indent, "# comment at the end of a list");
        }
    }
}
