//! Socketpair doorbell for cross-process wakeup.
//!
//! Uses a Unix domain socketpair (SOCK_STREAM) wrapped in `tokio::io::unix::AsyncFd`
//! for efficient async notification between processes sharing memory.
//!
//! [`DoorbellSocket`] is the doorbell without a reactor: every call on it is non-blocking, and
//! whoever holds it decides how to learn that it is readable. [`Doorbell`] watches it with tokio;
//! the Node binding watches it on Node's own event loop.
//!
//! Ported from the shared-memory IPC seed (`shared/seed/doorbell.rs`), with its defects fixed:
//! a STREAM pair (peer death is seen), close-on-exec, EINTR retries, EOF as a peer-gone error,
//! ENOBUFS as BufferFull, every PeerDead result marking the doorbell dead, no SIGPIPE, and
//! constructors that take ownership of an fd only when they succeed.

use std::io::{self, ErrorKind};
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Result of a doorbell signal attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalResult {
  /// Signal was sent successfully.
  Sent,
  /// Buffer was full but peer is alive (signal coalesced with pending ones).
  BufferFull,
  /// Peer has disconnected (socket broken).
  PeerDead,
}

/// Opaque handle for passing doorbell endpoints between processes.
///
/// On Unix, this wraps a raw file descriptor.
///
/// Use [`Doorbell::create_pair`] to create a pair, then pass this handle
/// to the child process and call [`Doorbell::from_handle`] to reconstruct.
#[derive(Debug)]
pub struct DoorbellHandle(OwnedFd);

impl DoorbellHandle {
  /// Get the raw file descriptor (for passing to child processes).
  pub fn as_raw_fd(&self) -> RawFd {
    self.0.as_raw_fd()
  }

  /// Create from a raw file descriptor (in child process after spawn).
  ///
  /// # Safety
  /// The caller must ensure the FD is valid and not owned by anything else.
  pub unsafe fn from_raw_fd(fd: RawFd) -> Self {
    // SAFETY: Caller ensures FD is valid and not owned
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Self(fd)
  }

  /// Format as a command-line argument value.
  pub fn to_arg(&self) -> String {
    self.0.as_raw_fd().to_string()
  }

  /// Parse from a command-line argument value.
  ///
  /// # Safety
  /// The FD must be valid and not owned by anything else.
  /// This is typically only safe to call in a child process that inherited the FD.
  pub unsafe fn from_arg(s: &str) -> Result<Self, std::num::ParseIntError> {
    let fd: RawFd = s.parse()?;
    let handle = unsafe { Self::from_raw_fd(fd) };
    Ok(handle)
  }

  /// The CLI argument name for this platform.
  pub const ARG_NAME: &'static str = "--doorbell-fd";
}

/// The value of the last `flag N` or `flag=N` in `args` (a `--doorbell-fd` or `--region-fd` given
/// to a guest): the last one wins, as with Node's own flags and the package's `fromArgv`.
pub fn fd_arg<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
  args.iter().enumerate().rev().find_map(|(index, arg)| {
    if arg == flag {
      args.get(index + 1).map(String::as_str)
    } else {
      arg.strip_prefix(flag)?.strip_prefix('=')
    }
  })
}

impl AsRawFd for DoorbellHandle {
  fn as_raw_fd(&self) -> RawFd {
    self.0.as_raw_fd()
  }
}

impl From<OwnedFd> for DoorbellHandle {
  fn from(fd: OwnedFd) -> DoorbellHandle {
    DoorbellHandle(fd)
  }
}

impl From<DoorbellHandle> for OwnedFd {
  fn from(handle: DoorbellHandle) -> OwnedFd {
    handle.0
  }
}

/// A doorbell for cross-process wakeup.
///
/// Uses a Unix domain socketpair (SOCK_STREAM) for bidirectional signaling.
/// Wrapped in `AsyncFd` for async readiness notification via epoll/kqueue.
pub struct Doorbell {
  async_fd: AsyncFd<DoorbellSocket>,
}

/// One end of a doorbell pair, without a reactor: signals, drains and diagnostics, all
/// non-blocking. [`Doorbell`] adds tokio's readiness; another event loop can watch
/// [`AsRawFd::as_raw_fd`] for readability and call [`Self::try_drain`] instead.
#[derive(Debug)]
pub struct DoorbellSocket {
  fd: OwnedFd,
  /// Set once a signal found the peer gone or a drain saw its end closed.
  peer_dead: AtomicBool,
  /// A zero-length read means EOF only on a stream socket; a DGRAM peer may send empty datagrams.
  is_stream: bool,
}

/// The error a wait returns once the peer's end is closed.
pub fn peer_gone() -> io::Error {
  io::Error::new(ErrorKind::ConnectionReset, "doorbell peer is gone")
}

/// Whether `err` means the peer's end is closed, rather than a fault of ours.
pub fn is_peer_gone(err: &io::Error) -> bool {
  matches!(
    err.kind(),
    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::NotConnected
  )
}

/// Reads the rings waiting in the socket and returns how many it read (bytes on a stream socket,
/// datagrams otherwise). Rings that arrived before the peer closed count first: EOF is an error
/// only when nothing was drained in the same call.
///
/// A stream socket is drained with one recv, which takes every byte queued, up to
/// [`DRAIN_BUFFER_BYTES`]: more than a pair made here can queue (see [`SEND_BUFFER_BYTES`]). The
/// seed read until EAGAIN, which costs a recv that finds nothing, and never ends while a peer
/// rings flat out: a recv goes on taking the rings that the peer adds as it frees room, so even one
/// recv is bounded only by its buffer, which is why the buffer is small. A datagram socket gives
/// one ring per recv, read up to [`MAX_DRAIN_READS`] times. What a drain leaves stays readable, for
/// the next wait.
fn drain_fd(fd: RawFd, is_stream: bool, would_block_is_error: bool) -> io::Result<usize> {
  let mut buf = [0u8; DRAIN_BUFFER_BYTES];
  let mut drained = 0;

  for _ in 0..MAX_DRAIN_READS {
    let ret = retry_eintr(|| unsafe {
      libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0)
    });

    let err = match ret {
      Ok(n) if is_stream && n > 0 => return Ok(n),
      Ok(_) if !is_stream => {
        drained += 1;
        continue;
      }
      Ok(_) => {
        return if drained > 0 {
          Ok(drained)
        } else {
          Err(peer_gone())
        }
      }
      Err(err) => err,
    };

    if err.kind() == ErrorKind::WouldBlock {
      if drained > 0 {
        return Ok(drained);
      }
      return if would_block_is_error {
        Err(err)
      } else {
        Ok(0)
      };
    }

    if drained > 0 && is_peer_gone(&err) {
      return Ok(drained);
    }
    return Err(err);
  }
  Ok(drained)
}

/// The most rings one drain takes from a stream socket.
pub const DRAIN_BUFFER_BYTES: usize = 8;

/// The most datagrams one drain reads.
pub const MAX_DRAIN_READS: usize = 16;

impl Doorbell {
  /// Create a socketpair and return (host_doorbell, guest_handle).
  ///
  /// The guest_handle should be passed to the plugin (e.g., via command line).
  /// The host keeps the Doorbell. Must be called within a tokio runtime.
  pub fn create_pair() -> io::Result<(Self, DoorbellHandle)> {
    let (host_fd, peer_fd) = create_socketpair()?;
    let host = Self::from_owned_fd(host_fd).map_err(|(err, _)| err)?;
    Ok((host, DoorbellHandle(peer_fd)))
  }

  /// Create a Doorbell from an opaque handle (guest/plugin side).
  ///
  /// This is the cross-platform way to reconstruct a Doorbell in a spawned process.
  /// Consumes the handle, taking ownership of the underlying file descriptor.
  pub fn from_handle(handle: DoorbellHandle) -> io::Result<Self> {
    Self::from_owned_fd(handle.0).map_err(|(err, _)| err)
  }

  /// Create a Doorbell from a raw file descriptor (plugin side).
  ///
  /// Prefer [`Self::from_handle`] for cross-platform code. Ownership of `fd` passes to the
  /// Doorbell only on success: on error the fd is left open and as it was.
  /// Must be called within a tokio runtime.
  pub fn from_raw_fd(fd: RawFd) -> io::Result<Self> {
    adopt_raw_fd(fd, Self::from_owned_fd)
  }

  /// Wraps an fd this process owns; on failure hands it back untouched but for O_NONBLOCK.
  fn from_owned_fd(fd: OwnedFd) -> Result<Self, (io::Error, OwnedFd)> {
    let socket = DoorbellSocket::checked(fd)?;
    let doorbell = Self::from_socket(socket).map_err(|(err, socket)| (err, socket.fd))?;
    doorbell.socket().mark_adopted();
    Ok(doorbell)
  }

  /// Signal the other side.
  ///
  /// Sends a 1-byte message. If the socket buffer is full (EAGAIN),
  /// the signal is dropped (the other side is already signaled).
  ///
  /// Returns `SignalResult::PeerDead` if the peer has disconnected
  /// (EPIPE, ECONNRESET, ENOTCONN), and marks the doorbell dead.
  pub async fn signal(&self) -> SignalResult {
    self.signal_now()
  }

  /// [`Self::signal`] without the future: the send never blocks.
  pub fn signal_now(&self) -> SignalResult {
    self.async_fd.get_ref().signal_now()
  }

  /// Check if the peer appears to be dead (a signal failed, or a wait saw its end closed).
  pub fn is_peer_dead(&self) -> bool {
    self.async_fd.get_ref().is_peer_dead()
  }

  /// Wait for a signal from the other side.
  ///
  /// Fails with a [`peer_gone`] error once the peer's end is closed and every ring it sent
  /// before closing has been delivered.
  pub async fn wait(&self) -> io::Result<()> {
    if self.try_drain()? {
      return Ok(());
    }
    std::future::poll_fn(|cx| self.poll_wait(cx))
      .await
      .map(|_| ())
  }

  /// [`Self::wait`] as a poll, for a caller that has no task (the Node binding's tokio engine
  /// passes a waker of its own): drains and returns the number of rings if the reactor has seen
  /// the socket readable, else registers `cx`'s waker, to be woken from the reactor's thread on
  /// the next ring or on the peer's death. Nothing is drained while it returns `Pending`.
  pub fn poll_wait(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    loop {
      let mut guard = match self.async_fd.poll_read_ready(cx) {
        Poll::Ready(Ok(guard)) => guard,
        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
        Poll::Pending => return Poll::Pending,
      };
      match guard.try_io(|inner| inner.get_ref().drain(true)) {
        Ok(Ok(rings)) => {
          // Fewer rings than a drain takes means the socket was empty after it: clearing the
          // readiness seen before the drain saves the next wait a recv that finds nothing, and
          // loses nothing (tokio keeps a readiness that arrived since, and never clears EOF).
          if rings < self.async_fd.get_ref().drain_bound() {
            guard.clear_ready();
          }
          return Poll::Ready(Ok(rings));
        }
        Ok(Err(err)) => return Poll::Ready(Err(err)),
        Err(_would_block) => continue,
      }
    }
  }

  /// Whether the socket is readable (data, a connection to accept, EOF or an error), as a poll
  /// that reads nothing: for a socket watched for readiness only (the rendezvous's sockets),
  /// whose reads its owner makes. Registers `cx`'s waker while it is not.
  pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    loop {
      let mut guard = match self.async_fd.poll_read_ready(cx) {
        Poll::Ready(Ok(guard)) => guard,
        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
        Poll::Pending => return Poll::Pending,
      };
      if self.socket().is_readable() {
        return Poll::Ready(Ok(()));
      }
      // Consumed since the reactor saw it: wait for the next readiness (tokio keeps one that
      // arrived since the guard was taken).
      guard.clear_ready();
    }
  }

  /// Registers `socket` with the current tokio runtime's reactor; on failure hands it back.
  /// Must be called within a tokio runtime.
  pub fn from_socket(socket: DoorbellSocket) -> Result<Self, (io::Error, DoorbellSocket)> {
    // SAFETY: the socket owns its fd, which stays open and the same socket while it is owned.
    match unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) } {
      Ok(async_fd) => Ok(Self { async_fd }),
      Err(err) => {
        let (socket, err) = err.into_parts();
        Err((err, socket))
      }
    }
  }

  /// The socket without its reactor.
  pub fn socket(&self) -> &DoorbellSocket {
    self.async_fd.get_ref()
  }

  /// Deregisters the socket from the reactor and returns it, still open.
  pub fn into_socket(self) -> DoorbellSocket {
    self.async_fd.into_inner()
  }

  /// Drain pending rings without blocking: `Ok(true)` if there were any, `Ok(false)` if none,
  /// a [`peer_gone`] error if the peer's end is closed and nothing was pending.
  pub fn try_drain(&self) -> io::Result<bool> {
    self.async_fd.get_ref().try_drain()
  }

  /// Drain any pending signals without blocking; true if there were any.
  pub fn drain(&self) -> bool {
    self.try_drain().unwrap_or(false)
  }

  /// Accept an incoming connection (no-op on Unix).
  ///
  /// On Unix, socketpairs are already connected when created, so this is a no-op.
  pub async fn accept(&self) -> io::Result<()> {
    // Unix socketpairs are already connected
    Ok(())
  }

  /// Get the number of bytes pending in the socket buffer (for diagnostics).
  pub fn pending_bytes(&self) -> usize {
    self.async_fd.get_ref().pending_bytes()
  }
}

/// Takes ownership of `fd` through `adopt` only if it succeeds: on error the fd stays open.
fn adopt_raw_fd<T>(
  fd: RawFd,
  adopt: impl FnOnce(OwnedFd) -> Result<T, (io::Error, OwnedFd)>,
) -> io::Result<T> {
  validate_socket(fd)?;
  // SAFETY: fd is open; on failure it is released again below, never closed.
  let owned = unsafe { OwnedFd::from_raw_fd(fd) };
  adopt(owned).map_err(|(err, owned)| {
    let _ = owned.into_raw_fd();
    err
  })
}

impl DoorbellSocket {
  /// Create a socketpair: (host socket, guest handle). Needs no runtime.
  pub fn create_pair() -> io::Result<(Self, DoorbellHandle)> {
    let (host_fd, peer_fd) = create_socketpair()?;
    let host = Self::from_owned_fd(host_fd).map_err(|(err, _)| err)?;
    Ok((host, DoorbellHandle(peer_fd)))
  }

  /// Takes ownership of `fd`, an open socket, on success only: on error it is left open and as
  /// it was.
  pub fn from_raw_fd(fd: RawFd) -> io::Result<Self> {
    adopt_raw_fd(fd, Self::from_owned_fd)
  }

  /// Wraps an fd this process owns (a consumed [`DoorbellHandle`], say); on failure hands it
  /// back untouched but for O_NONBLOCK.
  pub fn from_owned_fd(fd: OwnedFd) -> Result<Self, (io::Error, OwnedFd)> {
    let socket = Self::checked(fd)?;
    socket.mark_adopted();
    Ok(socket)
  }

  /// Checks that `fd` is a socket and makes it non-blocking: every step that can fail.
  fn checked(fd: OwnedFd) -> Result<Self, (io::Error, OwnedFd)> {
    let raw = fd.as_raw_fd();
    match socket_type(raw).and_then(|ty| set_nonblocking(raw).map(|()| ty)) {
      Ok(ty) => Ok(Self {
        fd,
        peer_dead: AtomicBool::new(false),
        is_stream: ty == libc::SOCK_STREAM,
      }),
      Err(err) => Err((err, fd)),
    }
  }

  /// The last step of adoption, once nothing can fail any more.
  fn mark_adopted(&self) {
    let raw = self.fd.as_raw_fd();
    // An adopted fd (a guest's inherited fd 3) must not leak into this process's own children.
    let _ = set_cloexec(raw);
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let _ = set_nosigpipe(raw);
  }

  /// Sends one ring; never blocks. See [`Doorbell::signal`].
  pub fn signal_now(&self) -> SignalResult {
    let buf = [1u8];

    let ret = retry_eintr(|| unsafe {
      libc::send(
        self.fd.as_raw_fd(),
        buf.as_ptr() as *const libc::c_void,
        buf.len(),
        libc::MSG_DONTWAIT | SEND_NOSIGNAL,
      )
    });

    let result = match ret {
      Ok(_) => SignalResult::Sent,
      Err(err) => classify_send_error(&err),
    };
    if result == SignalResult::PeerDead {
      self.peer_dead.store(true, Ordering::Relaxed);
    }
    result
  }

  /// Check if the peer appears to be dead (a signal failed, or a drain saw its end closed).
  pub fn is_peer_dead(&self) -> bool {
    self.peer_dead.load(Ordering::Relaxed)
  }

  /// Drain pending rings without blocking: `Ok(true)` if there were any, `Ok(false)` if none,
  /// a [`peer_gone`] error if the peer's end is closed and nothing was pending.
  pub fn try_drain(&self) -> io::Result<bool> {
    self.try_drain_rings().map(|rings| rings > 0)
  }

  /// [`Self::try_drain`], counting the rings drained: more than one means they coalesced.
  pub fn try_drain_rings(&self) -> io::Result<usize> {
    self.drain(false)
  }

  /// The most rings one drain takes: a drain that took fewer emptied the socket.
  fn drain_bound(&self) -> usize {
    if self.is_stream {
      DRAIN_BUFFER_BYTES
    } else {
      MAX_DRAIN_READS
    }
  }

  fn drain(&self, would_block_is_error: bool) -> io::Result<usize> {
    drain_fd(self.fd.as_raw_fd(), self.is_stream, would_block_is_error).inspect_err(|err| {
      if is_peer_gone(err) {
        self.peer_dead.store(true, Ordering::Relaxed);
      }
    })
  }

  /// Whether a read (or an accept) would not block now: `poll` with no timeout.
  pub fn is_readable(&self) -> bool {
    let mut pollfd = libc::pollfd {
      fd: self.fd.as_raw_fd(),
      events: libc::POLLIN,
      revents: 0,
    };
    let ret = unsafe { libc::poll(&mut pollfd, 1, 0) };
    ret > 0 && pollfd.revents != 0
  }

  /// Get the number of bytes pending in the socket buffer (for diagnostics).
  pub fn pending_bytes(&self) -> usize {
    let mut pending: libc::c_int = 0;
    let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::FIONREAD, &mut pending) };
    if ret < 0 {
      0
    } else {
      pending as usize
    }
  }
}

impl From<DoorbellSocket> for OwnedFd {
  /// Lets go of the socket without closing it, as `IntoRawFd` does; it stays non-blocking.
  fn from(socket: DoorbellSocket) -> OwnedFd {
    socket.fd
  }
}

impl AsFd for DoorbellSocket {
  fn as_fd(&self) -> BorrowedFd<'_> {
    self.fd.as_fd()
  }
}

impl AsRawFd for DoorbellSocket {
  fn as_raw_fd(&self) -> RawFd {
    self.fd.as_raw_fd()
  }
}

impl AsRawFd for Doorbell {
  fn as_raw_fd(&self) -> RawFd {
    self.async_fd.get_ref().as_raw_fd()
  }
}

/// What a failed send means: a full buffer still rings the peer; any other error (EPIPE,
/// ECONNRESET, ENOTCONN, a DGRAM peer's ECONNREFUSED, ...) means the peer cannot be reached.
fn classify_send_error(err: &io::Error) -> SignalResult {
  // ENOBUFS (55 on macOS/BSD, 105 on Linux) means socket buffer is full
  // This is fine - there's already a pending signal, so we can drop this one
  if err.kind() == ErrorKind::WouldBlock || err.raw_os_error() == Some(libc::ENOBUFS) {
    SignalResult::BufferFull
  } else {
    SignalResult::PeerDead
  }
}

/// Runs a libc call that returns -1 on error, again for as long as a signal interrupts it.
pub(crate) fn retry_eintr(mut call: impl FnMut() -> libc::ssize_t) -> io::Result<usize> {
  loop {
    let ret = call();
    if ret >= 0 {
      return Ok(ret as usize);
    }
    let err = io::Error::last_os_error();
    if err.kind() != ErrorKind::Interrupted {
      return Err(err);
    }
  }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_NOSIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_NOSIGNAL: libc::c_int = 0;

fn create_socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
  let mut fds = [0i32; 2];

  // Blocking: O_NONBLOCK belongs to the file description, which a child that inherits the guest
  // end shares, and a plain blocking peer (a C `recv`, Python's `socket.recv`) must be able to
  // block. Each end is made non-blocking when this process adopts it (`from_owned_fd`).
  #[cfg(target_os = "linux")]
  let sock_type = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
  #[cfg(not(target_os = "linux"))]
  let sock_type = libc::SOCK_STREAM;

  let ret = unsafe { libc::socketpair(libc::AF_UNIX, sock_type, 0, fds.as_mut_ptr()) };
  if ret < 0 {
    return Err(io::Error::last_os_error());
  }

  let fd0 = unsafe { OwnedFd::from_raw_fd(fds[0]) };
  let fd1 = unsafe { OwnedFd::from_raw_fd(fds[1]) };

  for fd in [&fd0, &fd1] {
    #[cfg(not(target_os = "linux"))]
    set_cloexec(fd.as_raw_fd())?;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    set_nosigpipe(fd.as_raw_fd())?;
    set_socket_option(fd.as_raw_fd(), libc::SO_SNDBUF, SEND_BUFFER_BYTES)?;
  }

  Ok((fd0, fd1))
}

/// The send buffer asked for on each end of a new pair; Linux raises it to its minimum, 4,608
/// bytes, which holds six 1-byte rings. A ring carries no data and one undrained ring is enough to
/// wake the peer, so a sender that rings faster than its peer drains gets `BufferFull` after a
/// few, cheaply, rather than queueing hundreds of 1-byte buffers that the peer's drain must then
/// free one by one. Measured with a guest ringing flat out (`node bench/streaming.mjs`): with the
/// default buffer the host fell from ~350,000 to a few thousand wakes per second once its queue
/// had filled; with a 10-ring buffer and 16-ring drains, one run in four settled at ~48,000; with
/// this one and 8-ring drains, none of 30 did.
const SEND_BUFFER_BYTES: libc::c_int = 2048;

/// Set a file descriptor to non-blocking mode.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
  let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
  if flags < 0 {
    return Err(io::Error::last_os_error());
  }
  let ret = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
  if ret < 0 {
    return Err(io::Error::last_os_error());
  }
  Ok(())
}

/// Close the peer end of a socketpair (host side, after spawning plugin).
///
/// # Safety
///
/// fd must be a valid file descriptor that the caller owns.
pub fn close_peer_fd(fd: RawFd) {
  unsafe {
    libc::close(fd);
  }
}

/// Validate that a file descriptor is valid and open.
///
/// Uses fcntl(F_GETFL) to check if the fd is valid.
pub fn validate_fd(fd: RawFd) -> io::Result<()> {
  let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
  if flags < 0 {
    Err(io::Error::last_os_error())
  } else {
    Ok(())
  }
}

/// Validate that `fd` is open (EBADF otherwise) and is a socket (ENOTSOCK otherwise).
pub fn validate_socket(fd: RawFd) -> io::Result<()> {
  validate_fd(fd)?;
  socket_type(fd).map(|_| ())
}

fn socket_type(fd: RawFd) -> io::Result<libc::c_int> {
  let mut ty: libc::c_int = 0;
  let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
  let ret = unsafe {
    libc::getsockopt(
      fd,
      libc::SOL_SOCKET,
      libc::SO_TYPE,
      &mut ty as *mut libc::c_int as *mut libc::c_void,
      &mut len,
    )
  };
  if ret < 0 {
    Err(io::Error::last_os_error())
  } else {
    Ok(ty)
  }
}

/// Clear the close-on-exec flag so the fd is inherited by children.
///
/// Call this on the guest's doorbell fd before spawning.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
  update_fd_flags(fd, |flags| flags & !libc::FD_CLOEXEC)
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
  update_fd_flags(fd, |flags| flags | libc::FD_CLOEXEC)
}

fn update_fd_flags(fd: RawFd, update: impl FnOnce(libc::c_int) -> libc::c_int) -> io::Result<()> {
  let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
  if flags < 0 {
    return Err(io::Error::last_os_error());
  }

  let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, update(flags)) };
  if ret < 0 {
    Err(io::Error::last_os_error())
  } else {
    Ok(())
  }
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn set_nosigpipe(fd: RawFd) -> io::Result<()> {
  set_socket_option(fd, libc::SO_NOSIGPIPE, 1)
}

fn set_socket_option(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
  let ret = unsafe {
    libc::setsockopt(
      fd,
      libc::SOL_SOCKET,
      option,
      &value as *const libc::c_int as *const libc::c_void,
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    )
  };
  if ret < 0 {
    Err(io::Error::last_os_error())
  } else {
    Ok(())
  }
}

#[cfg(test)]
mod tests;
