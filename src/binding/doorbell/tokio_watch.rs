//! The `tokio` engine: the core's [`Doorbell`] (tokio's `AsyncFd`) registered with the reactor of
//! napi-rs's tokio runtime, each wake delivered to the JS thread through the doorbell's one
//! threadsafe function. It needs nothing but Node-API, so it runs wherever Node-API does.
//!
//! No task runs for a doorbell. A wait polls [`Doorbell::poll_wait`] on the JS thread with a
//! waker of the doorbell's own: a ring already seen by the reactor is drained at once; otherwise
//! the waker is registered, the reactor's thread wakes it on the next ring, and the waker queues
//! a call of the threadsafe function, which polls again on the JS thread and reports. So every
//! drain happens on the JS thread, and only while a wait is pending: a ring that no wait wants
//! stays in the socket. The threadsafe function is made once per doorbell, holds the event loop
//! only while a wait is pending and the doorbell is not `unref()`'d, and is released by `close()`
//! (or the environment's end), not by the garbage collector.

use std::cell::Cell;
use std::os::raw::c_void;
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use napi::bindgen_prelude::within_runtime_if_available;
use napi::sys;

use crate::binding::{check, closed_error, os_error, Claimed, Error, Result};
use crate::doorbell::{Doorbell, DoorbellSocket};

use super::{
  wake_status, EngineWatch, Watch, WatchedSocket, MAX_QUICK_WAKES, NAPI_AUTO_LENGTH, WAKE_EMPTY,
};

/// napi-rs's tokio runtime, with one worker: the engine runs no task on it, only its reactor,
/// whose thread wakes the doorbells. napi-rs would otherwise start a worker per CPU. Made as the
/// library loads, so not in the Rust unit tests, which never load it into a runtime.
#[cfg(not(test))]
#[napi_derive::module_init]
fn init_runtime() {
  if let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
    .worker_threads(1)
    .thread_name("shm-doorbell-io")
    .enable_io()
    .build()
  {
    napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
  }
}

/// A threadsafe function, which the reactor's thread may call.
#[derive(Clone, Copy)]
struct Tsfn(sys::napi_threadsafe_function);

// SAFETY: Node-API lets any thread call a threadsafe function until it is released.
unsafe impl Send for Tsfn {}

/// What the waker reaches from the reactor's thread: the doorbell's threadsafe function, null
/// before it is made and once it is released or finalized. The lock keeps a call from racing the
/// release.
struct WakeTarget {
  tsfn: Mutex<Tsfn>,
}

impl WakeTarget {
  fn lock(&self) -> MutexGuard<'_, Tsfn> {
    self
      .tsfn
      .lock()
      .unwrap_or_else(|poisoned| poisoned.into_inner())
  }

  /// Queues a call of [`TokioWatch::on_wake_queued`] on the JS thread; nothing once released.
  fn queue_wake(&self) {
    let tsfn = self.lock();
    if !tsfn.0.is_null() {
      unsafe {
        sys::napi_call_threadsafe_function(
          tsfn.0,
          ptr::null_mut(),
          sys::ThreadsafeFunctionCallMode::nonblocking,
        )
      };
    }
  }

  fn take(&self) -> sys::napi_threadsafe_function {
    std::mem::replace(&mut self.lock().0, ptr::null_mut())
  }
}

impl Wake for WakeTarget {
  fn wake(self: Arc<Self>) {
    self.queue_wake();
  }

  fn wake_by_ref(self: &Arc<Self>) {
    self.queue_wake();
  }
}

/// A doorbell's threadsafe function and the waker that calls it.
pub(super) struct TokioWatch {
  target: Arc<WakeTarget>,
  waker: Waker,
  /// Whether the threadsafe function holds the event loop open.
  referenced: Cell<bool>,
}

impl TokioWatch {
  /// Registers `socket` with the runtime's reactor; on failure hands it back.
  pub(super) fn register(
    socket: DoorbellSocket,
  ) -> std::result::Result<(Doorbell, Self), (Error, DoorbellSocket)> {
    let doorbell = within_runtime_if_available(|| Doorbell::from_socket(socket))
      .map_err(|(err, socket)| (os_error(err, "epoll_ctl"), socket))?;
    let target = Arc::new(WakeTarget {
      tsfn: Mutex::new(Tsfn(ptr::null_mut())),
    });
    let waker = Waker::from(Arc::clone(&target));
    Ok((
      doorbell,
      Self {
        target,
        waker,
        referenced: Cell::new(false),
      },
    ))
  }

  /// Makes the doorbell's threadsafe function, not holding the event loop. It keeps a share of
  /// the watch until it is finalized.
  pub(super) fn start(&self, watch: &Rc<Watch>, on_wake: sys::napi_value) -> Result<()> {
    let env = watch.env;
    let mut name = ptr::null_mut();
    check(unsafe {
      sys::napi_create_string_utf8(
        env,
        c"shm-doorbell wake".as_ptr(),
        NAPI_AUTO_LENGTH,
        &mut name,
      )
    })?;
    let share = Rc::into_raw(Rc::clone(watch)) as *mut c_void;
    let mut tsfn = ptr::null_mut();
    let status = unsafe {
      sys::napi_create_threadsafe_function(
        env,
        on_wake,
        ptr::null_mut(),
        name,
        0,
        1,
        share,
        Some(Self::on_finalize),
        share,
        Some(Self::on_wake_queued),
        &mut tsfn,
      )
    };
    if let Err(err) = check(status) {
      drop(unsafe { Rc::from_raw(share as *const Watch) });
      return Err(err);
    }
    self.target.lock().0 = tsfn;
    check(unsafe { sys::napi_unref_threadsafe_function(env, tsfn) })
  }

  /// Starts a wait: see `arm` in the parent module. A ring the reactor has seen is drained at
  /// once, at most [`MAX_QUICK_WAKES`] times in a row; after that it is reported through the
  /// threadsafe function, so that the loop turns (timers, I/O) under a peer that never stops
  /// ringing.
  pub(super) fn arm(&self, watch: &Rc<Watch>) -> Result<i32> {
    if watch.quick_wakes.get() < MAX_QUICK_WAKES {
      let status = self.poll(watch)?;
      if status != WAKE_EMPTY {
        watch.quick_wakes.set(watch.quick_wakes.get() + 1);
        return Ok(status);
      }
    } else {
      self.target.queue_wake();
    }
    watch.set_armed(true);
    Ok(WAKE_EMPTY)
  }

  /// Polls the doorbell with this watch's waker: the wake status of what it drained, or
  /// `WAKE_EMPTY` with the waker registered.
  fn poll(&self, watch: &Watch) -> Result<i32> {
    let socket = watch.socket.borrow();
    let Some(Claimed {
      owner: WatchedSocket::Registered(doorbell),
      ..
    }) = &*socket
    else {
      return Err(closed_error());
    };
    let mut cx = Context::from_waker(&self.waker);
    if watch.readiness_only {
      return Ok(match doorbell.poll_readable(&mut cx) {
        Poll::Pending => WAKE_EMPTY,
        Poll::Ready(readable) => wake_status(readable.map(|()| 1)),
      });
    }
    Ok(match doorbell.poll_wait(&mut cx) {
      Poll::Pending => WAKE_EMPTY,
      Poll::Ready(rings) => wake_status(rings),
    })
  }

  /// The threadsafe function's call, on the JS thread: reports a ring to the pending waits. With
  /// none pending, the ring stays in the socket and the reactor keeps it readable for the next wait.
  unsafe extern "C" fn on_wake_queued(
    env: sys::napi_env,
    _on_wake: sys::napi_value,
    share: *mut c_void,
    _data: *mut c_void,
  ) {
    if env.is_null() {
      // The function is being torn down with calls queued.
      return;
    }
    // SAFETY: the share that start gave the function, dropped only by on_finalize.
    let watch = unsafe { &*(share as *const Watch) };
    let EngineWatch::Tokio(engine) = &watch.engine else {
      return;
    };
    if !watch.armed.get() {
      return;
    }
    watch.quick_wakes.set(0);
    match engine.poll(watch) {
      Ok(WAKE_EMPTY) | Err(_) => {}
      Ok(status) => watch.report(status),
    }
  }

  unsafe extern "C" fn on_finalize(_env: sys::napi_env, share: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the share that start gave the function; Node-API finalizes a function once.
    let watch = unsafe { Rc::from_raw(share as *const Watch) };
    if let EngineWatch::Tokio(engine) = &watch.engine {
      // Finalized by the runtime itself, as its environment ends: never call it again.
      engine.target.take();
    }
  }

  pub(super) fn update_loop_ref(&self, env: sys::napi_env, wanted: bool) {
    if wanted == self.referenced.get() {
      return;
    }
    let tsfn = self.target.lock().0;
    if tsfn.is_null() {
      return;
    }
    unsafe {
      if wanted {
        sys::napi_ref_threadsafe_function(env, tsfn)
      } else {
        sys::napi_unref_threadsafe_function(env, tsfn)
      }
    };
    self.referenced.set(wanted);
  }

  /// Releases the threadsafe function, before the socket leaves the reactor and is closed: a
  /// wake that comes later calls nothing.
  pub(super) fn shut_down(&self) {
    let tsfn = self.target.take();
    if !tsfn.is_null() {
      unsafe {
        sys::napi_release_threadsafe_function(tsfn, sys::ThreadsafeFunctionReleaseMode::abort)
      };
    }
  }
}
