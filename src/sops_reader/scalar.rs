//! Scalars the way sops sees them: typed by go-yaml v3's resolver when read, and written
//! back by go-yaml v3's emitter (block context, indent 4, no line wrapping) when
//! `sops decrypt` prints the plaintext. Only what sops-written files contain is handled;
//! anything else is reported as unsupported so the caller can use the sops binary.
//!
//! Over 500 lines because Go's YAML typing rules, as sops applies them, are one table best
//! read whole next to its tests (~55 lines).

use zeroize::Zeroizing;

use super::secret_buf::SecretBuf;
use super::timestamp::Timestamp;

/// A leaf value as sops holds it in its tree.
#[derive(Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Time(Timestamp),
    Str(Zeroizing<String>),
}

impl Value {
    /// The bytes sops feeds into the MAC for this value (`sops.ToBytes`), `None` for null.
    pub fn mac_bytes(&self) -> Option<Zeroizing<Vec<u8>>> {
        let text = match self {
            Value::Null => return None,
            Value::Bool(true) => "True".to_string(),
            Value::Bool(false) => "False".to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => go_format_f(*f),
            Value::Time(t) => t.rfc3339_nano(),
            Value::Str(s) => return Some(Zeroizing::new(s.as_bytes().to_vec())),
        };
        Some(Zeroizing::new(text.into_bytes()))
    }
}

/// Why a scalar cannot be handled in-process.
pub type Unsupported = String;

/// Types a plain (unquoted) scalar as go-yaml v3 does when decoding into `interface{}`.
/// Quoted and block scalars are always strings.
pub fn resolve_plain(text: &str) -> Result<Value, Unsupported> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".nan" | ".NaN" | ".NAN" => return Ok(Value::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Value::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Value::Float(f64::NEG_INFINITY)),
        "<<" => return Err("a YAML merge key (<<)".into()),
        _ => {}
    }
    let Some(&first) = text.as_bytes().first() else {
        return Ok(Value::Null);
    };
    if first == b'.' {
        if is_yaml_float(text) {
            return Ok(Value::Float(text.parse().map_err(|_| float_error())?));
        }
        return Ok(Value::Str(Zeroizing::new(text.to_string())));
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Ok(Value::Str(Zeroizing::new(text.to_string())));
    }
    if let Some(t) = Timestamp::parse_yaml(text) {
        return Ok(Value::Time(t));
    }
    let plain = text.replace('_', "");
    match go_parse_int(&plain) {
        IntParse::Int(i) => return Ok(Value::Int(i)),
        IntParse::TooBig => return Err("an integer beyond 64 bits".into()),
        IntParse::Not => {}
    }
    if is_yaml_float(&plain) {
        return Ok(Value::Float(plain.parse().map_err(|_| float_error())?));
    }
    Ok(Value::Str(Zeroizing::new(text.to_string())))
}

fn float_error() -> Unsupported {
    "a float go-yaml reads differently".into()
}

/// Whether go-yaml would read this text, written plain, as something other than a string.
fn resolves_to_non_string(text: &str) -> bool {
    !matches!(resolve_plain(text), Ok(Value::Str(_)))
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, go-yaml's float syntax.
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let digits = |from: usize| {
        let tail = b.get(from..).unwrap_or_default();
        tail.iter().take_while(|c| c.is_ascii_digit()).count()
    };
    let mut i;
    if b.first() == Some(&b'.') {
        let n = digits(1);
        if n == 0 {
            return false;
        }
        i = 1 + n;
    } else {
        let n = digits(0);
        if n == 0 {
            return false;
        }
        i = n;
        if b.get(i) == Some(&b'.') {
            i += 1 + digits(i + 1);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

enum IntParse {
    Int(i64),
    TooBig,
    Not,
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseUint`, plus go-yaml's `0b`/`0o` forms.
fn go_parse_int(s: &str) -> IntParse {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return IntParse::Not;
    }
    let Ok(magnitude) = u128::from_str_radix(digits, radix) else {
        return IntParse::TooBig;
    };
    let value = if negative {
        -(magnitude as i128)
    } else {
        magnitude as i128
    };
    match i64::try_from(value) {
        Ok(i) => IntParse::Int(i),
        Err(_) if !negative && magnitude <= u64::MAX as u128 => IntParse::TooBig,
        Err(_) => IntParse::Not,
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub fn go_format_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f}")
    }
}

/// go-yaml's float output: `strconv.FormatFloat(f, 'g', -1, 64)` with YAML's inf/nan.
fn go_format_g(f: f64) -> Zeroizing<String> {
    Zeroizing::new(format_g(f))
}

fn format_g(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let sci = Zeroizing::new(format!("{:e}", f.abs()));
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Zeroizing<String> =
        Zeroizing::new(mantissa.chars().filter(char::is_ascii_digit).collect());
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    // Shortest formatting switches to %e below 1e-4 and from 1e6 (Go's eprec = 6).
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let dot = if tail.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{dot}{tail}e{esign}{:02}", exp.abs());
    }
    format!("{sign}{}", f.abs())
}

/// Writes a decrypted value the way `sops decrypt` prints it as a block mapping value or
/// sequence item; `indent` is where a literal block's lines start. Returns whether the
/// written text ends a line (a literal block keeping its final line break).
pub fn emit(out: &mut SecretBuf, value: &Value, indent: usize) -> Result<bool, Unsupported> {
    match value {
        Value::Null => out.push(b"null"),
        Value::Bool(b) => out.push(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.push(Zeroizing::new(i.to_string()).as_bytes()),
        Value::Float(f) => out.push(go_format_g(*f).as_bytes()),
        Value::Time(t) => out.push(Zeroizing::new(t.rfc3339_nano()).as_bytes()),
        Value::Str(s) => return emit_string(out, s, indent),
    }
    Ok(false)
}

#[derive(PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn emit_string(out: &mut SecretBuf, s: &str, indent: usize) -> Result<bool, Unsupported> {
    if s.contains(['\u{2028}', '\u{2029}']) {
        return Err("a string with Unicode line separators".into());
    }
    match choose_style(s) {
        Style::Plain => out.push(s.as_bytes()),
        Style::Single => {
            out.push(b"'");
            for part in s.split_inclusive('\'') {
                out.push(part.as_bytes());
                if part.ends_with('\'') {
                    out.push(b"'");
                }
            }
            out.push(b"'");
        }
        Style::Double => write_double_quoted(out, s),
        Style::Literal => return write_literal(out, s, indent),
    }
    Ok(false)
}

/// go-yaml's `stringv` preference, then the emitter's fallbacks (`select_scalar_style`).
fn choose_style(s: &str) -> Style {
    let scan = Analysis::of(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if !resolves_to_non_string(s) && !is_base60_float(s) && !is_old_bool(s) {
        Style::Plain
    } else {
        Style::Double
    };
    if style == Style::Plain && !scan.block_plain_allowed {
        style = Style::Single;
    }
    if style == Style::Single && !scan.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && !scan.block_allowed {
        style = Style::Double;
    }
    style
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`, YAML 1.1 sexagesimal floats.
fn is_base60_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = b.split_once('.').unwrap_or((b, ""));
    if !frac.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    let mut parts = main.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let rest: Vec<&str> = parts.collect();
    head_ok
        && !rest.is_empty()
        && rest.iter().all(|p| match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        })
}

/// The flags of go-yaml's `yaml_emitter_analyze_scalar` that matter in block context.
struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(s: &str) -> Analysis {
        if s.is_empty() {
            return Analysis {
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let chars: Vec<char> = s.chars().collect();
        let mut block_indicators = s.starts_with("---") || s.starts_with("...");
        let (mut line_breaks, mut special, mut tabs) = (false, false, false);
        let (mut leading_space, mut leading_break) = (false, false);
        let (mut trailing_space, mut trailing_break) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_whitespace = chars.get(i + 1).is_none_or(|n| is_blank(*n));
            let last = i + 1 == chars.len();
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\''
                    | '"' | '%' | '@' | '`' => block_indicators = true,
                    '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            if c == '\t' {
                tabs = true;
            } else if !is_printable(c) {
                special = true;
            }
            if c == ' ' {
                leading_space |= i == 0;
                trailing_space |= last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                line_breaks = true;
                leading_break |= i == 0;
                trailing_break |= last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = is_blank(c) || is_break(c);
        }
        let mut a = Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
        };
        if leading_space || leading_break || trailing_space || trailing_break || line_breaks {
            a.block_plain_allowed = false;
        }
        if trailing_space {
            a.block_allowed = false;
        }
        if break_space || space_break || tabs || special {
            a.block_plain_allowed = false;
            a.single_quoted_allowed = false;
        }
        if space_break || special {
            a.block_allowed = false;
        }
        if block_indicators {
            a.block_plain_allowed = false;
        }
        a
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `is_printable` (on the character rather than its UTF-8 bytes).
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        && c != '\u{FEFF}'
}

fn write_double_quoted(out: &mut SecretBuf, s: &str) {
    out.push(b"\"");
    let mut utf8 = [0u8; 4];
    for c in s.chars() {
        if is_printable(c) && !is_break(c) && c != '"' && c != '\\' {
            out.push(c.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        let short = match c {
            '\0' => Some('0'),
            '\u{07}' => Some('a'),
            '\u{08}' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\u{0B}' => Some('v'),
            '\u{0C}' => Some('f'),
            '\r' => Some('r'),
            '\u{1B}' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{A0}' => Some('_'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        out.push(b"\\");
        match short {
            Some(e) => out.push(&[e as u8]),
            None => write_hex_escape(out, c as u32),
        }
    }
    out.push(b"\"");
}

/// `xHH`, `uHHHH` or `UHHHHHHHH`, written without a heap copy of the character.
fn write_hex_escape(out: &mut SecretBuf, code: u32) {
    let (letter, width) = match code {
        0..=0xFF => (b'x', 2),
        0x100..=0xFFFF => (b'u', 4),
        _ => (b'U', 8),
    };
    let mut buf = Zeroizing::new([0u8; 9]);
    let (head, digits) = buf.split_at_mut(1);
    head.fill(letter);
    for (i, slot) in digits.iter_mut().take(width).enumerate() {
        let digit = ((code >> (4 * (width - 1 - i))) & 0xF) as u8;
        *slot = if digit < 10 {
            b'0' + digit
        } else {
            b'A' + digit - 10
        };
    }
    out.push(buf.get(..=width).unwrap_or_default());
}

/// `|` with go-yaml's indentation and chomping indicators, each line at `indent`.
fn write_literal(out: &mut SecretBuf, s: &str, indent: usize) -> Result<bool, Unsupported> {
    let keeps_trailing_breaks = s == "\n" || s.ends_with("\n\n");
    if keeps_trailing_breaks {
        // `|+` makes go-yaml track an open-ended document; not worth mirroring.
        return Err("a string ending in several line breaks".into());
    }
    out.push(b"|");
    if s.starts_with([' ', '\n']) {
        out.push(b"4");
    }
    let ends_with_break = s.ends_with('\n');
    if !ends_with_break {
        out.push(b"-");
    }
    out.push(b"\n");
    let pad = vec![b' '; indent];
    let mut at_line_start = true;
    let mut utf8 = [0u8; 4];
    for c in s.chars() {
        if c == '\n' {
            out.push(b"\n");
            at_line_start = true;
            continue;
        }
        if at_line_start {
            out.push(&pad);
            at_line_start = false;
        }
        out.push(c.encode_utf8(&mut utf8).as_bytes());
    }
    Ok(ends_with_break)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(v: Value) -> String {
        let mut out = SecretBuf::with_capacity(64);
        emit(&mut out, &v, 4).unwrap();
        String::from_utf8(out.into_inner().to_vec()).unwrap()
    }

    fn s(text: &str) -> Value {
        Value::Str(Zeroizing::new(text.into()))
    }

    #[test]
    fn strings_are_quoted_as_go_yaml_does() {
        assert_eq!(shown(s("plain")), "plain");
        assert_eq!(shown(s("yes")), "\"yes\"");
        assert_eq!(shown(s("123")), "\"123\"");
        assert_eq!(shown(s("")), "\"\"");
        assert_eq!(shown(s("a: b")), "'a: b'");
        assert_eq!(shown(s("- x")), "'- x'");
        assert_eq!(shown(s(" lead")), "' lead'");
        assert_eq!(shown(s("it's: x")), "'it''s: x'");
        assert_eq!(shown(s("tab\there")), "\"tab\\there\"");
        assert_eq!(shown(s("caf\u{e9} \u{1}")), "\"caf\u{e9} \\x01\"");
        assert_eq!(shown(s("1:30")), "\"1:30\"");
        assert_eq!(shown(s("a\nb")), "|-\n    a\n    b");
        assert_eq!(shown(s(" a\nb\n")), "|4\n     a\n    b\n");
    }

    #[test]
    fn numbers_are_written_as_go_formats_them() {
        assert_eq!(shown(Value::Float(1.0)), "1");
        assert_eq!(shown(Value::Float(1e6)), "1e+06");
        assert_eq!(shown(Value::Float(123456.5)), "123456.5");
        assert_eq!(shown(Value::Float(0.00001)), "1e-05");
        assert_eq!(shown(Value::Float(-0.0)), "-0");
        assert_eq!(shown(Value::Float(f64::NEG_INFINITY)), "-.inf");
        assert_eq!(go_format_f(1e21), "1000000000000000000000");
        assert_eq!(shown(Value::Int(-7)), "-7");
    }

    #[test]
    fn plain_scalars_are_typed_as_go_yaml_does() {
        assert!(matches!(resolve_plain("0777"), Ok(Value::Int(511))));
        assert!(matches!(resolve_plain("0x1F"), Ok(Value::Int(31))));
        assert!(matches!(resolve_plain("1_000"), Ok(Value::Int(1000))));
        assert!(matches!(resolve_plain("08"), Ok(Value::Float(f)) if f == 8.0));
        assert!(matches!(resolve_plain("1e+06"), Ok(Value::Float(f)) if f == 1e6));
        assert!(matches!(resolve_plain("yes"), Ok(Value::Str(_))));
        assert!(matches!(resolve_plain("~"), Ok(Value::Null)));
        assert!(matches!(resolve_plain("2001-12-14"), Ok(Value::Time(_))));
        assert!(resolve_plain("18446744073709551615").is_err());
    }
}
