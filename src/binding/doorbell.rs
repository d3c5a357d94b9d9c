//! The doorbell's napi surface over [`crate::doorbell`].
//!
//! A doorbell's socket is watched for readability on Node's own event loop (a libuv poll
//! handle), so a ring is seen and reported on the JS thread without a hop from another thread.
//! `index.ts` arms the watch while at least one JS wait is pending; the poll handle stays started
//! between waits (stopping and starting it costs two epoll_ctl calls per wait) and is stopped
//! only when it reports a ring that no wait wants, which is then left in the socket.
//!
//! The calls made on every ring and wait, `signal` and `arm`, are functions of the fd rather than
//! class methods (a method pays napi_unwrap and a type-tag check on every call), and are written
//! by hand rather than by `#[napi]` (see [`export_per_ring_functions`]); `disarm`, called only
//! when a wait is aborted, is a plain `#[napi]` function of the fd.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::raw::{c_int, c_void};
use std::os::unix::io::{AsRawFd, RawFd};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::{Function, JsValue, Object};
use napi::{sys, Env, JsError};
use napi_derive::napi;

use crate::doorbell::{self, DoorbellHandle, DoorbellSocket, SignalResult};
use crate::uv;

use super::{
  add_env_cleanup, check, closed_error, coded, os_error, remove_env_cleanup, Claimed, EnvCleanup,
  FdClaim, Result,
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

/// A watched endpoint: the core's socket, watched on Node's event loop while waits are pending.
/// Its fd stays open (and watched) until it is closed or let go of, or its thread's environment
/// ends: never because the JS object was garbage-collected, which would tell the peer "I am gone".
#[napi]
pub struct NativeDoorbell {
  watch: Rc<Watch>,
}

/// What the poll callback needs. Shared by the JS object, the per-ring registry and the
/// environment cleanup hook while it is open, and by the poll handle until libuv has closed it
/// (libuv frees a handle only after the loop has turned).
struct Watch {
  env: sys::napi_env,
  uv: &'static uv::Libuv,
  socket: RefCell<Option<Claimed<DoorbellSocket>>>,
  /// The JS wake callback; null once released.
  on_wake: Cell<sys::napi_ref>,
  /// Null until the first wait that finds nothing pending, and again once closed.
  poll: Cell<*mut uv::Poll>,
  polling: Cell<bool>,
  /// Whether a JS wait is pending.
  armed: Cell<bool>,
  /// Whether the last drain found several rings: the peer rings faster than this side waits, so
  /// the next wait is likely to find a ring already there.
  peer_streams: Cell<bool>,
  /// Waits resolved by draining at once since the loop last reported a ring.
  quick_wakes: Cell<u32>,
  keeps_loop_alive: Cell<bool>,
  closed: Cell<bool>,
}

#[napi]
impl NativeDoorbell {
  /// Creates a socketpair: `[host, guest]`.
  #[napi]
  pub fn create_pair(
    env: Env,
    on_wake: Function<i32, ()>,
  ) -> Result<(NativeDoorbell, NativeHandle)> {
    let uv = libuv()?;
    let (socket, handle) = DoorbellSocket::create_pair().map_err(|e| os_error(e, "socketpair"))?;
    let guest = NativeHandle::new(env.raw(), Claimed::fresh(handle))?;
    let host = Self::new(env, uv, Claimed::fresh(socket), on_wake)?;
    Ok((host, guest))
  }

  /// Consumes a handle; on failure the handle keeps its fd.
  #[napi(factory)]
  pub fn from_handle(
    env: Env,
    handle: &mut NativeHandle,
    on_wake: Function<i32, ()>,
  ) -> Result<Self> {
    let uv = libuv()?;
    let Claimed { owner, claim } = handle.take().ok_or_else(closed_error)?;
    match DoorbellSocket::from_owned_fd(owner.into()) {
      Ok(socket) => Self::new(
        env,
        uv,
        Claimed {
          owner: socket,
          claim,
        },
        on_wake,
      ),
      Err((err, fd)) => {
        handle.restore(Claimed {
          owner: fd.into(),
          claim,
        })?;
        Err(os_error(err, "getsockopt"))
      }
    }
  }

  /// Takes ownership of `fd` on success; on failure it stays open and the caller's.
  #[napi(factory)]
  pub fn from_raw_fd(env: Env, fd: i32, on_wake: Function<i32, ()>) -> Result<Self> {
    let uv = libuv()?;
    let claim = FdClaim::new(fd)?;
    let socket = DoorbellSocket::from_raw_fd(fd).map_err(|e| os_error(e, "getsockopt"))?;
    Self::new(
      env,
      uv,
      Claimed {
        owner: socket,
        claim,
      },
      on_wake,
    )
  }

  fn new(
    env: Env,
    uv: &'static uv::Libuv,
    socket: Claimed<DoorbellSocket>,
    on_wake: Function<i32, ()>,
  ) -> Result<Self> {
    let env = env.raw();
    let mut on_wake_ref = ptr::null_mut();
    check(unsafe { sys::napi_create_reference(env, on_wake.raw(), 1, &mut on_wake_ref) })?;
    let watch = Rc::new(Watch {
      env,
      uv,
      socket: RefCell::new(Some(socket)),
      on_wake: Cell::new(on_wake_ref),
      poll: Cell::new(ptr::null_mut()),
      polling: Cell::new(false),
      armed: Cell::new(false),
      peer_streams: Cell::new(false),
      quick_wakes: Cell::new(0),
      keeps_loop_alive: Cell::new(true),
      closed: Cell::new(false),
    });
    // Closed when its thread's environment ends, if not before: a worker's loop may not close
    // with a handle open, and an end left open by a thread that is gone would hide its death.
    if let Err(err) = add_env_cleanup(env, &watch) {
      watch.release_on_wake();
      return Err(err);
    }
    let fd = watch.with_socket(|socket| socket.as_raw_fd())?;
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

  /// Whether an armed watch keeps Node's event loop alive (the default).
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

/// libuv, looked up before a constructor takes an fd, so that its absence (outside Node) leaves the
/// caller's fd as it was.
fn libuv() -> Result<&'static uv::Libuv> {
  uv::libuv().ok_or_else(|| {
    coded(
      "ERR_DOORBELL_NO_LIBUV",
      "this process does not export libuv: shm-doorbell runs in Node.js".to_string(),
    )
  })
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

/// Starts a wait on the doorbell on `fd`. Unless its poll handle is started (then any pending
/// ring is reported by the loop's next turn), drains first and returns what it found;
/// `WAKE_EMPTY` means armed: the wake callback gets the status of the next ring, once, and the
/// watch is disarmed as it reports. Exported as `arm`, by hand.
fn arm(fd: i32) -> Result<i32> {
  with_watch(fd, |watch| watch.arm())
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
      Some(socket) => Ok(call(&socket.owner)),
      None => Err(closed_error()),
    }
  }

  /// Starts a wait: see [`arm`].
  fn arm(self: &Rc<Self>) -> Result<i32> {
    // Drain first when the poll handle is stopped (nothing else would report a ring already
    // there), or while the peer streams. Quick wakes are bounded, so that the loop still turns
    // (timers, I/O) under a peer that never stops ringing.
    let drain_first = !self.polling.get() || self.peer_streams.get();
    if drain_first && self.quick_wakes.get() < MAX_QUICK_WAKES {
      let status = self.drain()?;
      if status != WAKE_EMPTY {
        self.quick_wakes.set(self.quick_wakes.get() + 1);
        return Ok(status);
      }
    }
    if !self.polling.get() {
      self.start_polling()?;
    }
    self.set_armed(true);
    Ok(WAKE_EMPTY)
  }

  /// Drains the socket, noting whether the rings had coalesced, and returns a wake status.
  fn drain(&self) -> Result<i32> {
    let rings = self.with_socket(|socket| socket.try_drain_rings())?;
    self.peer_streams.set(matches!(rings, Ok(n) if n > 1));
    Ok(wake_status(rings))
  }

  fn set_armed(&self, armed: bool) {
    self.armed.set(armed);
    self.update_loop_ref();
  }

  fn start_polling(self: &Rc<Self>) -> Result<()> {
    if self.poll.get().is_null() {
      self.poll.set(self.open_poll()?);
    }
    check_uv(
      unsafe { (self.uv.uv_poll_start)(self.poll.get(), uv::READABLE, Self::on_readable) },
      "epoll_ctl",
    )?;
    self.polling.set(true);
    Ok(())
  }

  fn open_poll(self: &Rc<Self>) -> Result<*mut uv::Poll> {
    let fd = match &*self.socket.borrow() {
      Some(socket) => socket.owner.as_raw_fd(),
      None => return Err(closed_error()),
    };
    let mut event_loop = ptr::null_mut();
    check(unsafe { sys::napi_get_uv_event_loop(self.env, &mut event_loop) })?;
    let poll =
      unsafe { libc::calloc(1, (self.uv.uv_handle_size)(uv::HANDLE_TYPE_POLL)) } as *mut uv::Poll;
    if poll.is_null() {
      return Err(os_error(
        io::Error::from_raw_os_error(libc::ENOMEM),
        "malloc",
      ));
    }
    if let Err(err) = check_uv(
      unsafe { (self.uv.uv_poll_init_socket)(event_loop, poll, fd) },
      "epoll_ctl",
    ) {
      // A handle whose init failed was never registered with the loop.
      unsafe { libc::free(poll as *mut c_void) };
      return Err(err);
    }
    unsafe { (self.uv.uv_handle_set_data)(poll, Rc::into_raw(Rc::clone(self)) as *mut c_void) };
    Ok(poll)
  }

  fn stop_polling(&self) {
    if self.polling.replace(false) {
      unsafe { (self.uv.uv_poll_stop)(self.poll.get()) };
    }
  }

  fn update_loop_ref(&self) {
    let poll = self.poll.get();
    if poll.is_null() {
      return;
    }
    unsafe {
      if self.armed.get() && self.keeps_loop_alive.get() {
        (self.uv.uv_ref)(poll)
      } else {
        (self.uv.uv_unref)(poll)
      }
    }
  }

  unsafe extern "C" fn on_readable(poll: *mut uv::Poll, status: c_int, _events: c_int) {
    // SAFETY: the handle's data is a share of its Watch, dropped only by on_closed.
    let Some(uv) = uv::libuv() else { return };
    let watch = unsafe { &*((uv.uv_handle_get_data)(poll) as *const Watch) };
    watch.report_readable(status);
  }

  fn report_readable(&self, poll_status: c_int) {
    if !self.armed.get() {
      // A ring that no wait wants: leave it in the socket, and stop the loop reporting it.
      self.stop_polling();
      return;
    }
    self.quick_wakes.set(0);
    let Ok(drained) = self.drain() else { return };
    let status = match drained {
      WAKE_EMPTY if poll_status >= 0 => return,
      WAKE_EMPTY => poll_status,
      other => other,
    };
    if status != WAKE_RANG {
      // EOF and errors stay readable: reporting them once is enough.
      self.stop_polling();
    }
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
  fn close(self: &Rc<Self>) -> Option<Claimed<DoorbellSocket>> {
    if self.closed.replace(true) {
      return None;
    }
    remove_env_cleanup(self.env, self);
    self.shut_down()
  }

  fn shut_down(&self) -> Option<Claimed<DoorbellSocket>> {
    self.polling.set(false);
    let poll = self.poll.replace(ptr::null_mut());
    if !poll.is_null() {
      // uv_close stops the poll at once (epoll_ctl DEL) before the fd is closed below.
      unsafe { (self.uv.uv_close)(poll, Self::on_closed) };
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

  unsafe extern "C" fn on_closed(poll: *mut uv::Poll) {
    // SAFETY: set by open_poll from Rc::into_raw; libuv calls this once per handle.
    let Some(uv) = uv::libuv() else { return };
    drop(unsafe { Rc::from_raw((uv.uv_handle_get_data)(poll) as *const Watch) });
    unsafe { libc::free(poll as *mut c_void) };
  }
}

impl EnvCleanup for Watch {
  fn on_env_cleanup(&self) {
    if !self.closed.replace(true) {
      drop(self.shut_down());
    }
  }
}

/// libuv returns a negated errno on Unix.
fn check_uv(status: c_int, syscall: &str) -> Result<()> {
  if status < 0 {
    Err(os_error(io::Error::from_raw_os_error(-status), syscall))
  } else {
    Ok(())
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
