//! The few libuv functions that the binding calls on Node's own event loop. Node exports libuv
//! for addons; the handle is opaque here and sized by `uv_handle_size`.

use std::os::raw::{c_int, c_void};

use napi::sys::uv_loop_s;

/// An opaque `uv_poll_t`.
#[repr(C)]
pub struct Poll {
  _opaque: [u8; 0],
}

/// `UV_POLL` in libuv's `uv_handle_type`.
pub const HANDLE_TYPE_POLL: c_int = 8;
/// `UV_READABLE` in libuv's `uv_poll_event`.
pub const READABLE: c_int = 1;

pub type PollCallback = unsafe extern "C" fn(handle: *mut Poll, status: c_int, events: c_int);
pub type CloseCallback = unsafe extern "C" fn(handle: *mut Poll);

extern "C" {
  pub fn uv_handle_size(handle_type: c_int) -> usize;
  pub fn uv_poll_init_socket(event_loop: *mut uv_loop_s, handle: *mut Poll, socket: c_int)
    -> c_int;
  pub fn uv_poll_start(handle: *mut Poll, events: c_int, callback: PollCallback) -> c_int;
  pub fn uv_poll_stop(handle: *mut Poll) -> c_int;
  pub fn uv_close(handle: *mut Poll, callback: CloseCallback);
  pub fn uv_ref(handle: *mut Poll);
  pub fn uv_unref(handle: *mut Poll);
  pub fn uv_handle_get_data(handle: *const Poll) -> *mut c_void;
  pub fn uv_handle_set_data(handle: *mut Poll, data: *mut c_void);
}
