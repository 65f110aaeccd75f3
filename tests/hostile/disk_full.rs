//! A full disk (issue 10), for real: a 64 KiB tmpfs filled to the last byte, mounted in
//! the test thread's own mount namespace where kube-dc writes. Whatever kube-dc was
//! writing fails with a message that names the file and says the disk is full, and
//! leaves no partial or temp file behind. (adopt and rotate, which need a cluster, are
//! tested on a full disk in tests/lifecycle.rs.)

use crate::harness::{Scene, run_table};
use crate::session::use_alpha;
use crate::support::full_disk::private_mount_namespace;

const SESSIONS: &str = "home/.kube-dc/break-glass";
const JOURNAL: &str = "home/.kube-dc/journal";

#[test]
fn a_full_disk_is_said_and_leaves_nothing_half_written() {
    private_mount_namespace();
    run_table(vec![
        use_alpha("use: the session directory's disk is full")
            .setup(|s: &mut Scene| s.full_filesystem(SESSIONS))
            .exit(1)
            .says(".kube-dc/break-glass/kubeconfig-")
            .says("the disk is full"),
        use_alpha("use: the journal's disk is full: the session goes on, and says so")
            .setup(|s: &mut Scene| s.full_filesystem(JOURNAL))
            .exit(0)
            .says("journal:  FAILED")
            .says("the disk is full")
            .may_change(format!("{SESSIONS}/"))
            // A line cut by the full disk may stay: the reader skips it (no secret in it).
            .may_change(format!("{JOURNAL}/")),
    ]);
}
