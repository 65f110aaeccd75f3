//! Files the tool opens (issue 10): the break-glass file, `cluster-config.env`,
//! `.sops.yaml`, `.kube-dc.yaml` and cluster directories replaced by links (into and out
//! of the fleet, to /dev/zero), FIFOs, sockets, directories, oversized, empty and
//! unreadable files. Each is refused at once with a message naming the path and what it
//! is; nothing follows a link, blocks, or reads without end.
//!
//! kube-dc follows no symbolic link below the fleet root, not even one that stays inside
//! it (see src/safe_fs.rs): the "link inside the fleet" cases expect a refusal.

use std::time::Duration;

use crate::harness::{Case, Scene, run_table};

const BREAK_GLASS: &str = "fleet/clusters/alpha/break-glass-kubeconfig.enc.yaml";
const CLUSTER_CONFIG: &str = "fleet/clusters/alpha/cluster-config.env";
const SOPS_CONFIG: &str = "fleet/.sops.yaml";
const FLEET_SETTINGS: &str = "fleet/.kube-dc.yaml";
/// 1 MiB, the cap on each of the files above.
const CAP: usize = 1 << 20;
/// A refusal must come at once, not after a read or a sops timeout.
const FAST: Duration = Duration::from_secs(5);

/// What `rel` is replaced with, and what the refusal must say about it.
#[derive(Clone, Copy)]
enum Form {
    LinkInside,
    LinkOutside,
    LinkToDevZero,
    Fifo,
    Socket,
    Directory,
    Oversized,
}

const FORMS: [Form; 7] = [
    Form::LinkInside,
    Form::LinkOutside,
    Form::LinkToDevZero,
    Form::Fifo,
    Form::Socket,
    Form::Directory,
    Form::Oversized,
];

impl Form {
    fn label(self) -> &'static str {
        match self {
            Form::LinkInside => "a symlink to another fleet file",
            Form::LinkOutside => "a symlink to a copy outside the fleet",
            Form::LinkToDevZero => "a symlink to /dev/zero",
            Form::Fifo => "a FIFO",
            Form::Socket => "a socket",
            Form::Directory => "a directory",
            Form::Oversized => "1 MiB + 1 byte",
        }
    }

    fn says(self) -> &'static str {
        match self {
            Form::LinkInside | Form::LinkOutside | Form::LinkToDevZero => "is a symbolic link",
            Form::Fifo => "it is a FIFO (named pipe), not a regular file",
            Form::Socket => "it is a socket, not a regular file",
            Form::Directory => "it is a directory, not a regular file",
            Form::Oversized => "is never larger than 1048576 bytes",
        }
    }

    fn plant(self, s: &mut Scene, rel: &str) {
        match self {
            Form::LinkInside => s.symlink(rel, s.path("fleet/clusters/beta/cluster-config.env")),
            Form::LinkOutside => {
                let copy = format!("outside/{}", rel.rsplit('/').next().unwrap());
                if let Ok(bytes) = std::fs::read(s.path(rel)) {
                    s.write(&copy, bytes);
                } else {
                    s.write(&copy, "A=1\n");
                }
                s.symlink(rel, s.path(&copy));
            }
            Form::LinkToDevZero => s.symlink(rel, "/dev/zero"),
            Form::Fifo => s.fifo(rel),
            Form::Socket => {
                s.remove(rel);
                // The socket file stays after the listener is dropped.
                std::os::unix::net::UnixListener::bind(s.path(rel)).unwrap();
            }
            Form::Directory => {
                s.remove(rel);
                std::fs::create_dir(s.path(rel)).unwrap();
                s.write(&format!("{rel}/inside"), "x");
            }
            Form::Oversized => {
                s.write(rel, vec![b'#'; CAP + 1]);
            }
        }
    }
}

fn case(file: &str, rel: &'static str, form: Form) -> Case {
    Case::new(format!("{file} as {}", form.label()))
        .setup(move |s: &mut Scene| form.plant(s, rel))
        .within(FAST)
}

fn status_alpha() -> [&'static str; 4] {
    ["bootstrap", "break-glass", "status", "alpha"]
}

#[test]
fn break_glass_file_of_every_type_is_refused() {
    let mut cases = Vec::new();
    for form in FORMS {
        cases.push(
            case("break-glass file (status)", BREAK_GLASS, form)
                .args(status_alpha())
                .exit(1)
                .says(form.says())
                .says("break-glass-kubeconfig.enc.yaml"),
        );
        // `use` reads it before sops does: sops never opens a fleet path.
        cases.push(
            case("break-glass file (use)", BREAK_GLASS, form)
                .args(crate::support::USE_ALPHA)
                .exit(1)
                .says(form.says()),
        );
    }
    // One unreadable file is a row with a problem; the other clusters are still reported.
    cases.push(
        Case::new("break-glass file linked to /dev/zero (status --all --output json)")
            .setup(|s: &mut Scene| s.symlink(BREAK_GLASS, "/dev/zero"))
            .args([
                "bootstrap",
                "break-glass",
                "status",
                "--all",
                "--output",
                "json",
            ])
            .exit(0)
            .says("\"unreadable\"")
            .says("is a symbolic link (to \\\"/dev/zero\\\")")
            .says("\"cluster\": \"eu/dc1\"")
            .within(FAST),
    );
    cases.push(
        Case::new("break-glass file linked to /dev/zero (status --all --check)")
            .setup(|s: &mut Scene| s.symlink(BREAK_GLASS, "/dev/zero"))
            .args(["bootstrap", "break-glass", "status", "--all", "--check"])
            .exit(1)
            .says("unreadable")
            .says("eu/dc1")
            .within(FAST),
    );
    cases.push(
        Case::new("empty break-glass file")
            .setup(|s: &mut Scene| {
                s.write(BREAK_GLASS, "");
            })
            .args(status_alpha())
            .exit(1)
            .says("not SOPS-encrypted")
            .within(FAST),
    );
    cases.push(unreadable(BREAK_GLASS, 1));
    run_table(cases);
}

#[test]
fn cluster_config_of_every_type_is_refused() {
    let mut cases: Vec<Case> = FORMS
        .into_iter()
        .map(|form| {
            // adopt reads the file (KUBE_CONTEXT, KUBE_API_EXTERNAL_URL, ...).
            case("cluster-config.env", CLUSTER_CONFIG, form)
                .args(["bootstrap", "break-glass", "adopt", "alpha", "--dry-run"])
                .exit(2)
                .says(form.says())
                .says("cluster-config.env")
        })
        .collect();
    cases.push(
        Case::new("cluster-config.env as a FIFO (status)")
            .setup(|s: &mut Scene| s.fifo(CLUSTER_CONFIG))
            .args(status_alpha())
            .exit(2)
            .says("FIFO")
            .within(FAST),
    );
    cases.push(
        Case::new("empty cluster-config.env is a cluster with no settings")
            .setup(|s: &mut Scene| {
                s.write(CLUSTER_CONFIG, "");
            })
            .args(status_alpha())
            .exit(0)
            .says("alpha")
            .within(FAST),
    );
    cases.push(unreadable(CLUSTER_CONFIG, 2));
    run_table(cases);
}

#[test]
fn sops_config_of_every_type_is_refused() {
    let cases = FORMS
        .into_iter()
        .map(|form| {
            let case = case(".sops.yaml", SOPS_CONFIG, form)
                .args(status_alpha())
                .exit(2)
                .says(".sops.yaml");
            match form {
                // A fleet is a directory with a regular .sops.yaml: with anything else there
                // is no fleet to find, which the message says.
                Form::LinkToDevZero | Form::Fifo | Form::Socket | Form::Directory => {
                    case.says("no fleet repo found")
                }
                _ => case.says(form.says()),
            }
        })
        .collect();
    run_table(cases);
}

#[test]
fn fleet_settings_of_every_type_are_refused() {
    let cases = FORMS
        .into_iter()
        .map(|form| {
            // adopt reads .kube-dc.yaml (the commit message template) before it contacts
            // any cluster.
            case(".kube-dc.yaml", FLEET_SETTINGS, form)
                .args(["bootstrap", "break-glass", "adopt", "alpha"])
                .exit(2)
                .says(form.says())
                .says(".kube-dc.yaml")
        })
        .collect();
    run_table(cases);
}

#[test]
fn cluster_directories_through_links_are_refused() {
    let outside_alpha = |s: &mut Scene| {
        crate::support::copy_dir(&s.path("fleet/clusters/alpha"), &s.path("outside/alpha"));
        s.symlink("fleet/clusters/alpha", s.path("outside/alpha"));
    };
    let alias = |s: &mut Scene| s.symlink("fleet/clusters/gamma", "alpha");
    run_table(vec![
        Case::new("cluster directory linked outside the fleet (status)")
            .setup(outside_alpha)
            .args(status_alpha())
            .exit(2)
            .says("clusters/alpha: it is a symbolic link")
            .within(FAST),
        Case::new("cluster directory linked outside the fleet (use)")
            .setup(outside_alpha)
            .args(crate::support::USE_ALPHA)
            .exit(2)
            .says("is a symbolic link")
            .within(FAST),
        Case::new("cluster directory linked outside the fleet (status --all)")
            .setup(outside_alpha)
            .args(["bootstrap", "break-glass", "status", "--all"])
            .exit(2)
            .says("clusters/alpha: it is a symbolic link")
            .within(FAST),
        Case::new("cluster directory linked outside the fleet (adopt --dry-run)")
            .setup(outside_alpha)
            .args(["bootstrap", "break-glass", "adopt", "alpha", "--dry-run"])
            .exit(2)
            .says("is a symbolic link")
            .within(FAST),
        Case::new("cluster directory linked to another cluster (status)")
            .setup(alias)
            .args(["bootstrap", "break-glass", "status", "gamma"])
            .exit(2)
            .says("clusters/gamma: it is a symbolic link (to \"alpha\")")
            .within(FAST),
        Case::new("cluster directory linked to another cluster (status --all)")
            .setup(alias)
            .args(["bootstrap", "break-glass", "status", "--all"])
            .exit(2)
            .says("clusters/gamma: it is a symbolic link")
            .within(FAST),
        Case::new("region directory linked outside the fleet")
            .setup(|s: &mut Scene| {
                crate::support::copy_dir(&s.path("fleet/clusters/eu"), &s.path("outside/eu"));
                s.symlink("fleet/clusters/eu", s.path("outside/eu"));
            })
            .args(["bootstrap", "break-glass", "status", "eu/dc1"])
            .exit(2)
            .says("clusters/eu: it is a symbolic link")
            .within(FAST),
        Case::new("clusters/ itself linked outside the fleet")
            .setup(|s: &mut Scene| {
                crate::support::copy_dir(&s.path("fleet/clusters"), &s.path("outside/clusters"));
                s.symlink("fleet/clusters", s.path("outside/clusters"));
            })
            .args(status_alpha())
            .exit(2)
            .says("clusters: it is a symbolic link")
            .within(FAST),
    ]);
}

#[test]
fn check_reads_work_tree_files_safely() {
    let check = ["bootstrap", "break-glass", "check"];
    run_table(vec![
        Case::new("check: a file over the 16 MiB scan cap is an error naming it")
            .setup(|s: &mut Scene| {
                s.write("fleet/clusters/alpha/huge.yaml", vec![b'#'; (16 << 20) + 1]);
            })
            .args(check)
            .exit(1)
            .says("huge.yaml")
            .says("is never larger than 16777216 bytes")
            .within(FAST),
        Case::new("check: a FIFO in the work tree is not opened")
            .setup(|s: &mut Scene| s.fifo("fleet/clusters/alpha/pipe.yaml"))
            .args(check)
            .exit(0)
            .within(FAST),
        Case::new("check: a link to /dev/zero in the work tree is not followed")
            .setup(|s: &mut Scene| s.symlink("fleet/clusters/alpha/zero.yaml", "/dev/zero"))
            .args(check)
            .exit(0)
            .within(FAST),
    ]);
}

/// chmod 000. The suite runs as root here, and root reads any file whatever its mode:
/// then the read succeeds and the command works (exit 0). As any other user the file
/// cannot be opened and the error says so (`expected` is that exit code).
fn unreadable(rel: &'static str, expected: i32) -> Case {
    use std::os::unix::fs::PermissionsExt;
    let root = nix::unistd::geteuid().is_root();
    let case = Case::new(format!("{rel} with mode 000 (as root: readable anyway)"))
        .setup(move |s: &mut Scene| {
            std::fs::set_permissions(s.path(rel), std::fs::Permissions::from_mode(0o000)).unwrap();
        })
        .args(status_alpha())
        .within(FAST);
    match root {
        true => case.exit(0).says("alpha"),
        false => case.exit(expected).says("Permission denied"),
    }
}
