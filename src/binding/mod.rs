//! The napi surface, one module per concern, each over the core module of the same name.
//! `index.ts` wraps it into the public API; nothing here is meant to be used directly.
//!
//! This file holds what the concerns share: errors, and the registry that gives each fd one owner.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use napi::{sys, Status};
use napi_derive::napi;

pub mod doorbell;
pub mod region;

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
