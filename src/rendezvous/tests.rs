use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use super::*;
use crate::doorbell::SignalResult;

fn runtime() -> tokio::runtime::Runtime {
  tokio::runtime::Builder::new_current_thread()
    .enable_io()
    .enable_time()
    .build()
    .unwrap()
}

/// A fresh socket path in a fresh directory under the temp dir, removed when the `TempDir` drops.
fn socket_path(name: &str) -> (tempfile::TempDir, PathBuf) {
  let dir = tempfile::Builder::new()
    .prefix(&format!("shm-doorbell-rendezvous-{name}-"))
    .tempdir()
    .unwrap();
  let path = dir.path().join("socket");
  (dir, path)
}

fn code_of(err: &io::Error) -> Option<&'static str> {
  RendezvousError::of(err).map(RendezvousError::code)
}

#[test]
fn a_doorbell_and_a_region_reach_a_process_that_connects_by_path() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("doorbell");
    let mut listener = Listener::bind(&path, ListenOptions::default()).unwrap();
    let region = SharedRegion::create(4096).unwrap();
    region.atomic_u32s()[0].store(0xfeed, std::sync::atomic::Ordering::SeqCst);
    let client = tokio::spawn(connect_doorbell(path.clone()));
    let incoming = listener.accept().await.unwrap();
    assert_eq!(incoming.kind(), Kind::Doorbell);
    assert_eq!(incoming.peer().pid as u32, std::process::id());
    assert_eq!(incoming.peer().uid, unsafe { libc::getuid() });
    assert_eq!(incoming.peer().gid, unsafe { libc::getgid() });
    let host = incoming.doorbell(Some(&region)).unwrap();
    let (guest, guest_region) = client.await.unwrap().unwrap();
    let guest_region = guest_region.unwrap();
    assert_eq!(
      guest_region.atomic_u32s()[0].load(std::sync::atomic::Ordering::SeqCst),
      0xfeed
    );
    assert_eq!(host.signal_now(), SignalResult::Sent);
    guest.wait().await.unwrap();
    assert_eq!(guest.signal_now(), SignalResult::Sent);
    host.wait().await.unwrap();
  });
}

#[test]
fn a_channel_carries_messages_both_ways_after_a_rendezvous() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("channel");
    let mut listener = Listener::bind(&path, ListenOptions::default()).unwrap();
    let client = tokio::spawn(async move {
      let mut channel = connect_channel(path).await.unwrap();
      channel.send(b"hello").await.unwrap();
      channel.recv().await.unwrap()
    });
    let mut host = listener.accept().await.unwrap().channel(8192).unwrap();
    assert_eq!(host.max_message_size(), 8192 / 2 - 8);
    assert_eq!(host.recv().await.unwrap(), b"hello");
    host.send(b"world").await.unwrap();
    assert_eq!(client.await.unwrap(), b"world");
  });
}

#[test]
fn a_refused_or_wrong_kind_connection_gets_its_coded_error() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("refused");
    let mut listener = Listener::bind(&path, ListenOptions::default()).unwrap();
    let client = tokio::spawn(connect_channel(path.clone()));
    listener.accept().await.unwrap().refuse().unwrap();
    let err = client.await.unwrap().err().unwrap();
    assert_eq!(code_of(&err), Some("ERR_DOORBELL_REFUSED"));
    let client = tokio::spawn(connect_doorbell(path.clone()));
    let err = listener
      .accept()
      .await
      .unwrap()
      .channel(4096)
      .err()
      .unwrap();
    assert_eq!(code_of(&err), Some("ERR_DOORBELL_WRONG_KIND"));
    let err = client.await.unwrap().err().unwrap();
    assert_eq!(code_of(&err), Some("ERR_DOORBELL_WRONG_KIND"));
  });
}

#[test]
fn garbage_and_silence_never_hold_up_the_next_process() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("garbage");
    let mut listener = Listener::bind(&path, ListenOptions::default()).unwrap();
    let mut garbage = UnixStream::connect(&path).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let _silent = UnixStream::connect(&path).unwrap();
    let mut old = UnixStream::connect(&path).unwrap();
    old.write_all(&message([MAGIC, 99, 1, 0])).unwrap();
    let client = tokio::spawn(connect_doorbell(path.clone()));
    let incoming = tokio::time::timeout(Duration::from_secs(2), listener.accept())
      .await
      .unwrap()
      .unwrap();
    drop(incoming.doorbell(None).unwrap());
    assert!(client.await.unwrap().unwrap().1.is_none());
    let mut reply = [0u8; MESSAGE_SIZE];
    old.read_exact(&mut reply).unwrap();
    assert_eq!(
      words(&reply),
      [MAGIC, VERSION, Status::UnsupportedVersion as u32, 0]
    );
    // No reply: EOF, or a reset for the bytes left unread.
    let mut rest = Vec::new();
    match garbage.read_to_end(&mut rest) {
      Ok(_) => assert!(rest.is_empty()),
      Err(err) => assert_eq!(err.kind(), ErrorKind::ConnectionReset),
    }
  });
}

#[test]
fn a_live_listener_keeps_its_path_and_a_stale_socket_is_replaced() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("in-use");
    let listener = Listener::bind(&path, ListenOptions::default()).unwrap();
    let err = Listener::bind(&path, ListenOptions::default())
      .err()
      .unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    drop(listener);
    assert!(!path.exists(), "the listener unlinks the file it made");
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists());
    let _listener = Listener::bind(&path, ListenOptions::default()).unwrap();
  });
}

#[test]
fn anything_but_a_socket_at_the_path_is_refused_and_left_alone() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("file");
    std::fs::write(&path, b"keep me").unwrap();
    let err = Listener::bind(&path, ListenOptions::default())
      .err()
      .unwrap();
    assert_eq!(code_of(&err), Some("ERR_DOORBELL_NOT_A_SOCKET"));
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
  });
}

#[test]
fn close_unlinks_only_the_file_this_listener_made() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("replaced");
    let listener = Listener::bind(&path, ListenOptions::default()).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    drop(listener);
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
  });
}

#[test]
fn the_socket_file_gets_the_mode_asked_for() {
  use std::os::unix::fs::PermissionsExt;
  runtime().block_on(async {
    let (_dir, path) = socket_path("mode");
    for mode in [0o600, 0o666] {
      let options = ListenOptions {
        mode,
        ..ListenOptions::default()
      };
      let _listener = Listener::bind(&path, options).unwrap();
      let meta = std::fs::metadata(&path).unwrap();
      assert_eq!(meta.permissions().mode() & 0o777, mode);
    }
  });
}

#[test]
fn bad_paths_get_their_errors() {
  let long = "x".repeat(SocketPath::max_len(false) + 1);
  assert_eq!(
    SocketPath::new(&long).err().unwrap().raw_os_error(),
    Some(libc::ENAMETOOLONG)
  );
  assert!(SocketPath::new("x".repeat(SocketPath::max_len(false))).is_ok());
  assert_eq!(
    SocketPath::new("").err().unwrap().kind(),
    ErrorKind::InvalidInput
  );
  assert_eq!(
    SocketPath::new("a\0b").err().unwrap().kind(),
    ErrorKind::InvalidInput
  );
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn an_abstract_name_has_no_file_and_one_listener() {
  runtime().block_on(async {
    let name = format!("\0shm-doorbell-test-{}", std::process::id());
    let mut listener = Listener::bind(&name, ListenOptions::default()).unwrap();
    let err = Listener::bind(&name, ListenOptions::default())
      .err()
      .unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    let client = tokio::spawn(connect_doorbell(name.clone()));
    drop(listener.accept().await.unwrap().doorbell(None).unwrap());
    assert!(client.await.unwrap().is_ok());
  });
}

#[test]
fn a_listener_that_closes_fails_its_waiting_client_as_gone() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("gone");
    let listener = Listener::bind(&path, ListenOptions::default()).unwrap();
    let client = tokio::spawn(connect_channel(path.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(listener);
    let err = client.await.unwrap().err().unwrap();
    assert_eq!(code_of(&err), Some("ERR_DOORBELL_PEER_DEAD"));
  });
}

#[test]
fn no_listener_is_enoent_or_econnrefused() {
  runtime().block_on(async {
    let (_dir, path) = socket_path("none");
    let err = connect_channel(&path).await.err().unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = connect_channel(&path).await.err().unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
  });
}
