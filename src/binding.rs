//! The napi surface over [`crate::doorbell`]. `index.ts` wraps it into the public API; nothing
//! here is meant to be used directly.
//!
//! A wait is a tokio task running the core's `Doorbell::wait`, armed by `index.ts` while at least
//! one JS wait is pending and aborted when none is. It reports through one weak threadsafe
//! function per doorbell, which is referenced on Node's loop only while armed (and not unref'd).

use std::collections::BTreeSet;
use std::io;
use std::os::unix::io::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{block_on, spawn, within_runtime_if_available, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use tokio::task::JoinHandle;

use crate::doorbell::{self, Doorbell, DoorbellHandle, SignalResult};

/// `tryDrain` found nothing pending.
#[napi]
pub const WAKE_EMPTY: i32 = 0;
/// Rings were pending and have been drained.
#[napi]
pub const WAKE_RANG: i32 = 1;
/// The peer's end is closed and every ring it sent has been delivered.
#[napi]
pub const WAKE_PEER_GONE: i32 = 2;
// Any other wake status is a negated errno.

/// The `code` of errors that `index.ts` turns into Node-style system errors; their message is
/// `"<errno> <syscall>"`.
#[napi]
pub const OS_ERROR_CODE: &str = "ERR_DOORBELL_OS";

/// Errors reach JS with `code` set to the string given here.
type Error = napi::Error<String>;
type Result<T> = std::result::Result<T, Error>;

fn coded(code: &str, message: String) -> Error {
  Error::new(code.to_string(), message)
}

fn os_error(err: io::Error, syscall: &str) -> Error {
  let errno = err.raw_os_error().unwrap_or(libc::EIO);
  coded(OS_ERROR_CODE, format!("{errno} {syscall}"))
}

fn napi_error(err: napi::Error) -> Error {
  coded(err.status.as_ref(), err.reason.clone())
}

fn closed_error() -> Error {
  coded("ERR_DOORBELL_CLOSED", "The doorbell is closed".to_string())
}

fn wake_status(result: io::Result<bool>) -> i32 {
  match result {
    Ok(true) => WAKE_RANG,
    Ok(false) => WAKE_EMPTY,
    Err(err) if doorbell::is_peer_gone(&err) => WAKE_PEER_GONE,
    Err(err) => -err.raw_os_error().unwrap_or(libc::EIO),
  }
}

/// Fds owned by a `NativeHandle` or `NativeDoorbell` in this process, so that no fd gets two
/// owners: two owners means a double close, which closes whatever reused the number in between.
static OWNED_FDS: Mutex<BTreeSet<RawFd>> = Mutex::new(BTreeSet::new());

fn owned_fds() -> MutexGuard<'static, BTreeSet<RawFd>> {
  OWNED_FDS
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This process's claim on an fd; released when dropped.
struct FdClaim(RawFd);

impl FdClaim {
  /// Claims an fd that the caller names; fails if something here owns it already.
  fn new(fd: RawFd) -> Result<Self> {
    if owned_fds().insert(fd) {
      Ok(Self(fd))
    } else {
      Err(coded(
        "ERR_DOORBELL_FD_IN_USE",
        format!("fd {fd} is already owned by a Doorbell or DoorbellHandle in this process"),
      ))
    }
  }
}

impl Drop for FdClaim {
  fn drop(&mut self) {
    owned_fds().remove(&self.0);
  }
}

/// An fd owner with its claim. Fields drop in order: the fd is closed before the claim goes.
struct Claimed<T> {
  owner: T,
  claim: FdClaim,
}

impl<T: AsRawFd> Claimed<T> {
  /// Claims an fd that the kernel has just returned. A stale entry, left by an fd closed behind
  /// its owner's back, must not make a fresh pair fail.
  fn fresh(owner: T) -> Self {
    let fd = owner.as_raw_fd();
    owned_fds().insert(fd);
    Self {
      owner,
      claim: FdClaim(fd),
    }
  }
}

/// An endpoint not yet watched by this process: the end to hand to a child.
#[napi]
pub struct NativeHandle {
  handle: Option<Claimed<DoorbellHandle>>,
}

#[napi]
impl NativeHandle {
  /// Takes ownership of `fd` after checking that it is an open socket that nothing here owns.
  #[napi(factory)]
  pub fn from_raw_fd(fd: i32) -> Result<Self> {
    doorbell::validate_socket(fd).map_err(|e| os_error(e, "getsockopt"))?;
    let claim = FdClaim::new(fd)?;
    // SAFETY: fd is an open socket that no owner in this process claims.
    let owner = unsafe { DoorbellHandle::from_raw_fd(fd) };
    Ok(Self {
      handle: Some(Claimed { owner, claim }),
    })
  }

  /// The fd, or -1 once closed or consumed.
  #[napi(getter)]
  pub fn fd(&self) -> i32 {
    self.handle.as_ref().map_or(-1, |h| h.owner.as_raw_fd())
  }

  /// Closes the fd; idempotent.
  #[napi]
  pub fn close(&mut self) {
    self.handle = None;
  }
}

type WakeCallback = ThreadsafeFunction<i32, (), i32, Status, false, true>;

/// A watched endpoint: the Rust core plus the machinery that reports wakes to JS.
#[napi]
pub struct NativeDoorbell {
  core: Option<Arc<Claimed<Doorbell>>>,
  on_wake: Arc<WakeCallback>,
  watch: Option<JoinHandle<()>>,
  keeps_loop_alive: bool,
  loop_referenced: bool,
}

#[napi]
impl NativeDoorbell {
  /// Creates a socketpair: `[host, guest]`.
  #[napi]
  pub fn create_pair(on_wake: Function<i32, ()>) -> Result<(NativeDoorbell, NativeHandle)> {
    let (core, handle) =
      within_runtime_if_available(Doorbell::create_pair).map_err(|e| os_error(e, "socketpair"))?;
    let host = Self::new(Claimed::fresh(core), on_wake)?;
    let guest = NativeHandle {
      handle: Some(Claimed::fresh(handle)),
    };
    Ok((host, guest))
  }

  /// Consumes a handle; on failure the handle keeps its fd.
  #[napi(factory)]
  pub fn from_handle(handle: &mut NativeHandle, on_wake: Function<i32, ()>) -> Result<Self> {
    let Claimed { owner, claim } = handle.handle.take().ok_or_else(closed_error)?;
    let fd: OwnedFd = owner.into();
    match within_runtime_if_available(|| Doorbell::from_raw_fd(fd.as_raw_fd())) {
      Ok(core) => {
        let _ = fd.into_raw_fd();
        Self::new(Claimed { owner: core, claim }, on_wake)
      }
      Err(err) => {
        handle.handle = Some(Claimed {
          owner: fd.into(),
          claim,
        });
        Err(os_error(err, "getsockopt"))
      }
    }
  }

  /// Takes ownership of `fd` on success; on failure it stays open and the caller's.
  #[napi(factory)]
  pub fn from_raw_fd(fd: i32, on_wake: Function<i32, ()>) -> Result<Self> {
    let claim = FdClaim::new(fd)?;
    let core = within_runtime_if_available(|| Doorbell::from_raw_fd(fd))
      .map_err(|e| os_error(e, "getsockopt"))?;
    Self::new(Claimed { owner: core, claim }, on_wake)
  }

  fn new(core: Claimed<Doorbell>, on_wake: Function<i32, ()>) -> Result<Self> {
    let on_wake = on_wake
      .build_threadsafe_function::<i32>()
      .callee_handled::<false>()
      .weak::<true>()
      .build()
      .map_err(napi_error)?;
    Ok(Self {
      core: Some(Arc::new(core)),
      on_wake: Arc::new(on_wake),
      watch: None,
      keeps_loop_alive: true,
      loop_referenced: false,
    })
  }

  fn core(&self) -> Result<&Doorbell> {
    self
      .core
      .as_ref()
      .map(|core| &core.owner)
      .ok_or_else(closed_error)
  }

  /// The fd, or -1 once closed.
  #[napi(getter)]
  pub fn fd(&self) -> i32 {
    self.core.as_ref().map_or(-1, |core| core.claim.0)
  }

  /// Sends one ring: 'Sent', 'BufferFull' or 'PeerDead'.
  #[napi(ts_return_type = "'Sent' | 'BufferFull' | 'PeerDead'")]
  pub fn signal(&self) -> Result<&'static str> {
    Ok(match self.core()?.signal_now() {
      SignalResult::Sent => "Sent",
      SignalResult::BufferFull => "BufferFull",
      SignalResult::PeerDead => "PeerDead",
    })
  }

  /// Drains without blocking and says what it found, as a wake status.
  #[napi]
  pub fn try_drain(&self) -> Result<i32> {
    Ok(wake_status(self.core()?.try_drain()))
  }

  /// Bytes waiting in the socket.
  #[napi]
  pub fn pending_bytes(&self) -> Result<u32> {
    Ok(self.core()?.pending_bytes().min(u32::MAX as usize) as u32)
  }

  /// Whether a signal or a wait has found the peer gone.
  #[napi]
  pub fn is_peer_dead(&self) -> Result<bool> {
    Ok(self.core()?.is_peer_dead())
  }

  /// Starts watching for a ring, unless already watching; `on_wake` gets the wake status.
  #[napi]
  pub fn arm(&mut self, env: Env) -> Result<()> {
    let core = Arc::clone(self.core.as_ref().ok_or_else(closed_error)?);
    if self.watch.is_none() {
      let on_wake = Arc::clone(&self.on_wake);
      self.watch = Some(spawn(async move {
        let status = wake_status(core.owner.wait().await.map(|()| true));
        on_wake.call(status, ThreadsafeFunctionCallMode::NonBlocking);
      }));
    }
    self.update_loop_ref(env)
  }

  /// Stops watching; a ring that arrives later stays in the socket for the next arm or drain.
  #[napi]
  pub fn disarm(&mut self, env: Env) -> Result<()> {
    if let Some(watch) = self.watch.take() {
      watch.abort();
    }
    self.update_loop_ref(env)
  }

  /// Whether an armed watch keeps Node's event loop alive (the default).
  #[napi]
  pub fn set_keeps_loop_alive(&mut self, env: Env, keep: bool) -> Result<()> {
    self.keeps_loop_alive = keep;
    self.update_loop_ref(env)
  }

  fn update_loop_ref(&mut self, env: Env) -> Result<()> {
    let wanted = self.keeps_loop_alive && self.watch.is_some();
    if wanted == self.loop_referenced {
      return Ok(());
    }
    let raw = self.on_wake.raw();
    let status = unsafe {
      if wanted {
        napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
      } else {
        napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
      }
    };
    if status != napi::sys::Status::napi_ok {
      return Err(coded(
        Status::from(status).as_ref(),
        "updating the threadsafe function's loop reference failed".to_string(),
      ));
    }
    self.loop_referenced = wanted;
    Ok(())
  }

  /// Stops watching and closes the fd before returning; idempotent.
  #[napi]
  pub fn close(&mut self, env: Env) -> Result<()> {
    if let Some(watch) = self.watch.take() {
      watch.abort();
      // The watch holds the core: wait until the runtime has dropped it, so the fd is closed
      // when close() returns. An idle watch is dropped at once.
      let _ = block_on(watch);
    }
    self.update_loop_ref(env)?;
    self.core = None;
    Ok(())
  }
}

impl Drop for NativeDoorbell {
  fn drop(&mut self) {
    if let Some(watch) = self.watch.take() {
      watch.abort();
    }
  }
}

/// Sets O_NONBLOCK on `fd`.
#[napi]
pub fn set_nonblocking(fd: i32) -> Result<()> {
  doorbell::set_nonblocking(fd).map_err(|e| os_error(e, "fcntl"))
}

/// Closes `fd`, after checking that it is open and that no Doorbell or DoorbellHandle owns it.
#[napi]
pub fn close_peer_fd(fd: i32) -> Result<()> {
  doorbell::validate_fd(fd).map_err(|e| os_error(e, "fcntl"))?;
  let claim = FdClaim::new(fd)?;
  doorbell::close_peer_fd(fd);
  drop(claim);
  Ok(())
}

/// Fails unless `fd` is open.
#[napi]
pub fn validate_fd(fd: i32) -> Result<()> {
  doorbell::validate_fd(fd).map_err(|e| os_error(e, "fcntl"))
}

/// Clears FD_CLOEXEC on `fd`, so that children inherit it.
#[napi]
pub fn clear_cloexec(fd: i32) -> Result<()> {
  doorbell::clear_cloexec(fd).map_err(|e| os_error(e, "fcntl"))
}
