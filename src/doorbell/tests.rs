use std::time::Duration;

use super::*;

const GENEROUS: Duration = Duration::from_secs(10);

fn fd_flags(fd: RawFd) -> libc::c_int {
  unsafe { libc::fcntl(fd, libc::F_GETFD) }
}

fn is_open(fd: RawFd) -> bool {
  validate_fd(fd).is_ok()
}

async fn wait_within(doorbell: &Doorbell) -> io::Result<()> {
  tokio::time::timeout(GENEROUS, doorbell.wait())
    .await
    .expect("wait did not finish in time")
}

#[tokio::test]
async fn a_signal_wakes_the_peer_and_rings_coalesce() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  let guest = Doorbell::from_handle(guest).unwrap();
  // Rings queue until the pair's small send buffer is full, then coalesce there.
  let mut sent = 0;
  while sent < 1000 && host.signal().await == SignalResult::Sent {
    sent += 1;
  }
  assert!(sent >= 5, "{sent} rings queued");
  assert_eq!(guest.pending_bytes(), sent);
  wait_within(&guest).await.unwrap();
  assert_eq!(guest.pending_bytes(), 0);
  assert!(!guest.drain());
  let second = tokio::time::timeout(Duration::from_millis(50), guest.wait()).await;
  assert!(second.is_err(), "a second wait must sleep until a new ring");
}

#[tokio::test]
async fn the_pair_is_a_stream_socketpair() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  assert_eq!(socket_type(host.as_raw_fd()).unwrap(), libc::SOCK_STREAM);
  assert_eq!(socket_type(guest.as_raw_fd()).unwrap(), libc::SOCK_STREAM);
}

#[tokio::test]
async fn both_ends_are_created_close_on_exec() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  assert_ne!(fd_flags(host.as_raw_fd()) & libc::FD_CLOEXEC, 0);
  assert_ne!(fd_flags(guest.as_raw_fd()) & libc::FD_CLOEXEC, 0);
  clear_cloexec(guest.as_raw_fd()).unwrap();
  assert_eq!(fd_flags(guest.as_raw_fd()) & libc::FD_CLOEXEC, 0);
}

/// Sets errno, as a failing call does.
fn set_errno(code: libc::c_int) {
  #[cfg(any(target_os = "linux", target_os = "android"))]
  let errno = unsafe { libc::__errno_location() };
  #[cfg(any(target_os = "macos", target_os = "ios"))]
  let errno = unsafe { libc::__error() };
  unsafe { *errno = code };
}

#[test]
fn an_interrupted_call_is_retried() {
  let mut calls = 0;
  let ret = retry_eintr(|| {
    calls += 1;
    if calls < 3 {
      set_errno(libc::EINTR);
      -1
    } else {
      7
    }
  });
  assert_eq!(ret.unwrap(), 7);
  assert_eq!(calls, 3);

  let ret = retry_eintr(|| {
    set_errno(libc::EBADF);
    -1
  });
  assert_eq!(ret.unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[tokio::test]
async fn wait_fails_once_the_peer_is_gone_instead_of_spinning() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  let waiter = tokio::spawn(async move {
    let result = host.wait().await;
    (result, host.is_peer_dead())
  });
  tokio::time::sleep(Duration::from_millis(20)).await;
  drop(guest);
  let (result, dead) = tokio::time::timeout(GENEROUS, waiter)
    .await
    .unwrap()
    .unwrap();
  assert!(is_peer_gone(&result.unwrap_err()));
  assert!(dead);
}

#[tokio::test]
async fn rings_sent_before_the_peer_closed_are_delivered_first() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  let guest = Doorbell::from_handle(guest).unwrap();
  assert_eq!(guest.signal_now(), SignalResult::Sent);
  drop(guest);
  wait_within(&host).await.unwrap();
  assert!(!host.is_peer_dead());
  assert!(is_peer_gone(&wait_within(&host).await.unwrap_err()));
  assert!(host.is_peer_dead());
}

#[test]
fn a_full_buffer_counts_as_buffer_full_on_every_platform() {
  let enobufs = io::Error::from_raw_os_error(libc::ENOBUFS);
  assert_eq!(classify_send_error(&enobufs), SignalResult::BufferFull);
  let eagain = io::Error::from_raw_os_error(libc::EAGAIN);
  assert_eq!(classify_send_error(&eagain), SignalResult::BufferFull);
  let epipe = io::Error::from_raw_os_error(libc::EPIPE);
  assert_eq!(classify_send_error(&epipe), SignalResult::PeerDead);
}

#[tokio::test]
async fn a_peer_that_stops_draining_gives_buffer_full_after_a_few_rings() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  let sent = (0..1_000_000)
    .map(|_| host.signal_now())
    .take_while(|r| *r == SignalResult::Sent)
    .count();
  assert!(
    (2..=16).contains(&sent),
    "{sent} rings queued before BufferFull"
  );
  assert_eq!(host.signal_now(), SignalResult::BufferFull);
  assert!(!host.is_peer_dead());
  drop(guest);
}

#[tokio::test]
async fn every_peer_dead_result_marks_the_doorbell_dead() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  drop(guest);
  assert!(!host.is_peer_dead());
  assert_eq!(host.signal_now(), SignalResult::PeerDead);
  assert!(host.is_peer_dead());
}

#[tokio::test]
async fn signalling_a_closed_peer_raises_no_sigpipe() {
  // The Rust runtime ignores SIGPIPE; restore the default so that a SIGPIPE would kill the test.
  let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
  let (host, guest) = Doorbell::create_pair().unwrap();
  drop(guest);
  let results: Vec<_> = (0..3).map(|_| host.signal_now()).collect();
  unsafe { libc::signal(libc::SIGPIPE, previous) };
  assert_eq!(results, vec![SignalResult::PeerDead; 3]);
}

fn dgram_pair() -> [RawFd; 2] {
  let mut fds = [0; 2];
  let ret = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, fds.as_mut_ptr()) };
  assert_eq!(ret, 0);
  fds
}

#[tokio::test]
async fn a_dgram_peer_still_rings() {
  let fds = dgram_pair();
  let ours = Doorbell::from_raw_fd(fds[0]).unwrap();
  let theirs = Doorbell::from_raw_fd(fds[1]).unwrap();
  assert_eq!(theirs.signal_now(), SignalResult::Sent);
  assert_eq!(theirs.signal_now(), SignalResult::Sent);
  wait_within(&ours).await.unwrap();
  assert!(!ours.drain());
  assert_eq!(ours.signal_now(), SignalResult::Sent);
  assert!(theirs.drain());
}

#[tokio::test]
async fn from_raw_fd_leaves_a_non_socket_open_and_untouched() {
  let file = std::fs::File::open("/dev/null").unwrap();
  let fd = file.as_raw_fd();
  let before = unsafe { libc::fcntl(fd, libc::F_GETFL) };
  let errors = [
    Doorbell::from_raw_fd(fd).err().unwrap(),
    DoorbellSocket::from_raw_fd(fd).unwrap_err(),
  ];
  for err in errors {
    assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK));
  }
  assert!(is_open(fd));
  assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFL) }, before);
}

#[tokio::test]
async fn from_raw_fd_rejects_a_closed_fd() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  let fd = guest.as_raw_fd();
  drop(guest);
  let err = Doorbell::from_raw_fd(fd).err().unwrap();
  assert_eq!(err.raw_os_error(), Some(libc::EBADF));
  drop(host);
}

#[tokio::test]
async fn handles_round_trip_through_their_argument_form() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  let arg = guest.to_arg();
  let raw = OwnedFd::from(guest).into_raw_fd();
  assert_eq!(arg, raw.to_string());
  let guest = Doorbell::from_handle(unsafe { DoorbellHandle::from_arg(&arg) }.unwrap()).unwrap();
  guest.signal().await;
  wait_within(&host).await.unwrap();
  assert!(unsafe { DoorbellHandle::from_arg("3x") }.is_err());
  assert_eq!(DoorbellHandle::ARG_NAME, "--doorbell-fd");
}

#[tokio::test]
async fn an_adopted_fd_becomes_close_on_exec() {
  let mut fds = [0; 2];
  let ret = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
  assert_eq!(ret, 0);
  assert_eq!(fd_flags(fds[0]) & libc::FD_CLOEXEC, 0);
  let adopted = Doorbell::from_raw_fd(fds[0]).unwrap();
  assert_ne!(fd_flags(adopted.as_raw_fd()) & libc::FD_CLOEXEC, 0);
  close_peer_fd(fds[1]);
}

#[test]
fn a_doorbell_socket_rings_and_drains_without_a_runtime() {
  let (host, guest) = DoorbellSocket::create_pair().unwrap();
  let guest = DoorbellSocket::from_owned_fd(guest.into()).unwrap();
  assert!(!guest.try_drain().unwrap());
  assert_eq!(host.signal_now(), SignalResult::Sent);
  assert_eq!(host.signal_now(), SignalResult::Sent);
  assert_eq!(guest.pending_bytes(), 2);
  assert!(guest.try_drain().unwrap());
  assert_eq!(guest.pending_bytes(), 0);
  drop(host);
  let err = guest.try_drain().unwrap_err();
  assert!(is_peer_gone(&err));
  assert!(guest.is_peer_dead());
}

#[test]
fn a_drain_takes_at_most_one_buffer_and_leaves_the_rest_for_the_next() {
  // A pair made elsewhere, with the default send buffer, can queue hundreds of rings.
  let mut fds = [0; 2];
  let ret = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
  assert_eq!(ret, 0);
  let host = DoorbellSocket::from_raw_fd(fds[0]).unwrap();
  let guest = DoorbellSocket::from_raw_fd(fds[1]).unwrap();
  for _ in 0..100 {
    assert_eq!(host.signal_now(), SignalResult::Sent);
  }
  let drains: Vec<usize> = std::iter::from_fn(|| Some(guest.try_drain_rings().unwrap()))
    .take_while(|&rings| rings > 0)
    .collect();
  assert!(drains.iter().all(|&rings| rings <= DRAIN_BUFFER_BYTES));
  assert_eq!(drains.len(), 100_usize.div_ceil(DRAIN_BUFFER_BYTES));
  assert_eq!(drains.iter().sum::<usize>(), 100);
  assert_eq!(guest.pending_bytes(), 0);
  assert!(!guest.try_drain().unwrap());
}

#[test]
fn a_drain_is_bounded_and_leaves_the_rest_for_the_next() {
  // A datagram is one ring per read: a peer ringing flat out must not keep a drain reading for ever.
  let fds = dgram_pair();
  let ours = DoorbellSocket::from_raw_fd(fds[0]).unwrap();
  let theirs = DoorbellSocket::from_raw_fd(fds[1]).unwrap();
  let rings = 2 * MAX_DRAIN_READS + 1;
  for _ in 0..rings {
    assert_eq!(theirs.signal_now(), SignalResult::Sent);
  }
  assert_eq!(ours.try_drain_rings().unwrap(), MAX_DRAIN_READS);
  assert_eq!(ours.try_drain_rings().unwrap(), MAX_DRAIN_READS);
  assert_eq!(ours.try_drain_rings().unwrap(), 1);
  assert_eq!(ours.try_drain_rings().unwrap(), 0);
}

fn status_flags(fd: RawFd) -> libc::c_int {
  unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

#[test]
fn the_guest_end_of_a_new_pair_is_blocking_and_each_adopted_end_non_blocking() {
  // O_NONBLOCK belongs to the file description, which a child inheriting the guest end shares:
  // a plain blocking peer must get a blocking socket.
  let (host, guest) = DoorbellSocket::create_pair().unwrap();
  assert_eq!(
    status_flags(host.as_raw_fd()) & libc::O_NONBLOCK,
    libc::O_NONBLOCK
  );
  assert_eq!(status_flags(guest.as_raw_fd()) & libc::O_NONBLOCK, 0);
  let guest = DoorbellSocket::from_owned_fd(guest.into()).unwrap();
  assert_eq!(
    status_flags(guest.as_raw_fd()) & libc::O_NONBLOCK,
    libc::O_NONBLOCK
  );
}

#[test]
fn a_socket_lets_go_of_its_fd_without_closing_it() {
  let (host, guest) = DoorbellSocket::create_pair().unwrap();
  let fd = OwnedFd::from(host).into_raw_fd();
  assert!(is_open(fd));
  let host = DoorbellSocket::from_raw_fd(fd).unwrap();
  assert_eq!(host.signal_now(), SignalResult::Sent);
  let guest = DoorbellSocket::from_owned_fd(guest.into()).unwrap();
  assert!(guest.try_drain().unwrap());
}

/// Counts the wakes of a waker that is not a task's: the binding's tokio engine polls that way.
struct WakeCount(std::sync::atomic::AtomicUsize);

impl std::task::Wake for WakeCount {
  fn wake(self: std::sync::Arc<Self>) {
    self.0.fetch_add(1, Ordering::SeqCst);
  }
}

async fn woken(count: &WakeCount, times: usize) {
  tokio::time::timeout(GENEROUS, async {
    while count.0.load(Ordering::SeqCst) < times {
      tokio::time::sleep(Duration::from_millis(1)).await;
    }
  })
  .await
  .expect("the waker was not woken in time");
}

#[tokio::test]
async fn poll_wait_drains_only_after_the_reactor_saw_a_ring_and_wakes_its_waker() {
  let (host, guest) = Doorbell::create_pair().unwrap();
  let guest = Doorbell::from_handle(guest).unwrap();
  let count = std::sync::Arc::new(WakeCount(std::sync::atomic::AtomicUsize::new(0)));
  let waker = std::task::Waker::from(std::sync::Arc::clone(&count));
  let mut cx = Context::from_waker(&waker);
  assert!(guest.poll_wait(&mut cx).is_pending());
  host.signal_now();
  host.signal_now();
  woken(&count, 1).await;
  assert_eq!(
    guest.pending_bytes(),
    2,
    "nothing is drained before the poll"
  );
  assert!(matches!(guest.poll_wait(&mut cx), Poll::Ready(Ok(2))));
  assert_eq!(guest.pending_bytes(), 0);
  // The drain emptied the socket, so the readiness is cleared and the next poll waits.
  assert!(guest.poll_wait(&mut cx).is_pending());
  drop(host);
  woken(&count, 2).await;
  match guest.poll_wait(&mut cx) {
    Poll::Ready(Err(err)) => assert!(is_peer_gone(&err), "{err}"),
    other => panic!("expected the peer gone, got {other:?}"),
  }
}

#[test]
fn fd_arg_takes_the_last_flag_in_either_form() {
  let args: Vec<String> = [
    "guest.js",
    "--doorbell-fd",
    "7",
    "--x=1",
    "--doorbell-fd=3",
    "--region-fd",
    "4",
  ]
  .iter()
  .map(|arg| arg.to_string())
  .collect();
  assert_eq!(fd_arg(&args, "--doorbell-fd"), Some("3"));
  assert_eq!(fd_arg(&args, "--region-fd"), Some("4"));
  assert_eq!(fd_arg(&args, "--missing"), None);
  assert_eq!(
    fd_arg(&args[..2], "--doorbell-fd"),
    None,
    "a flag with no value"
  );
}
