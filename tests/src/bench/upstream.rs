//! The benchmark's fake upstream: a fast HTTP/1.1 server that answers every request with a canned
//! provider answer and no artificial delay, so that it is never the bottleneck. Unlike the test
//! suite's `FakeProvider` it records nothing, parses no JSON and keeps connections alive; each
//! connection has a thread (proxies keep a small pool of upstream connections, reused).
//!
//! - `POST …/chat/completions` → OpenAI chat completion (JSON, or SSE when the body asks for a
//!   stream),
//! - `POST …/v1/messages` → Anthropic message (JSON or SSE),
//! - anything else → 404.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use super::workload::Canned;

/// Largest request the upstream accepts (head and body).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub not_found: AtomicU64,
}

pub struct Upstream {
    pub port: u16,
    pub counters: Arc<Counters>,
}

impl Upstream {
    /// Listens on 127.0.0.1 (a free port) and serves until the process ends.
    pub fn start() -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters::default());
        let canned = Arc::new(Canned::new());
        let shared = Arc::clone(&counters);
        thread::Builder::new()
            .name("bench-upstream".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let canned = Arc::clone(&canned);
                    let counters = Arc::clone(&shared);
                    let _ = thread::Builder::new()
                        .name("bench-upstream-conn".into())
                        .stack_size(256 * 1024)
                        .spawn(move || {
                            let _ = serve(conn, &canned, &counters);
                        });
                }
            })?;
        Ok(Self { port, counters })
    }

    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }
}

/// A connection's read buffer: `buf[start..end]` holds bytes not yet consumed.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    /// Reads more bytes; `Ok(false)` at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_REQUEST {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request too large",
                ));
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n > 0)
    }

    /// Makes sure `n` unconsumed bytes are buffered.
    fn need(&mut self, n: usize) -> io::Result<()> {
        while self.end - self.start < n {
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// The position (relative to `start`) just after the next `\r\n`, reading as needed.
    fn line_end(&mut self, from: usize) -> io::Result<usize> {
        loop {
            if let Some(p) = find(&self.buf[self.start + from..self.end], b"\r\n") {
                return Ok(from + p + 2);
            }
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a request head says.
struct Request {
    path_is: Route,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    OpenAi,
    Anthropic,
    Other,
}

fn parse_head(head: &[u8]) -> Request {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let path = first.split(' ').nth(1).unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    let path_is = if path.ends_with("/chat/completions") {
        Route::OpenAi
    } else if path.ends_with("/v1/messages") {
        Route::Anthropic
    } else {
        Route::Other
    };
    let mut req = Request {
        path_is,
        content_length: None,
        chunked: false,
        close: first.ends_with("HTTP/1.0"),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            req.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            req.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            req.close = value.eq_ignore_ascii_case("close");
        }
    }
    req
}

/// Whether a JSON body has `"stream": true` (a byte search: the upstream parses no JSON).
fn asks_stream(body: &[u8]) -> bool {
    let key = b"\"stream\"";
    let mut rest = body;
    while let Some(p) = find(rest, key) {
        rest = &rest[p + key.len()..];
        let value: Vec<u8> = rest
            .iter()
            .copied()
            .skip_while(|b| b.is_ascii_whitespace())
            .take(16)
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if value.starts_with(b":true") {
            return true;
        }
    }
    false
}

fn serve(stream: TcpStream, canned: &Canned, counters: &Counters) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut conn = Conn {
        stream,
        buf: vec![0; 64 * 1024],
        start: 0,
        end: 0,
    };
    loop {
        // The head.
        let head_len = loop {
            if let Some(p) = find(&conn.buf[conn.start..conn.end], b"\r\n\r\n") {
                break p + 4;
            }
            if !conn.fill()? {
                return Ok(()); // the proxy closed a kept-alive connection
            }
        };
        let req = parse_head(&conn.buf[conn.start..conn.start + head_len]);
        conn.start += head_len;
        // The body: only whether it asks for a stream matters.
        let stream = if req.chunked {
            let mut body = Vec::new();
            loop {
                let line = conn.line_end(0)?;
                let size_text = String::from_utf8_lossy(&conn.buf[conn.start..conn.start + line]);
                let size = usize::from_str_radix(
                    size_text.trim().split(';').next().unwrap_or_default(),
                    16,
                )
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                conn.start += line;
                if size == 0 {
                    // Trailers, then an empty line.
                    loop {
                        let line = conn.line_end(0)?;
                        conn.start += line;
                        if line == 2 {
                            break;
                        }
                    }
                    break;
                }
                conn.need(size + 2)?;
                body.extend_from_slice(&conn.buf[conn.start..conn.start + size]);
                conn.start += size + 2;
            }
            asks_stream(&body)
        } else {
            let len = req.content_length.unwrap_or(0);
            conn.need(len)?;
            let stream = asks_stream(&conn.buf[conn.start..conn.start + len]);
            conn.start += len;
            stream
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        match (req.path_is, stream) {
            (Route::OpenAi, false) => writer.write_all(&canned.openai_json)?,
            (Route::Anthropic, false) => writer.write_all(&canned.anthropic_json)?,
            (Route::OpenAi, true) => write_stream(&mut writer, &canned.openai_sse)?,
            (Route::Anthropic, true) => write_stream(&mut writer, &canned.anthropic_sse)?,
            (Route::Other, _) => {
                counters.not_found.fetch_add(1, Ordering::Relaxed);
                writer.write_all(&canned.not_found)?;
            }
        }
        if req.close {
            return Ok(());
        }
    }
}

/// Each event goes out in its own write, as a provider sends them; no delay between them.
fn write_stream(writer: &mut TcpStream, writes: &[Vec<u8>]) -> io::Result<()> {
    for w in writes {
        writer.write_all(w)?;
    }
    Ok(())
}
