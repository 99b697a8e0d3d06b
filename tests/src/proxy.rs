//! A loopback HTTP proxy that misbehaves on request: it can lose the answer
//! after the server has committed, cut a request part-way, or refuse
//! connections as if the network were gone. Each connection carries one
//! exchange (`Connection: close` both ways) so that faults are exact.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the proxy does to the next exchanges.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Pass everything.
    None,
    /// Forward the request whose path starts with this, let the server
    /// answer, and drop the answer (once).
    LoseResponse(String),
    /// Forward only this many bytes of the next request whose path starts
    /// with the prefix, then cut both connections (once).
    CutRequest(String, usize),
    /// Let this many more requests whose path starts with the prefix
    /// through, then refuse every connection until reset.
    DropAfter(String, usize),
    /// Fault this fraction of requests at random (seeded), each with one of
    /// [`RandomFault`]'s kinds.
    Random {
        /// Fraction of requests faulted, 0..=1.
        rate: f64,
        /// Seed of the choices.
        seed: u64,
    },
}

/// The kinds of fault `Fault::Random` chooses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomFault {
    /// The request never reaches the server.
    DropRequest,
    /// The server handles it; the answer is lost.
    LoseResponse,
    /// A 500 without reaching the server.
    ServerError,
    /// A 429 with `Retry-After: 0`.
    Overloaded,
    /// Half of the answer, then the connection closes.
    TruncateResponse,
    /// The request reaches the server twice; the second answer is returned.
    Duplicate,
    /// The answer comes after [`SLOW_ANSWER`], past the client's timeout
    /// (the server has handled the request).
    Delay,
}

/// How late a `RandomFault::Delay` answer comes.
pub const SLOW_ANSWER: std::time::Duration = std::time::Duration::from_millis(700);

/// A running proxy.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    /// Requests seen, by path (without query).
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    faults_applied: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Proxy {
    /// A proxy to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let fault = Arc::new(Mutex::new(Fault::None));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let faults_applied = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (f, s, st, fa, rq) = (
            fault.clone(),
            seen.clone(),
            stop.clone(),
            faults_applied.clone(),
            requests.clone(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let n = rq.fetch_add(1, Ordering::SeqCst);
                let (f, s, fa) = (f.clone(), s.clone(), fa.clone());
                thread::spawn(move || {
                    let _ = exchange(client, target, &f, &s, &fa, n);
                });
            }
        });
        Proxy {
            addr,
            fault,
            seen,
            stop,
            faults_applied,
            requests,
        }
    }

    /// Connections (one request each) handled so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Base URL of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the fault for what comes next.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().expect("fault") = fault;
    }

    /// How many faults have been applied so far.
    pub fn faults_applied(&self) -> usize {
        self.faults_applied.load(Ordering::SeqCst)
    }

    /// Paths requested so far.
    pub fn paths(&self) -> Vec<String> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Rewrites a header block to carry `connection: close`.
fn close_headers(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("connection: close\r\n\r\n");
    out.into_bytes()
}

fn exchange(
    mut client: TcpStream,
    target: SocketAddr,
    fault: &Mutex<Fault>,
    seen: &Mutex<Vec<String>>,
    applied: &AtomicUsize,
    n: usize,
) -> std::io::Result<()> {
    // Read the request head and its body (Content-Length).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    seen.lock().expect("seen").push(path.clone());

    let current = fault.lock().expect("fault").clone();
    let mut request = close_headers(&buf[..head_end]);
    request.extend_from_slice(&buf[head_end..]);
    if let Fault::Random { rate, seed } = current {
        // A small hash of (seed, request number): the same run faults the same requests.
        let mut x = seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        if (x % 10_000) as f64 / 10_000.0 < rate {
            applied.fetch_add(1, Ordering::SeqCst);
            let kinds = [
                RandomFault::DropRequest,
                RandomFault::LoseResponse,
                RandomFault::ServerError,
                RandomFault::Overloaded,
                RandomFault::TruncateResponse,
                RandomFault::Duplicate,
                RandomFault::Delay,
            ];
            return random_fault(client, target, &request, kinds[(x >> 20) as usize % kinds.len()]);
        }
    }
    match &current {
        Fault::DropAfter(prefix, left) if path.starts_with(prefix.as_str()) => {
            if *left == 0 {
                applied.fetch_add(1, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Both);
                return Ok(());
            }
            *fault.lock().expect("fault") = Fault::DropAfter(prefix.clone(), left - 1);
        }
        Fault::CutRequest(prefix, bytes) if path.starts_with(prefix.as_str()) => {
            *fault.lock().expect("fault") = Fault::None;
            applied.fetch_add(1, Ordering::SeqCst);
            let mut server = TcpStream::connect(target)?;
            let cut = (head_end + bytes).min(request.len());
            server.write_all(&request[..cut])?;
            let _ = server.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        _ => {}
    }
    let mut server = TcpStream::connect(target)?;
    server.write_all(&request)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    if let Fault::LoseResponse(prefix) = &current
        && path.starts_with(prefix.as_str())
    {
        *fault.lock().expect("fault") = Fault::None;
        applied.fetch_add(1, Ordering::SeqCst);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    let end = find(&response, b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    let mut out = close_headers(&response[..end]);
    out.extend_from_slice(&response[end..]);
    client.write_all(&out)?;
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

fn forward(target: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(target)?;
    server.write_all(request)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    Ok(response)
}

fn random_fault(mut client: TcpStream, target: SocketAddr, request: &[u8], kind: RandomFault) -> std::io::Result<()> {
    let close_response = |response: &[u8]| {
        let end = find(response, b"\r\n\r\n").map_or(response.len(), |p| p + 4);
        let mut out = close_headers(&response[..end]);
        out.extend_from_slice(&response[end..]);
        out
    };
    match kind {
        RandomFault::DropRequest => {}
        RandomFault::LoseResponse => {
            forward(target, request)?;
        }
        RandomFault::ServerError => {
            client
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
        }
        RandomFault::Overloaded => {
            client.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )?;
        }
        RandomFault::TruncateResponse => {
            let out = close_response(&forward(target, request)?);
            client.write_all(&out[..out.len() / 2])?;
        }
        RandomFault::Duplicate => {
            forward(target, request)?;
            client.write_all(&close_response(&forward(target, request)?))?;
        }
        RandomFault::Delay => {
            let out = close_response(&forward(target, request)?);
            thread::sleep(SLOW_ANSWER);
            let _ = client.write_all(&out);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
