//! The doorbell's napi surface over [`crate::doorbell`]: one class, `NativeDoorbell`, whose
//! socket is watched for readability by one of two engines, chosen once per thread as the module
//! loads (`useEngine`):
//!
//! - [`uv_watch`]: a libuv poll handle on Node's own event loop, so a ring is seen by the epoll
//!   call that Node's loop makes anyway and reported on the JS thread without a hop from another
//!   thread. Only in Node itself, whose libuv is exported to addons.
//! - [`tokio_watch`]: the core's [`crate::doorbell::Doorbell`] (tokio's `AsyncFd`) on napi-rs's
//!   tokio runtime, each wake delivered to the JS thread through one threadsafe function per
//!   doorbell. Everywhere Node-API is (Deno, Bun), as it needs nothing but Node-API.
//!
//! Both are armed by `index.ts` only while at least one JS wait is pending, drain on the JS
//! thread, hold the event loop only while armed and not `unref()`'d, and leave a ring that no wait
//! wants in the socket. The calls made on every ring and wait, `signal` and `arm`, are functions of
//! the fd rather than class methods (a method pays napi_unwrap and a type-tag check on every call),
//! and are written by hand rather than by `#[napi]` (see [`export_per_ring_functions`]); `disarm`,
//! called only when a wait is aborted, is a plain `#[napi]` function of the fd.

mod tokio_watch;
mod uv_watch;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::unix::io::{AsRawFd, OwnedFd, RawFd};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{Function, JsValue, Object};
use napi::{sys, Env, JsError};
use napi_derive::napi;

use crate::doorbell::{self, Doorbell, DoorbellHandle, DoorbellSocket, SignalResult};
use crate::uv;

use tokio_watch::TokioWatch;
use uv_watch::UvWatch;

use super::{
  add_env_cleanup, check, closed_error, coded, os_error, remove_env_cleanup, Claimed, EnvCleanup,
  Error, FdClaim, Result,
};

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

/// The wake status of a drain that returned how many rings it found.
fn wake_status(result: io::Result<usize>) -> i32 {
  match result {
    Ok(0) => WAKE_EMPTY,
    Ok(_) => WAKE_RANG,
    Err(err) if doorbell::is_peer_gone(&err) => WAKE_PEER_GONE,
    Err(err) => -err.raw_os_error().unwrap_or(libc::EIO),
  }
}

/// An endpoint not yet watched by this process: the end to hand to a child. Its fd stays open
/// until it is closed, consumed or let go of, or its thread's environment ends: never because the
/// JS object was garbage-collected.
#[napi]
pub struct NativeHandle {
  end: Rc<HandleEnd>,
}

/// A handle's fd, shared by the JS object and, while open, the environment cleanup hook.
struct HandleEnd {
  env: sys::napi_env,
  handle: RefCell<Option<Claimed<DoorbellHandle>>>,
}

impl EnvCleanup for HandleEnd {
  fn on_env_cleanup(&self) {
    self.handle.borrow_mut().take();
  }
}

#[napi]
impl NativeHandle {
  /// Takes ownership of `fd` after checking that it is an open socket that nothing here owns.
  #[napi(factory)]
  pub fn from_raw_fd(env: Env, fd: i32) -> Result<Self> {
    doorbell::validate_socket(fd).map_err(|e| os_error(e, "getsockopt"))?;
    let claim = FdClaim::new(fd)?;
    // SAFETY: fd is an open socket that no owner in this process claims.
    let owner = unsafe { DoorbellHandle::from_raw_fd(fd) };
    Self::new(env.raw(), Claimed { owner, claim })
  }

  fn new(env: sys::napi_env, handle: Claimed<DoorbellHandle>) -> Result<Self> {
    let end = Rc::new(HandleEnd {
      env,
      handle: RefCell::new(None),
    });
    if let Err(err) = add_env_cleanup(env, &end) {
      // The caller keeps its fd.
      let _ = handle.into_raw_fd();
      return Err(err);
    }
    end.handle.replace(Some(handle));
    Ok(Self { end })
  }

  /// Takes the fd out, leaving the handle closed, and unhooks it from its environment's end.
  fn take(&self) -> Option<Claimed<DoorbellHandle>> {
    let handle = self.end.handle.borrow_mut().take()?;
    remove_env_cleanup(self.end.env, &self.end);
    Some(handle)
  }

  /// Gives an fd back to a handle that a failed adoption took it from.
  fn restore(&self, handle: Claimed<DoorbellHandle>) -> Result<()> {
    add_env_cleanup(self.end.env, &self.end)?;
    self.end.handle.replace(Some(handle));
    Ok(())
  }

  /// The fd, or -1 once closed or consumed.
  #[napi(getter)]
  pub fn fd(&self) -> i32 {
    self
      .end
      .handle
      .borrow()
      .as_ref()
      .map_or(-1, |h| h.owner.as_raw_fd())
  }

  /// Closes the fd; idempotent.
  #[napi]
  pub fn close(&self) {
    drop(self.take());
  }

  /// Lets go of the fd without closing it and returns it: the caller owns it now.
  #[napi]
  pub fn into_raw_fd(&self) -> Result<i32> {
    self
      .take()
      .map(Claimed::into_raw_fd)
      .ok_or_else(closed_error)
  }
}

/// A watched endpoint: the core's socket, watched by this thread's engine while waits are pending.
/// Its fd stays open (and watched) until it is closed or let go of, or its thread's environment
/// ends: never because the JS object was garbage-collected, which would tell the peer "I am gone".
#[napi]
pub struct NativeDoorbell {
  watch: Rc<Watch>,
}

/// The engines, as `SHM_DOORBELL_ENGINE` and the `engine` export name them.
#[derive(Clone, Copy)]
enum Engine {
  Uv(&'static uv::Libuv),
  Tokio,
}

thread_local! {
  /// The engine of the doorbells this thread makes, set once as the module loads.
  static ENGINE: Cell<Engine> = const { Cell::new(Engine::Tokio) };
}

/// Makes `name` (`'uv'` or `'tokio'`) the engine of the doorbells this thread makes. `index.ts`
/// calls it once, as the module loads, with `'uv'` only in Node itself: this is where libuv is
/// looked up, so that no other runtime is asked for it. Fails with
/// `ERR_DOORBELL_ENGINE_UNAVAILABLE` when the process does not export libuv.
#[napi]
pub fn use_engine(name: String) -> Result<()> {
  let engine = match name.as_str() {
    "uv" => Engine::Uv(uv::libuv().ok_or_else(|| {
      coded(
        "ERR_DOORBELL_ENGINE_UNAVAILABLE",
        "The uv engine needs the libuv that Node.js exports to addons, and this process does not \
         export it: use the tokio engine"
          .to_string(),
      )
    })?),
    "tokio" => Engine::Tokio,
    other => {
      return Err(coded(
        "ERR_DOORBELL_ENGINE_UNKNOWN",
        format!("Unknown engine {other:?}: 'uv' or 'tokio'"),
      ))
    }
  };
  ENGINE.with(|cell| cell.set(engine));
  Ok(())
}

/// A doorbell's socket as its engine holds it: plain for libuv, which watches the fd itself, and
/// registered with tokio's reactor for tokio.
enum WatchedSocket {
  Plain(DoorbellSocket),
  Registered(Doorbell),
}

impl WatchedSocket {
  fn socket(&self) -> &DoorbellSocket {
    match self {
      Self::Plain(socket) => socket,
      Self::Registered(doorbell) => doorbell.socket(),
    }
  }

  /// The socket, out of tokio's reactor if it was registered there; still open.
  fn into_socket(self) -> DoorbellSocket {
    match self {
      Self::Plain(socket) => socket,
      Self::Registered(doorbell) => doorbell.into_socket(),
    }
  }
}

impl AsRawFd for WatchedSocket {
  fn as_raw_fd(&self) -> RawFd {
    self.socket().as_raw_fd()
  }
}

impl From<WatchedSocket> for OwnedFd {
  /// Lets go of the socket without closing it.
  fn from(socket: WatchedSocket) -> OwnedFd {
    socket.into_socket().into()
  }
}

/// The engine's part of a watch.
enum EngineWatch {
  Uv(UvWatch),
  Tokio(TokioWatch),
}

/// What a wake needs: the socket, the JS callback and the state of the JS waits. Shared by the JS
/// object, the per-ring registry and the environment cleanup hook while it is open, and by the
/// engine for as long as it may call back (libuv's poll handle until libuv has closed it, tokio's
/// threadsafe function until it is finalized).
struct Watch {
  env: sys::napi_env,
  socket: RefCell<Option<Claimed<WatchedSocket>>>,
  engine: EngineWatch,
  /// The JS wake callback; null once released.
  on_wake: Cell<sys::napi_ref>,
  /// Whether a JS wait is pending.
  armed: Cell<bool>,
  /// Waits resolved by draining at once since the loop last reported a ring.
  quick_wakes: Cell<u32>,
  keeps_loop_alive: Cell<bool>,
  closed: Cell<bool>,
  /// Whether a wake means only "readable" and nothing is drained: a rendezvous socket, whose
  /// reads (accept, hello, reply) its owner makes (`src/binding/rendezvous.rs`).
  readiness_only: bool,
}

/// A socket that could not be watched, handed back to its constructor to close or give back.
type NotWatched = (Error, Option<Claimed<DoorbellSocket>>);

#[napi]
impl NativeDoorbell {
  /// Creates a socketpair: `[host, guest]`.
  #[napi]
  pub fn create_pair(
    env: Env,
    on_wake: Function<i32, ()>,
  ) -> Result<(NativeDoorbell, NativeHandle)> {
    let (socket, handle) = DoorbellSocket::create_pair().map_err(|e| os_error(e, "socketpair"))?;
    let guest = NativeHandle::new(env.raw(), Claimed::fresh(handle))?;
    let host = Self::new(env, Claimed::fresh(socket), on_wake, false).map_err(|(err, _)| {
      guest.close();
      err
    })?;
    Ok((host, guest))
  }

  /// Consumes a handle; on failure the handle keeps its fd.
  #[napi(factory)]
  pub fn from_handle(
    env: Env,
    handle: &mut NativeHandle,
    on_wake: Function<i32, ()>,
  ) -> Result<Self> {
    let Claimed { owner, claim } = handle.take().ok_or_else(closed_error)?;
    let (err, given_back) = match DoorbellSocket::from_owned_fd(owner.into()) {
      Ok(socket) => {
        let socket = Claimed {
          owner: socket,
          claim,
        };
        match Self::new(env, socket, on_wake, false) {
          Ok(doorbell) => return Ok(doorbell),
          Err((err, socket)) => (
            err,
            socket.map(|socket| socket.map(|owner| OwnedFd::from(owner).into())),
          ),
        }
      }
      Err((err, fd)) => (
        os_error(err, "getsockopt"),
        Some(Claimed {
          owner: fd.into(),
          claim,
        }),
      ),
    };
    if let Some(given_back) = given_back {
      handle.restore(given_back)?;
    }
    Err(err)
  }

  /// Takes ownership of `fd` on success; on failure it stays open and the caller's.
  #[napi(factory)]
  pub fn from_raw_fd(env: Env, fd: i32, on_wake: Function<i32, ()>) -> Result<Self> {
    let claim = FdClaim::new(fd)?;
    let socket = DoorbellSocket::from_raw_fd(fd).map_err(|e| os_error(e, "getsockopt"))?;
    let socket = Claimed {
      owner: socket,
      claim,
    };
    Self::new(env, socket, on_wake, false).map_err(|(err, socket)| {
      // The fd stays the caller's: let go of it without closing it.
      if let Some(socket) = socket {
        socket.into_raw_fd();
      }
      err
    })
  }

  /// Watches `socket`, a socket this process has just made or accepted, for readability only
  /// (see `Watch::readiness_only`): the wake callback gets `WAKE_RANG` when it is readable.
  pub(crate) fn watch_readable(
    env: Env,
    socket: OwnedFd,
    on_wake: Function<i32, ()>,
  ) -> Result<Self> {
    let socket = DoorbellSocket::from_owned_fd(socket).map_err(|(e, _)| os_error(e, "fcntl"))?;
    Self::new(env, Claimed::fresh(socket), on_wake, true).map_err(|(err, _)| err)
  }

  /// Watches `socket` with this thread's engine; on failure hands it back.
  fn new(
    env: Env,
    socket: Claimed<DoorbellSocket>,
    on_wake: Function<i32, ()>,
    readiness_only: bool,
  ) -> std::result::Result<Self, NotWatched> {
    let env = env.raw();
    let Claimed { owner, claim } = socket;
    let (owner, engine) = match ENGINE.with(Cell::get) {
      Engine::Uv(uv) => (
        WatchedSocket::Plain(owner),
        EngineWatch::Uv(UvWatch::new(uv)),
      ),
      Engine::Tokio => match TokioWatch::register(owner) {
        Ok((doorbell, engine)) => (
          WatchedSocket::Registered(doorbell),
          EngineWatch::Tokio(engine),
        ),
        Err((err, owner)) => return Err((err, Some(Claimed { owner, claim }))),
      },
    };
    let watch = Rc::new(Watch {
      env,
      socket: RefCell::new(Some(Claimed { owner, claim })),
      engine,
      on_wake: Cell::new(ptr::null_mut()),
      armed: Cell::new(false),
      quick_wakes: Cell::new(0),
      keeps_loop_alive: Cell::new(true),
      closed: Cell::new(false),
      readiness_only,
    });
    if let Err(err) = watch.start(on_wake) {
      watch.closed.set(true);
      let socket = watch
        .shut_down()
        .map(|socket| socket.map(|owner| owner.into_socket()));
      return Err((err, socket));
    }
    let fd = watch.with_socket(|socket| socket.as_raw_fd()).unwrap_or(-1);
    WATCHES.with(|watches| watches.borrow_mut().insert(fd, Rc::clone(&watch)));
    Ok(Self { watch })
  }

  fn with_socket<T>(&self, call: impl FnOnce(&DoorbellSocket) -> T) -> Result<T> {
    self.watch.with_socket(call)
  }

  /// The fd, or -1 once closed.
  #[napi(getter)]
  pub fn fd(&self) -> i32 {
    self.with_socket(|socket| socket.as_raw_fd()).unwrap_or(-1)
  }

  /// Drains without blocking and says what it found, as a wake status.
  #[napi]
  pub fn try_drain(&self) -> Result<i32> {
    self.with_socket(|socket| wake_status(socket.try_drain_rings()))
  }

  /// Bytes waiting in the socket.
  #[napi]
  pub fn pending_bytes(&self) -> Result<u32> {
    self.with_socket(|socket| socket.pending_bytes().min(u32::MAX as usize) as u32)
  }

  /// Whether a signal or a wait has found the peer gone.
  #[napi]
  pub fn is_peer_dead(&self) -> Result<bool> {
    self.with_socket(|socket| socket.is_peer_dead())
  }

  /// Whether an armed watch keeps the event loop alive (the default).
  #[napi]
  pub fn set_keeps_loop_alive(&self, keep: bool) {
    self.watch.keeps_loop_alive.set(keep);
    self.watch.update_loop_ref();
  }

  /// Stops watching and closes the fd before returning; idempotent.
  #[napi]
  pub fn close(&self) {
    drop(self.watch.close());
  }

  /// Stops watching and lets go of the fd without closing it, and returns it: the caller owns it
  /// now, and may adopt it again in this thread or another.
  #[napi]
  pub fn into_raw_fd(&self) -> Result<i32> {
    self
      .watch
      .close()
      .map(Claimed::into_raw_fd)
      .ok_or_else(closed_error)
  }
}

/// `NAPI_AUTO_LENGTH`: the name is NUL-terminated.
const NAPI_AUTO_LENGTH: isize = -1;

/// How many waits in a row may resolve by draining at once, without a turn of the event loop.
const MAX_QUICK_WAKES: u32 = 16;

thread_local! {
  /// This thread's watches by fd (an fd has one owner per process), for the per-ring calls.
  static WATCHES: RefCell<HashMap<RawFd, Rc<Watch>>> = RefCell::new(HashMap::new());
}

fn with_watch<T>(fd: i32, call: impl FnOnce(&Rc<Watch>) -> Result<T>) -> Result<T> {
  let watch = WATCHES.with(|watches| watches.borrow().get(&fd).cloned());
  call(&watch.ok_or_else(closed_error)?)
}

/// Calls `call` with the socket of this thread's watch on `fd`: `ERR_DOORBELL_CLOSED` if no watch
/// here has that fd, so that no call reaches an fd that a watch does not own.
pub(crate) fn with_watched_socket<T>(
  fd: i32,
  call: impl FnOnce(&DoorbellSocket) -> Result<T>,
) -> Result<T> {
  with_watch(fd, |watch| watch.with_socket(call)?)
}

/// `signal` sent its ring.
#[napi]
pub const SIGNAL_SENT: i32 = 0;
/// `signal` found the peer's buffer full: the ring is coalesced with those it holds.
#[napi]
pub const SIGNAL_BUFFER_FULL: i32 = 1;
/// `signal` found the peer gone.
#[napi]
pub const SIGNAL_PEER_DEAD: i32 = 2;

/// Sends one ring from the doorbell on `fd`: a `SIGNAL_*` result. Exported as `signal`, by hand.
fn signal(fd: i32) -> Result<i32> {
  with_watch(fd, |watch| {
    watch.with_socket(|socket| match socket.signal_now() {
      SignalResult::Sent => SIGNAL_SENT,
      SignalResult::BufferFull => SIGNAL_BUFFER_FULL,
      SignalResult::PeerDead => SIGNAL_PEER_DEAD,
    })
  })
}

/// Starts a wait on the doorbell on `fd`: returns the status of a ring (or of the peer's death)
/// found at once, or `WAKE_EMPTY` once armed: the wake callback then gets the status of the next
/// ring, once, and the watch is disarmed as it reports. Exported as `arm`, by hand.
fn arm(fd: i32) -> Result<i32> {
  with_watch(fd, |watch| match &watch.engine {
    EngineWatch::Uv(engine) => engine.arm(watch),
    EngineWatch::Tokio(engine) => engine.arm(watch),
  })
}

/// A Node-API callback for `$call`, a function from an fd to an int32: it takes the first
/// argument as an int32, and throws an error with its `code` on failure.
macro_rules! raw_fd_function {
  ($call:ident) => {{
    unsafe extern "C" fn function(
      env: sys::napi_env,
      info: sys::napi_callback_info,
    ) -> sys::napi_value {
      let mut argc = 1;
      let mut arg = ptr::null_mut();
      let mut fd = -1;
      let mut result = ptr::null_mut();
      unsafe {
        sys::napi_get_cb_info(
          env,
          info,
          &mut argc,
          &mut arg,
          ptr::null_mut(),
          ptr::null_mut(),
        );
        sys::napi_get_value_int32(env, arg, &mut fd);
        match $call(fd) {
          Ok(value) => {
            sys::napi_create_int32(env, value, &mut result);
          }
          Err(err) => JsError::from(err).throw_into(env),
        }
      }
      result
    }
    function as unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value
  }};
}

/// Exports `signal` and `arm`, the calls made on every ring and wait, as Node-API functions
/// written by hand: napi-rs's generated wrapper costs about 150 ns more per call here, which is
/// a tenth of a ring. `native.ts` declares their types.
#[napi(module_exports)]
pub fn export_per_ring_functions(exports: Object, env: Env) -> Result<()> {
  for (name, function) in [
    (c"signal", raw_fd_function!(signal)),
    (c"arm", raw_fd_function!(arm)),
  ] {
    let mut value = ptr::null_mut();
    check(unsafe {
      sys::napi_create_function(
        env.raw(),
        name.as_ptr(),
        NAPI_AUTO_LENGTH,
        Some(function),
        ptr::null_mut(),
        &mut value,
      )
    })?;
    check(unsafe { sys::napi_set_named_property(env.raw(), exports.raw(), name.as_ptr(), value) })?;
  }
  Ok(())
}

/// Ends the wait on the doorbell on `fd`; a ring that arrives later stays in the socket.
#[napi]
pub fn disarm(fd: i32) -> Result<()> {
  with_watch(fd, |watch| {
    watch.set_armed(false);
    Ok(())
  })
}

impl Watch {
  fn with_socket<T>(&self, call: impl FnOnce(&DoorbellSocket) -> T) -> Result<T> {
    match &*self.socket.borrow() {
      Some(socket) => Ok(call(socket.owner.socket())),
      None => Err(closed_error()),
    }
  }

  /// Takes a reference to the JS wake callback, starts the engine and hooks the watch to its
  /// environment's end.
  fn start(self: &Rc<Self>, on_wake: Function<i32, ()>) -> Result<()> {
    let mut on_wake_ref = ptr::null_mut();
    check(unsafe { sys::napi_create_reference(self.env, on_wake.raw(), 1, &mut on_wake_ref) })?;
    self.on_wake.set(on_wake_ref);
    if let EngineWatch::Tokio(engine) = &self.engine {
      engine.start(self, on_wake.raw())?;
    }
    // Closed when its thread's environment ends, if not before: a worker's loop may not close
    // with a handle open, and an end left open by a thread that is gone would hide its death.
    add_env_cleanup(self.env, self)
  }

  fn set_armed(&self, armed: bool) {
    self.armed.set(armed);
    self.update_loop_ref();
  }

  /// Holds the event loop open while a wait is pending, unless the doorbell is `unref()`'d.
  fn update_loop_ref(&self) {
    let wanted = self.armed.get() && self.keeps_loop_alive.get();
    match &self.engine {
      EngineWatch::Uv(engine) => engine.update_loop_ref(wanted),
      EngineWatch::Tokio(engine) => engine.update_loop_ref(self.env, wanted),
    }
  }

  /// Disarms and reports a wake status to JS.
  fn report(&self, status: i32) {
    self.set_armed(false);
    self.call_on_wake(status);
  }

  /// Calls the JS wake callback as Node calls its own callbacks from the loop: in a callback
  /// scope, so that promise reactions and nextTick callbacks run when it returns.
  fn call_on_wake(&self, status: i32) {
    let env = self.env;
    unsafe {
      let mut scope = ptr::null_mut();
      if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return;
      }
      let mut callback = ptr::null_mut();
      let mut global = ptr::null_mut();
      let mut arg = ptr::null_mut();
      let mut result = ptr::null_mut();
      sys::napi_get_reference_value(env, self.on_wake.get(), &mut callback);
      sys::napi_get_global(env, &mut global);
      sys::napi_create_int32(env, status, &mut arg);
      let called =
        sys::napi_make_callback(env, ptr::null_mut(), global, callback, 1, &arg, &mut result);
      if called == sys::Status::napi_pending_exception {
        let mut error = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut error);
        sys::napi_fatal_exception(env, error);
      }
      sys::napi_close_handle_scope(env, scope);
    }
  }

  /// Stops watching and lets go of the JS callback; returns the socket, for the caller to close or
  /// let go of, unless it was closed before.
  fn close(self: &Rc<Self>) -> Option<Claimed<WatchedSocket>> {
    if self.closed.replace(true) {
      return None;
    }
    remove_env_cleanup(self.env, self);
    self.shut_down()
  }

  /// Stops the engine (it can call back no more), lets go of the JS callback, and returns the
  /// socket, for the caller to close or give back, unless it was taken before.
  fn shut_down(&self) -> Option<Claimed<WatchedSocket>> {
    match &self.engine {
      EngineWatch::Uv(engine) => engine.shut_down(),
      EngineWatch::Tokio(engine) => engine.shut_down(),
    }
    let socket = self.socket.borrow_mut().take();
    if let Some(socket) = &socket {
      let fd = socket.owner.as_raw_fd();
      // The registry may be gone already when a thread's environment ends. The entry may also be
      // another watch's, if this fd was closed behind its owner's back and its number reused.
      let _ = WATCHES.try_with(|watches| {
        let mut watches = watches.borrow_mut();
        if watches
          .get(&fd)
          .is_some_and(|entry| ptr::eq(Rc::as_ptr(entry), self))
        {
          watches.remove(&fd);
        }
      });
    }
    self.release_on_wake();
    socket
  }

  fn release_on_wake(&self) {
    let on_wake = self.on_wake.replace(ptr::null_mut());
    if !on_wake.is_null() {
      unsafe { sys::napi_delete_reference(self.env, on_wake) };
    }
  }
}

impl EnvCleanup for Watch {
  fn on_env_cleanup(&self) {
    if !self.closed.replace(true) {
      drop(self.shut_down());
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
