//! Rendezvous: processes that did not spawn each other meet by a Unix socket path, and the
//! listener hands each connecting process the guest's end of a new [`Doorbell`] or [`Channel`]
//! with `SCM_RIGHTS`, after checking its credentials (taken from the kernel, never from what the
//! peer sends). The handshake is `docs/channel-layout.md`, section Rendezvous; the rule names
//! cited here are its.
//!
//! The calls of the first part are non-blocking and need no runtime: [`bind`], [`accept`],
//! [`read_hello`], [`send_reply`], [`connect`] and [`recv_reply`], which the Node binding drives
//! from its own event loop. [`Listener`], [`connect_doorbell`] and [`connect_channel`] are the same
//! on tokio, for Rust peers.

use std::ffi::OsStr;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::task::JoinSet;

use crate::channel::Channel;
use crate::doorbell::{retry_eintr, Doorbell, DoorbellHandle};
use crate::region::SharedRegion;

// r[rendezvous.message]
/// `magic` of a hello and a reply: the bytes `S D R V` in little-endian order.
pub const MAGIC: u32 = 0x5652_4453;
/// The handshake version this module speaks.
pub const VERSION: u32 = 1;
/// Bytes of a hello and of a reply.
pub const MESSAGE_SIZE: usize = 16;
/// How long a listener waits for a connecting process's hello before it drops the connection
/// (r[rendezvous.silent]).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// The listener's default `backlog`, as Node's `net.Server`.
pub const DEFAULT_BACKLOG: i32 = 511;
/// The socket file's default permissions.
pub const DEFAULT_MODE: u32 = 0o600;

/// What a connecting process asks for (r[rendezvous.hello]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
  /// A bare doorbell, and the listener's region if it has one.
  Doorbell = 1,
  /// A channel: a doorbell and a channel's region.
  Channel = 2,
}

impl Kind {
  fn from_word(word: u32) -> Option<Self> {
    match word {
      1 => Some(Kind::Doorbell),
      2 => Some(Kind::Channel),
      _ => None,
    }
  }
}

/// A reply's `status` (r[rendezvous.reply]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
  /// The fds ride with the reply.
  Accepted = 0,
  /// The listener's `allow` said no.
  Refused = 1,
  /// The listener serves the other kind.
  WrongKind = 2,
  /// The listener does not speak the hello's version; the reply's `version` is the one it speaks.
  UnsupportedVersion = 3,
}

impl Status {
  fn from_word(word: u32) -> Option<Self> {
    match word {
      0 => Some(Status::Accepted),
      1 => Some(Status::Refused),
      2 => Some(Status::WrongKind),
      3 => Some(Status::UnsupportedVersion),
      _ => None,
    }
  }
}

/// Why a rendezvous failed, beside the errno failures of the calls it makes. Reaches callers as an
/// `io::Error` whose inner error is this ([`RendezvousError::of`] finds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RendezvousError {
  /// Something other than a socket is at the path: it is left alone.
  NotASocket,
  /// The listener refused the connection.
  Refused,
  /// The listener serves the other kind (a doorbell listener asked for a channel, or back).
  WrongKind,
  /// The peer broke the handshake: what it sent is said.
  Protocol(String),
  /// The listener closed the connection (or died) before it replied.
  ListenerGone,
}

impl RendezvousError {
  /// The `code` of the error that reports this, in Rust and in JS.
  pub fn code(&self) -> &'static str {
    match self {
      RendezvousError::NotASocket => "ERR_DOORBELL_NOT_A_SOCKET",
      RendezvousError::Refused => "ERR_DOORBELL_REFUSED",
      RendezvousError::WrongKind => "ERR_DOORBELL_WRONG_KIND",
      RendezvousError::Protocol(_) => "ERR_DOORBELL_PROTOCOL",
      RendezvousError::ListenerGone => "ERR_DOORBELL_PEER_DEAD",
    }
  }

  /// This as an `io::Error`.
  pub fn into_error(self) -> io::Error {
    let kind = match self {
      RendezvousError::NotASocket => ErrorKind::AlreadyExists,
      RendezvousError::Refused => ErrorKind::PermissionDenied,
      RendezvousError::ListenerGone => ErrorKind::ConnectionReset,
      _ => ErrorKind::InvalidData,
    };
    io::Error::new(kind, self)
  }

  /// The rendezvous error that `err` reports, if it is one.
  pub fn of(err: &io::Error) -> Option<&Self> {
    err.get_ref()?.downcast_ref::<Self>()
  }
}

impl RendezvousError {
  /// What happened, as a sentence without the code.
  pub fn describe(&self) -> String {
    match self {
      RendezvousError::NotASocket => "The path exists and is not a socket: it is left alone".into(),
      RendezvousError::Refused => "The listener refused the connection".into(),
      RendezvousError::WrongKind => {
        "The listener serves the other kind (Doorbell or Channel)".into()
      }
      RendezvousError::Protocol(what) => format!("The peer broke the handshake: {what}"),
      RendezvousError::ListenerGone => {
        "The listener closed the connection before it replied".into()
      }
    }
  }
}

/// `ERR_DOORBELL_REFUSED: The listener refused the connection`
impl std::fmt::Display for RendezvousError {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    write!(f, "{}: {}", self.code(), self.describe())
  }
}

impl std::error::Error for RendezvousError {}

/// A result whose error names the call that failed, as Node's system errors do (`""` when the
/// error is a [`RendezvousError`]).
pub type Traced<T> = Result<T, (io::Error, &'static str)>;

fn last_error(syscall: &'static str) -> (io::Error, &'static str) {
  (io::Error::last_os_error(), syscall)
}

fn check(ret: libc::c_int, syscall: &'static str) -> Traced<libc::c_int> {
  if ret < 0 {
    Err(last_error(syscall))
  } else {
    Ok(ret)
  }
}

/// A socket address: a path in the file system or, on Linux, an abstract name (a path that starts
/// with a NUL byte), which has no file and so no permissions.
#[derive(Clone)]
pub struct SocketPath {
  addr: libc::sockaddr_un,
  len: libc::socklen_t,
  bytes: Vec<u8>,
}

impl std::fmt::Debug for SocketPath {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    write!(f, "SocketPath({:?})", String::from_utf8_lossy(&self.bytes))
  }
}

impl SocketPath {
  /// The most bytes a path may have: `sun_path` less its terminating NUL (an abstract name has
  /// none, and may use every byte).
  pub fn max_len(is_abstract: bool) -> usize {
    // SAFETY: sockaddr_un is plain data.
    let sun_path = unsafe { std::mem::zeroed::<libc::sockaddr_un>() }
      .sun_path
      .len();
    if is_abstract {
      sun_path
    } else {
      sun_path - 1
    }
  }

  /// Checks `path`: not empty, no NUL byte but an abstract name's first (Linux only), at most
  /// [`max_len`](Self::max_len) bytes (`ENAMETOOLONG` otherwise).
  pub fn new(path: impl AsRef<OsStr>) -> io::Result<Self> {
    let bytes = path.as_ref().as_bytes().to_vec();
    let is_abstract = bytes.first() == Some(&0);
    let invalid = |what: &str| io::Error::new(ErrorKind::InvalidInput, what.to_string());
    if bytes.is_empty() {
      return Err(invalid("a socket path must not be empty"));
    }
    if cfg!(not(any(target_os = "linux", target_os = "android"))) && is_abstract {
      return Err(invalid("abstract socket names exist on Linux only"));
    }
    if bytes[usize::from(is_abstract)..].contains(&0) {
      return Err(invalid("a socket path must not contain a NUL byte"));
    }
    if bytes.len() > Self::max_len(is_abstract) {
      return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, from) in addr.sun_path.iter_mut().zip(&bytes) {
      *to = *from as libc::c_char;
    }
    let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let len = (offset + bytes.len() + usize::from(!is_abstract)) as libc::socklen_t;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
      addr.sun_len = len as u8;
    }
    Ok(Self { addr, len, bytes })
  }

  /// Whether this is an abstract name (no file).
  pub fn is_abstract(&self) -> bool {
    self.bytes[0] == 0
  }

  /// The path's bytes, as given.
  pub fn as_bytes(&self) -> &[u8] {
    &self.bytes
  }

  fn sockaddr(&self) -> *const libc::sockaddr {
    &self.addr as *const libc::sockaddr_un as *const libc::sockaddr
  }

  fn c_path(&self) -> std::ffi::CString {
    std::ffi::CString::new(self.bytes.clone()).expect("checked: no NUL in a file path")
  }
}

/// The file a listener made: its device and inode, so that `close` unlinks that file only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
  dev: libc::dev_t,
  ino: libc::ino_t,
}

/// What is at a path: `None` for nothing; else whether it is a socket, and its id.
fn lstat(path: &std::ffi::CStr) -> Traced<Option<(bool, FileId)>> {
  let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
  if unsafe { libc::lstat(path.as_ptr(), stat.as_mut_ptr()) } < 0 {
    let err = last_error("lstat");
    return match err.0.raw_os_error() {
      Some(libc::ENOENT) => Ok(None),
      _ => Err(err),
    };
  }
  // SAFETY: lstat succeeded.
  let stat = unsafe { stat.assume_init() };
  let id = FileId {
    dev: stat.st_dev,
    ino: stat.st_ino,
  };
  Ok(Some((stat.st_mode & libc::S_IFMT == libc::S_IFSOCK, id)))
}

/// A new `AF_UNIX` stream socket, non-blocking and close-on-exec.
fn new_socket() -> Traced<OwnedFd> {
  #[cfg(any(target_os = "linux", target_os = "android"))]
  let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
  #[cfg(not(any(target_os = "linux", target_os = "android")))]
  let ty = libc::SOCK_STREAM;
  let fd = check(unsafe { libc::socket(libc::AF_UNIX, ty, 0) }, "socket")?;
  // SAFETY: socket has just returned it.
  let fd = unsafe { OwnedFd::from_raw_fd(fd) };
  #[cfg(not(any(target_os = "linux", target_os = "android")))]
  prepare_fd(fd.as_raw_fd()).map_err(|err| (err, "fcntl"))?;
  Ok(fd)
}

/// Close-on-exec, non-blocking and (macOS) no SIGPIPE, where the kernel cannot do it as it makes
/// the fd.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn prepare_fd(fd: RawFd) -> io::Result<()> {
  if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
    return Err(io::Error::last_os_error());
  }
  crate::doorbell::set_nonblocking(fd)?;
  let one: libc::c_int = 1;
  unsafe {
    libc::setsockopt(
      fd,
      libc::SOL_SOCKET,
      libc::SO_NOSIGPIPE,
      &one as *const libc::c_int as *const libc::c_void,
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    )
  };
  Ok(())
}

/// A bound, listening socket, and the file it made (none for an abstract name).
#[derive(Debug)]
pub struct Bound {
  /// The listening socket: non-blocking, close-on-exec.
  pub fd: OwnedFd,
  /// The socket file this listener made, for [`unlink_if_made`].
  pub made: Option<FileId>,
}

/// Binds and listens on `path` (r[rendezvous.path]): a live listener there fails with
/// `EADDRINUSE`; a socket file with no listener behind it (a connect to it is refused) is replaced;
/// anything else there fails with [`RendezvousError::NotASocket`] and is left alone. The socket
/// file gets `mode` (the umask does not narrow it).
pub fn bind(path: &SocketPath, mode: u32, backlog: i32) -> Traced<Bound> {
  let fd = new_socket()?;
  if !path.is_abstract() {
    // Linux makes the file with the socket's mode less the umask: no window with a wider mode.
    unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) };
  }
  let mut replaced = false;
  loop {
    if unsafe { libc::bind(fd.as_raw_fd(), path.sockaddr(), path.len) } == 0 {
      break;
    }
    let err = last_error("bind");
    if err.0.raw_os_error() != Some(libc::EADDRINUSE) || path.is_abstract() || replaced {
      return Err(err);
    }
    let c_path = path.c_path();
    match lstat(&c_path)? {
      None => {}
      Some((false, _)) => return Err((RendezvousError::NotASocket.into_error(), "")),
      Some((true, id)) => {
        if !is_stale(path)? {
          return Err(err);
        }
        // Unlinked only if it is still the file found stale.
        if lstat(&c_path)? == Some((true, id)) {
          check(unsafe { libc::unlink(c_path.as_ptr()) }, "unlink")?;
        }
      }
    }
    replaced = true;
  }
  let made = if path.is_abstract() {
    None
  } else {
    let c_path = path.c_path();
    check(
      unsafe { libc::chmod(c_path.as_ptr(), mode as libc::mode_t) },
      "chmod",
    )?;
    lstat(&c_path)?.map(|(_, id)| id)
  };
  let bound = Bound { fd, made };
  if let Err(err) = check(
    unsafe { libc::listen(bound.fd.as_raw_fd(), backlog) },
    "listen",
  ) {
    unlink_if_made(path, bound.made);
    return Err(err);
  }
  Ok(bound)
}

/// Whether the socket at `path` has no listener: a connect to it is refused.
fn is_stale(path: &SocketPath) -> Traced<bool> {
  let probe = new_socket()?;
  if unsafe { libc::connect(probe.as_raw_fd(), path.sockaddr(), path.len) } == 0 {
    return Ok(false);
  }
  let err = last_error("connect");
  match err.0.raw_os_error() {
    Some(libc::ECONNREFUSED) => Ok(true),
    // A live listener with a full backlog.
    Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => Ok(false),
    _ => Err(err),
  }
}

/// Unlinks the socket file at `path` if it is still the one `made` names: a file put there since
/// by someone else is left alone.
pub fn unlink_if_made(path: &SocketPath, made: Option<FileId>) {
  let Some(made) = made else { return };
  let c_path = path.c_path();
  if matches!(lstat(&c_path), Ok(Some((true, id))) if id == made) {
    unsafe { libc::unlink(c_path.as_ptr()) };
  }
}

/// A connecting process's credentials, from the kernel (r[rendezvous.credentials]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
  pub pid: i32,
  pub uid: u32,
  pub gid: u32,
}

/// The credentials of the process at the other end of the connected socket `fd`, as they were
/// when it connected: `SO_PEERCRED` on Linux; `getpeereid` and `LOCAL_PEERPID` on macOS.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_credentials(fd: BorrowedFd<'_>) -> Traced<Peer> {
  let mut cred = libc::ucred {
    pid: 0,
    uid: 0,
    gid: 0,
  };
  let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
  check(
    unsafe {
      libc::getsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_PEERCRED,
        &mut cred as *mut libc::ucred as *mut libc::c_void,
        &mut len,
      )
    },
    "getsockopt",
  )?;
  Ok(Peer {
    pid: cred.pid,
    uid: cred.uid,
    gid: cred.gid,
  })
}

/// See the Linux version.
#[cfg(any(target_os = "macos", target_os = "ios"))]
pub fn peer_credentials(fd: BorrowedFd<'_>) -> Traced<Peer> {
  let (mut uid, mut gid) = (0, 0);
  check(
    unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) },
    "getpeereid",
  )?;
  let mut pid: libc::pid_t = 0;
  let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
  check(
    unsafe {
      libc::getsockopt(
        fd.as_raw_fd(),
        libc::SOL_LOCAL,
        libc::LOCAL_PEERPID,
        &mut pid as *mut libc::pid_t as *mut libc::c_void,
        &mut len,
      )
    },
    "getsockopt",
  )?;
  Ok(Peer { pid, uid, gid })
}

/// Accepts one connection from the listening socket `fd` without blocking: `None` if none is
/// waiting. The connection is non-blocking and close-on-exec; its peer's credentials come with it.
pub fn accept(fd: BorrowedFd<'_>) -> Traced<Option<(OwnedFd, Peer)>> {
  loop {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let ret = unsafe {
      libc::accept4(
        fd.as_raw_fd(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
      )
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let ret = unsafe { libc::accept(fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut()) };
    if ret >= 0 {
      // SAFETY: accept has just returned it.
      let conn = unsafe { OwnedFd::from_raw_fd(ret) };
      #[cfg(not(any(target_os = "linux", target_os = "android")))]
      prepare_fd(conn.as_raw_fd()).map_err(|err| (err, "fcntl"))?;
      return match peer_credentials(conn.as_fd()) {
        Ok(peer) => Ok(Some((conn, peer))),
        // The peer is gone already (macOS fails getsockopt so): nothing to serve.
        Err(_) => continue,
      };
    }
    let err = last_error("accept");
    match err.0.raw_os_error() {
      Some(libc::EINTR) | Some(libc::ECONNABORTED) => continue,
      Some(code) if code == libc::EAGAIN || code == libc::EWOULDBLOCK => return Ok(None),
      _ => return Err(err),
    }
  }
}

fn message(words: [u32; 4]) -> [u8; MESSAGE_SIZE] {
  let mut bytes = [0u8; MESSAGE_SIZE];
  for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
    chunk.copy_from_slice(&word.to_ne_bytes());
  }
  bytes
}

fn words(bytes: &[u8; MESSAGE_SIZE]) -> [u32; 4] {
  std::array::from_fn(|i| u32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap()))
}

/// What a listener read from a connection (r[rendezvous.hello]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
  /// Nothing yet: wait for the socket to be readable.
  NotYet,
  /// A hello of this version, for this kind.
  Wants(Kind),
  /// A hello of another version: reply [`Status::UnsupportedVersion`], then close.
  UnsupportedVersion(u32),
  /// Not a hello, or the peer closed: close without a reply.
  Garbage,
}

/// Reads a connecting process's hello without blocking (r[rendezvous.hello]).
pub fn read_hello(fd: BorrowedFd<'_>) -> Traced<Hello> {
  let mut bytes = [0u8; MESSAGE_SIZE];
  let read = retry_eintr(|| unsafe {
    libc::recv(
      fd.as_raw_fd(),
      bytes.as_mut_ptr() as *mut libc::c_void,
      bytes.len(),
      libc::MSG_DONTWAIT,
    )
  });
  let read = match read {
    Ok(read) => read,
    Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(Hello::NotYet),
    Err(err) if crate::doorbell::is_peer_gone(&err) => return Ok(Hello::Garbage),
    Err(err) => return Err((err, "recv")),
  };
  if read < MESSAGE_SIZE {
    return Ok(Hello::Garbage);
  }
  let [magic, version, kind, reserved] = words(&bytes);
  Ok(match (magic, version, Kind::from_word(kind)) {
    (MAGIC, VERSION, Some(kind)) if reserved == 0 => Hello::Wants(kind),
    (MAGIC, VERSION, _) => Hello::Garbage,
    (MAGIC, version, _) => Hello::UnsupportedVersion(version),
    _ => Hello::Garbage,
  })
}

/// Sends a reply (r[rendezvous.reply]), with `fds` as `SCM_RIGHTS` when accepted. Never blocks:
/// the reply is the first thing the listener writes on the connection, so its buffer has room.
pub fn send_reply(fd: BorrowedFd<'_>, status: Status, fds: &[BorrowedFd<'_>]) -> Traced<()> {
  let bytes = message([MAGIC, VERSION, status as u32, fds.len() as u32]);
  let mut iov = libc::iovec {
    iov_base: bytes.as_ptr() as *mut libc::c_void,
    iov_len: bytes.len(),
  };
  let mut control = [0u64; CONTROL_WORDS];
  // SAFETY: msghdr is plain data.
  let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
  msg.msg_iov = &mut iov;
  msg.msg_iovlen = 1;
  if !fds.is_empty() {
    let data_len = (fds.len() * std::mem::size_of::<RawFd>()) as u32;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len) } as _;
    // SAFETY: the control buffer holds CMSG_SPACE of MAX_FDS fds.
    unsafe {
      let cmsg = libc::CMSG_FIRSTHDR(&msg);
      (*cmsg).cmsg_level = libc::SOL_SOCKET;
      (*cmsg).cmsg_type = libc::SCM_RIGHTS;
      (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
      let data = libc::CMSG_DATA(cmsg) as *mut RawFd;
      for (index, fd) in fds.iter().enumerate() {
        data.add(index).write_unaligned(fd.as_raw_fd());
      }
    }
  }
  let sent = retry_eintr(|| unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, SEND_FLAGS) })
    .map_err(|err| (err, "sendmsg"))?;
  if sent < bytes.len() {
    return Err((io::Error::from_raw_os_error(libc::EAGAIN), "sendmsg"));
  }
  Ok(())
}

/// The most fds a reply carries: a doorbell end and a region.
pub const MAX_FDS: usize = 2;
/// u64 words of control buffer, enough for [`MAX_FDS`] fds with room to spare (aligned for cmsghdr).
const CONTROL_WORDS: usize = 8;

#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

#[cfg(any(target_os = "linux", target_os = "android"))]
const RECV_FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RECV_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

/// Starts a connection to the listener at `path` and sends the hello for `kind`
/// (r[rendezvous.hello]): the socket to wait on for the reply. `EAGAIN` (Linux) means the
/// listener's backlog is full: try again later. `ENOENT` or `ECONNREFUSED` mean no listener.
pub fn connect(path: &SocketPath, kind: Kind) -> Traced<OwnedFd> {
  let fd = new_socket()?;
  if unsafe { libc::connect(fd.as_raw_fd(), path.sockaddr(), path.len) } < 0 {
    return Err(last_error("connect"));
  }
  let bytes = message([MAGIC, VERSION, kind as u32, 0]);
  let sent = retry_eintr(|| unsafe {
    libc::send(
      fd.as_raw_fd(),
      bytes.as_ptr() as *const libc::c_void,
      bytes.len(),
      SEND_FLAGS,
    )
  });
  match sent {
    Ok(MESSAGE_SIZE) => Ok(fd),
    Ok(_) => Err((io::Error::from_raw_os_error(libc::EAGAIN), "send")),
    Err(err) if crate::doorbell::is_peer_gone(&err) => {
      Err((RendezvousError::ListenerGone.into_error(), ""))
    }
    Err(err) => Err((err, "send")),
  }
}

/// Reads the listener's reply without blocking (r[rendezvous.reply]): `None` if it has not come
/// yet, else the fds it carried (the doorbell end first) for an accepted connection. Every other
/// reply, and a reply that breaks the protocol, is a [`RendezvousError`]; fds that came with it
/// are closed.
pub fn recv_reply(fd: BorrowedFd<'_>, kind: Kind) -> Traced<Option<Vec<OwnedFd>>> {
  let mut bytes = [0u8; MESSAGE_SIZE];
  let mut iov = libc::iovec {
    iov_base: bytes.as_mut_ptr() as *mut libc::c_void,
    iov_len: bytes.len(),
  };
  let mut control = [0u64; CONTROL_WORDS];
  // SAFETY: msghdr is plain data.
  let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
  msg.msg_iov = &mut iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
  msg.msg_controllen = std::mem::size_of_val(&control) as _;
  let read = retry_eintr(|| unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, RECV_FLAGS) });
  let read = match read {
    Ok(read) => read,
    Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(None),
    Err(err) if crate::doorbell::is_peer_gone(&err) => {
      return Err((RendezvousError::ListenerGone.into_error(), ""))
    }
    Err(err) => return Err((err, "recvmsg")),
  };
  // Owned first, so that every return below closes them.
  let fds = received_fds(&msg);
  let protocol = |what: String| Err((RendezvousError::Protocol(what).into_error(), ""));
  if read == 0 {
    return Err((RendezvousError::ListenerGone.into_error(), ""));
  }
  if read < MESSAGE_SIZE {
    return protocol(format!("a reply of {read} bytes"));
  }
  if msg.msg_flags & libc::MSG_CTRUNC != 0 {
    return protocol("more fds than a reply carries".into());
  }
  let [magic, version, status, count] = words(&bytes);
  if magic != MAGIC {
    return protocol(format!("a reply with magic {magic:#x}"));
  }
  match Status::from_word(status) {
    Some(Status::UnsupportedVersion) => {
      return protocol(format!(
        "the listener speaks version {version}, not {VERSION}"
      ))
    }
    _ if version != VERSION => return protocol(format!("a reply of version {version}")),
    Some(Status::Refused) => return Err((RendezvousError::Refused.into_error(), "")),
    Some(Status::WrongKind) => return Err((RendezvousError::WrongKind.into_error(), "")),
    Some(Status::Accepted) => {}
    None => return protocol(format!("a reply of status {status}")),
  }
  let expected = match kind {
    Kind::Doorbell => 1..=2,
    Kind::Channel => 2..=2,
  };
  if count as usize != fds.len() || !expected.contains(&fds.len()) {
    return protocol(format!(
      "a reply that names {count} fds and carries {}",
      fds.len()
    ));
  }
  #[cfg(not(any(target_os = "linux", target_os = "android")))]
  for fd in &fds {
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
  }
  Ok(Some(fds))
}

/// The fds of every `SCM_RIGHTS` message in `msg`, owned.
fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
  let mut fds = Vec::new();
  // SAFETY: msg was filled by recvmsg; the macros walk its control buffer within its length.
  unsafe {
    let mut cmsg = libc::CMSG_FIRSTHDR(msg);
    while !cmsg.is_null() {
      if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
        let data = libc::CMSG_DATA(cmsg) as *const RawFd;
        let bytes = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
        for index in 0..bytes / std::mem::size_of::<RawFd>() {
          fds.push(OwnedFd::from_raw_fd(data.add(index).read_unaligned()));
        }
      }
      cmsg = libc::CMSG_NXTHDR(msg, cmsg);
    }
  }
  fds
}

fn untraced((err, _): (io::Error, &'static str)) -> io::Error {
  err
}

/// `fd` in the current runtime's reactor, for readability.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
  // SAFETY: the AsyncFd owns the fd, which stays open and the same file while it is registered.
  unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
    .map_err(|err| err.into_parts().1)
}

/// Options of [`Listener::bind`].
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
  /// The socket file's permissions. Default [`DEFAULT_MODE`].
  pub mode: u32,
  /// `listen`'s backlog. Default [`DEFAULT_BACKLOG`].
  pub backlog: i32,
}

impl Default for ListenOptions {
  fn default() -> Self {
    Self {
      mode: DEFAULT_MODE,
      backlog: DEFAULT_BACKLOG,
    }
  }
}

/// A listener on tokio: [`accept`](Self::accept) gives each connecting process whose hello came,
/// with its credentials, to be answered with [`Incoming::doorbell`], [`Incoming::channel`] or
/// [`Incoming::refuse`]. Handshakes run concurrently: a silent or broken connection never holds
/// up the others, and is dropped after [`HELLO_TIMEOUT`]. Dropping the listener unlinks the socket
/// file it made. Needs a tokio runtime with I/O and time enabled.
pub struct Listener {
  fd: AsyncFd<OwnedFd>,
  path: SocketPath,
  made: Option<FileId>,
  handshakes: JoinSet<Option<Incoming>>,
}

/// A connecting process whose hello came, not yet answered. Dropped, it is closed unanswered.
#[derive(Debug)]
pub struct Incoming {
  conn: OwnedFd,
  peer: Peer,
  kind: Kind,
}

impl Listener {
  /// Binds `path` as [`bind`] does.
  pub fn bind(path: impl AsRef<OsStr>, options: ListenOptions) -> io::Result<Self> {
    let path = SocketPath::new(path)?;
    let Bound { fd, made } = bind(&path, options.mode, options.backlog).map_err(untraced)?;
    let fd = register(fd).inspect_err(|_| {
      unlink_if_made(&path, made);
    })?;
    Ok(Self {
      fd,
      path,
      made,
      handshakes: JoinSet::new(),
    })
  }

  /// The path it listens on.
  pub fn path(&self) -> &SocketPath {
    &self.path
  }

  /// The next connecting process whose hello came.
  pub async fn accept(&mut self) -> io::Result<Incoming> {
    loop {
      tokio::select! {
        ready = self.fd.readable() => {
          let mut guard = ready?;
          match accept(self.fd.get_ref().as_fd()).map_err(untraced)? {
            Some((conn, peer)) => {
              self.handshakes.spawn(handshake(conn, peer));
            }
            None => guard.clear_ready(),
          }
        }
        Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
          if let Ok(Some(incoming)) = done {
            return Ok(incoming);
          }
        }
      }
    }
  }
}

impl Drop for Listener {
  fn drop(&mut self) {
    unlink_if_made(&self.path, self.made);
  }
}

/// Reads a connection's hello within [`HELLO_TIMEOUT`]; answers a wrong version; `None` for a
/// connection to drop.
async fn handshake(conn: OwnedFd, peer: Peer) -> Option<Incoming> {
  let conn = register(conn).ok()?;
  let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
    loop {
      let mut guard = conn.readable().await.ok()?;
      match read_hello(conn.get_ref().as_fd()).ok()? {
        Hello::NotYet => guard.clear_ready(),
        hello => return Some(hello),
      }
    }
  })
  .await
  .ok()??;
  let conn = conn.into_inner();
  match hello {
    Hello::Wants(kind) => Some(Incoming { conn, peer, kind }),
    Hello::UnsupportedVersion(_) => {
      let _ = send_reply(conn.as_fd(), Status::UnsupportedVersion, &[]);
      None
    }
    _ => None,
  }
}

impl Incoming {
  /// The connecting process's credentials, from the kernel.
  pub fn peer(&self) -> Peer {
    self.peer
  }

  /// What it asked for.
  pub fn kind(&self) -> Kind {
    self.kind
  }

  /// Answers [`Status::Refused`]: the connecting side gets `ERR_DOORBELL_REFUSED`.
  pub fn refuse(self) -> io::Result<()> {
    send_reply(self.conn.as_fd(), Status::Refused, &[]).map_err(untraced)
  }

  /// Answers a doorbell request with the guest's end of a new pair, and `region`'s fd if given:
  /// this side's doorbell. A channel request gets [`Status::WrongKind`] and
  /// [`RendezvousError::WrongKind`] here. Needs a tokio runtime.
  pub fn doorbell(self, region: Option<&SharedRegion>) -> io::Result<Doorbell> {
    self.expect(Kind::Doorbell)?;
    let (doorbell, guest) = Doorbell::create_pair()?;
    let guest = OwnedFd::from(guest);
    let mut fds = vec![guest.as_fd()];
    fds.extend(region.map(|region| region.as_fd()));
    send_reply(self.conn.as_fd(), Status::Accepted, &fds).map_err(untraced)?;
    Ok(doorbell)
  }

  /// Answers a channel request with a new channel of `capacity` bytes per ring (as
  /// [`Channel::create_pair`]): this side, the host. Needs a tokio runtime.
  pub fn channel(self, capacity: usize) -> io::Result<Channel> {
    self.expect(Kind::Channel)?;
    let (channel, handle) = Channel::create_pair(capacity)?;
    let doorbell = OwnedFd::from(handle.doorbell);
    let fds = [doorbell.as_fd(), handle.region.as_fd()];
    send_reply(self.conn.as_fd(), Status::Accepted, &fds).map_err(untraced)?;
    Ok(channel)
  }

  fn expect(&self, kind: Kind) -> io::Result<()> {
    if self.kind == kind {
      return Ok(());
    }
    let _ = send_reply(self.conn.as_fd(), Status::WrongKind, &[]);
    Err(RendezvousError::WrongKind.into_error())
  }
}

/// How long a connecting side waits before it tries again when the listener's backlog is full.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);

/// Connects to the listener at `path` and waits for its reply: the fds it sent.
async fn connect_for(path: impl AsRef<OsStr>, kind: Kind) -> io::Result<Vec<OwnedFd>> {
  let path = SocketPath::new(path)?;
  let conn = loop {
    match connect(&path, kind) {
      Ok(conn) => break conn,
      Err((err, _)) if err.kind() == ErrorKind::WouldBlock => {
        tokio::time::sleep(BACKLOG_RETRY).await
      }
      Err((err, _)) => return Err(err),
    }
  };
  let conn = register(conn)?;
  loop {
    let mut guard = conn.readable().await?;
    match recv_reply(conn.get_ref().as_fd(), kind).map_err(untraced)? {
      Some(fds) => return Ok(fds),
      None => guard.clear_ready(),
    }
  }
}

/// Connects to a doorbell listener at `path`: this side's doorbell, and the listener's region if
/// it sent one. Fails with `ENOENT` or `ECONNREFUSED` when no one listens, and with a
/// [`RendezvousError`] (`ERR_DOORBELL_REFUSED`, ...). Needs a tokio runtime with I/O and time.
pub async fn connect_doorbell(
  path: impl AsRef<OsStr>,
) -> io::Result<(Doorbell, Option<SharedRegion>)> {
  let mut fds = connect_for(path, Kind::Doorbell).await?.into_iter();
  let doorbell = Doorbell::from_handle(DoorbellHandle::from(fds.next().expect("checked")))?;
  let region = match fds.next() {
    Some(fd) => Some(SharedRegion::from_fd(fd).map_err(|(err, _)| err)?),
    None => None,
  };
  Ok((doorbell, region))
}

/// Connects to a channel listener at `path`: this side of the channel, the guest.
pub async fn connect_channel(path: impl AsRef<OsStr>) -> io::Result<Channel> {
  let mut fds = connect_for(path, Kind::Channel).await?.into_iter();
  let doorbell = fds.next().expect("checked");
  let region = SharedRegion::from_fd(fds.next().expect("checked")).map_err(|(err, _)| err)?;
  Channel::from_parts(
    Doorbell::from_handle(DoorbellHandle::from(doorbell))?,
    region,
  )
}

#[cfg(test)]
mod tests;
