//! The rendezvous's napi surface over [`crate::rendezvous`]: every call is non-blocking, and the
//! sockets it makes (the listening socket, each connection) are `NativeDoorbell`s watched for
//! readability only (`NativeDoorbell::watch_readable`) by this thread's engine, so that a listener
//! and its handshakes run on the JS thread's event loop, in every runtime, and `ref()`/`unref()`
//! work as a doorbell's. The calls that read a socket take its fd, which must be one such watch's.
//! `lib/rendezvous.ts` drives them.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::io::IntoRawFd;

use napi::bindgen_prelude::Function;
use napi::Env;
use napi_derive::napi;

use crate::rendezvous::{self, FileId, Hello, Kind, RendezvousError, SocketPath, Status};

use super::doorbell::{with_watched_socket, NativeDoorbell};
use super::{coded, os_error, Error, Result};

/// `rendezvousReadHello`: no hello yet.
#[napi]
pub const HELLO_NOT_YET: i32 = 0;
/// A hello for a doorbell.
#[napi]
pub const HELLO_DOORBELL: i32 = Kind::Doorbell as i32;
/// A hello for a channel.
#[napi]
pub const HELLO_CHANNEL: i32 = Kind::Channel as i32;
/// A hello of another version: reply `REPLY_UNSUPPORTED_VERSION`, then close.
#[napi]
pub const HELLO_UNSUPPORTED_VERSION: i32 = 3;
/// Not a hello, or the peer closed: close without a reply.
#[napi]
pub const HELLO_GARBAGE: i32 = 4;

/// A reply's status (r[rendezvous.reply]).
#[napi]
pub const REPLY_ACCEPTED: i32 = Status::Accepted as i32;
#[napi]
pub const REPLY_REFUSED: i32 = Status::Refused as i32;
#[napi]
pub const REPLY_WRONG_KIND: i32 = Status::WrongKind as i32;
#[napi]
pub const REPLY_UNSUPPORTED_VERSION: i32 = Status::UnsupportedVersion as i32;

/// How long, in milliseconds, a listener waits for a hello (r[rendezvous.silent]).
#[napi]
pub const HELLO_TIMEOUT_MS: u32 = rendezvous::HELLO_TIMEOUT.as_millis() as u32;

/// The longest socket path, in bytes, and the longest abstract name (Linux).
#[napi]
pub fn rendezvous_max_path(is_abstract: bool) -> u32 {
  SocketPath::max_len(is_abstract) as u32
}

fn traced_error((err, syscall): (std::io::Error, &'static str)) -> Error {
  match RendezvousError::of(&err) {
    Some(reason) => coded(reason.code(), reason.describe()),
    None if err.kind() == std::io::ErrorKind::InvalidInput && err.raw_os_error().is_none() => {
      coded("ERR_INVALID_ARG_VALUE", err.to_string())
    }
    None => os_error(err, syscall),
  }
}

fn socket_path(path: &str) -> Result<SocketPath> {
  SocketPath::new(path).map_err(|err| traced_error((err, "bind")))
}

fn kind_of(kind: i32) -> Result<Kind> {
  match kind {
    HELLO_DOORBELL => Ok(Kind::Doorbell),
    HELLO_CHANNEL => Ok(Kind::Channel),
    _ => Err(coded("ERR_INVALID_ARG_VALUE", format!("no kind {kind}"))),
  }
}

/// The socket file a listener made, which `unlink` removes if it is still that file.
#[napi]
pub struct NativeSocketFile {
  path: SocketPath,
  made: Option<FileId>,
}

#[napi]
impl NativeSocketFile {
  /// Unlinks the file if it is still the one the listener made; idempotent.
  #[napi]
  pub fn unlink(&mut self) {
    rendezvous::unlink_if_made(&self.path, self.made.take());
  }
}

/// Binds and listens on `path` (r[rendezvous.path]): the listening socket, watched for
/// readability (a connection to accept), and the file it made.
#[napi]
pub fn rendezvous_listen(
  env: Env,
  path: String,
  mode: u32,
  backlog: i32,
  on_wake: Function<i32, ()>,
) -> Result<(NativeDoorbell, NativeSocketFile)> {
  let path = socket_path(&path)?;
  let bound = rendezvous::bind(&path, mode, backlog).map_err(traced_error)?;
  let mut file = NativeSocketFile {
    path,
    made: bound.made,
  };
  match NativeDoorbell::watch_readable(env, bound.fd, on_wake) {
    Ok(listener) => Ok((listener, file)),
    Err(err) => {
      file.unlink();
      Err(err)
    }
  }
}

fn on_socket<T>(fd: i32, call: impl FnOnce(BorrowedFd<'_>) -> Result<T>) -> Result<T> {
  with_watched_socket(fd, |socket| call(socket.as_fd()))
}

/// Accepts one connection from the listener on `fd`, watched for readability (its hello); `null`
/// if none is waiting.
#[napi]
pub fn rendezvous_accept(
  env: Env,
  fd: i32,
  on_wake: Function<i32, ()>,
) -> Result<Option<NativeDoorbell>> {
  let accepted = on_socket(fd, |socket| {
    rendezvous::accept(socket).map_err(traced_error)
  })?;
  match accepted {
    Some((conn, _)) => NativeDoorbell::watch_readable(env, conn, on_wake).map(Some),
    None => Ok(None),
  }
}

/// A connecting process's credentials, from the kernel.
#[napi(object)]
pub struct NativePeer {
  pub pid: i32,
  pub uid: u32,
  pub gid: u32,
}

/// The credentials of the process connected to the connection on `fd`.
#[napi]
pub fn rendezvous_peer(fd: i32) -> Result<NativePeer> {
  on_socket(fd, |socket| {
    let peer = rendezvous::peer_credentials(socket).map_err(traced_error)?;
    Ok(NativePeer {
      pid: peer.pid,
      uid: peer.uid,
      gid: peer.gid,
    })
  })
}

/// Reads the hello on the connection on `fd`: a `HELLO_*` value.
#[napi]
pub fn rendezvous_read_hello(fd: i32) -> Result<i32> {
  on_socket(fd, |socket| {
    Ok(
      match rendezvous::read_hello(socket).map_err(traced_error)? {
        Hello::NotYet => HELLO_NOT_YET,
        Hello::Wants(kind) => kind as i32,
        Hello::UnsupportedVersion(_) => HELLO_UNSUPPORTED_VERSION,
        Hello::Garbage => HELLO_GARBAGE,
      },
    )
  })
}

/// Sends the reply `status` on the connection on `fd`, with the fds that are not -1 (the doorbell
/// end first, then the region) when accepted. The fds stay open: the caller closes its copies.
#[napi]
pub fn rendezvous_reply(fd: i32, status: i32, doorbell_fd: i32, region_fd: i32) -> Result<()> {
  let status = match status {
    REPLY_ACCEPTED => Status::Accepted,
    REPLY_REFUSED => Status::Refused,
    REPLY_WRONG_KIND => Status::WrongKind,
    REPLY_UNSUPPORTED_VERSION => Status::UnsupportedVersion,
    _ => {
      return Err(coded(
        "ERR_INVALID_ARG_VALUE",
        format!("no status {status}"),
      ))
    }
  };
  let sent: Vec<i32> = [doorbell_fd, region_fd]
    .into_iter()
    .filter(|fd| *fd >= 0)
    .collect();
  for sent_fd in &sent {
    crate::doorbell::validate_fd(*sent_fd).map_err(|err| os_error(err, "fcntl"))?;
  }
  on_socket(fd, |socket| {
    // SAFETY: each fd was checked open above, and is only borrowed for the sendmsg.
    let fds: Vec<BorrowedFd<'_>> = sent
      .iter()
      .map(|fd| unsafe { BorrowedFd::borrow_raw(*fd) })
      .collect();
    rendezvous::send_reply(socket, status, &fds).map_err(traced_error)
  })
}

/// Connects to the listener at `path` and sends the hello for `kind` (`HELLO_DOORBELL` or
/// `HELLO_CHANNEL`): the connection, watched for readability (the reply). Fails with `EAGAIN` when
/// the listener's backlog is full.
#[napi]
pub fn rendezvous_connect(
  env: Env,
  path: String,
  kind: i32,
  on_wake: Function<i32, ()>,
) -> Result<NativeDoorbell> {
  let path = socket_path(&path)?;
  let conn = rendezvous::connect(&path, kind_of(kind)?).map_err(traced_error)?;
  NativeDoorbell::watch_readable(env, conn, on_wake)
}

/// Reads the reply on the connection on `fd`: `null` if it has not come, else the fds it carried
/// (the doorbell end first), which the caller owns now. A refusal, a reply of the wrong kind, a
/// broken reply and a listener gone are coded errors, with any fds that came closed.
#[napi]
pub fn rendezvous_recv_reply(fd: i32, kind: i32) -> Result<Option<Vec<i32>>> {
  let kind = kind_of(kind)?;
  let fds = on_socket(fd, |socket| {
    rendezvous::recv_reply(socket, kind).map_err(traced_error)
  })?;
  Ok(fds.map(|fds| fds.into_iter().map(OwnedFd::into_raw_fd).collect()))
}
