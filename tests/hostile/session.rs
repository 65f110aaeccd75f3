//! Session directory states (issue 10): the directory `~/.kube-dc/break-glass` as a link,
//! foreign-owned, writable by others, holding links, FIFOs, sockets, directories and hard
//! links named like session files, files of dead processes, of reused pids, of live
//! sessions and of the Go tool. The stale-session sweep that every command runs must
//! remove only kube-dc's own plain files of sessions that are over, and touch nothing in
//! a directory it cannot trust.
//!
//! The foreign-owner cases chown to `nobody` (65534): the suite runs as root here; as any
//! other user they fail at setup, saying so.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::harness::{Case, Scene, run_table};

const DIR: &str = "home/.kube-dc/break-glass";
const PRECIOUS: &str = "home/precious";
/// No process can have this pid (pid_max is at most 2^22).
const DEAD: &str = "2147483646.4242";
const NOBODY: u32 = 65534;
const FAST: Duration = Duration::from_secs(5);

fn in_dir(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// The session directory with `mode` (created by the user, as kube-dc would).
fn session_dir(s: &Scene, mode: u32) {
    std::fs::create_dir_all(s.path(DIR)).unwrap();
    std::fs::set_permissions(s.path(DIR), std::fs::Permissions::from_mode(mode)).unwrap();
}

fn precious(s: &Scene) {
    s.write(PRECIOUS, "precious: not a session file\n");
}

fn chown_nobody(s: &Scene, rel: &str) {
    std::os::unix::fs::lchown(s.path(rel), Some(NOBODY), Some(NOBODY))
        .expect("these cases chown to nobody and need root");
}

/// `<pid>.<start>` of the test process: alive for as long as a case runs.
fn live_owner(start_offset: u64) -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let start: u64 = fields[19].parse().unwrap();
    format!("{}.{}", std::process::id(), start + start_offset)
}

/// `status alpha`: any command sweeps first; status needs no cluster.
fn sweep(name: &str) -> Case {
    Case::new(name)
        .args(["bootstrap", "break-glass", "status", "alpha"])
        .within(FAST)
}

pub fn use_alpha(name: &str) -> Case {
    Case::new(name)
        .args(crate::support::USE_ALPHA)
        .within(FAST)
        // Every session is journaled (issue 16): that file is meant to change.
        .may_change("home/.kube-dc/journal/")
}

#[test]
fn the_sweep_touches_nothing_it_cannot_trust() {
    let planted_link = in_dir("kubeconfig-4000000-x.yaml");
    let link = planted_link.clone();
    let plant_link = move |s: &mut Scene| {
        precious(s);
        session_dir(s, 0o777);
        s.symlink(&link, s.path(PRECIOUS));
    };
    let stale = in_dir(&format!("kubeconfig-{DEAD}-stale.yaml"));
    let stale_file = stale.clone();
    let plant_stale = move |s: &mut Scene| {
        s.write(&stale_file, "stale");
    };
    run_table(vec![
        sweep("0777 directory with a link to a file outside (critical case)")
            .setup(plant_link.clone())
            .exit(0)
            .says("not sweeping")
            .says("writable by other users (mode 777)"),
        use_alpha("0777 directory with a planted link: use repairs the mode, not the target")
            .setup(plant_link)
            .exit(0)
            .says("was mode 777; repaired to 700")
            .may_change(format!("{DIR}/")),
        sweep("0777 directory with a stale regular file: not swept")
            .setup(plant_stale.clone())
            .setup(|s: &mut Scene| session_dir(s, 0o777))
            .exit(0)
            .says("not sweeping"),
        sweep("0770 directory (group-writable): not swept")
            .setup(plant_stale.clone())
            .setup(|s: &mut Scene| session_dir(s, 0o770))
            .exit(0)
            .says("writable by other users (mode 770)"),
        sweep("directory owned by nobody: not swept")
            .setup(plant_stale.clone())
            .setup(|s: &mut Scene| {
                session_dir(s, 0o700);
                chown_nobody(s, DIR);
            })
            .exit(0)
            .says("owned by uid 65534"),
        use_alpha("directory owned by nobody: use refuses it")
            .setup(|s: &mut Scene| {
                session_dir(s, 0o700);
                chown_nobody(s, DIR);
            })
            .exit(1)
            .says("owned by uid 65534, not by you"),
        sweep("session directory is a link to another directory: not swept")
            .setup(|s: &mut Scene| {
                s.write(&format!("home/elsewhere/kubeconfig-{DEAD}-x.yaml"), "x");
                s.symlink(DIR, s.path("home/elsewhere"));
            })
            .exit(0)
            .says("is a symbolic link"),
        use_alpha("session directory is a link: use refuses it")
            .setup(|s: &mut Scene| {
                std::fs::create_dir_all(s.path("home/elsewhere")).unwrap();
                s.symlink(DIR, s.path("home/elsewhere"));
            })
            .exit(1)
            .says("is a symbolic link"),
        sweep("session directory is a regular file")
            .setup(|s: &mut Scene| {
                s.write(DIR, "not a directory");
            })
            .exit(0)
            .says("it is a regular file, not a directory"),
        use_alpha("session directory is a regular file: use refuses it")
            .setup(|s: &mut Scene| {
                s.write(DIR, "not a directory");
            })
            .exit(1)
            .says(".kube-dc/break-glass"),
    ]);
}

#[test]
fn only_plain_files_of_ours_named_like_sessions_are_swept() {
    // The pid-only names of earlier kube-dc versions: every version takes them for files
    // of a dead session.
    let name = |what: &str| in_dir(&format!("kubeconfig-2147483646-{what}.yaml"));
    let (link, devzero, fifo, socket, dir, hard, foreign) = (
        name("link"),
        name("zero"),
        name("fifo"),
        name("socket"),
        name("dir"),
        name("hard"),
        name("nobody"),
    );
    run_table(vec![
        sweep("link to a file outside, in a private directory")
            .setup(move |s: &mut Scene| {
                precious(s);
                session_dir(s, 0o700);
                s.symlink(&link, s.path(PRECIOUS));
            })
            .exit(0),
        sweep("link to /dev/zero")
            .setup(move |s: &mut Scene| {
                session_dir(s, 0o700);
                s.symlink(&devzero, "/dev/zero");
            })
            .exit(0),
        sweep("FIFO (must not hang)")
            .setup(move |s: &mut Scene| {
                session_dir(s, 0o700);
                s.fifo(&fifo);
            })
            .exit(0),
        sweep("socket")
            .setup(move |s: &mut Scene| {
                session_dir(s, 0o700);
                std::os::unix::net::UnixListener::bind(s.path(&socket)).unwrap();
            })
            .exit(0),
        sweep("directory")
            .setup(move |s: &mut Scene| {
                session_dir(s, 0o700);
                s.write(&format!("{dir}/inside"), "x");
            })
            .exit(0),
        sweep("hard link to a file outside: its content is not zeroed")
            .setup(move |s: &mut Scene| {
                precious(s);
                session_dir(s, 0o700);
                std::fs::hard_link(s.path(PRECIOUS), s.path(&hard)).unwrap();
            })
            .exit(0),
        sweep("file owned by nobody")
            .setup(move |s: &mut Scene| {
                session_dir(s, 0o700);
                s.write(&foreign, "x");
                chown_nobody(s, &foreign);
            })
            .exit(0),
    ]);
}

#[test]
fn stale_sessions_go_and_live_ones_stay() {
    let file = |owner: &str, what: &str| in_dir(&format!("kubeconfig-{owner}-{what}.yaml"));
    let dead = file(DEAD, "dead");
    let reused = file(&live_owner(1), "reused");
    let live = file(&live_owner(0), "live");
    let old_live = file(&std::process::id().to_string(), "old");
    let old_dead = file("2147483646", "old");
    let go_era = in_dir("kubeconfig-2847362841.yaml");
    let kept_by_child = file(DEAD, "shell");
    let record = |stem_of: &str| stem_of.replace(".yaml", ".child");
    let write_in_private = |rel: String, content: String| {
        move |s: &mut Scene| {
            session_dir(s, 0o700);
            s.write(&rel, &content);
        }
    };
    run_table(vec![
        sweep("file of a dead kube-dc")
            .setup(write_in_private(dead.clone(), "x".into()))
            .exit(0)
            .says("removed 1 decrypted break-glass kubeconfig(s)")
            .may_change(dead.clone()),
        use_alpha("file of a dead kube-dc, swept by use too")
            .setup(write_in_private(dead.clone(), "x".into()))
            .exit(0)
            .says("removed 1 decrypted break-glass kubeconfig(s)")
            .may_change(dead.clone()),
        sweep("file larger than any kubeconfig, of a dead kube-dc")
            .setup(write_in_private(dead.clone(), "x".repeat(3 << 20)))
            .exit(0)
            .says("removed 1")
            .may_change(dead.clone()),
        sweep("file of a live pid with another start time (pid reused)")
            .setup(write_in_private(reused.clone(), "x".into()))
            .exit(0)
            .says("removed 1")
            .may_change(reused),
        sweep("file of a live kube-dc (pid and start time match): kept")
            .setup(write_in_private(live, "x".into()))
            .exit(0),
        sweep("old name without start time, live pid: kept")
            .setup(write_in_private(old_live, "x".into()))
            .exit(0),
        sweep("old name without start time, dead pid: removed")
            .setup(write_in_private(old_dead.clone(), "x".into()))
            .exit(0)
            .says("removed 1")
            .may_change(old_dead),
        sweep("0755 directory (readable, not writable by others) is swept")
            .setup(move |s: &mut Scene| {
                session_dir(s, 0o755);
                s.write(&file(DEAD, "x"), "x");
            })
            .exit(0)
            .says("removed 1")
            .may_change(format!("{DIR}/")),
        sweep("Go-era kubeconfig-<random>.yaml: reported by path, kept")
            .setup(write_in_private(go_era, "x".into()))
            .exit(0)
            .says("kubeconfig-2847362841.yaml is a decrypted kubeconfig kube-dc did not write"),
        sweep("dead kube-dc, child (shell) still running: kept")
            .setup(write_in_private(kept_by_child.clone(), "x".into()))
            .setup(write_in_private(
                record(&kept_by_child),
                format!("{}\n", live_owner(0)),
            ))
            .exit(0),
        sweep("dead kube-dc, child gone too: both removed")
            .setup(write_in_private(kept_by_child.clone(), "x".into()))
            .setup(write_in_private(
                record(&kept_by_child),
                format!("{DEAD}\n"),
            ))
            .exit(0)
            .says("removed 1")
            .may_change(kept_by_child.clone())
            .may_change(record(&kept_by_child)),
        sweep("dead kube-dc, child record is a link to a live-looking record: not trusted")
            .setup(write_in_private(
                "home/forged".into(),
                format!("{}\n", live_owner(0)),
            ))
            .setup(write_in_private(kept_by_child.clone(), "x".into()))
            .setup({
                let rec = record(&kept_by_child);
                move |s: &mut Scene| s.symlink(&rec, s.path("home/forged"))
            })
            .exit(0)
            .says("removed 1")
            .may_change(kept_by_child.clone()),
        sweep("child record whose session file is gone: removed")
            .setup(write_in_private(
                record(&kept_by_child),
                format!("{DEAD}\n"),
            ))
            .exit(0)
            .may_change(record(&kept_by_child)),
    ]);
}

const STATE: &str = "home/.kube-dc";

#[test]
fn the_state_dir_above_is_checked_like_the_session_dir() {
    let stale = in_dir(&format!("kubeconfig-{DEAD}-stale.yaml"));
    let plant_stale = move |s: &mut Scene| {
        s.write(&stale, "stale");
    };
    let link_elsewhere = |s: &mut Scene| {
        s.write(
            &format!("home/elsewhere/break-glass/kubeconfig-{DEAD}-x.yaml"),
            "x",
        );
        s.symlink(STATE, s.path("home/elsewhere"));
    };
    let state_mode = |mode: u32| {
        move |s: &mut Scene| {
            std::fs::set_permissions(s.path(STATE), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    run_table(vec![
        sweep("~/.kube-dc is a link: not swept")
            .setup(link_elsewhere)
            .exit(0)
            .says("not sweeping")
            .says("is a symbolic link"),
        use_alpha("~/.kube-dc is a link: use refuses it, writes nothing there")
            .setup(link_elsewhere)
            .exit(1)
            .says("home/.kube-dc: it is a symbolic link"),
        sweep("~/.kube-dc writable by others: not swept")
            .setup(plant_stale.clone())
            .setup(state_mode(0o777))
            .exit(0)
            .says("not sweeping")
            .says("writable by other users (mode 777)"),
        use_alpha("~/.kube-dc writable by others: use repairs it (stays readable)")
            .setup(|s: &mut Scene| session_dir(s, 0o700))
            .setup(state_mode(0o777))
            .exit(0)
            .says("was mode 777; repaired to 755")
            .may_change(STATE)
            .may_change(format!("{DIR}/")),
        sweep("~/.kube-dc owned by nobody: not swept")
            .setup(plant_stale)
            .setup(|s: &mut Scene| chown_nobody(s, STATE))
            .exit(0)
            .says("owned by uid 65534"),
        use_alpha("~/.kube-dc owned by nobody: use refuses it")
            .setup(|s: &mut Scene| {
                session_dir(s, 0o700);
                chown_nobody(s, STATE);
            })
            .exit(1)
            .says("owned by uid 65534, not by you"),
    ]);
}

const JOURNAL_DIR: &str = "home/.kube-dc/journal";

/// The scene's journal file: `<first 8 bytes of sha256(canonical fleet path)>.jsonl`.
fn journal_file(s: &Scene) -> String {
    use sha2::Digest;
    let fleet = s.path("fleet").canonicalize().unwrap();
    let digest = sha2::Sha256::digest(fleet.as_os_str().as_encoded_bytes());
    let id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{JOURNAL_DIR}/{id}.jsonl")
}

/// `use` goes on without its journal when the journal cannot be trusted, and says so;
/// `status` reads it bounded, never through a link, never blocking.
#[test]
fn a_journal_that_cannot_be_trusted_is_not_written_nor_followed() {
    let journal_link = |s: &mut Scene| {
        precious(s);
        let file = journal_file(s);
        s.symlink(&file, s.path(PRECIOUS));
    };
    let journal_fifo = |s: &mut Scene| {
        let file = journal_file(s);
        std::fs::create_dir_all(s.path(JOURNAL_DIR)).unwrap();
        s.fifo(&file);
    };
    let dir_link = |s: &mut Scene| {
        std::fs::create_dir_all(s.path("home/elsewhere")).unwrap();
        s.symlink(JOURNAL_DIR, s.path("home/elsewhere"));
    };
    let huge = |s: &mut Scene| {
        let file = s.write(&journal_file(s), "");
        let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        f.set_len(17 << 20).unwrap();
    };
    run_table(vec![
        use_alpha("journal is a link to a file outside: use goes on, writes nothing there")
            .setup(journal_link)
            .exit(0)
            .says("journal:  FAILED")
            .says("is a symbolic link")
            .may_change(format!("{DIR}/")),
        use_alpha("journal is a FIFO: use goes on, does not block")
            .setup(journal_fifo)
            .exit(0)
            .says("journal:  FAILED")
            .says("a FIFO")
            .may_change(format!("{DIR}/")),
        use_alpha("journal directory is a link: use goes on, writes nothing there")
            .setup(dir_link)
            .exit(0)
            .says("journal:  FAILED")
            .says("is a symbolic link")
            .may_change(format!("{DIR}/")),
        sweep("journal is a link: status does not follow it")
            .setup(journal_link)
            .exit(0)
            .says("cannot read the session journal")
            .says("is a symbolic link"),
        sweep("journal is a FIFO: status does not block")
            .setup(journal_fifo)
            .exit(0)
            .says("cannot read the session journal")
            .says("a FIFO"),
        sweep("journal directory is a link: status does not follow it")
            .setup(dir_link)
            .exit(0)
            .says("is a symbolic link"),
        sweep("journal of 17 MiB: status refuses to read it")
            .setup(huge)
            .exit(0)
            .says("too large"),
    ]);
}
