//! Everything bounded in time: unreachable apiservers (a closed loopback port, a listener
//! that accepts and never answers, a plain-HTTP listener) make adopt, rotate and
//! status --live fail within a bound, with nothing changed. (Exec credential plugins that
//! hang are the plugin cases' business.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crate::harness::{Case, Scene, run_table};
use crate::inputs::{admin_kubeconfig, admin_kubeconfig_text, bg, break_glass_file, outcome};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener that accepts every connection and never says a word.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// A listener that answers every connection in plain HTTP.
fn plain_http_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read(&mut [0; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    port
}

/// `args` with an admin context whose apiserver is `https://127.0.0.1:<port>`.
fn against(name: &str, port: u16, args: &[&str]) -> Case {
    Case::new(name)
        .setup(move |s: &mut Scene| admin_kubeconfig(s, &format!("https://127.0.0.1:{port}")))
        .args(bg(args))
}

/// beta with a break-glass file (canary token) whose server is `https://127.0.0.1:<port>`.
fn self_rotation_against(name: &str, port: u16) -> Case {
    Case::new(name)
        .setup(move |s: &mut Scene| {
            s.write(
                "fleet/clusters/beta/cluster-config.env",
                "CLUSTER_NAME=beta\n",
            );
            break_glass_file(s, "beta", &format!("https://127.0.0.1:{port}"));
        })
        .args(bg(&[
            "rotate",
            "beta",
            "--via",
            "break-glass",
            "--no-commit",
        ]))
}

#[test]
fn unreachable_apiservers_fail_within_a_bound() {
    let closed = closed_port();
    let silent = silent_listener();
    let plain = plain_http_listener();
    let quick = Duration::from_secs(15);
    // Connect 5 s, then at most one 20 s call.
    let slow = Duration::from_secs(35);
    run_table(vec![
        against(
            "adopt, closed port",
            closed,
            &["adopt", "alpha", "--no-commit"],
        )
        .exit(1)
        .within(quick)
        .says(format!("127.0.0.1:{closed}")),
        against(
            "adopt, silent listener",
            silent,
            &["adopt", "alpha", "--no-commit"],
        )
        .exit(1)
        .within(slow),
        against(
            "adopt, plain-HTTP listener",
            plain,
            &["adopt", "alpha", "--no-commit"],
        )
        .exit(1)
        .within(quick),
        against(
            "rotate, closed port",
            closed,
            &["rotate", "alpha", "--no-commit"],
        )
        .exit(1)
        .within(quick),
        against(
            "rotate, silent listener",
            silent,
            &["rotate", "alpha", "--no-commit"],
        )
        .exit(1)
        .within(slow),
        against(
            "rotate, plain-HTTP listener",
            plain,
            &["rotate", "alpha", "--no-commit"],
        )
        .exit(1)
        .within(quick),
        against(
            "status --live, closed port",
            closed,
            &["status", "alpha", "--live", "--check"],
        )
        .exit(1)
        .within(quick)
        .says("unreachable"),
        against(
            "status --live, silent listener",
            silent,
            &["status", "alpha", "--live", "--check"],
        )
        .exit(1)
        .within(slow),
        self_rotation_against("self-rotation, closed port", closed)
            .exit(1)
            .within(quick),
        self_rotation_against("self-rotation, plain-HTTP listener", plain)
            .exit(1)
            .within(quick),
    ]);
}

/// beta gets a copy of alpha's break-glass file, so that `--all` is a batch of two.
fn two_adopted(s: &mut Scene) {
    let alpha = std::fs::read(s.path("fleet/clusters/alpha/break-glass-kubeconfig.enc.yaml"));
    s.write(
        "fleet/clusters/beta/break-glass-kubeconfig.enc.yaml",
        alpha.unwrap(),
    );
    s.commit_all();
}

/// A batch in which no cluster was rotated writes nothing and does not talk about a
/// commit that does not exist.
#[test]
fn a_batch_that_rotated_nothing_says_so() {
    let closed = closed_port();
    run_table(vec![
        against("rotate --all, closed port", closed, &["rotate", "--all"])
            .setup(two_adopted)
            .exit(1)
            .within(Duration::from_secs(15))
            .says("0 rotated, 2 failed")
            .says("no admin context for beta")
            .may_change("fleet/.git/"),
    ]);
    let env = crate::support::TestEnv::new().with_git();
    let alpha = env.break_glass_file("alpha");
    std::fs::copy(&alpha, env.break_glass_file("beta")).unwrap();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "beta"]);
    let kubeconfig = env.dir.path().join("admin.kubeconfig");
    let server = format!("https://127.0.0.1:{closed}");
    std::fs::write(&kubeconfig, admin_kubeconfig_text(&server)).unwrap();
    let (code, all) = outcome(
        env.kube_dc()
            .env("KUBECONFIG", &kubeconfig)
            .args(["bootstrap", "break-glass", "rotate", "--all"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("0 rotated, 2 failed"), "{all}");
    assert!(!all.contains("exists locally"), "{all}");
    assert!(!all.contains("not pushed"), "{all}");
}
