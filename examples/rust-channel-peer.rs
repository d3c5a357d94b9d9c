//! A Rust peer on the crate's own `Channel`, as a guest or as the host:
//!
//!   rust-channel-peer echo --doorbell-fd N --region-fd M
//!   rust-channel-peer stream COUNT SEED --doorbell-fd N --region-fd M
//!   rust-channel-peer stream-in-place COUNT SEED --doorbell-fd N --region-fd M
//!   rust-channel-peer host COUNT SEED CAPACITY COMMAND [ARGS...]
//!   rust-channel-peer listen PATH COUNT SEED
//!   rust-channel-peer connect PATH COUNT SEED
//!
//! `echo` sends every message back until the host is gone, then prints `{"messages":N}`. `stream`
//! runs the tests' stream workload (`scripts/workloads/fixtures/channel-stream.cjs`: message `seq` has
//! `mix(seq ^ SEED) % (max + 1)` bytes, byte i is `((seq & 255) + i) * 131 + 7`, its first 4 bytes
//! seq) both ways at once, checking every byte it receives, and prints
//! `{"sent":COUNT,"sentChecksum":S,"received":COUNT,"receivedChecksum":R}`; `stream-in-place` does
//! the same with `try_reserve` (a few bytes more than each message) and `commit` of its length, and
//! `drain`, checking each message in place. `host` makes the
//! channel, starts `COMMAND ARGS... --doorbell-fd 3 --region-fd 4` with the fds as its 3 and 4,
//! runs `stream` against it and prints the same line. `listen` binds PATH with
//! `shm_doorbell::rendezvous`, prints `listening`, and runs `stream` as the host of the first channel
//! it accepts (capacity 4096); `connect` connects to PATH and runs `stream` as the guest. The interop
//! tests run it against Node.

use std::error::Error;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use shm_doorbell::channel::Channel;
use shm_doorbell::doorbell::{fd_arg, is_peer_gone, Doorbell, DoorbellHandle};
use shm_doorbell::region::SharedRegion;
use shm_doorbell::rendezvous::{self, ListenOptions, Listener};

fn main() -> Result<(), Box<dyn Error>> {
  let args: Vec<String> = std::env::args().skip(1).collect();
  let runtime = tokio::runtime::Builder::new_current_thread()
    .enable_io()
    .enable_time()
    .build()?;
  runtime.block_on(async {
    match args.first().map(String::as_str) {
      Some("echo") => echo(&mut guest(&args)?).await,
      Some(mode @ ("stream" | "stream-in-place")) => {
        let (count, seed) = (args[1].parse()?, args[2].parse()?);
        stream(&mut guest(&args)?, count, seed, mode == "stream-in-place").await
      }
      Some("host") => host(&args[1..]).await,
      Some("listen") => {
        let mut listener = Listener::bind(&args[1], ListenOptions::default())?;
        println!("listening");
        let mut channel = listener.accept().await?.channel(4096)?;
        drop(listener);
        stream(&mut channel, args[2].parse()?, args[3].parse()?, false).await
      }
      Some("connect") => {
        let mut channel = rendezvous::connect_channel(&args[1]).await?;
        stream(&mut channel, args[2].parse()?, args[3].parse()?, false).await
      }
      other => Err(format!("unknown mode {other:?}").into()),
    }
  })
}

fn guest(args: &[String]) -> Result<Channel, Box<dyn Error>> {
  let doorbell_fd = fd_arg(args, DoorbellHandle::ARG_NAME).ok_or("missing --doorbell-fd N")?;
  let region_fd = fd_arg(args, SharedRegion::ARG_NAME).ok_or("missing --region-fd N")?;
  // SAFETY: the host passed these fds for the channel, and nothing else in this process owns them.
  let region = unsafe { SharedRegion::from_arg(region_fd)? };
  let doorbell = Doorbell::from_handle(unsafe { DoorbellHandle::from_arg(doorbell_fd)? })?;
  Ok(Channel::from_parts(doorbell, region)?)
}

async fn echo(channel: &mut Channel) -> Result<(), Box<dyn Error>> {
  let mut messages = 0u64;
  loop {
    match channel.recv().await {
      Ok(message) => {
        messages += 1;
        channel.send(&message).await?;
      }
      Err(err) if is_peer_gone(&err) => break,
      Err(err) => return Err(err.into()),
    }
  }
  println!("{{\"messages\":{messages}}}");
  Ok(())
}

fn mix(mut h: u32) -> u32 {
  h ^= h >> 16;
  h = h.wrapping_mul(0x85eb_ca6b);
  h ^= h >> 13;
  h = h.wrapping_mul(0xc2b2_ae35);
  h ^ (h >> 16)
}

/// The workload's message `seq`.
fn message(seq: u32, seed: u32, max: usize) -> Vec<u8> {
  let length = (mix(seq ^ seed) as usize) % (max + 1);
  let offset = (seq & 255) as usize;
  let mut bytes: Vec<u8> = (0..length)
    .map(|i| (((offset + i) * 131 + 7) & 255) as u8)
    .collect();
  if length >= 4 {
    bytes[..4].copy_from_slice(&seq.to_le_bytes());
  }
  bytes
}

fn checksum(sum: u32, length: usize) -> u32 {
  sum.wrapping_mul(31).wrapping_add(length as u32)
}

/// Sends and receives `count` messages each way at once, one loop doing whichever can go on; with
/// `in_place`, through `try_reserve`/`commit` and `drain` instead of `try_send` and `try_recv`.
async fn stream(
  channel: &mut Channel,
  count: u32,
  seed: u32,
  in_place: bool,
) -> Result<(), Box<dyn Error>> {
  let max = channel.max_message_size();
  let (mut sent, mut received) = (0u32, 0u32);
  let (mut sent_sum, mut received_sum) = (0u32, 0u32);
  let mut next = message(0, seed, max);
  while sent < count || received < count {
    let mut progress = false;
    while sent < count {
      if in_place {
        let reserved = (next.len() + (sent % 24) as usize).min(max);
        let Some(view) = channel.try_reserve(reserved)? else {
          break;
        };
        view[..next.len()].copy_from_slice(&next);
        channel.commit(next.len())?;
      } else if !channel.try_send(&next)? {
        break;
      }
      sent_sum = checksum(sent_sum, next.len());
      sent += 1;
      next = message(sent, seed, max);
      progress = true;
    }
    while received < count {
      let mut wrong = None;
      let taken = if in_place {
        channel.drain((count - received) as usize, |got| {
          if wrong.is_none() && got != message(received, seed, max).as_slice() {
            wrong = Some(received);
          }
          received_sum = checksum(received_sum, got.len());
          received += 1;
        })?
      } else {
        let Some(got) = channel.try_recv()? else {
          break;
        };
        if got != message(received, seed, max) {
          wrong = Some(received);
        }
        received_sum = checksum(received_sum, got.len());
        received += 1;
        1
      };
      if let Some(seq) = wrong {
        return Err(format!("message {seq}: wrong length or bytes").into());
      }
      if taken == 0 {
        break;
      }
      progress = true;
    }
    if !progress {
      let room = (sent < count).then_some(next.len() + 24);
      channel.wait_ready(received < count, room).await?;
    }
  }
  println!(
    "{{\"sent\":{count},\"sentChecksum\":{sent_sum},\"received\":{received},\"receivedChecksum\":{received_sum}}}"
  );
  Ok(())
}

/// Makes the channel, starts the guest command with the fds as its 3 and 4, and streams with it.
async fn host(args: &[String]) -> Result<(), Box<dyn Error>> {
  let [count, seed, capacity, command, rest @ ..] = args else {
    return Err("host COUNT SEED CAPACITY COMMAND [ARGS...]".into());
  };
  let (mut channel, handle) = Channel::create_pair(capacity.parse()?)?;
  let doorbell: OwnedFd = handle.doorbell.into();
  let fds: [RawFd; 2] = [doorbell.as_raw_fd(), handle.region.as_raw_fd()];
  let mut child = Command::new(command);
  child
    .args(rest)
    .args(["--doorbell-fd", "3", "--region-fd", "4"]);
  // SAFETY: only fcntl and dup2 run between fork and exec, both async-signal-safe.
  unsafe {
    child.pre_exec(move || {
      // Both copied above 4 first, so that neither dup2 overwrites the other's source.
      let high = fds.map(|fd| libc::fcntl(fd, libc::F_DUPFD, 10));
      for (target, fd) in [3, 4].into_iter().zip(high) {
        if fd < 0 || libc::dup2(fd, target) < 0 {
          return Err(std::io::Error::last_os_error());
        }
      }
      Ok(())
    });
  }
  let mut child = child.spawn()?;
  drop(doorbell);
  drop(handle.region);
  let result = stream(&mut channel, count.parse()?, seed.parse()?, false).await;
  drop(channel);
  let status = child.wait()?;
  result?;
  if !status.success() {
    return Err(format!("the guest exited with {status}").into());
  }
  Ok(())
}
