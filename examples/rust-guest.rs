//! A Rust guest on the crate's own doorbell, for hosts started with shm-doorbell's `spawn()`:
//!
//!   rust-guest [echo|flood|once] --doorbell-fd N
//!
//! `echo` (the default) answers every wake with one ring until the host is gone, then prints
//! `{"wakes":N}`; `flood` rings as fast as it can until the host is gone, then prints
//! `{"sent":N,"full":M}` (`full`: rings coalesced into a full buffer); `once` rings once and exits.
//! The benchmark suite and the interop test use it as a peer that is not Node.

use std::error::Error;

use shm_doorbell::doorbell::{is_peer_gone, Doorbell, DoorbellHandle, SignalResult};

fn main() -> Result<(), Box<dyn Error>> {
  let args: Vec<String> = std::env::args().skip(1).collect();
  let mode = match args.first() {
    Some(first) if !first.starts_with("--") => first.as_str(),
    _ => "echo",
  };
  let fd = doorbell_fd_arg(&args).ok_or("missing --doorbell-fd N")?;
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_io()
    .build()?;
  runtime.block_on(async {
    // SAFETY: the host passed this fd for the doorbell, and nothing else in this process owns it.
    let handle = unsafe { DoorbellHandle::from_arg(fd)? };
    let doorbell = Doorbell::from_handle(handle)?;
    match mode {
      "echo" => echo(&doorbell).await,
      "flood" => {
        flood(&doorbell);
        Ok(())
      }
      "once" => {
        doorbell.signal_now();
        Ok(())
      }
      _ => Err(format!("unknown mode {mode}").into()),
    }
  })
}

/// The value of `--doorbell-fd N` or `--doorbell-fd=N`.
fn doorbell_fd_arg(args: &[String]) -> Option<&str> {
  let name = DoorbellHandle::ARG_NAME;
  args.iter().enumerate().find_map(|(index, arg)| {
    if arg == name {
      args.get(index + 1).map(String::as_str)
    } else {
      arg.strip_prefix(name)?.strip_prefix('=')
    }
  })
}

async fn echo(doorbell: &Doorbell) -> Result<(), Box<dyn Error>> {
  let mut wakes = 0u64;
  loop {
    match doorbell.wait().await {
      Ok(()) => {
        wakes += 1;
        if doorbell.signal_now() == SignalResult::PeerDead {
          break;
        }
      }
      Err(err) if is_peer_gone(&err) => break,
      Err(err) => return Err(err.into()),
    }
  }
  println!("{{\"wakes\":{wakes}}}");
  Ok(())
}

fn flood(doorbell: &Doorbell) {
  let (mut sent, mut full) = (0u64, 0u64);
  loop {
    match doorbell.signal_now() {
      SignalResult::Sent => sent += 1,
      SignalResult::BufferFull => full += 1,
      SignalResult::PeerDead => break,
    }
  }
  println!("{{\"sent\":{sent},\"full\":{full}}}");
}
