//! Commands printed for the user to paste (fix hints, recovery commands): every value
//! from outside (a path, a cluster name, a remote) goes through [`quote`], so that a
//! name with a space or a `'` can neither break the command nor add one.

/// `s` as one POSIX shell word: as it is when it holds only characters no shell treats
/// specially, else in single quotes, each `'` written `'\''`.
pub fn quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:=@+,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("/srv/fleet"), "/srv/fleet");
        assert_eq!(quote("my fleet"), "'my fleet'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
    }

    proptest::proptest! {
        /// What sh reads back is the value itself.
        #[test]
        fn sh_reads_back_the_value(value in "[^\\x00]{0,30}") {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", quote(&value))])
                .output()
                .unwrap();
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }
}
