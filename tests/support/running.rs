//! A kube-dc run in the background whose stderr is watched while it runs, so that a test
//! can act (signal it, stop a control-plane process) at a given step.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `cmd` with stdout discarded and stderr collected.
    pub fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut buf) {
                let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push_str(&chunk);
            }
        });
        Running { child, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed on stderr so far.
    pub fn said(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) until its stderr contains `text`.
    pub fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.said().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in:\n{}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` (e.g. `-INT`) to the process (not its group).
    pub fn signal(&self, sig: &str) {
        super::kill(sig, self.child.id());
    }

    /// Waits for the exit; its code and all of stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        // The reader thread passes on the last bytes once the pipe closes.
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.said())
    }
}
