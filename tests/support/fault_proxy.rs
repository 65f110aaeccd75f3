//! A loopback TCP proxy between kube-dc and the apiserver that a test switches between
//! passing traffic and three network faults, at the moment it chooses. A mock on purpose:
//! a real network cannot be made to cut, stall or reset one connection at a chosen step.
//! TLS passes through untouched (the apiserver's certificate names 127.0.0.1).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Traffic flows.
    Pass = 0,
    /// Every connection is closed (FIN) and new ones are closed at once.
    Cut = 1,
    /// Connections stay open and nothing more is forwarded: an apiserver that hangs.
    Stall = 2,
    /// Every connection is reset (RST) and new ones too.
    Reset = 3,
}

pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream` (`https://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let target: SocketAddr = upstream
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = FaultProxy {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(AtomicU8::new(Fault::Pass as u8)),
            live: Arc::new(Mutex::new(Vec::new())),
        };
        let (mode, live) = (proxy.mode.clone(), proxy.live.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                accept(client, target, &mode, &live);
            }
        });
        proxy
    }

    /// `https://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Switches to `fault`, acting on the connections open now too.
    pub fn set(&self, fault: Fault) {
        self.mode.store(fault as u8, Ordering::SeqCst);
        if matches!(fault, Fault::Cut | Fault::Reset) {
            for stream in self.live.lock().unwrap().drain(..) {
                hang_up(&stream, fault);
            }
        }
    }
}

fn hang_up(stream: &TcpStream, fault: Fault) {
    if fault == Fault::Reset {
        // Linger 0: close sends RST instead of FIN.
        let _ = set_linger_zero(stream);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn set_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    let rc = unsafe {
        nix::libc::setsockopt(
            stream.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_LINGER,
            (&linger as *const nix::libc::linger).cast(),
            std::mem::size_of::<nix::libc::linger>() as nix::libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

fn accept(
    client: TcpStream,
    target: SocketAddr,
    mode: &Arc<AtomicU8>,
    live: &Arc<Mutex<Vec<TcpStream>>>,
) {
    let fault = current(mode);
    if fault == Fault::Cut || fault == Fault::Reset {
        hang_up(&client, fault);
        return;
    }
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        return;
    };
    {
        let mut live = live.lock().unwrap();
        live.push(client.try_clone().unwrap());
        live.push(server.try_clone().unwrap());
    }
    for (from, to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ] {
        let mode = mode.clone();
        std::thread::spawn(move || pump(from, to, &mode));
    }
}

fn current(mode: &AtomicU8) -> Fault {
    match mode.load(Ordering::SeqCst) {
        1 => Fault::Cut,
        2 => Fault::Stall,
        3 => Fault::Reset,
        _ => Fault::Pass,
    }
}

/// Copies `from` to `to` while traffic passes; while stalled, reads and drops nothing:
/// it stops reading, so the peer's writes back up and its reads wait.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: &AtomicU8) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        while current(mode) == Fault::Stall {
            std::thread::sleep(Duration::from_millis(50));
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while current(mode) == Fault::Stall {
            std::thread::sleep(Duration::from_millis(50));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
