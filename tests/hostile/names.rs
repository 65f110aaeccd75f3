//! Cluster names that try to leave clusters/ or are not names at all: refused with exit 2
//! before anything is read or written.

use std::time::Duration;

use crate::harness::{Case, Scene, run_table};

fn status_of(name: &str) -> Case {
    Case::new(format!("status {name:?}"))
        .args(["bootstrap", "break-glass", "status", name])
        .within(Duration::from_secs(10))
}

#[test]
fn names_that_escape_or_are_malformed_are_refused() {
    let long = "a".repeat(5000);
    run_table(vec![
        status_of("../alpha").exit(2).says("../alpha"),
        status_of("../../etc").exit(2).says("../../etc"),
        status_of("/etc/passwd").exit(2).says("/etc/passwd"),
        status_of("eu//dc1").exit(2).says("eu//dc1"),
        status_of("").exit(2).says("cluster"),
        status_of("alpha\n").exit(2).says("alpha"),
        status_of("al\u{1b}[31mpha").exit(2).says("cluster"),
        status_of(&long).exit(2).says("cluster"),
        status_of("alpah").exit(2).says("did you mean alpha?"),
        Case::new("adopt of an escaping name writes nothing")
            .args([
                "bootstrap",
                "break-glass",
                "adopt",
                "../../outside",
                "--dry-run",
            ])
            .exit(2)
            .says("../../outside"),
        Case::new("use of an escaping name through a planted directory")
            .setup(|s: &mut Scene| {
                s.write("escape/break-glass-kubeconfig.enc.yaml", "x: 1\n");
            })
            .args([
                "bootstrap",
                "break-glass",
                "use",
                "../../escape",
                "--reason",
                "test",
                "--",
                "true",
            ])
            .exit(2)
            .says("../../escape"),
    ]);
}
