//! A Rust guest on the crate's own doorbell, for hosts started with shm-doorbell's `spawn()`:
//!
//!   rust-guest [echo|flood|once] --doorbell-fd N
//!   rust-guest [region|region-add COUNT] --doorbell-fd N --region-fd M
//!   rust-guest region-made SIZE --doorbell-fd N
//!
//! `echo` (the default) answers every wake with one ring until the host is gone, then prints
//! `{"wakes":N}`; `flood` rings as fast as it can until the host is gone, then prints
//! `{"sent":N,"full":M}` (`full`: rings coalesced into a full buffer); `once` rings once and exits.
//! `region` maps the host's region, checks the host's pattern (byte i is `i * 31 + 7`), writes its
//! own (`i * 17 + 1`), rings and prints `{"size":S,"mismatches":M}`; `region-add` rings, then adds
//! 1 to the int32 at index 0 COUNT times, in steps of 10,000 kept in step with the host through
//! the int32s at 2 (host) and 3 (this guest), and prints `{"added":COUNT}`. `region-made` is the
//! reverse: it creates a region of SIZE bytes, writes its pattern, prints `{"pid":P,"fd":F,"size":S}`
//! (the host maps it through `/proc/P/fd/F`), waits for a ring, then checks the host's pattern and
//! prints `{"mismatches":M}`.
//! The benchmark suite and the interop tests use it as a peer that is not Node.

use std::error::Error;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::Ordering;

use shm_doorbell::doorbell::{fd_arg, is_peer_gone, Doorbell, DoorbellHandle, SignalResult};
use shm_doorbell::region::SharedRegion;

fn main() -> Result<(), Box<dyn Error>> {
  let args: Vec<String> = std::env::args().skip(1).collect();
  let mode = match args.first() {
    Some(first) if !first.starts_with("--") => first.as_str(),
    _ => "echo",
  };
  let fd = fd_arg(&args, DoorbellHandle::ARG_NAME).ok_or("missing --doorbell-fd N")?;
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
      "region-made" => {
        let size = args.get(1).ok_or("missing SIZE")?.parse()?;
        let region = SharedRegion::create(size)?;
        for (i, byte) in region.atomic_u8s().iter().enumerate() {
          byte.store((i * 17 + 1) as u8, Ordering::Relaxed);
        }
        let (pid, fd) = (std::process::id(), region.as_raw_fd());
        println!("{{\"pid\":{pid},\"fd\":{fd},\"size\":{}}}", region.len());
        doorbell.wait().await?;
        let bytes = region.atomic_u8s();
        let mismatches = (0..bytes.len())
          .filter(|&i| bytes[i].load(Ordering::Relaxed) != (i * 31 + 7) as u8)
          .count();
        println!("{{\"mismatches\":{mismatches}}}");
        Ok(())
      }
      "region" | "region-add" => {
        let arg = fd_arg(&args, SharedRegion::ARG_NAME).ok_or("missing --region-fd N")?;
        // SAFETY: the host passed this fd for the region, and nothing else here owns it.
        let region = unsafe { SharedRegion::from_arg(arg)? };
        if mode == "region" {
          check_and_write_pattern(&region);
        } else {
          let count = args.get(1).ok_or("missing COUNT")?.parse()?;
          doorbell.signal_now();
          add_in_step(&region, count);
        }
        doorbell.signal_now();
        Ok(())
      }
      _ => Err(format!("unknown mode {mode}").into()),
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

fn check_and_write_pattern(region: &SharedRegion) {
  let bytes = region.atomic_u8s();
  let mismatches = (0..bytes.len())
    .filter(|&i| bytes[i].load(Ordering::Relaxed) != (i * 31 + 7) as u8)
    .count();
  for (i, byte) in bytes.iter().enumerate() {
    byte.store((i * 17 + 1) as u8, Ordering::Relaxed);
  }
  println!("{{\"size\":{},\"mismatches\":{mismatches}}}", region.len());
}

/// Int32 slots shared with the host: the counter, and each side's step.
const COUNTER: usize = 0;
const HOST_STEP: usize = 2;
const GUEST_STEP: usize = 3;
const STEP: u64 = 10_000;

fn add_in_step(region: &SharedRegion, count: u64) {
  let words = region.atomic_i32s();
  let mut step = 0;
  while step * STEP < count {
    while u64::try_from(words[HOST_STEP].load(Ordering::SeqCst)).unwrap_or(0) < step {
      std::hint::spin_loop();
    }
    for _ in step * STEP..count.min((step + 1) * STEP) {
      words[COUNTER].fetch_add(1, Ordering::SeqCst);
    }
    step += 1;
    words[GUEST_STEP].store(step as i32, Ordering::SeqCst);
  }
  println!("{{\"added\":{count}}}");
}
