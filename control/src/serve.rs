//! Many clients on one thread, none able to hold up another: every connection is read
//! without blocking into a buffer of its own until its protocol says the request is
//! whole, under one deadline for the whole exchange; at most `limit` connections are
//! open, and past it the one idle the longest is closed. Serves the control socket
//! (one JSON line each way) and the metrics listener (HTTP/1.x GET).

use crate::poller::{Interest, Poller};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a protocol makes of the bytes a client sent so far.
pub enum Turn {
    /// Not a whole request yet.
    More,
    /// The response to send; the connection closes once it is sent.
    Respond(Vec<u8>),
}

/// A request/response protocol over a byte stream.
pub trait Protocol: Send + 'static {
    /// The most a request may be: reading stops there, and `turn` must answer.
    const LIMIT: usize;
    /// `request`: every byte received so far (at most `LIMIT`); `ended`: the client
    /// closed its side.
    fn turn(&mut self, request: &[u8], ended: bool) -> Turn;
}

/// A listener as the server needs it: non-blocking accepts of non-blocking streams.
pub trait Listener: AsFd + Send + 'static {
    type Stream: Read + Write + AsFd + Send;
    fn accept_stream(&self) -> std::io::Result<Self::Stream>;
}

impl Listener for std::net::TcpListener {
    type Stream = std::net::TcpStream;
    fn accept_stream(&self) -> std::io::Result<Self::Stream> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

impl Listener for std::os::unix::net::UnixListener {
    type Stream = std::os::unix::net::UnixStream;
    fn accept_stream(&self) -> std::io::Result<Self::Stream> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

/// How a server treats its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept to the last byte of the response.
    pub deadline: Duration,
    /// Connections open at once.
    pub connections: usize,
}

/// The serving thread; stops (within `STOP_PATIENCE`) when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often the thread looks at the stop flag when nothing happens.
const STOP_POLL: Duration = Duration::from_millis(50);
/// How long dropping the server waits for its thread; past it the thread ends on its
/// own at its next wake-up.
const STOP_PATIENCE: Duration = Duration::from_millis(200);
const READ_CHUNK: usize = 4096;
const LISTENER: usize = 0;

impl Server {
    /// Serves `listener` (already non-blocking) with `protocol` on a thread `name`.
    pub fn spawn<L: Listener, P: Protocol>(
        name: &str,
        listener: L,
        protocol: P,
        limits: Limits,
    ) -> std::io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut state = State::new(listener, protocol, limits)?;
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    state.turn();
                }
            })?;
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + STOP_PATIENCE;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

struct Connection<S> {
    stream: S,
    received: Vec<u8>,
    /// The response and how much of it is sent, once there is one.
    response: Option<(Vec<u8>, usize)>,
    deadline: Instant,
    last_active: Instant,
}

struct State<L: Listener, P> {
    listener: L,
    protocol: P,
    limits: Limits,
    poller: Poller,
    connections: HashMap<usize, Connection<L::Stream>>,
    next_key: usize,
}

impl<L: Listener, P: Protocol> State<L, P> {
    fn new(listener: L, protocol: P, limits: Limits) -> std::io::Result<Self> {
        let poller = Poller::new()?;
        poller
            .watch(&listener, LISTENER, Interest::Readable)
            .map_err(std::io::Error::from_raw_os_error)?;
        Ok(State {
            listener,
            protocol,
            limits,
            poller,
            connections: HashMap::new(),
            next_key: LISTENER + 1,
        })
    }

    /// Waits for events (or the next deadline), handles them, closes the late.
    fn turn(&mut self) {
        let now = Instant::now();
        let next_deadline = self.connections.values().map(|c| c.deadline).min();
        let wait = next_deadline.map_or(STOP_POLL, |d| d.saturating_duration_since(now));
        for key in self.poller.wait(wait.min(STOP_POLL)) {
            if key == LISTENER {
                self.accept_all();
            } else {
                self.progress(key);
            }
        }
        let now = Instant::now();
        self.connections.retain(|_, c| c.deadline > now);
    }

    fn accept_all(&mut self) {
        loop {
            let stream = match self.listener.accept_stream() {
                Ok(stream) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("accept: {e}");
                    return;
                }
            };
            if self.connections.len() >= self.limits.connections {
                self.close_longest_idle();
            }
            let key = self.next_key;
            self.next_key += 1;
            if self.poller.watch(&stream, key, Interest::Readable).is_err() {
                continue;
            }
            let now = Instant::now();
            let connection = Connection {
                stream,
                received: Vec::new(),
                response: None,
                deadline: now + self.limits.deadline,
                last_active: now,
            };
            self.connections.insert(key, connection);
            // Data may have come with the connection: read it now.
            self.progress(key);
        }
    }

    fn close_longest_idle(&mut self) {
        let idle = self
            .connections
            .iter()
            .min_by_key(|(_, c)| c.last_active)
            .map(|(&key, _)| key);
        if let Some(key) = idle {
            // Dropping the stream closes it and takes it out of the epoll set.
            self.connections.remove(&key);
        }
    }

    /// Reads what there is, asks the protocol, writes what it can; closes the
    /// connection when its response is out or the client is gone.
    fn progress(&mut self, key: usize) {
        let Some(c) = self.connections.get_mut(&key) else {
            return;
        };
        c.last_active = Instant::now();
        if c.response.is_none() {
            let ended = match read_available(&mut c.stream, &mut c.received, P::LIMIT) {
                Ok(ended) => ended,
                Err(_) => {
                    self.connections.remove(&key);
                    return;
                }
            };
            match self.protocol.turn(&c.received, ended) {
                Turn::More if ended => {
                    self.connections.remove(&key);
                    return;
                }
                Turn::More => return,
                Turn::Respond(bytes) => c.response = Some((bytes, 0)),
            }
        }
        if let Some((bytes, sent)) = &mut c.response {
            match write_available(&mut c.stream, &bytes[*sent..]) {
                Ok(n) if *sent + n == bytes.len() => {
                    self.connections.remove(&key);
                }
                Ok(n) => {
                    *sent += n;
                    let _ = self.poller.rewatch(&c.stream, key, Interest::Writable);
                }
                Err(_) => {
                    self.connections.remove(&key);
                }
            }
        }
    }
}

/// Reads what is there now into `into`, up to `limit` bytes in all; true once the
/// client has closed its side.
fn read_available(
    stream: &mut impl Read,
    into: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<bool> {
    let mut chunk = [0u8; READ_CHUNK];
    while into.len() < limit {
        let room = (limit - into.len()).min(READ_CHUNK);
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Ok(true),
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Writes as much of `bytes` as the socket takes now.
fn write_available(stream: &mut impl Write, bytes: &[u8]) -> std::io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
