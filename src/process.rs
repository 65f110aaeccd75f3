//! Which process wrote something: its pid and its start time, so that a reused pid is
//! not mistaken for it. Shared by the session sweep (session file names) and the rotation
//! lock (a Lease holder on this machine whose process is gone).

use std::path::Path;

/// A process: its pid and its start time (clock ticks after boot, field 22 of
/// `/proc/<pid>/stat`), so that a reused pid is not mistaken for it.
/// Without /proc (or in names from before start times were recorded) only the pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub(crate) pid: i32,
    pub(crate) start: Option<u64>,
}

impl ProcessId {
    pub fn current() -> ProcessId {
        let pid = std::process::id() as i32;
        ProcessId::of(pid).unwrap_or(ProcessId { pid, start: None })
    }

    /// `None` when the process is already gone.
    pub fn of(pid: i32) -> Option<ProcessId> {
        match start_time(pid) {
            Some(start) => Some(ProcessId {
                pid,
                start: Some(start),
            }),
            None if !has_proc() => Some(ProcessId { pid, start: None }),
            None => None,
        }
    }

    /// The same process still runs (a zombie runs no code and counts as gone).
    pub fn is_alive(&self) -> bool {
        match (self.start, start_time(self.pid)) {
            (Some(wanted), now) => now == Some(wanted),
            (None, Some(_)) => true,
            (None, None) => !has_proc() && pid_exists(self.pid),
        }
    }

    pub fn encode(&self) -> String {
        let mut buf = [0u8; ENCODED_MAX];
        let len = self.encode_into(&mut buf);
        String::from_utf8_lossy(buf.get(..len).unwrap_or_default()).into_owned()
    }

    /// `<pid>.<start>` (or `<pid>`) into `buf`, returning its length; allocates nothing.
    pub(crate) fn encode_into(&self, buf: &mut [u8; ENCODED_MAX]) -> usize {
        let mut len = write_decimal(buf, 0, self.pid.unsigned_abs().into());
        if let Some(start) = self.start {
            if let Some(dot) = buf.get_mut(len) {
                *dot = b'.';
            }
            len = write_decimal(buf, len + 1, start);
        }
        len
    }

    /// `<pid>.<start>`, or `<pid>` alone.
    pub fn decode(text: &str) -> Option<ProcessId> {
        let (pid, start) = match text.split_once('.') {
            Some((pid, start)) => (pid, Some(start.parse().ok()?)),
            None => (text, None),
        };
        let pid = pid.parse().ok().filter(|p| *p > 0)?;
        Some(ProcessId { pid, start })
    }
}

/// Room for `<i32>.<u64>` and a newline.
pub(crate) const ENCODED_MAX: usize = 40;

/// Writes `n` in decimal at `buf[at..]`, returning the end; allocates nothing.
fn write_decimal(buf: &mut [u8], at: usize, n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut count = 0;
    let mut rest = n;
    loop {
        if let Some(d) = digits.get_mut(count) {
            *d = b'0' + (rest % 10) as u8;
        }
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for (i, d) in digits.iter().take(count).rev().enumerate() {
        if let Some(slot) = buf.get_mut(at + i) {
            *slot = *d;
        }
    }
    at + count
}

fn has_proc() -> bool {
    Path::new("/proc/self/stat").exists()
}

/// Field 22 of `/proc/<pid>/stat`; `None` for a missing process or a zombie.
fn start_time(pid: i32) -> Option<u64> {
    parse_start_time(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time in a `/proc/<pid>/stat` line; `None` for a zombie. Allocates nothing:
/// it also runs in a child between fork and exec.
pub(crate) fn parse_start_time(stat: &[u8]) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces and ')'.
    let after_name = stat.get(stat.iter().rposition(|b| *b == b')')? + 1..)?;
    let mut fields = after_name
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    // The first field is field 3, the state; field 22 is 19 further on.
    if fields.next()? == b"Z" {
        return None;
    }
    let digits = fields.nth(18)?;
    digits.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))?
    })
}

fn pid_exists(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM means it exists but is someone else's.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// For tests: a process that has exited (its pid may be reused, its start time will differ).
#[cfg(test)]
pub(crate) fn dead() -> ProcessId {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let me = ProcessId::current();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert!(ProcessId::of(pid).is_none());
    ProcessId { pid, ..me }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_and_encodings_without_allocation() {
        let line = |name: &str, state: &str| {
            let rest = (4..=21)
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(" ");
            format!("77 ({name}) {state} {rest} 987654 1 2 3\n")
        };
        assert_eq!(
            parse_start_time(line("sleep", "S").as_bytes()),
            Some(987654)
        );
        assert_eq!(
            parse_start_time(line("a) Z (b", "R").as_bytes()),
            Some(987654)
        );
        assert_eq!(parse_start_time(line("sleep", "Z").as_bytes()), None);
        assert_eq!(parse_start_time(b"77 (x) S 1 2"), None);
        let max = ProcessId {
            pid: i32::MAX,
            start: Some(u64::MAX),
        };
        assert_eq!(max.encode(), format!("{}.{}", i32::MAX, u64::MAX));
        assert_eq!(
            ProcessId {
                pid: 1,
                start: Some(0)
            }
            .encode(),
            "1.0"
        );
        assert_eq!(
            ProcessId {
                pid: 5,
                start: None
            }
            .encode(),
            "5"
        );
    }

    #[test]
    fn start_time_tells_a_reused_pid_apart() {
        let me = ProcessId::current();
        assert!(me.start.is_some_and(|s| s > 0));
        assert!(me.is_alive());
        let reused = ProcessId {
            pid: me.pid,
            start: me.start.map(|s| s + 1),
        };
        assert!(!reused.is_alive());
        assert!(!dead().is_alive());
        assert_eq!(ProcessId::decode(&me.encode()), Some(me));
        assert_eq!(ProcessId::decode("12.x"), None);
    }
}
