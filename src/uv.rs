//! The few libuv functions that the binding calls on Node's own event loop. Node exports libuv
//! for addons; they are looked up at run time, as napi-sys looks up Node-API, so that binaries
//! that link this crate outside Node (tests, the Rust guest example) need no libuv. The handle is
//! opaque here and sized by `uv_handle_size`.

use std::os::raw::{c_int, c_void};
use std::sync::OnceLock;

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

macro_rules! libuv_functions {
  ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
    /// libuv's functions, as exported by the Node process this addon is loaded into.
    #[allow(non_snake_case)]
    pub struct Libuv {
      $(pub $name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
    }

    impl Libuv {
      fn load() -> Option<Self> {
        Some(Self {
          $($name: {
            let symbol = unsafe {
              libc::dlsym(libc::RTLD_DEFAULT, concat!(stringify!($name), "\0").as_ptr().cast())
            };
            if symbol.is_null() {
              return None;
            }
            // SAFETY: the symbol is libuv's function of that name, whose C signature this is.
            unsafe {
              std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(symbol)
            }
          },)*
        })
      }
    }
  };
}

libuv_functions! {
  uv_handle_size: fn(c_int) -> usize;
  uv_poll_init_socket: fn(*mut uv_loop_s, *mut Poll, c_int) -> c_int;
  uv_poll_start: fn(*mut Poll, c_int, PollCallback) -> c_int;
  uv_poll_stop: fn(*mut Poll) -> c_int;
  uv_close: fn(*mut Poll, CloseCallback);
  uv_ref: fn(*mut Poll);
  uv_unref: fn(*mut Poll);
  uv_handle_get_data: fn(*const Poll) -> *mut c_void;
  uv_handle_set_data: fn(*mut Poll, *mut c_void);
}

/// libuv, or `None` outside a process that exports it.
pub fn libuv() -> Option<&'static Libuv> {
  static LIBUV: OnceLock<Option<Libuv>> = OnceLock::new();
  LIBUV.get_or_init(Libuv::load).as_ref()
}
