//! The shared region's napi surface over [`crate::region`].
//!
//! A region's memory reaches JS as one external ArrayBuffer over the mapping, never a copy. Its
//! lifetime is the user's to end: an open region is never unmapped or closed by garbage
//! collection. `close()` (or `intoRawFd()`, or the end of the thread's environment) detaches the
//! ArrayBuffer first, so that every view over it reads as empty, then unmaps. Should a detach ever
//! fail, the mapping is left to the ArrayBuffer's finalizer, which runs only once nothing in JS can
//! reach the memory; whichever of the two comes first unmaps, and only once.

use std::cell::RefCell;
use std::os::raw::c_void;
use std::os::unix::io::{AsRawFd, IntoRawFd, OwnedFd};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env};
use napi_derive::napi;

use crate::region::{self, Mapping, Refusal, SharedRegion};

use super::{
  add_env_cleanup, check, coded, os_error, remove_env_cleanup, Claimed, EnvCleanup, Error, FdClaim,
  Result,
};

/// The largest region, in bytes.
#[napi]
pub const REGION_MAX_SIZE: f64 = region::MAX_SIZE as f64;

/// A mapping shared by the open region and its ArrayBuffer's finalizer.
struct SharedMapping {
  /// `None` once unmapped.
  mapping: Mutex<Option<Mapping>>,
  /// Set by the finalizer: a runtime may call it from inside a failed
  /// `napi_create_external_arraybuffer` (Node 20 does, for a buffer above its size limit).
  finalized: AtomicBool,
}

/// An open region: the claimed fd, the mapping and the ArrayBuffer over it (a strong reference,
/// so that the buffer lives as long as the region is open).
struct Open {
  fd: Claimed<OwnedFd>,
  mapping: Arc<SharedMapping>,
  buffer: sys::napi_ref,
}

/// The region's state. Besides the JS object, the environment's cleanup hook holds a share while
/// the region is open, so that a region whose JS object is collected stays open until the thread
/// ends.
struct State {
  env: sys::napi_env,
  open: RefCell<Option<Open>>,
  size: usize,
}

/// One mapping of a shared-memory object, with its fd.
#[napi]
pub struct NativeRegion {
  state: Rc<State>,
}

#[napi]
impl NativeRegion {
  /// Creates an anonymous shared-memory object of `size` bytes, rounded up to the page size.
  #[napi(factory)]
  pub fn create(env: Env, size: f64) -> Result<Self> {
    let region = SharedRegion::create_traced(size as usize).map_err(traced_error)?;
    let (mapping, fd) = region.into_parts();
    Self::open(env, mapping, Claimed::fresh(fd))
  }

  /// Maps the object that `fd` names, if it has at most `max_size` bytes (the runtime's limit on
  /// an ArrayBuffer may be lower than the crate's), taking ownership of `fd` on success only.
  #[napi(factory)]
  pub fn from_raw_fd(env: Env, fd: i32, max_size: f64) -> Result<Self> {
    let claim = FdClaim::new(fd)?;
    // SAFETY: fd is claimed by nothing else here; on failure from_fd_traced gives it back, and it
    // is let go of without being closed.
    let owned = unsafe { <OwnedFd as std::os::unix::io::FromRawFd>::from_raw_fd(fd) };
    match SharedRegion::from_fd_at_most(owned, max_size as usize) {
      Ok(region) => {
        let (mapping, owner) = region.into_parts();
        Self::open(env, mapping, Claimed { owner, claim })
      }
      Err((err, owned)) => {
        let _ = owned.into_raw_fd();
        Err(match Refusal::of(&err.0) {
          Some(refusal) => coded(refusal.code(), format!("fd {fd} is {}", refusal.message())),
          None => traced_error(err),
        })
      }
    }
  }

  fn open(env: Env, mapping: Mapping, fd: Claimed<OwnedFd>) -> Result<Self> {
    let env = env.raw();
    let (data, size) = (mapping.as_ptr() as *mut c_void, mapping.len());
    let mapping = Arc::new(SharedMapping {
      mapping: Mutex::new(Some(mapping)),
      finalized: AtomicBool::new(false),
    });
    let hint = Arc::into_raw(Arc::clone(&mapping)) as *mut c_void;
    let mut value = ptr::null_mut();
    let status = unsafe {
      sys::napi_create_external_arraybuffer(
        env,
        data,
        size,
        Some(finalize_buffer),
        hint,
        &mut value,
      )
    };
    if status != sys::Status::napi_ok {
      if !mapping.finalized.load(Ordering::Acquire) {
        // The finalizer was not registered: take its share back.
        drop(unsafe { Arc::from_raw(hint as *const SharedMapping) });
      }
      unmap(&mapping);
      return Err(if status == sys::Status::napi_no_external_buffers_allowed {
        coded(
          "ERR_DOORBELL_NO_EXTERNAL_BUFFERS",
          "this runtime does not allow external ArrayBuffers (a V8 sandbox, as in Electron), \
           so shared memory cannot be seen from JS without a copy"
            .to_string(),
        )
      } else {
        check(status).unwrap_err()
      });
    }
    let mut buffer = ptr::null_mut();
    if let Err(err) = check(unsafe { sys::napi_create_reference(env, value, 1, &mut buffer) }) {
      detach_and_unmap(env, value, &mapping);
      return Err(err);
    }
    let state = Rc::new(State {
      env,
      open: RefCell::new(Some(Open {
        fd,
        mapping,
        buffer,
      })),
      size,
    });
    if let Err(err) = add_env_cleanup(env, &state) {
      state.shut_down(true);
      return Err(err);
    }
    Ok(Self { state })
  }

  /// The fd, or -1 once closed or handed over.
  #[napi(getter)]
  pub fn fd(&self) -> i32 {
    self
      .state
      .open
      .borrow()
      .as_ref()
      .map_or(-1, |open| open.fd.owner.as_raw_fd())
  }

  /// Bytes mapped (still the mapping's size once closed).
  #[napi(getter)]
  pub fn size(&self) -> f64 {
    self.state.size as f64
  }

  /// The ArrayBuffer over the mapping; throws `ERR_DOORBELL_CLOSED` once closed.
  #[napi]
  pub fn buffer(&self) -> Result<Unknown<'static>> {
    let open = self.state.open.borrow();
    let open = open.as_ref().ok_or_else(region_closed_error)?;
    let mut value = ptr::null_mut();
    check(unsafe { sys::napi_get_reference_value(self.state.env, open.buffer, &mut value) })?;
    Ok(unsafe { Unknown::from_raw_unchecked(self.state.env, value) })
  }

  /// Detaches the ArrayBuffer, unmaps and closes the fd; idempotent.
  #[napi]
  pub fn close(&self) {
    drop(self.state.close());
  }

  /// Detaches the ArrayBuffer and unmaps, and lets go of the fd without closing it.
  #[napi]
  pub fn into_raw_fd(&self) -> Result<i32> {
    let fd = self.state.close().ok_or_else(region_closed_error)?;
    Ok(fd.into_raw_fd())
  }
}

impl State {
  /// Ends the region, for a call from JS: removes the cleanup hook and drops its share. Returns
  /// the fd to close or hand over, or `None` if already closed.
  fn close(self: &Rc<Self>) -> Option<Claimed<OwnedFd>> {
    let fd = self.shut_down(true)?;
    remove_env_cleanup(self.env, self);
    Some(fd)
  }

  /// Detaches the buffer, unmaps and lets go of the buffer's reference; the fd is the caller's.
  /// Without `in_scope` (no handle scope could be opened) JS is not touched, and the buffer's
  /// finalizer unmaps.
  fn shut_down(&self, in_scope: bool) -> Option<Claimed<OwnedFd>> {
    let Open {
      fd,
      mapping,
      buffer,
    } = self.open.borrow_mut().take()?;
    if !in_scope {
      return Some(fd);
    }
    let mut value = ptr::null_mut();
    let status = unsafe { sys::napi_get_reference_value(self.env, buffer, &mut value) };
    if status == sys::Status::napi_ok && !value.is_null() {
      detach_and_unmap(self.env, value, &mapping);
    }
    unsafe { sys::napi_delete_reference(self.env, buffer) };
    Some(fd)
  }
}

/// Detaches `buffer` and, only if that worked, unmaps at once; otherwise the finalizer unmaps.
fn detach_and_unmap(env: sys::napi_env, buffer: sys::napi_value, mapping: &SharedMapping) {
  if unsafe { sys::napi_detach_arraybuffer(env, buffer) } == sys::Status::napi_ok {
    unmap(mapping);
  }
}

fn unmap(shared: &SharedMapping) {
  let taken = shared
    .mapping
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
    .take();
  drop(taken);
}

/// The ArrayBuffer's finalizer: nothing in JS reaches the memory any more.
unsafe extern "C" fn finalize_buffer(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
  // SAFETY: the share that open gave the finalizer; runs once.
  let shared = unsafe { Arc::from_raw(hint as *const SharedMapping) };
  shared.finalized.store(true, Ordering::Release);
  unmap(&shared);
}

impl EnvCleanup for State {
  fn on_env_cleanup(&self) {
    // Cleanup hooks run outside any JS call, so with no handle scope open.
    let mut scope = ptr::null_mut();
    let opened =
      unsafe { sys::napi_open_handle_scope(self.env, &mut scope) } == sys::Status::napi_ok;
    drop(self.shut_down(opened));
    if opened {
      unsafe { sys::napi_close_handle_scope(self.env, scope) };
    }
  }
}

fn region_closed_error() -> Error {
  coded("ERR_DOORBELL_CLOSED", "The region is closed".to_string())
}

/// An error of the core: a refusal with its code, or an errno failure with its call.
fn traced_error((err, syscall): (std::io::Error, &'static str)) -> Error {
  match Refusal::of(&err) {
    Some(refusal) => coded(refusal.code(), err.to_string()),
    None if err.raw_os_error().is_some() => os_error(err, syscall),
    None => coded("ERR_OUT_OF_RANGE", err.to_string()),
  }
}
