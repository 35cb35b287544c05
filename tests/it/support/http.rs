//! A small HTTP/1.1 server on 127.0.0.1 for tests: keep-alive connections, request bodies, and
//! answers that can be cut short or stall, handed to one handler. The file server with Range
//! support and the fake ArcGIS server are handlers of it. It stops when dropped, and in any case
//! after 10,000 connections or 120 s.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`, ...
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (POST).
    pub body: Vec<u8>,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string, as sent.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The query's parameters and, for a form POST, the body's; names in lower case, values
    /// decoded.
    pub fn params(&self) -> BTreeMap<String, String> {
        let form = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let body = if form {
            String::from_utf8_lossy(&self.body).into_owned()
        } else {
            String::new()
        };
        self.query()
            .split('&')
            .chain(body.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k).to_ascii_lowercase(), decode(v))
            })
            .collect()
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status line after the version (`200 OK`).
    pub status: String,
    /// Headers besides Content-Length.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Send only this many bytes of the body, then close the connection (a transfer cut short).
    pub cut: Option<usize>,
    /// Wait this long before answering at all, then close (a server that stops answering).
    pub stall: Option<Duration>,
    /// Send the head and this many bytes of the body, then wait this long and close (a server
    /// that stops in the middle of a body).
    pub stall_mid_body: Option<(usize, Duration)>,
}

impl Response {
    /// `200 OK` with `body` of `content_type`.
    pub fn ok(content_type: &str, body: Vec<u8>) -> Response {
        Response::with_status("200 OK", content_type, body)
    }

    /// An answer with `status`.
    pub fn with_status(status: &str, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status: status.to_string(),
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            cut: None,
            stall: None,
            stall_mid_body: None,
        }
    }

    /// `404 Not Found`.
    pub fn not_found() -> Response {
        Response::with_status("404 Not Found", "text/plain", b"not found".to_vec())
    }
}

/// What answers requests.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// The running server.
pub struct HttpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving with `handler`.
    pub fn start(handler: Handler) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut served = 0;
            while !stop2.load(Ordering::SeqCst) && served < 10_000 && started.elapsed() < Duration::from_secs(120) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                served += 1;
                let handler = handler.clone();
                std::thread::spawn(move || serve(stream, &handler));
            }
        });
        HttpServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request from a keep-alive connection; `None` when it closed.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let mut request = Request {
        method: parts.next().unwrap_or("").to_string(),
        target: parts.next().unwrap_or("/").to_string(),
        ..Request::default()
    };
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            request
                .headers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    Some(request)
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: TcpStream, handler: &Handler) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    while let Some(request) = read_request(&mut reader) {
        let response = handler(&request);
        if let Some(stall) = response.stall {
            std::thread::sleep(stall);
            return;
        }
        let mut head = format!(
            "HTTP/1.1 {}\r\nContent-Length: {}\r\n",
            response.status,
            response.body.len()
        );
        for (k, v) in &response.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let cut = response.cut.or(response.stall_mid_body.map(|(n, _)| n));
        let body = match (request.method.as_str(), cut) {
            ("HEAD", _) => &[][..],
            (_, Some(n)) => &response.body[..n.min(response.body.len())],
            (_, None) => &response.body[..],
        };
        if out.write_all(head.as_bytes()).is_err() || out.write_all(body).is_err() {
            return;
        }
        if let Some((_, stall)) = response.stall_mid_body {
            let _ = out.flush();
            std::thread::sleep(stall);
            return;
        }
        if response.cut.is_some() {
            return;
        }
    }
}

/// Percent-decoding of a query component (`+` is a space).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
