//! Every request kube-dc sends carries `User-Agent: kube-dc/<version> (<commit>)`. The
//! apiserver's audit log records it (`userAgent`) next to the user, so kube-dc's own calls
//! with the break-glass token — adopt's and rotate's verification, the session record of
//! `use`, self-rotation, `status --live` — can be told from a person's (kubectl in a `use`
//! session sends `kubectl/v1.x ...`).

use http::header::{HeaderName, HeaderValue, USER_AGENT};

pub fn header() -> (HeaderName, HeaderValue) {
    let value =
        HeaderValue::from_str(&value()).unwrap_or_else(|_| HeaderValue::from_static("kube-dc"));
    (USER_AGENT, value)
}

fn value() -> String {
    format!("kube-dc/{}", crate::version::VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_tool_and_its_version() {
        let (name, value) = header();
        assert_eq!(name, USER_AGENT);
        let value = value.to_str().unwrap();
        assert!(
            value.starts_with(concat!("kube-dc/", env!("CARGO_PKG_VERSION"), " (")),
            "{value}"
        );
    }
}
