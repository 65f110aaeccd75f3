//! `--repo=~/fleet` reaches us with the `~` unexpanded: a shell expands it only at the
//! start of a word (and after `=` only in assignments), and the Go kube-dc tool expands it
//! itself. So do we, for `--repo` and `$KUBE_DC_FLEET`: `~` and `~/...` only; `~user`
//! stays as written.

use std::path::{Path, PathBuf};

pub fn expand(path: &Path, home: Option<&Path>) -> PathBuf {
    let (Some(home), Ok(rest)) = (home, path.strip_prefix("~")) else {
        return path.to_path_buf();
    };
    home.join(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = Some(Path::new("/home/op"));
        for (given, expected) in [
            ("~", "/home/op"),
            ("~/", "/home/op/"),
            ("~/fleet", "/home/op/fleet"),
            ("~/a/~/b", "/home/op/a/~/b"),
            ("~op/fleet", "~op/fleet"),
            ("fleet/~", "fleet/~"),
            ("/srv/fleet", "/srv/fleet"),
        ] {
            assert_eq!(
                expand(Path::new(given), home),
                Path::new(expected),
                "{given}"
            );
        }
        assert_eq!(expand(Path::new("~/x"), None), Path::new("~/x"));
    }
}
