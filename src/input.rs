//! The one place where values from outside — flags, environment variables, config files,
//! decrypted files, kube contexts — become typed values. Each check runs before anything
//! is changed; each error says what is wrong so that the caller can name the value's
//! source (clap names the flag, config readers the file and line).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Longest server URL accepted: far beyond any real one, short enough to print.
const MAX_URL_LEN: usize = 2048;

/// An apiserver URL a break-glass token may be sent to: `https://`, with a host, no user
/// info, query or fragment; without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    text: String,
    host: String,
}

impl ServerUrl {
    /// Checks `text`; the error says why it is refused, without repeating `text`.
    pub fn parse(text: &str) -> Result<ServerUrl, String> {
        if text.is_empty() {
            return Err("it is empty".into());
        }
        if text.len() > MAX_URL_LEN {
            return Err(format!("it is longer than {MAX_URL_LEN} characters"));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("it contains blanks or control characters".into());
        }
        if !text.contains("://") {
            return Err("it has no scheme: write it as https://<host>[:<port>]".into());
        }
        let uri = http::Uri::from_str(text).map_err(|e| format!("it is not a URL ({e})"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") => {
                return Err(
                    "it is plain http: the break-glass token would travel in clear; use https://"
                        .into(),
                );
            }
            _ => return Err("only https:// URLs are accepted".into()),
        }
        let authority = uri.authority().ok_or("it has no host")?;
        if authority.as_str().contains('@') {
            return Err("it carries user info (`user@`): credentials never go in the URL".into());
        }
        let host = authority.host();
        if host.is_empty() {
            return Err("it has no host".into());
        }
        check_port(authority.as_str().strip_prefix(host).unwrap_or_default())?;
        if uri.query().is_some() || text.contains('#') {
            return Err("it has a query or fragment; an apiserver URL has neither".into());
        }
        Ok(ServerUrl {
            text: text.trim_end_matches('/').to_string(),
            host: host.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A loopback host: such a kubeconfig only works on the machine it was made on.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What follows the host in the authority: nothing, or `:` and a port number.
fn check_port(rest: &str) -> Result<(), String> {
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Ok(()),
        Some(port) if port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        _ => Err("its port is not a number from 1 to 65535".into()),
    }
}

/// `--server` for clap: the value and the flag are named by clap's own error.
pub fn server_flag(text: &str) -> Result<ServerUrl, String> {
    ServerUrl::parse(text)
}

/// A Kubernetes namespace name (RFC 1123 label): it goes into API paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    pub fn parse(text: &str) -> Result<Namespace, String> {
        let rule = "a namespace is 1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit";
        let edge_ok =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let body_ok = text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if text.len() > 63
            || !body_ok
            || !edge_ok(text.chars().next())
            || !edge_ok(text.chars().last())
        {
            return Err(rule.into());
        }
        Ok(Namespace(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Bounds of a duration flag, so that no deadline computed from it can overflow.
struct Bounds {
    min: Duration,
    max: Duration,
    why: &'static str,
}

fn bounded(text: &str, bounds: &Bounds) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if value < bounds.min || value > bounds.max {
        return Err(format!(
            "must be between {} and {} ({})",
            humantime::format_duration(bounds.min),
            humantime::format_duration(bounds.max),
            bounds.why
        ));
    }
    Ok(value)
}

/// `--timeout`: how long to wait for the token controller.
pub fn token_timeout(text: &str) -> Result<Duration, String> {
    bounded(
        text,
        &Bounds {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            why: "the token controller fills a Secret within seconds",
        },
    )
}

/// `--wait-lock`: how long to wait for another run's rotation lock.
pub fn lock_wait(text: &str) -> Result<Duration, String> {
    bounded(
        text,
        &Bounds {
            min: Duration::from_secs(1),
            max: Duration::from_secs(24 * 3600),
            why: "a rotation holds the lock for seconds; a dead holder's lock expires in 30s",
        },
    )
}

/// `--max-age`: how old a token may be.
pub fn max_age(text: &str) -> Result<Duration, String> {
    bounded(
        text,
        &Bounds {
            min: Duration::from_secs(1),
            max: Duration::from_secs(100 * 365 * 24 * 3600),
            why: "an age limit of more than 100 years means none",
        },
    )
}

/// Text from a hostile source, made safe and short enough to quote in a message.
pub fn quoted(text: &str) -> String {
    format!("{:?}", truncated(text, 120))
}

/// The first line of a message from a parser of outside text, at most 200 characters.
pub fn bounded_line(text: &str) -> String {
    truncated(text.lines().next().unwrap_or_default(), 200)
}

fn truncated(text: &str, limit: usize) -> String {
    let mut shown: String = text.chars().take(limit).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_urls() {
        for ok in [
            "https://kube.example:6443",
            "https://10.0.0.1",
            "https://[2001:db8::1]:6443/",
            "https://rancher.example/k8s/clusters/c-abc12",
        ] {
            let url = ServerUrl::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!url.as_str().ends_with('/'), "{url}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("kube:6443", "no scheme"),
            ("garbage", "no scheme"),
            ("http://kube.example:6443", "plain http"),
            ("ftp://kube.example", "only https"),
            ("https://", "not a URL"),
            ("https://user:pw@kube.example", "user info"),
            ("https://kube.example/?a=b", "query"),
            ("https://kube.example/#x", "fragment"),
            ("https://kube example", "blanks"),
            ("https://kube.example\n", "control"),
            ("https://kube.example:port", "port"),
            ("https://kube.example:0", "port"),
            ("https://kube.example:65536", "port"),
            ("https://[::1]:x", "port"),
        ] {
            let err = ServerUrl::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(ServerUrl::parse(&format!("https://{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn loopback_detection() {
        for url in [
            "https://127.0.0.1:6443",
            "https://localhost:6443",
            "https://[::1]:6443",
            "https://127.5.5.5",
        ] {
            assert!(ServerUrl::parse(url).unwrap().is_loopback(), "{url}");
        }
        for url in [
            "https://kube-api.example:6443",
            "https://10.0.0.1:6443",
            "https://[2001:db8::1]:6443",
        ] {
            assert!(!ServerUrl::parse(url).unwrap().is_loopback(), "{url}");
        }
    }

    #[test]
    fn namespaces() {
        for ok in ["kube-system", "a", "break-glass-2", &"a".repeat(63)] {
            assert!(Namespace::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Kube",
            "a_b",
            "a.b",
            "../x",
            "a/b",
            "kube\u{0}",
            &"a".repeat(64),
        ] {
            assert!(Namespace::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(token_timeout("30s"), Ok(Duration::from_secs(30)));
        assert!(token_timeout("0s").unwrap_err().contains("between"));
        assert!(token_timeout("584542046090y").is_err());
        assert!(
            token_timeout("2h")
                .unwrap_err()
                .contains("between 1s and 1h")
        );
        assert!(token_timeout("soon").is_err());
        assert_eq!(max_age("90d"), Ok(Duration::from_secs(90 * 86400)));
        assert!(max_age("101y").is_err());
        assert!(max_age("0s").is_err());
    }

    #[test]
    fn quoting_bounds_and_escapes() {
        assert_eq!(quoted("a\u{1b}b"), "\"a\\u{1b}b\"");
        assert!(quoted(&"x".repeat(10_000)).len() < 200);
    }

    proptest! {
        #[test]
        fn url_parsing_never_panics_and_round_trips(text in "\\PC{0,80}|https://[a-z0-9.:\\[\\]/-]{0,40}") {
            if let Ok(url) = ServerUrl::parse(&text) {
                prop_assert!(url.as_str().starts_with("https://"));
                prop_assert_eq!(ServerUrl::parse(url.as_str()), Ok(url.clone()));
            }
        }

        #[test]
        fn valid_hosts_are_accepted(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,5}){0,2}", port in 1u16..) {
            let text = format!("https://{host}:{port}");
            let url = ServerUrl::parse(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(url.as_str(), text.as_str());
        }

        #[test]
        fn duration_parsing_never_panics(text in "[0-9]{0,25}(ns|us|ms|s|m|h|d|w|M|y)?( [0-9]{1,20}[a-z]{1,3}){0,3}") {
            for parse in [token_timeout, max_age] {
                if let Ok(d) = parse(&text) {
                    prop_assert!(d >= Duration::from_secs(1));
                    let again = parse(&humantime::format_duration(d).to_string());
                    prop_assert_eq!(again, Ok(d));
                }
            }
        }

        #[test]
        fn namespaces_accepted_are_labels(text in "\\PC{0,70}") {
            if let Ok(ns) = Namespace::parse(&text) {
                prop_assert!(ns.as_str().len() <= 63);
                prop_assert!(ns.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
