//! The napi surface, one module per concern, each over the core module of the same name.
//! `index.ts` wraps it into the public API; nothing here is meant to be used directly.
//!
//! This file holds what the concerns share: errors, the registry that gives each fd one owner,
//! and the environment cleanup that closes what a thread left open.

use std::collections::BTreeSet;
use std::io;
use std::os::raw::c_void;
use std::os::unix::io::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use napi::{sys, Status};
use napi_derive::napi;

pub mod doorbell;
pub mod region;
pub mod rendezvous;

/// The `code` of errors that `index.ts` turns into Node-style system errors; their message is
/// `"<errno> <syscall>"`.
#[napi]
pub const OS_ERROR_CODE: &str = "ERR_DOORBELL_OS";

/// Errors reach JS with `code` set to the string given here.
pub type Error = napi::Error<String>;
pub type Result<T> = std::result::Result<T, Error>;

pub fn coded(code: &str, message: String) -> Error {
  Error::new(code.to_string(), message)
}

pub fn os_error(err: io::Error, syscall: &str) -> Error {
  let errno = err.raw_os_error().unwrap_or(libc::EIO);
  coded(OS_ERROR_CODE, format!("{errno} {syscall}"))
}

pub fn closed_error() -> Error {
  coded("ERR_DOORBELL_CLOSED", "The doorbell is closed".to_string())
}

/// Fds owned by a `NativeHandle`, `NativeDoorbell` or `NativeRegion` in this process, so that no fd gets two
/// owners: two owners means a double close, which closes whatever reused the number in between.
static OWNED_FDS: Mutex<BTreeSet<RawFd>> = Mutex::new(BTreeSet::new());

fn owned_fds() -> MutexGuard<'static, BTreeSet<RawFd>> {
  OWNED_FDS
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This process's claim on an fd; released when dropped.
pub struct FdClaim(pub RawFd);

impl FdClaim {
  /// Claims an fd that the caller names; fails if something here owns it already.
  pub fn new(fd: RawFd) -> Result<Self> {
    if owned_fds().insert(fd) {
      Ok(Self(fd))
    } else {
      Err(coded(
        "ERR_DOORBELL_FD_IN_USE",
        format!(
          "fd {fd} is already owned by a Doorbell, DoorbellHandle or SharedRegion in this process"
        ),
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
pub struct Claimed<T> {
  pub owner: T,
  pub claim: FdClaim,
}

impl<T> Claimed<T> {
  /// The same fd and claim, with its owner converted (an fd's owner changes type as it is adopted).
  pub fn map<U>(self, convert: impl FnOnce(T) -> U) -> Claimed<U> {
    Claimed {
      owner: convert(self.owner),
      claim: self.claim,
    }
  }
}

impl<T: AsRawFd> Claimed<T> {
  /// Claims an fd that the kernel has just returned. A stale entry, left by an fd closed behind
  /// its owner's back, must not make a fresh pair fail.
  pub fn fresh(owner: T) -> Self {
    let fd = owner.as_raw_fd();
    owned_fds().insert(fd);
    Self {
      owner,
      claim: FdClaim(fd),
    }
  }
}

impl<T: Into<OwnedFd>> Claimed<T> {
  /// Lets go of the fd without closing it, and releases the claim: whoever takes the number
  /// owns the fd now, and may adopt it again here or in another thread.
  pub fn into_raw_fd(self) -> RawFd {
    let Self { owner, claim } = self;
    let fd = owner.into().into_raw_fd();
    drop(claim);
    fd
  }
}

/// An object that its thread's environment closes when it ends (a worker that ends, the process
/// that exits), if nothing closed it before. The garbage collector never closes it: closing an end
/// tells the peer "I am gone", which only the user's call or the thread's end may say.
pub trait EnvCleanup {
  /// Closes what is still open; called once, on the JS thread, as the environment ends.
  fn on_env_cleanup(&self);
}

/// Registers `target` to be cleaned up when `env` ends. The hook holds a share of it, so that it
/// outlives its JS object until it is closed or the environment ends.
pub(crate) fn add_env_cleanup<T: EnvCleanup>(env: sys::napi_env, target: &Rc<T>) -> Result<()> {
  let share = Rc::into_raw(Rc::clone(target));
  let status =
    unsafe { sys::napi_add_env_cleanup_hook(env, Some(env_cleanup::<T>), share as *mut c_void) };
  check(status).inspect_err(|_| drop(unsafe { Rc::from_raw(share) }))
}

/// Undoes [`add_env_cleanup`] for an object closed before its environment ended. Call it once, and
/// only while the hook has not run.
pub(crate) fn remove_env_cleanup<T: EnvCleanup>(env: sys::napi_env, target: &Rc<T>) {
  let share = Rc::as_ptr(target);
  let status =
    unsafe { sys::napi_remove_env_cleanup_hook(env, Some(env_cleanup::<T>), share as *mut c_void) };
  if status == sys::Status::napi_ok {
    // SAFETY: the share that add_env_cleanup gave the hook, which will not run now.
    drop(unsafe { Rc::from_raw(share) });
  }
}

unsafe extern "C" fn env_cleanup<T: EnvCleanup>(share: *mut c_void) {
  // SAFETY: the share that add_env_cleanup gave the hook; Node runs each hook once.
  let target = unsafe { Rc::from_raw(share as *const T) };
  target.on_env_cleanup();
}

pub fn check(status: sys::napi_status) -> Result<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(coded(
      Status::from(status).as_ref(),
      "a Node-API call failed".to_string(),
    ))
  }
}
