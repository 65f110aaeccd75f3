//! The release and the Git commit kube-dc was built from (see build.rs), for
//! `--version`, man pages and the User-Agent of every request.

pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KUBE_DC_BUILD_COMMIT"),
    ")"
);
