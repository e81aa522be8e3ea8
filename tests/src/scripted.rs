//! An upstream whose every answer is written by the test itself, byte for byte, on the raw
//! socket: for what the fake provider cannot do on purpose (hang up inside a stream, reset the
//! connection, send an endless SSE line, answer thousands of big bodies from one shared buffer).

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crate::http::{read_body, read_head, Head};

/// What the handler does with the connection after answering.
pub enum After {
    /// Keep serving requests on it.
    KeepAlive,
    /// Close it (FIN).
    Close,
    /// Reset it (RST: SO_LINGER 0, then close).
    Reset,
}

pub struct Scripted {
    pub port: u16,
    requests: Arc<AtomicUsize>,
}

type Handler = dyn Fn(&Head, &[u8], &mut TcpStream) -> After + Send + Sync;

impl Scripted {
    /// Serves on a free loopback port until the process ends; `handler` writes each answer.
    pub fn start(
        handler: impl Fn(&Head, &[u8], &mut TcpStream) -> After + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        widen_backlog(&listener);
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::clone(&requests);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let handler = Arc::clone(&handler);
                let counter = Arc::clone(&counter);
                thread::spawn(move || serve(conn, &*handler, &counter));
            }
        });
        Self { port, requests }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, handler: &Handler, counter: &AtomicUsize) {
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Ok(Some(head)) = read_head(&mut reader) {
        let Ok(body) = read_body(&mut reader, &head, false, |_| {}) else {
            return;
        };
        counter.fetch_add(1, Ordering::SeqCst);
        match handler(&head, &body, &mut writer) {
            After::KeepAlive => {}
            After::Close => {
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return;
            }
            After::Reset => {
                reset(&writer);
                return;
            }
        }
    }
}

/// Load tests open hundreds of connections at once: with std's backlog of 128 the kernel drops
/// the SYNs past it, and Envoy's 2 s connect timeout can expire before the retransmission.
/// Calling `listen` again on a listening socket sets a new backlog (Linux).
fn widen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen() on a socket we own and that is already listening.
    unsafe {
        libc::listen(listener.as_raw_fd(), 4096);
    }
}

/// Closes with an RST instead of a FIN.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized `linger` value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.shutdown(std::net::Shutdown::Read);
}
