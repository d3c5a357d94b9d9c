//! The `uv` engine: a libuv poll handle on Node's own event loop (`src/uv.rs` looks up the few
//! libuv functions Node exports to addons).
//!
//! The poll handle is started by the first wait that finds nothing pending and stays started
//! between waits (stopping and starting it costs two epoll_ctl calls per wait); it is stopped only
//! when it reports a ring that no wait wants, which is then left in the socket, or on EOF.

use std::cell::Cell;
use std::io;
use std::os::raw::{c_int, c_void};
use std::os::unix::io::AsRawFd;
use std::ptr;
use std::rc::Rc;

use napi::sys;

use crate::binding::{check, closed_error, os_error, Result};
use crate::uv;

use super::{wake_status, EngineWatch, Watch, MAX_QUICK_WAKES, WAKE_EMPTY, WAKE_RANG};

/// A doorbell's poll handle and what decides when to drain without it.
pub(super) struct UvWatch {
  uv: &'static uv::Libuv,
  /// Null until the first wait that finds nothing pending, and again once closed. Its data is a
  /// share of the Watch, dropped by its close callback: libuv frees a handle only after the loop
  /// has turned.
  poll: Cell<*mut uv::Poll>,
  polling: Cell<bool>,
  /// Whether the last drain found several rings: the peer rings faster than this side waits, so
  /// the next wait is likely to find a ring already there.
  peer_streams: Cell<bool>,
}

impl UvWatch {
  pub(super) fn new(uv: &'static uv::Libuv) -> Self {
    Self {
      uv,
      poll: Cell::new(ptr::null_mut()),
      polling: Cell::new(false),
      peer_streams: Cell::new(false),
    }
  }

  /// Starts a wait: see `arm` in the parent module. Unless the poll handle is started (then any
  /// pending ring is reported by the loop's next turn), drains first.
  pub(super) fn arm(&self, watch: &Rc<Watch>) -> Result<i32> {
    // Drain first when the poll handle is stopped (nothing else would report a ring already
    // there), or while the peer streams. Quick wakes are bounded, so that the loop still turns
    // (timers, I/O) under a peer that never stops ringing.
    let drain_first = !self.polling.get() || self.peer_streams.get();
    if drain_first && watch.quick_wakes.get() < MAX_QUICK_WAKES {
      let status = self.drain(watch)?;
      if status != WAKE_EMPTY {
        watch.quick_wakes.set(watch.quick_wakes.get() + 1);
        return Ok(status);
      }
    }
    if !self.polling.get() {
      self.start_polling(watch)?;
    }
    watch.set_armed(true);
    Ok(WAKE_EMPTY)
  }

  /// Drains the socket, noting whether the rings had coalesced, and returns a wake status.
  fn drain(&self, watch: &Watch) -> Result<i32> {
    if watch.readiness_only {
      let readable = watch.with_socket(|socket| socket.is_readable())?;
      return Ok(if readable { WAKE_RANG } else { WAKE_EMPTY });
    }
    let rings = watch.with_socket(|socket| socket.try_drain_rings())?;
    self.peer_streams.set(matches!(rings, Ok(n) if n > 1));
    Ok(wake_status(rings))
  }

  fn start_polling(&self, watch: &Rc<Watch>) -> Result<()> {
    if self.poll.get().is_null() {
      self.poll.set(self.open_poll(watch)?);
    }
    check_uv(
      unsafe { (self.uv.uv_poll_start)(self.poll.get(), uv::READABLE, Self::on_readable) },
      "epoll_ctl",
    )?;
    self.polling.set(true);
    Ok(())
  }

  fn open_poll(&self, watch: &Rc<Watch>) -> Result<*mut uv::Poll> {
    let fd = match &*watch.socket.borrow() {
      Some(socket) => socket.owner.as_raw_fd(),
      None => return Err(closed_error()),
    };
    let mut event_loop = ptr::null_mut();
    check(unsafe { sys::napi_get_uv_event_loop(watch.env, &mut event_loop) })?;
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
    unsafe { (self.uv.uv_handle_set_data)(poll, Rc::into_raw(Rc::clone(watch)) as *mut c_void) };
    Ok(poll)
  }

  fn stop_polling(&self) {
    if self.polling.replace(false) {
      unsafe { (self.uv.uv_poll_stop)(self.poll.get()) };
    }
  }

  pub(super) fn update_loop_ref(&self, wanted: bool) {
    let poll = self.poll.get();
    if poll.is_null() {
      return;
    }
    unsafe {
      if wanted {
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
    if let EngineWatch::Uv(engine) = &watch.engine {
      engine.report_readable(watch, status);
    }
  }

  fn report_readable(&self, watch: &Watch, poll_status: c_int) {
    if !watch.armed.get() {
      // A ring that no wait wants: leave it in the socket, and stop the loop reporting it.
      self.stop_polling();
      return;
    }
    watch.quick_wakes.set(0);
    let Ok(drained) = self.drain(watch) else {
      return;
    };
    let status = match drained {
      WAKE_EMPTY if poll_status >= 0 => return,
      WAKE_EMPTY => poll_status,
      other => other,
    };
    if status != WAKE_RANG {
      // EOF and errors stay readable: reporting them once is enough.
      self.stop_polling();
    }
    watch.report(status);
  }

  /// Closes the poll handle, which stops it at once (epoll_ctl DEL), before the fd is closed.
  pub(super) fn shut_down(&self) {
    self.polling.set(false);
    let poll = self.poll.replace(ptr::null_mut());
    if !poll.is_null() {
      unsafe { (self.uv.uv_close)(poll, Self::on_closed) };
    }
  }

  unsafe extern "C" fn on_closed(poll: *mut uv::Poll) {
    // SAFETY: set by open_poll from Rc::into_raw; libuv calls this once per handle.
    let Some(uv) = uv::libuv() else { return };
    drop(unsafe { Rc::from_raw((uv.uv_handle_get_data)(poll) as *const Watch) });
    unsafe { libc::free(poll as *mut c_void) };
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
