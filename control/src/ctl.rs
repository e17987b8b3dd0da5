//! The control socket: a Unix socket (mode 0600) whose thread (`serve`) reads one
//! request per connection, many connections at once, and hands each to the control
//! loop, which owns all state and answers between ticks; and the client side the
//! `dsrlb show|target|reload` commands use.

use crate::api::{Reply, Request};
use crate::serve::{Limits, Protocol, Server, Turn};
use crossbeam::channel::{self, Receiver, Sender};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A request and where its answer goes.
pub type Question = (Request, Sender<Reply>);

/// How the listener threads reach the control loop.
#[derive(Clone)]
pub struct Asker {
    questions: Sender<Question>,
}

/// The control loop answers within a tick; a reload takes longer (probes, Maglev).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_LIMIT: usize = 64 * 1024;

pub fn channel() -> (Asker, Receiver<Question>) {
    let (questions, answers) = channel::bounded(64);
    (Asker { questions }, answers)
}

impl Asker {
    pub fn ask(&self, request: Request) -> Result<Reply, String> {
        let (tx, rx) = channel::bounded(1);
        self.questions
            .send((request, tx))
            .map_err(|_| "dsrlb is stopping".to_owned())?;
        rx.recv_timeout(ANSWER_TIMEOUT)
            .map_err(|_| "the control loop did not answer in time".to_owned())
    }
}

pub struct ControlSocket {
    path: PathBuf,
    _server: Server,
}

impl ControlSocket {
    /// Listens on `path`, refusing if another dsrlb answers there; a stale socket
    /// file (nobody listening) is replaced.
    pub fn start(path: &Path, asker: Asker) -> Result<ControlSocket, String> {
        let shown = path.display();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("control socket {shown}: {e}"))?;
        }
        if std::fs::symlink_metadata(path).is_ok() {
            stale_socket_or_nothing(path).map_err(|e| format!("control socket: {e}"))?;
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "control socket {shown}: another dsrlb is running there (stop it, or set control.socket)"
                ));
            }
            std::fs::remove_file(path).map_err(|e| format!("control socket {shown}: {e}"))?;
        }
        let listener =
            UnixListener::bind(path).map_err(|e| format!("control socket {shown}: {e}"))?;
        // Owner only: the socket can reconfigure the appliance. Nobody can connect
        // before accept() runs below, so tightening after bind leaves no window
        // worth a umask dance (which would be process-wide).
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("control socket {shown}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("control socket {shown}: {e}"))?;
        let server = Server::spawn(
            "dsrlb-ctl",
            listener,
            ControlProtocol { asker },
            CONTROL_LIMITS,
        )
        .map_err(|e| format!("control socket thread: {e}"))?;
        log::info!("control socket {shown}");
        Ok(ControlSocket {
            path: path.to_owned(),
            _server: server,
        })
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A whole exchange, from accept to the reply sent: reading the request, the control
/// loop's answer (a reload takes longest) and writing it. Connections past the bound
/// close the one idle the longest.
const CONTROL_LIMITS: Limits = Limits {
    deadline: Duration::from_secs(IO_TIMEOUT.as_secs() + ANSWER_TIMEOUT.as_secs()),
    connections: 64,
};

/// One JSON request line in, one JSON reply line out.
pub struct ControlProtocol {
    asker: Asker,
}

impl ControlProtocol {
    pub fn new(asker: Asker) -> ControlProtocol {
        ControlProtocol { asker }
    }
}

impl Protocol for ControlProtocol {
    const LIMIT: usize = REQUEST_LIMIT;

    fn turn(&mut self, request: &[u8], ended: bool) -> Turn {
        let line = match request.iter().position(|&b| b == b'\n') {
            Some(end) => &request[..end],
            None if ended => request,
            None if request.len() >= Self::LIMIT => {
                let error = format!("a request is one line of at most {} bytes", Self::LIMIT);
                return Turn::Respond(reply_line(&Reply::Error(error)));
            }
            None => return Turn::More,
        };
        let reply = match serde_json::from_slice::<Request>(line) {
            Ok(request) => self.asker.ask(request).unwrap_or_else(Reply::Error),
            Err(e) => Reply::Error(format!("not a request: {e}")),
        };
        Turn::Respond(reply_line(&reply))
    }
}

fn reply_line(reply: &Reply) -> Vec<u8> {
    let mut text = serde_json::to_string(reply).unwrap_or_else(|e| {
        format!(
            "{{\"error\":\"cannot encode the answer: {}\"}}",
            e.to_string().replace('"', "'")
        )
    });
    text.push('\n');
    text.into_bytes()
}

/// The control socket's path holds nothing yet, or a socket: dsrlb replaces a socket
/// nobody listens on, and never removes anything else.
pub fn stale_socket_or_nothing(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => Err(format!(
            "`{}` exists and is not a socket (dsrlb replaces only a stale socket there)",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Asks the dsrlb listening on `path`.
pub fn call(path: &Path, request: &Request) -> Result<Reply, String> {
    let shown = path.display();
    let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "dsrlb is not running (nothing listens on {shown}; is it started with another control.socket?)"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("{shown}: permission denied (run as the user dsrlb runs as)")
        }
        _ => format!("{shown}: {e}"),
    })?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT + IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut text = serde_json::to_string(request).map_err(|e| e.to_string())?;
    text.push('\n');
    (&stream)
        .write_all(text.as_bytes())
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("{shown}: {e}"))?;
    if line.is_empty() {
        return Err(format!(
            "{shown}: dsrlb closed the connection without answering"
        ));
    }
    serde_json::from_str(&line).map_err(|e| format!("{shown}: unreadable answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dsrlb-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn socket_answers_through_the_loop_is_private_and_refuses_a_second_instance() {
        let dir = temp_dir("serve");
        let path = dir.join("sub/dsrlb.sock");
        let (asker, questions) = channel();
        let socket = ControlSocket::start(&path, asker.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let control_loop = std::thread::spawn(move || {
            for _ in 0..2 {
                let (request, reply) = questions.recv().unwrap();
                let answer = match request {
                    Request::Reload => Reply::Error("services[0].port: bad".into()),
                    other => Reply::Done(format!("{other:?}")),
                };
                reply.send(answer).unwrap();
            }
        });
        assert_eq!(
            call(&path, &Request::ShowStats).unwrap(),
            Reply::Done("ShowStats".into())
        );
        assert_eq!(
            call(&path, &Request::Reload).unwrap(),
            Reply::Error("services[0].port: bad".into())
        );
        control_loop.join().unwrap();

        // Garbage gets an error, not a hang or a crash.
        let mut raw = UnixStream::connect(&path).unwrap();
        raw.write_all(b"{\"command\":\"format_disk\"}\n").unwrap();
        let mut answer = String::new();
        BufReader::new(&raw).read_line(&mut answer).unwrap();
        assert!(answer.contains("not a request"), "{answer}");

        let second = ControlSocket::start(&path, asker);
        assert!(second.err().unwrap().contains("another dsrlb is running"));
        drop(socket);
        assert!(!path.exists(), "removed on stop");
        let err = call(&path, &Request::ShowServers).unwrap_err();
        assert!(err.contains("dsrlb is not running"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_client_that_says_nothing_does_not_hold_up_the_stop() {
        let dir = temp_dir("silent");
        let path = dir.join("dsrlb.sock");
        let (asker, _questions) = channel();
        let socket = ControlSocket::start(&path, asker).unwrap();
        let _silent = UnixStream::connect(&path).unwrap();
        std::thread::sleep(Duration::from_millis(100)); // accepted, now reading
        let stopping = std::time::Instant::now();
        drop(socket);
        assert!(
            stopping.elapsed() < Duration::from_secs(1),
            "stop waited {:?} for a silent client",
            stopping.elapsed()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A control socket whose loop answers every question with Done.
    fn answering(dir: &Path) -> (ControlSocket, PathBuf) {
        let path = dir.join("dsrlb.sock");
        let (asker, questions) = channel();
        let socket = ControlSocket::start(&path, asker).unwrap();
        std::thread::spawn(move || {
            while let Ok((_, reply)) = questions.recv() {
                let _ = reply.send(Reply::Done("ok".into()));
            }
        });
        (socket, path)
    }

    /// Whether the server still holds `stream` open (a read would wait) rather than
    /// having closed it.
    fn still_open(stream: &UnixStream) -> bool {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let open = matches!(
            (&mut &*stream).read(&mut byte),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).unwrap();
        open
    }

    #[test]
    fn silent_and_idle_clients_do_not_hold_up_show() {
        let dir = temp_dir("crowd");
        let (_socket, path) = answering(&dir);
        let show = || call(&path, &Request::ShowStats);
        // Answered while the silent client is still connected: not after its deadline.
        let silent = UnixStream::connect(&path).unwrap();
        assert_eq!(show().unwrap(), Reply::Done("ok".into()));
        assert!(still_open(&silent));
        // 500 idle connections: past the bound the idlest are closed, and show works
        // while the latest of them are still open.
        let idle: Vec<UnixStream> = (0..500)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        assert_eq!(show().unwrap(), Reply::Done("ok".into()));
        assert!(!still_open(&silent), "the idlest was closed for room");
        assert!(still_open(&idle[499]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_endless_request_line_gets_an_error() {
        let dir = temp_dir("long");
        let (_socket, path) = answering(&dir);
        let mut raw = UnixStream::connect(&path).unwrap();
        let _ = raw.write_all(&vec![b'x'; REQUEST_LIMIT + 10]);
        let mut answer = String::new();
        BufReader::new(&raw).read_line(&mut answer).unwrap();
        assert!(
            answer.contains("one line of at most 65536 bytes"),
            "{answer}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let dir = temp_dir("stale");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsrlb.sock");
        drop(UnixListener::bind(&path).unwrap()); // file stays, nobody listens
        let (asker, _questions) = channel();
        let socket = ControlSocket::start(&path, asker).unwrap();
        drop(socket);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
