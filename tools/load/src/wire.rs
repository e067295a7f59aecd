//! The load generator's HTTP/1.1 client: each request's bytes are rendered before the phase
//! and written as they are on connections opened beforehand; answers are cut apart by their
//! `Content-Length`.
//!
//! - The **closed loop** runs one tokio task per connection, which writes a request and
//!   reads its answer ([`connect`], [`exchange`]).
//! - In the **open loop** the pacing thread writes each request itself at its time, and one
//!   blocking thread per connection reads the answers ([`Connections`]; wrk2 works this way).
//!   A request leaves at its time whatever the server does: when no connection is idle it is
//!   written behind the unanswered ones of the least busy connection (HTTP/1.1 pipelining),
//!   and its latency still counts from its scheduled time.
//!
//! Why not reqwest, as up to session 15: the generator shares the cores with the servers it
//! measures, and every microsecond it spends is taken from them. With reqwest, and in the
//! open loop a pacing thread that spawned a task per request, the generator cost 101–106 µs
//! per open-loop request and 52–58 µs per closed-loop one on session 16's 2-core VM
//! (docs/PERFORMANCE.md). A shared generator also flatters the full/native ratio: the same
//! cost is added to both targets' requests, which brings their throughputs closer.
//!
//! Why by hand rather than a crate: the client needs to write prepared bytes and to find
//! where each answer ends; hyper's client would bring back the per-request work this removes.
//! The answers' heads are read by `httparse`, hyper's own parser.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::drive::{Outcome, REQUEST_TIMEOUT, judge};

/// The error code of a request that got no answer (the connection broke, timed out, or
/// answered something that is not HTTP).
pub const TRANSPORT: &str = "TRANSPORT";

/// How often a connection's reader, waiting for bytes, looks whether its phase has ended.
const POLL: Duration = Duration::from_millis(50);
/// Bytes read at a time (an answer is a few hundred).
const READ_CHUNK: usize = 16 * 1024;
/// Most header lines an answer may have.
const MAX_HEADERS: usize = 32;

/// A request written, waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// Its place in the phase's order.
    index: usize,
    /// When the generator wrote it.
    began: Instant,
}

/// A request's answer.
#[derive(Debug)]
pub struct Answer {
    /// The request's place in the phase's order.
    pub index: usize,
    /// When the generator wrote it.
    pub began: Instant,
    /// When its whole answer had been read.
    pub done: Instant,
    /// Allowed, or the code and answer of a refusal (`TRANSPORT` when no answer came).
    pub outcome: Outcome,
}

/// One kept-open connection, as the pacing thread holds it.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    /// Requests written and not yet answered.
    unanswered: Arc<AtomicUsize>,
    /// The connection broke: nothing more is written on it.
    broken: Arc<AtomicBool>,
    /// Tells the reader, in order, which request each next answer belongs to.
    sent: mpsc::Sender<Sent>,
    reader: JoinHandle<()>,
}

/// Kept-open connections to one server, and their readers' answers.
#[derive(Debug)]
pub struct Connections {
    connections: Vec<Connection>,
    answers: mpsc::Receiver<Answer>,
    /// Where the next search for an idle connection starts, so that the load spreads.
    next: usize,
}

impl Connections {
    /// Opens `count` connections to `addr`, each with its reader thread (named `thread_name`,
    /// so that its CPU time counts as the generator's).
    pub fn open(addr: SocketAddr, count: usize, thread_name: &str) -> anyhow::Result<Connections> {
        anyhow::ensure!(count > 0, "an open loop needs at least one connection");
        let (answered, answers) = mpsc::channel();
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(POLL))?;
            let (unanswered, broken) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
            let (sent, to_answer) = mpsc::channel();
            let reader = Reader { stream: stream.try_clone()?, to_answer, unanswered: Arc::clone(&unanswered), broken: Arc::clone(&broken), answered: answered.clone(), waiting: VecDeque::new() };
            let reader = std::thread::Builder::new().name(thread_name.to_string()).spawn(move || reader.run())?;
            connections.push(Connection { stream, unanswered, broken, sent, reader });
        }
        Ok(Connections { connections, answers, next: 0 })
    }

    /// Sends one request on each connection and waits for every answer, as a gate controller's
    /// connections have carried traffic before the loop starts; every request must be allowed.
    pub fn warm(&mut self, requests: &[Vec<u8>]) -> anyhow::Result<()> {
        anyhow::ensure!(requests.len() == self.connections.len(), "one request per connection");
        for (i, request) in requests.iter().enumerate() {
            self.send(i, request)?;
        }
        for _ in requests {
            let answer = self.answer(REQUEST_TIMEOUT).ok_or_else(|| anyhow::anyhow!("a connection's first request had no answer"))?;
            if let Err((code, detail)) = answer.outcome {
                anyhow::bail!("a connection's first request was refused: {code}: {detail}");
            }
        }
        Ok(())
    }

    /// Writes `request` (its rendered bytes), as the `index`-th of the phase, on an idle
    /// connection, or behind the fewest unanswered requests when none is idle.
    pub fn send(&mut self, index: usize, request: &[u8]) -> anyhow::Result<()> {
        let count = self.connections.len();
        let mut chosen: Option<(usize, usize)> = None;
        for k in (0..count).map(|k| (self.next + k) % count) {
            let connection = &self.connections[k];
            if connection.broken.load(Ordering::Acquire) {
                continue;
            }
            let waiting = connection.unanswered.load(Ordering::Acquire);
            if chosen.is_none_or(|(_, fewest)| waiting < fewest) {
                chosen = Some((k, waiting));
            }
            if waiting == 0 {
                break;
            }
        }
        let (k, _) = chosen.ok_or_else(|| anyhow::anyhow!("every connection to the server broke"))?;
        self.next = (k + 1) % count;
        let connection = &mut self.connections[k];
        connection.unanswered.fetch_add(1, Ordering::AcqRel);
        // The reader learns of the request before its answer can arrive.
        let noted = connection.sent.send(Sent { index, began: Instant::now() });
        if noted.is_err() || connection.stream.write_all(request).is_err() {
            // The reader answers this request as failed once it sees the broken connection.
            connection.broken.store(true, Ordering::Release);
            let _ = connection.stream.shutdown(Shutdown::Both);
        }
        Ok(())
    }

    /// The next answer, waiting at most `timeout` for it.
    pub fn answer(&self, timeout: Duration) -> Option<Answer> {
        self.answers.recv_timeout(timeout).ok()
    }

    /// Ends the phase: waits for every request's answer (or failure) and closes the
    /// connections. Returns the answers not yet taken by [`Connections::answer`].
    pub fn finish(self) -> anyhow::Result<Vec<Answer>> {
        let Connections { connections, answers, .. } = self;
        let mut readers = Vec::with_capacity(connections.len());
        for Connection { stream, sent, reader, .. } in connections {
            // Dropping `sent` tells the reader that nothing more comes; it stops once every
            // request it was told of is answered.
            drop(sent);
            readers.push((stream, reader));
        }
        for (stream, reader) in readers {
            reader.join().map_err(|_| anyhow::anyhow!("a connection's reader panicked"))?;
            let _ = stream.shutdown(Shutdown::Both);
        }
        Ok(answers.try_iter().collect())
    }
}

/// One connection's reading side, on its own thread.
struct Reader {
    stream: TcpStream,
    to_answer: mpsc::Receiver<Sent>,
    unanswered: Arc<AtomicUsize>,
    broken: Arc<AtomicBool>,
    answered: mpsc::Sender<Answer>,
    /// Requests written, in order, whose answers have not arrived (those the reader has
    /// taken from `to_answer` so far).
    waiting: VecDeque<Sent>,
}

impl Reader {
    fn run(mut self) {
        let Some(detail) = self.read_until_done() else { return };
        self.broken.store(true, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Both);
        // Every request written on this connection and not answered fails, including any the
        // pacing thread writes before it sees the connection broken.
        for sent in std::mem::take(&mut self.waiting) {
            self.answer(sent, Instant::now(), Err((TRANSPORT.into(), detail.clone())));
        }
        while let Ok(sent) = self.to_answer.recv() {
            self.answer(sent, Instant::now(), Err((TRANSPORT.into(), detail.clone())));
        }
    }

    fn answer(&self, sent: Sent, done: Instant, outcome: Outcome) {
        self.unanswered.fetch_sub(1, Ordering::AcqRel);
        // The receiver outlives the readers (`Connections::finish` joins them first).
        let _ = self.answered.send(Answer { index: sent.index, began: sent.began, done, outcome });
    }

    /// Reads answers until the phase has ended and every request is answered (`None`), or
    /// the connection fails (why).
    fn read_until_done(&mut self) -> Option<String> {
        let mut buffer = Vec::with_capacity(READ_CHUNK);
        let mut chunk = vec![0_u8; READ_CHUNK];
        let mut last_progress = Instant::now();
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Some("the server closed the connection".into()),
                Ok(n) => {
                    let done = Instant::now();
                    last_progress = done;
                    buffer.extend_from_slice(&chunk[..n]);
                    let mut taken = 0;
                    loop {
                        let (status, body, used) = match parse(&buffer[taken..]) {
                            Ok(Some(parsed)) => parsed,
                            Ok(None) => break,
                            Err(e) => return Some(e),
                        };
                        let outcome = judge(status, &buffer[taken..][body]);
                        taken += used;
                        // The pacing thread notes each request before writing it.
                        let Some(sent) = self.waiting.pop_front().or_else(|| self.to_answer.recv().ok()) else {
                            return Some("an answer came for no request".into());
                        };
                        self.answer(sent, done, outcome);
                    }
                    buffer.drain(..taken);
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    // Note what was written meanwhile; stop once the phase is over and all is answered.
                    loop {
                        match self.to_answer.try_recv() {
                            Ok(sent) => self.waiting.push_back(sent),
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) if self.waiting.is_empty() => return None,
                            Err(mpsc::TryRecvError::Disconnected) => break,
                        }
                    }
                    if self.waiting.is_empty() {
                        last_progress = Instant::now();
                    } else if last_progress.elapsed() > REQUEST_TIMEOUT {
                        return Some(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Some(e.to_string()),
            }
        }
    }
}

/// The `ip:port` of a server's base address (`http://ip:port`, as both servers give it),
/// and the address to connect to.
pub fn host(base: &str) -> anyhow::Result<(&str, SocketAddr)> {
    let host = base.strip_prefix("http://").ok_or_else(|| anyhow::anyhow!("{base} is not http://ip:port"))?;
    Ok((host, host.parse().map_err(|_| anyhow::anyhow!("{base} is not http://ip:port"))?))
}

/// Opens `count` connections to `addr` for the closed loop.
pub async fn connect(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<tokio::net::TcpStream>> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    Ok(streams)
}

/// Writes `request` on `stream` and reads its answer, within [`REQUEST_TIMEOUT`]. `buffer`
/// is the connection's own; it is left empty for the next exchange.
pub async fn exchange(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>, request: &[u8]) -> Outcome {
    let answer = async {
        stream.write_all(request).await.map_err(|e| e.to_string())?;
        loop {
            if let Some((status, body, used)) = parse(buffer)? {
                // One request at a time: nothing may follow its answer.
                if used != buffer.len() {
                    return Err("bytes after the answer to the only request".to_string());
                }
                let outcome = judge(status, &buffer[body]);
                buffer.clear();
                return Ok(outcome);
            }
            if stream.read_buf(buffer).await.map_err(|e| e.to_string())? == 0 {
                return Err("the server closed the connection".to_string());
            }
        }
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(detail)) => Err((TRANSPORT.into(), detail)),
        Err(_) => Err((TRANSPORT.into(), format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))),
    }
}

/// The first whole answer in `bytes`: its status, where its body lies, and how many bytes it
/// takes; `None` while it is incomplete.
fn parse(bytes: &[u8]) -> Result<Option<(u16, std::ops::Range<usize>, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("unreadable answer: {e}")),
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
        .ok_or_else(|| "an answer without a Content-Length".to_string())?;
    let end = head + length;
    Ok((bytes.len() >= end).then(|| (response.code.unwrap_or(0), head..end, end)))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    const ALLOWED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 23\r\n\r\n{\"decision\":\"allowed\"}\n";

    #[test]
    fn a_base_address_gives_its_host_and_socket_address() {
        let (host, addr) = host("http://127.0.0.1:8080").unwrap();
        assert_eq!((host, addr), ("127.0.0.1:8080", "127.0.0.1:8080".parse().unwrap()));
        assert!(super::host("https://127.0.0.1:8080").is_err());
        assert!(super::host("http://gateway.example:8080").is_err());
    }

    #[test]
    fn answers_are_cut_apart_by_their_length() {
        let two = [ALLOWED, ALLOWED].concat();
        let (status, body, used) = parse(&two).unwrap().unwrap();
        assert_eq!((status, used), (200, ALLOWED.len()));
        assert_eq!(&two[body], b"{\"decision\":\"allowed\"}\n");
        assert_eq!(parse(&ALLOWED[..ALLOWED.len() - 1]).unwrap(), None, "a body not read in full");
        assert_eq!(parse(&ALLOWED[..10]).unwrap(), None, "a head not read in full");
        assert!(parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").unwrap_err().contains("Content-Length"));
        assert!(parse(b"NOT HTTP\r\n\r\n").is_err());
    }

    /// A server that reads `expected` requests (pipelined or not) on each connection it
    /// accepts and answers each once it has it all, allowing the first `allow` in all and
    /// refusing the rest.
    fn server(connections: usize, allow: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            std::thread::scope(|s| {
                for _ in 0..connections {
                    let (mut stream, _) = listener.accept().unwrap();
                    let served = Arc::clone(&served);
                    s.spawn(move || {
                        let mut buffer = Vec::new();
                        let mut chunk = [0_u8; 4096];
                        loop {
                            let n = stream.read(&mut chunk).unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buffer.extend_from_slice(&chunk[..n]);
                            // Each request here is a line.
                            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                                buffer.drain(..=end);
                                let answer: &[u8] = if served.fetch_add(1, Ordering::AcqRel) < allow {
                                    ALLOWED
                                } else {
                                    b"HTTP/1.1 409 Conflict\r\ncontent-length: 40\r\n\r\n{\"error\":{\"code\":\"ALREADY_INSIDE\"}}\n    "
                                };
                                stream.write_all(answer).unwrap();
                            }
                        }
                    });
                }
            });
        });
        (addr, thread)
    }

    #[test]
    fn every_request_is_answered_in_order_even_when_several_wait_on_one_connection() {
        let (addr, server) = server(2, 7);
        let mut connections = Connections::open(addr, 2, "load").unwrap();
        // Ten requests at once: the two connections carry several each, pipelined.
        for i in 0..10 {
            connections.send(i, b"request\n").unwrap();
        }
        let mut answers = connections.finish().unwrap();
        answers.sort_by_key(|a| a.index);
        assert_eq!(answers.iter().map(|a| a.index).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert_eq!(answers.iter().filter(|a| a.outcome.is_ok()).count(), 7);
        let refused: Vec<_> = answers.iter().filter_map(|a| a.outcome.as_ref().err()).collect();
        assert!(refused.iter().all(|(code, _)| code == "ALREADY_INSIDE"), "{refused:?}");
        assert!(answers.iter().all(|a| a.began <= a.done));
        server.join().unwrap();
    }

    #[test]
    fn an_exchange_reads_exactly_its_answer_and_fails_on_a_closed_connection() {
        let (addr, server) = server(1, 1);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut streams = connect(addr, 1).await.unwrap();
            let (stream, mut buffer) = (&mut streams[0], Vec::new());
            assert_eq!(exchange(stream, &mut buffer, b"request\n").await, Ok(()));
            assert!(buffer.is_empty());
            let (code, _) = exchange(stream, &mut buffer, b"request\n").await.unwrap_err();
            assert_eq!(code, "ALREADY_INSIDE", "the second answer is a refusal, read as such");
            // The server's side closes once the client's does; a closed connection is a transport failure.
            stream.shutdown().await.unwrap();
            let (code, detail) = exchange(stream, &mut buffer, b"request\n").await.unwrap_err();
            assert_eq!(code, TRANSPORT, "{detail}");
        });
        server.join().unwrap();
    }

    #[test]
    fn a_connection_the_server_drops_fails_its_requests_and_no_more_are_written_on_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connections = Connections::open(addr, 1, "load").unwrap();
        // The server reads the first request and closes the connection without answering.
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut line = [0_u8; 8];
            stream.read_exact(&mut line).unwrap();
        });
        connections.send(0, b"request\n").unwrap();
        server.join().unwrap();
        let failed = connections.answer(Duration::from_secs(5)).expect("the request fails");
        assert_eq!((failed.index, failed.outcome.as_ref().unwrap_err().0.as_str()), (0, "TRANSPORT"));
        let refused = connections.send(1, b"request\n").expect_err("no connection is left");
        assert!(refused.to_string().contains("broke"), "{refused}");
        assert!(connections.finish().unwrap().is_empty());
    }
}
