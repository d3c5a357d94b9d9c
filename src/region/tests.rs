#[cfg(target_os = "linux")]
use std::fs::File;
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::*;

fn is_open(fd: RawFd) -> bool {
  unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

fn dup(fd: RawFd) -> OwnedFd {
  let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
  assert!(copy >= 0, "dup: {}", io::Error::last_os_error());
  unsafe { OwnedFd::from_raw_fd(copy) }
}

fn refusal(result: Result<SharedRegion, (io::Error, OwnedFd)>) -> (Option<Refusal>, OwnedFd) {
  match result {
    Ok(_) => panic!("the fd was mapped"),
    Err((err, fd)) => (Refusal::of(&err), fd),
  }
}

#[test]
fn create_rounds_up_to_the_page_size_and_zero_fills() {
  let region = SharedRegion::create(1).unwrap();
  assert_eq!(region.len(), page_size());
  assert!(region
    .atomic_u8s()
    .iter()
    .all(|byte| byte.load(Ordering::Relaxed) == 0));
  assert_eq!(region.as_ptr() as usize % page_size(), 0);
  assert_eq!(
    SharedRegion::create(page_size() + 1).unwrap().len(),
    2 * page_size()
  );
}

#[test]
fn create_refuses_zero_and_more_than_max_size() {
  for size in [0, MAX_SIZE + 1, usize::MAX] {
    let err = SharedRegion::create(size).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "size {size}");
  }
}

#[test]
fn a_region_is_close_on_exec() {
  let region = SharedRegion::create(100).unwrap();
  let flags = unsafe { libc::fcntl(region.as_raw_fd(), libc::F_GETFD) };
  assert_ne!(flags & libc::FD_CLOEXEC, 0);
}

#[test]
fn a_second_mapping_of_the_fd_sees_the_same_memory() {
  let region = SharedRegion::create(8192).unwrap();
  let other = SharedRegion::from_fd(dup(region.as_raw_fd())).unwrap();
  assert_eq!(other.len(), 8192);
  assert_ne!(other.as_ptr(), region.as_ptr());
  region.atomic_u32s()[2047].store(0xfeed_beef, Ordering::SeqCst);
  assert_eq!(
    other.atomic_u32s()[2047].load(Ordering::SeqCst),
    0xfeed_beef
  );
  other.atomic_i32s()[0].fetch_add(5, Ordering::SeqCst);
  assert_eq!(region.atomic_i32s()[0].load(Ordering::SeqCst), 5);
}

#[cfg(target_os = "linux")]
#[test]
fn a_region_is_sealed_so_no_one_can_truncate_or_grow_it() {
  let region = SharedRegion::create(4096).unwrap();
  let seals = unsafe { libc::fcntl(region.as_raw_fd(), libc::F_GET_SEALS) };
  assert_eq!(seals, SEALS);
  for size in [0, 1, 8192] {
    assert_eq!(unsafe { libc::ftruncate(region.as_raw_fd(), size) }, -1);
    assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
  }
  let unseal = unsafe { libc::fcntl(region.as_raw_fd(), libc::F_ADD_SEALS, 0) };
  assert_eq!(unseal, -1, "F_SEAL_SEAL forbids changing the seals");
  region.atomic_u8s()[4095].store(1, Ordering::Relaxed);
}

// macOS takes a regular file for shared memory, and its large objects are untried.
#[cfg(target_os = "linux")]
#[test]
fn from_fd_refuses_a_file_that_is_not_shared_memory_and_gives_the_fd_back() {
  let file = File::open("Cargo.toml").unwrap();
  let raw = file.as_raw_fd();
  let (why, fd) = refusal(SharedRegion::from_fd(file.into()));
  assert_eq!(why, Some(Refusal::NotSharedMemory));
  assert_eq!(fd.as_raw_fd(), raw);
  assert!(is_open(raw));
}

#[test]
fn from_fd_refuses_a_pipe() {
  let mut fds = [0; 2];
  assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
  let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
  let (why, read) = refusal(SharedRegion::from_fd(read));
  assert_eq!(why, Some(Refusal::NotSharedMemory));
  drop((read, write));
}

#[cfg(target_os = "linux")]
fn memfd(size: i64, seals: libc::c_int) -> OwnedFd {
  let fd = unsafe {
    libc::memfd_create(
      c"test".as_ptr(),
      libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
    )
  };
  assert!(fd >= 0);
  assert_eq!(unsafe { libc::ftruncate(fd, size) }, 0);
  if seals != 0 {
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) }, 0);
  }
  unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(target_os = "linux")]
#[test]
fn from_fd_refuses_a_memfd_not_sealed_against_shrinking_and_leaves_it_unsealed() {
  let (why, fd) = refusal(SharedRegion::from_fd(memfd(4096, libc::F_SEAL_GROW)));
  assert_eq!(why, Some(Refusal::NotSealed));
  assert_eq!(
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) },
    libc::F_SEAL_GROW
  );
}

#[cfg(target_os = "linux")]
#[test]
fn from_fd_refuses_an_empty_memfd() {
  let (why, _fd) = refusal(SharedRegion::from_fd(memfd(0, libc::F_SEAL_SHRINK)));
  assert_eq!(why, Some(Refusal::Empty));
}

#[cfg(target_os = "linux")]
#[test]
fn from_fd_maps_a_peer_memfd_sealed_against_shrinking_whatever_its_size() {
  let region = SharedRegion::from_fd(memfd(100, libc::F_SEAL_SHRINK)).unwrap();
  assert_eq!(region.len(), 100);
  region.atomic_u8s()[99].store(7, Ordering::Relaxed);
}

#[cfg(target_os = "linux")]
#[test]
fn from_fd_refuses_an_fd_opened_read_only_with_eacces() {
  let region = SharedRegion::create(4096).unwrap();
  let path = format!("/proc/self/fd/{}", region.as_raw_fd());
  let read_only = File::open(path).unwrap();
  let (err, fd) = SharedRegion::from_fd(read_only.into()).unwrap_err();
  assert_eq!(err.raw_os_error(), Some(libc::EACCES));
  assert!(is_open(fd.as_raw_fd()));
}

#[test]
fn from_raw_fd_of_a_closed_fd_fails_with_ebadf() {
  let fd = SharedRegion::create(1).unwrap().into_raw_fd();
  unsafe { libc::close(fd) };
  let err = unsafe { SharedRegion::from_raw_fd(fd) }.unwrap_err();
  assert_eq!(err.raw_os_error(), Some(libc::EBADF));
}

#[test]
fn into_raw_fd_keeps_the_fd_open_and_dropping_closes_it() {
  let region = SharedRegion::create(1).unwrap();
  let fd = region.into_raw_fd();
  assert!(is_open(fd));
  let region = unsafe { SharedRegion::from_raw_fd(fd) }.unwrap();
  drop(region);
  assert!(!is_open(fd));
}

#[test]
fn from_arg_parses_the_fd_that_to_arg_gives() {
  let region = SharedRegion::create(1).unwrap();
  let copy = dup(region.as_raw_fd()).into_raw_fd();
  let other = unsafe { SharedRegion::from_arg(&copy.to_string()) }.unwrap();
  assert_eq!(other.to_arg(), copy.to_string());
  for bad in ["", "-1", "x", "3.5"] {
    let err = unsafe { SharedRegion::from_arg(bad) }.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
  }
}

#[cfg(target_os = "linux")]
#[test]
fn a_large_region_maps_without_touching_its_pages() {
  // Not MAX_SIZE: valgrind, which runs these tests too, gives a process less address space.
  let size = 8 << 30;
  let region = SharedRegion::create(size).unwrap();
  assert_eq!(region.len(), size);
  region.atomic_u8s()[size - 1].store(1, Ordering::Relaxed);
}

#[cfg(target_os = "linux")]
#[test]
fn from_fd_at_most_refuses_an_object_above_the_limit_and_gives_the_fd_back() {
  let region = SharedRegion::create(2 * page_size()).unwrap();
  let (why, _fd) = refusal(
    SharedRegion::from_fd_at_most(dup(region.as_raw_fd()), page_size())
      .map_err(|((err, _), fd)| (err, fd)),
  );
  assert_eq!(why, Some(Refusal::TooLarge));
  assert!(SharedRegion::from_fd_at_most(dup(region.as_raw_fd()), 2 * page_size()).is_ok());
}
