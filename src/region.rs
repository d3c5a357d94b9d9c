//! Shared memory for two processes: an anonymous shared-memory object, mapped read-write and
//! shared, whose fd a peer inherits and maps too.
//!
//! On Linux the object is a memfd sealed with `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`, so that
//! no process that holds the fd can truncate it under a mapping (touching a page past the end of
//! the object kills the reader with SIGBUS). [`SharedRegion::from_fd`] maps only objects sealed
//! against shrinking. macOS has no seals: an object made there is `shm_open`ed and unlinked at
//! once, and any process that holds its fd can still `ftruncate` it.
//!
//! What a peer writes into the region is never trusted: the region gives bytes and atomics, and
//! whoever reads them checks them.

use std::io;
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU8};

use crate::doorbell::retry_eintr;

/// The largest region: 1 TiB on 64-bit platforms, 1 GiB elsewhere. A region's pages are made
/// only when first touched, so a large region costs address space, not memory.
#[cfg(target_pointer_width = "64")]
pub const MAX_SIZE: usize = 1 << 40;
#[cfg(not(target_pointer_width = "64"))]
pub const MAX_SIZE: usize = 1 << 30;

/// The command-line flag that carries a guest's region fd: `--region-fd N` or `--region-fd=N`.
pub const ARG_NAME: &str = "--region-fd";

/// A result whose error names the call that failed (`""` for a [`Refusal`]), as Node's system
/// errors do.
pub type Traced<T> = Result<T, (io::Error, &'static str)>;

fn last_error(syscall: &'static str) -> (io::Error, &'static str) {
  (io::Error::last_os_error(), syscall)
}

/// Why [`SharedRegion::from_fd`] refused an fd, beside the errno failures of the calls it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
  /// The fd is not a shared-memory object (a memfd on Linux).
  NotSharedMemory,
  /// The object is not sealed against shrinking: a peer could truncate it under the mapping.
  NotSealed,
  /// The object has no bytes.
  Empty,
  /// The object is larger than [`MAX_SIZE`].
  TooLarge,
}

impl Refusal {
  /// The `code` of the error that reports this refusal, in Rust and in JS.
  pub fn code(self) -> &'static str {
    match self {
      Refusal::NotSharedMemory => "ERR_DOORBELL_NOT_SHARED_MEMORY",
      Refusal::NotSealed => "ERR_DOORBELL_REGION_NOT_SEALED",
      Refusal::Empty => "ERR_DOORBELL_REGION_EMPTY",
      Refusal::TooLarge => "ERR_DOORBELL_REGION_TOO_LARGE",
    }
  }

  /// What the fd was found to be, as in "fd 5 is not a shared-memory object".
  pub fn message(self) -> &'static str {
    match self {
      Refusal::NotSharedMemory => "not a shared-memory object",
      Refusal::NotSealed => "shared memory not sealed against shrinking (F_SEAL_SHRINK)",
      Refusal::Empty => "an empty shared-memory object",
      Refusal::TooLarge => "a shared-memory object larger than a region may be",
    }
  }

  /// This refusal as an `io::Error` of kind `InvalidInput`, which [`Refusal::of`] recognizes.
  pub fn into_error(self) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, self)
  }

  fn traced(self) -> (io::Error, &'static str) {
    (self.into_error(), "")
  }

  /// The refusal that `err` reports, if it is one made by [`Refusal::into_error`].
  pub fn of(err: &io::Error) -> Option<Self> {
    err.get_ref()?.downcast_ref::<Self>().copied()
  }
}

/// `ERR_DOORBELL_NOT_SHARED_MEMORY: the fd is not a shared-memory object`
impl std::fmt::Display for Refusal {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    write!(f, "{}: the fd is {}", self.code(), self.message())
  }
}

impl std::error::Error for Refusal {}

/// A read-write shared mapping of a whole object; unmapped when dropped.
#[derive(Debug)]
pub struct Mapping {
  ptr: NonNull<u8>,
  len: usize,
}

// SAFETY: a mapping is plain memory, shared with other processes anyway; nothing in it is tied to
// the thread that mapped it.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
  fn map(fd: BorrowedFd<'_>, len: usize) -> Traced<Self> {
    let ptr = unsafe {
      libc::mmap(
        std::ptr::null_mut(),
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED,
        fd.as_raw_fd(),
        0,
      )
    };
    match NonNull::new(ptr as *mut u8) {
      Some(ptr) if ptr.as_ptr() as *mut libc::c_void != libc::MAP_FAILED => Ok(Self { ptr, len }),
      _ => Err(last_error("mmap")),
    }
  }

  /// The first byte; page-aligned.
  pub fn as_ptr(&self) -> *mut u8 {
    self.ptr.as_ptr()
  }

  /// Bytes mapped.
  pub fn len(&self) -> usize {
    self.len
  }

  /// Always false: a mapping has at least one byte.
  pub fn is_empty(&self) -> bool {
    self.len == 0
  }
}

impl Drop for Mapping {
  fn drop(&mut self) {
    unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
  }
}

/// Shared memory: an fd to hand to a peer, and this process's mapping of it.
///
/// Its bytes may change at any time (the peer writes them), so it gives no `&[u8]`: read and write
/// through the atomic views ([`atomic_u8s`](Self::atomic_u8s), [`atomic_u32s`](Self::atomic_u32s),
/// [`atomic_i32s`](Self::atomic_i32s)), or through [`as_ptr`](Self::as_ptr) with volatile or
/// atomic accesses of your own. Dropping it unmaps and closes the fd.
#[derive(Debug)]
pub struct SharedRegion {
  // Unmapped before the fd is closed: fields drop in order.
  mapping: Mapping,
  fd: OwnedFd,
}

impl SharedRegion {
  /// The command-line flag that carries a guest's region fd.
  pub const ARG_NAME: &'static str = ARG_NAME;

  /// Creates an anonymous shared-memory object of `size` bytes rounded up to the page size,
  /// zero-filled, sealed on Linux, close-on-exec, and maps it. Fails with `InvalidInput` for a
  /// size of 0 or above [`MAX_SIZE`], and with the errno of the call that failed otherwise, having
  /// closed whatever it opened.
  pub fn create(size: usize) -> io::Result<Self> {
    Self::create_traced(size).map_err(|(err, _)| err)
  }

  /// [`create`](Self::create), with the name of the call that failed.
  pub fn create_traced(size: usize) -> Traced<Self> {
    if size == 0 || size > MAX_SIZE {
      let err = io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("size must be > 0 and <= {MAX_SIZE}"),
      );
      return Err((err, "create"));
    }
    let size = size.next_multiple_of(page_size());
    let fd = create_object(size)?;
    let mapping = Mapping::map(fd.as_fd(), size)?;
    Ok(Self { mapping, fd })
  }

  /// Maps the whole object that `fd` names, taking ownership of `fd`; on failure the fd comes back
  /// with the error, open and unchanged. Refuses (see [`Refusal`]) anything but a shared-memory
  /// object of 1 to [`MAX_SIZE`] bytes that, on Linux, is sealed against shrinking.
  pub fn from_fd(fd: OwnedFd) -> Result<Self, (io::Error, OwnedFd)> {
    Self::from_fd_traced(fd).map_err(|((err, _), fd)| (err, fd))
  }

  /// [`from_fd`](Self::from_fd), with the name of the call that failed.
  pub fn from_fd_traced(fd: OwnedFd) -> Result<Self, ((io::Error, &'static str), OwnedFd)> {
    Self::from_fd_at_most(fd, MAX_SIZE)
  }

  /// [`from_fd_traced`](Self::from_fd_traced) with a lower limit than [`MAX_SIZE`]: an object of
  /// more than `max_size` bytes is refused as [`Refusal::TooLarge`].
  pub fn from_fd_at_most(
    fd: OwnedFd,
    max_size: usize,
  ) -> Result<Self, ((io::Error, &'static str), OwnedFd)> {
    let checked = check_object(fd.as_fd()).and_then(|len| match len <= max_size {
      true => Ok(len),
      false => Err(Refusal::TooLarge.traced()),
    });
    match checked.and_then(|len| Mapping::map(fd.as_fd(), len)) {
      Ok(mapping) => Ok(Self { mapping, fd }),
      Err(err) => Err((err, fd)),
    }
  }

  /// [`from_fd`](Self::from_fd) for a raw fd: takes ownership of it on success only.
  ///
  /// # Safety
  ///
  /// `fd` must be an open fd that nothing else closes while the region owns it.
  pub unsafe fn from_raw_fd(fd: RawFd) -> io::Result<Self> {
    Self::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }).map_err(|(err, fd)| {
      let _ = fd.into_raw_fd();
      err
    })
  }

  /// The region named by a `--region-fd` value, such as `"4"`.
  ///
  /// # Safety
  ///
  /// As [`from_raw_fd`](Self::from_raw_fd).
  pub unsafe fn from_arg(arg: &str) -> io::Result<Self> {
    let fd = arg
      .parse::<RawFd>()
      .ok()
      .filter(|fd| *fd >= 0)
      .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an fd number"))?;
    unsafe { Self::from_raw_fd(fd) }
  }

  /// The first byte of the mapping; page-aligned.
  pub fn as_ptr(&self) -> *mut u8 {
    self.mapping.as_ptr()
  }

  /// Bytes mapped.
  pub fn len(&self) -> usize {
    self.mapping.len()
  }

  /// Always false: a region has at least one byte.
  pub fn is_empty(&self) -> bool {
    self.mapping.is_empty()
  }

  /// The region as bytes that may be read and written at any time, by this and other processes.
  pub fn atomic_u8s(&self) -> &[AtomicU8] {
    // SAFETY: the mapping is valid for len bytes while self lives, and atomics may alias memory
    // that others change.
    unsafe { std::slice::from_raw_parts(self.as_ptr() as *const AtomicU8, self.len()) }
  }

  /// The region as u32s (what JS sees through a `Uint32Array`), a trailing part of one dropped.
  pub fn atomic_u32s(&self) -> &[AtomicU32] {
    // SAFETY: as atomic_u8s; the mapping is page-aligned.
    unsafe { std::slice::from_raw_parts(self.as_ptr() as *const AtomicU32, self.len() / 4) }
  }

  /// The region as i32s (what JS sees through an `Int32Array`), a trailing part of one dropped.
  pub fn atomic_i32s(&self) -> &[AtomicI32] {
    // SAFETY: as atomic_u32s.
    unsafe { std::slice::from_raw_parts(self.as_ptr() as *const AtomicI32, self.len() / 4) }
  }

  /// The fd as a `--region-fd` value.
  pub fn to_arg(&self) -> String {
    self.fd.as_raw_fd().to_string()
  }

  /// Splits the region into its mapping and its fd, each to be dropped when its owner is done.
  pub fn into_parts(self) -> (Mapping, OwnedFd) {
    (self.mapping, self.fd)
  }
}

impl AsRawFd for SharedRegion {
  fn as_raw_fd(&self) -> RawFd {
    self.fd.as_raw_fd()
  }
}

impl AsFd for SharedRegion {
  fn as_fd(&self) -> BorrowedFd<'_> {
    self.fd.as_fd()
  }
}

/// Unmaps, and lets go of the fd without closing it.
impl IntoRawFd for SharedRegion {
  fn into_raw_fd(self) -> RawFd {
    self.fd.into_raw_fd()
  }
}

/// The system's page size.
pub fn page_size() -> usize {
  unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// The seals that every region made here carries.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

#[cfg(any(target_os = "linux", target_os = "android"))]
fn create_object(size: usize) -> Traced<OwnedFd> {
  let fd = unsafe {
    libc::memfd_create(
      c"shm-doorbell-region".as_ptr(),
      libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
    )
  };
  if fd < 0 {
    return Err(last_error("memfd_create"));
  }
  // SAFETY: memfd_create has just returned it.
  let fd = unsafe { OwnedFd::from_raw_fd(fd) };
  truncate(fd.as_fd(), size)?;
  if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
    return Err(last_error("fcntl"));
  }
  Ok(fd)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn create_object(size: usize) -> Traced<OwnedFd> {
  use std::sync::atomic::{AtomicU64, Ordering};
  static COUNTER: AtomicU64 = AtomicU64::new(0);
  loop {
    // A name no one else uses; it is unlinked at once, so it never outlives this call.
    let name = format!(
      "/shmdb.{}.{}",
      std::process::id(),
      COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let name = std::ffi::CString::new(name).expect("no NUL in the name");
    let fd = unsafe {
      libc::shm_open(
        name.as_ptr(),
        libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
        0o600 as libc::c_uint,
      )
    };
    if fd < 0 {
      let err = last_error("shm_open");
      if err.0.raw_os_error() == Some(libc::EEXIST) {
        continue;
      }
      return Err(err);
    }
    unsafe { libc::shm_unlink(name.as_ptr()) };
    // SAFETY: shm_open has just returned it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_cloexec(fd.as_fd())?;
    truncate(fd.as_fd(), size)?;
    return Ok(fd);
  }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_cloexec(fd: BorrowedFd<'_>) -> Traced<()> {
  if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
    return Err(last_error("fcntl"));
  }
  Ok(())
}

fn truncate(fd: BorrowedFd<'_>, size: usize) -> Traced<()> {
  let size = libc::off_t::try_from(size)
    .map_err(|_| (io::Error::from_raw_os_error(libc::EFBIG), "ftruncate"))?;
  retry_eintr(|| unsafe { libc::ftruncate(fd.as_raw_fd(), size) } as libc::ssize_t)
    .map(drop)
    .map_err(|err| (err, "ftruncate"))
}

/// The size of the object `fd` names, if it is one that may be mapped (see [`SharedRegion::from_fd`]).
fn check_object(fd: BorrowedFd<'_>) -> Traced<usize> {
  // Seals first: once sealed against shrinking, the size read below cannot drop under us.
  check_seals(fd)?;
  let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
  if unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) } < 0 {
    return Err(last_error("fstat"));
  }
  // SAFETY: fstat succeeded.
  let stat = unsafe { stat.assume_init() };
  // Linux: F_GET_SEALS succeeded, so this is a memfd. macOS: a shm object has no type bits.
  if !matches!(stat.st_mode & libc::S_IFMT, libc::S_IFREG | 0) {
    return Err(Refusal::NotSharedMemory.traced());
  }
  match usize::try_from(stat.st_size) {
    Ok(0) => Err(Refusal::Empty.traced()),
    Ok(len) if len <= MAX_SIZE => Ok(len),
    _ => Err(Refusal::TooLarge.traced()),
  }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn check_seals(fd: BorrowedFd<'_>) -> Traced<()> {
  let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
  if seals < 0 {
    let err = last_error("fcntl");
    // EINVAL: a file that cannot be sealed, so not a memfd.
    return Err(if err.0.raw_os_error() == Some(libc::EINVAL) {
      Refusal::NotSharedMemory.traced()
    } else {
      err
    });
  }
  if seals & libc::F_SEAL_SHRINK == 0 {
    return Err(Refusal::NotSealed.traced());
  }
  Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn check_seals(fd: BorrowedFd<'_>) -> Traced<()> {
  // No seals here; an fd that is not open still fails with EBADF.
  if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) } < 0 {
    return Err(last_error("fcntl"));
  }
  Ok(())
}

#[cfg(test)]
mod tests;
