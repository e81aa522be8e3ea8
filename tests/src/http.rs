//! Just enough HTTP/1.1 for the fake provider and the test client, on std's TcpStream: exact
//! control over chunk boundaries and timing, and nothing hidden.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Head {
    /// Request line or status line.
    pub first_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a head; `Ok(None)` on a clean EOF before any byte (a closed keep-alive connection).
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut first_line = String::new();
    if reader.read_line(&mut first_line)? == 0 {
        return Ok(None);
    }
    let mut head = Head {
        first_line: first_line.trim_end().to_string(),
        headers: Vec::new(),
    };
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF inside headers",
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(Some(head));
        }
        if let Some((k, v)) = line.split_once(':') {
            head.headers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// Reads a body framed by content-length or chunked encoding, or (for responses) until EOF.
/// `on_piece` sees each piece as it arrives (one chunk, or one read).
pub fn read_body(
    reader: &mut impl BufRead,
    head: &Head,
    until_eof: bool,
    mut on_piece: impl FnMut(&[u8]),
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_hex = size_line.trim().split(';').next().unwrap_or("0");
            let size = usize::from_str_radix(size_hex, 16).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("chunk size {size_line:?}: {e}"),
                )
            })?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let mut piece = vec![0; size];
            reader.read_exact(&mut piece)?;
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf)?;
            on_piece(&piece);
            body.extend_from_slice(&piece);
        }
    } else if let Some(len) = head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
        on_piece(&body);
        Ok(body)
    } else if until_eof {
        let mut buf = [0; 16 * 1024];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(body);
            }
            on_piece(&buf[..n]);
            body.extend_from_slice(&buf[..n]);
        }
    } else {
        Ok(body)
    }
}

/// A response as the test client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: Head,
    pub body: Vec<u8>,
    /// Each body piece with the time it arrived, counted from when the request was sent.
    pub pieces: Vec<(Duration, Vec<u8>)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): status {} body {}",
                self.status,
                self.text()
            )
        })
    }
}

/// Sends one request on a new connection and reads the whole response (30 s at most between
/// two reads).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    request_waiting(port, method, path, headers, body, Duration::from_secs(30))
}

/// [`request`] with another limit on the wait between two reads (load tests queue requests).
pub fn request_waiting(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    wait: Duration,
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(wait))?;
    stream.set_nodelay(true)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let sent = Instant::now();
    stream.write_all(req.as_bytes())?;
    // The body goes from another thread while the response is read, as real clients do: a
    // gateway may answer (413, say) and close before a large body is fully sent.
    let mut writer = stream.try_clone()?;
    let closer = stream.try_clone()?;
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let status = head
        .first_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {:?}", head.first_line),
            )
        })?;
    let mut pieces = Vec::new();
    let body = read_body(&mut reader, &head, true, |p| {
        pieces.push((sent.elapsed(), p.to_vec()))
    })?;
    // Ends a sender still blocked on a body the gateway refused.
    let _ = closer.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    Ok(Response {
        status,
        head,
        body,
        pieces,
    })
}

/// Writes a response with a fixed body.
pub fn write_full(
    out: &mut impl Write,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

/// Writes a chunked response, one HTTP chunk per piece, each sent after its delay.
pub fn write_chunked(
    out: &mut impl Write,
    status: u16,
    headers: &[(String, String)],
    pieces: &[(Duration, Vec<u8>)],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("transfer-encoding: chunked\r\n\r\n");
    out.write_all(head.as_bytes())?;
    out.flush()?;
    for (delay, piece) in pieces {
        std::thread::sleep(*delay);
        if piece.is_empty() {
            continue;
        }
        out.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
        out.write_all(piece)?;
        out.write_all(b"\r\n")?;
        out.flush()?;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
