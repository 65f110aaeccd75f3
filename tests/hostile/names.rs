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

/// Copies alpha's break-glass file (and nothing else) into each of `names`: a cluster as
/// the Go tool's `adopt` leaves it, without cluster-config.env.
fn go_layout(names: &'static [&'static str]) -> impl Fn(&mut Scene) {
    move |s: &mut Scene| {
        let file =
            std::fs::read(s.path("fleet/clusters/alpha/break-glass-kubeconfig.enc.yaml")).unwrap();
        for name in names {
            s.write(
                &format!("fleet/clusters/{name}/break-glass-kubeconfig.enc.yaml"),
                &file,
            );
        }
    }
}

const GO_NAMES: &[&str] = &["Prod", "my_cluster", "region/dc/c1"];
const STATUS_ALL: [&str; 5] = [
    "bootstrap",
    "break-glass",
    "status",
    "--all",
    "--no-decrypt",
];

#[test]
fn names_and_layouts_of_go_tool_fleets_are_accepted() {
    let mut cases = vec![
        Case::new("status --all lists every cluster, also those without cluster-config.env")
            .setup(go_layout(GO_NAMES))
            .args(STATUS_ALL)
            .exit(0)
            .says("Prod")
            .says("my_cluster")
            .says("region/dc/c1")
            .says("eu/dc1"),
        Case::new("a directory holding a cluster's file under an unusable name stops --all")
            .setup(go_layout(&["my cluster"]))
            .args(STATUS_ALL)
            .exit(2)
            .says("clusters/my cluster holds a cluster's files"),
        status_of("a/b/c/d/e").exit(2).says("more than 4 levels"),
        status_of("my cluster").exit(2).says("' ' is not allowed"),
        status_of("eu/-x").exit(2).says("starts with `-`"),
    ];
    for name in GO_NAMES {
        cases.push(
            status_of(name)
                .setup(go_layout(GO_NAMES))
                .exit(0)
                .says(format!("clusters/{name}/break-glass-kubeconfig.enc.yaml")),
        );
    }
    run_table(cases);
}
