//! Channel: messages through a ring per direction in a [`SharedRegion`], with the [`Doorbell`] rung
//! only for a sleeping peer. The same layout as the TypeScript `Channel`; the protocol, and the rule
//! names cited here, are `docs/channel-layout.md`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};

use crate::doorbell::{is_peer_gone, peer_gone, Doorbell, DoorbellHandle, SignalResult};
use crate::region::SharedRegion;

// r[layout.header]
/// `magic`: the bytes `S D C H` in little-endian order.
pub const MAGIC: u32 = 0x4843_4453;
/// The layout version this module speaks.
pub const VERSION: u32 = 1;
/// Bytes before the first ring's data.
pub const HEADER_SIZE: usize = 4096;
/// The smallest and largest `capacity` (r[layout.capacity]).
pub const MIN_CAPACITY: usize = 4096;
pub const MAX_CAPACITY: usize = 1 << 30;
/// The TypeScript API's default capacity.
pub const DEFAULT_CAPACITY: usize = 1 << 20;
const MAGIC_WORD: usize = 0;
const VERSION_WORD: usize = 1;
const CAPACITY_WORD: usize = 2;
const TAIL_WORD: usize = 64 / 4;
const HEAD_WORD: usize = 128 / 4;
const RX_WAITING_WORD: usize = 192 / 4;
const TX_WAITING_WORD: usize = 196 / 4;
const RING_WORDS: usize = 192 / 4;
// r[frame.header]
const FRAME_HEADER: u32 = 8;
const KIND_MESSAGE: u32 = 1;
const KIND_PADDING: u32 = 2;

/// The region size a channel of `capacity` bytes per ring needs (r[layout.size]).
pub fn region_size(capacity: usize) -> usize {
  HEADER_SIZE + 2 * capacity
}

/// The error of a channel whose peer broke the protocol: `InvalidData`, its message starting
/// with `ERR_CHANNEL_CORRUPT`.
pub fn corrupt(what: &str) -> io::Error {
  io::Error::new(
    io::ErrorKind::InvalidData,
    format!("ERR_CHANNEL_CORRUPT: the channel is corrupt: {what}"),
  )
}

/// Whether `err` is [`corrupt`]'s.
pub fn is_corrupt(err: &io::Error) -> bool {
  err.kind() == io::ErrorKind::InvalidData && err.to_string().starts_with("ERR_CHANNEL_CORRUPT")
}

fn frame_size(length: u32) -> u32 {
  FRAME_HEADER + ((length + 7) & !7)
}

/// The end of a channel to hand to the peer: a doorbell end and the region's fd (close-on-exec;
/// clear that, or `dup2` them, to pass them to a child).
#[derive(Debug)]
pub struct ChannelHandle {
  /// The doorbell end, for `--doorbell-fd`.
  pub doorbell: DoorbellHandle,
  /// The region's fd, for `--region-fd`.
  pub region: OwnedFd,
}

/// One side of a channel. The host makes it with [`Channel::create_pair`]; the guest opens the
/// handle's fds with [`Channel::from_parts`]. Needs a tokio runtime with I/O enabled (the doorbell).
pub struct Channel {
  doorbell: Doorbell,
  region: SharedRegion,
  capacity: u32,
  tx: usize,
  tx_data: usize,
  rx: usize,
  rx_data: usize,
  // r[ring.own]: the index this side writes, never read back; and the last value of the peer's.
  tx_tail: u32,
  tx_head: u32,
  rx_head: u32,
  rx_tail: u32,
  corrupt: Option<String>,
  peer_dead: bool,
}

impl Channel {
  /// Creates a channel with `capacity` bytes per ring (rounded up to a power of two of at least
  /// 4096): this side, the host, and the handle to give the guest.
  pub fn create_pair(capacity: usize) -> io::Result<(Self, ChannelHandle)> {
    Self::create_pair_at(capacity, 0)
  }

  /// [`create_pair`](Self::create_pair) with every index starting at `start` (r[layout.init]).
  pub fn create_pair_at(capacity: usize, start: u32) -> io::Result<(Self, ChannelHandle)> {
    if capacity == 0 || capacity > MAX_CAPACITY {
      return Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("capacity must be > 0 and <= {MAX_CAPACITY}"),
      ));
    }
    let capacity = capacity.next_power_of_two().max(MIN_CAPACITY);
    let start = start & !7;
    let region = SharedRegion::create(region_size(capacity))?;
    let words = region.atomic_u32s();
    // r[layout.init]
    words[VERSION_WORD].store(VERSION, Ordering::Relaxed);
    words[CAPACITY_WORD].store(capacity as u32, Ordering::Relaxed);
    for ring in [0, RING_WORDS] {
      words[TAIL_WORD + ring].store(start, Ordering::Relaxed);
      words[HEAD_WORD + ring].store(start, Ordering::Relaxed);
    }
    words[MAGIC_WORD].store(MAGIC, Ordering::Release);
    // SAFETY: fcntl returns a new fd that nothing else owns, or -1.
    let copy = unsafe { libc::fcntl(region.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
      return Err(io::Error::last_os_error());
    }
    let guest_region = unsafe { OwnedFd::from_raw_fd(copy) };
    let (doorbell, guest_doorbell) = Doorbell::create_pair()?;
    let host = Self::attach(doorbell, region, true)?;
    Ok((
      host,
      ChannelHandle {
        doorbell: guest_doorbell,
        region: guest_region,
      },
    ))
  }

  /// The guest's side, over the host's region and the doorbell end it was given; checks the
  /// region first (r[layout.attach]) and fails with [`corrupt`]'s error.
  pub fn from_parts(doorbell: Doorbell, region: SharedRegion) -> io::Result<Self> {
    Self::attach(doorbell, region, false)
  }

  /// The guest's side, from a handle made in this process.
  pub fn from_handle(handle: ChannelHandle) -> io::Result<Self> {
    let region = SharedRegion::from_fd(handle.region).map_err(|(err, _)| err)?;
    Self::from_parts(Doorbell::from_handle(handle.doorbell)?, region)
  }

  fn attach(doorbell: Doorbell, region: SharedRegion, host: bool) -> io::Result<Self> {
    if region.len() < region_size(MIN_CAPACITY) {
      return Err(corrupt("the region is too small"));
    }
    let words = region.atomic_u32s();
    // r[layout.attach]
    if words[MAGIC_WORD].load(Ordering::Acquire) != MAGIC {
      return Err(corrupt("bad magic"));
    }
    let version = words[VERSION_WORD].load(Ordering::Relaxed);
    if version != VERSION {
      return Err(corrupt(&format!("unknown version {version}")));
    }
    let capacity = words[CAPACITY_WORD].load(Ordering::Relaxed);
    let size = capacity as usize;
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&size) || !capacity.is_power_of_two() {
      return Err(corrupt(&format!("bad capacity {capacity}")));
    }
    if region.len() < region_size(size) {
      return Err(corrupt("the region is smaller than its rings"));
    }
    let (tx, rx) = if host {
      (0, RING_WORDS)
    } else {
      (RING_WORDS, 0)
    };
    let tx_tail = words[TAIL_WORD + tx].load(Ordering::Acquire);
    let tx_head = words[HEAD_WORD + tx].load(Ordering::Acquire);
    let rx_tail = words[TAIL_WORD + rx].load(Ordering::Acquire);
    let rx_head = words[HEAD_WORD + rx].load(Ordering::Acquire);
    for (tail, head) in [(tx_tail, tx_head), (rx_tail, rx_head)] {
      if (tail | head) & 7 != 0 || tail.wrapping_sub(head) > capacity {
        return Err(corrupt("bad indices"));
      }
    }
    Ok(Self {
      doorbell,
      capacity,
      tx,
      tx_data: HEADER_SIZE + if host { 0 } else { size },
      rx,
      rx_data: HEADER_SIZE + if host { size } else { 0 },
      tx_tail,
      tx_head,
      rx_head,
      rx_tail: rx_head,
      corrupt: None,
      peer_dead: false,
      region,
    })
  }

  /// The largest message, in bytes: half the ring less 8 (r[frame.max]).
  pub fn max_message_size(&self) -> usize {
    (self.capacity / 2 - FRAME_HEADER) as usize
  }

  /// The doorbell, for diagnostics.
  pub fn doorbell(&self) -> &Doorbell {
    &self.doorbell
  }

  fn word(&self, index: usize) -> &AtomicU32 {
    &self.region.atomic_u32s()[index]
  }

  fn fail(&mut self, what: String) -> io::Error {
    let err = corrupt(&what);
    self.corrupt = Some(what);
    err
  }

  fn check(&mut self) -> io::Result<()> {
    if let Some(what) = &self.corrupt {
      return Err(corrupt(what));
    }
    // r[layout.magic-checked]
    if self.word(MAGIC_WORD).load(Ordering::Relaxed) != MAGIC
      || self.word(VERSION_WORD).load(Ordering::Relaxed) != VERSION
    {
      return Err(self.fail("bad magic or version".to_string()));
    }
    Ok(())
  }

  /// Bytes a frame of `length` takes at the tail, padding included (r[ring.wrap]).
  fn needed(&self, length: u32) -> u32 {
    let gap = self.capacity - (self.tx_tail & (self.capacity - 1));
    let frame = frame_size(length);
    if gap < frame {
      gap + frame
    } else {
      frame
    }
  }

  /// r[ring.room], r[ring.check]: loads the consumer's head, checked.
  fn load_tx_head(&mut self) -> io::Result<()> {
    let head = self.word(HEAD_WORD + self.tx).load(Ordering::Acquire);
    let last = self.tx_head;
    if head & 7 != 0 || head.wrapping_sub(last) > self.tx_tail.wrapping_sub(last) {
      return Err(self.fail(format!(
        "the peer's head moved from {last} to {head} (tail {})",
        self.tx_tail
      )));
    }
    self.tx_head = head;
    Ok(())
  }

  fn has_room(&mut self, length: u32) -> io::Result<bool> {
    let needed = self.needed(length);
    if self.tx_tail.wrapping_sub(self.tx_head) + needed <= self.capacity {
      return Ok(true);
    }
    self.load_tx_head()?;
    Ok(self.tx_tail.wrapping_sub(self.tx_head) + needed <= self.capacity)
  }

  /// Writes `message` if the ring has room: `Ok(false)`, with nothing written, if not. Fails with
  /// `InvalidInput` for a message over [`max_message_size`](Self::max_message_size), with the
  /// doorbell's peer-gone error once the peer is gone, and with [`corrupt`]'s.
  pub fn try_send(&mut self, message: &[u8]) -> io::Result<bool> {
    self.check()?;
    if message.len() > self.max_message_size() {
      return Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
          "message of {} bytes over {}",
          message.len(),
          self.max_message_size()
        ),
      ));
    }
    if self.peer_dead {
      return Err(peer_gone());
    }
    let length = message.len() as u32;
    if !self.has_room(length)? {
      return Ok(false);
    }
    // r[ring.wrap], r[ring.commit]
    let mask = self.capacity - 1;
    let mut pos = self.tx_tail & mask;
    let gap = self.capacity - pos;
    let needed = self.needed(length);
    let words = self.region.atomic_u32s();
    if gap < frame_size(length) {
      let at = (self.tx_data + pos as usize) / 4;
      words[at].store(gap - FRAME_HEADER, Ordering::Relaxed);
      words[at + 1].store(KIND_PADDING, Ordering::Relaxed);
      pos = 0;
    }
    let at = self.tx_data + pos as usize;
    words[at / 4].store(length, Ordering::Relaxed);
    words[at / 4 + 1].store(KIND_MESSAGE, Ordering::Relaxed);
    // SAFETY: at + 8 + length <= tx_data + capacity <= the region's length (checked at attach and
    // by the frame's fit); the peer may read these bytes only after the release store below.
    unsafe {
      std::ptr::copy_nonoverlapping(
        message.as_ptr(),
        self.region.as_ptr().add(at + FRAME_HEADER as usize),
        message.len(),
      );
    }
    self.tx_tail = self.tx_tail.wrapping_add(needed);
    self
      .word(TAIL_WORD + self.tx)
      .store(self.tx_tail, Ordering::SeqCst);
    self.notify(RX_WAITING_WORD + self.tx);
    Ok(true)
  }

  /// r[wake.notify]: rings the peer if it said it sleeps on `flag`.
  fn notify(&mut self, flag: usize) {
    fence(Ordering::SeqCst);
    let word = self.word(flag);
    if word.load(Ordering::SeqCst) != 0
      && word.swap(0, Ordering::SeqCst) != 0
      && self.doorbell.signal_now() == SignalResult::PeerDead
    {
      self.peer_dead = true;
    }
  }

  /// r[ring.consume], r[ring.check]: bytes of frames in the incoming ring.
  fn rx_used(&mut self) -> io::Result<u32> {
    let used = self.rx_tail.wrapping_sub(self.rx_head);
    if used != 0 {
      return Ok(used);
    }
    let tail = self.word(TAIL_WORD + self.rx).load(Ordering::Acquire);
    let used = tail.wrapping_sub(self.rx_head);
    if tail & 7 != 0 || used > self.capacity {
      return Err(self.fail(format!(
        "the peer's tail moved from {} to {tail} (head {})",
        self.rx_tail, self.rx_head
      )));
    }
    self.rx_tail = tail;
    Ok(used)
  }

  /// The next message, or `None` if there is none yet; once the peer is gone and every message
  /// it sent has been received, the doorbell's peer-gone error.
  pub fn try_recv(&mut self) -> io::Result<Option<Vec<u8>>> {
    self.check()?;
    let mut used = self.rx_used()?;
    if used == 0 {
      return if self.peer_dead {
        Err(peer_gone())
      } else {
        Ok(None)
      };
    }
    let capacity = self.capacity;
    let mut pos = self.rx_head & (capacity - 1);
    let mut skipped = 0;
    let words = self.region.atomic_u32s();
    let mut at = (self.rx_data + pos as usize) / 4;
    if words[at + 1].load(Ordering::Relaxed) == KIND_PADDING {
      let gap = capacity - pos;
      if words[at].load(Ordering::Relaxed) != gap - FRAME_HEADER || gap >= used {
        return Err(self.fail("a bad padding frame".to_string()));
      }
      skipped = gap;
      used -= gap;
      pos = 0;
      at = self.rx_data / 4;
    }
    let length = words[at].load(Ordering::Relaxed);
    let kind = words[at + 1].load(Ordering::Relaxed);
    if kind != KIND_MESSAGE {
      return Err(self.fail(format!("a frame of kind {kind}")));
    }
    if length as usize > self.max_message_size()
      || frame_size(length) > capacity - pos
      || frame_size(length) > used
    {
      return Err(self.fail(format!("a frame of {length} bytes with {used} in the ring")));
    }
    let mut message = vec![0u8; length as usize];
    // SAFETY: at * 4 + 8 + length <= rx_data + capacity <= the region's length, checked above.
    unsafe {
      std::ptr::copy_nonoverlapping(
        self.region.as_ptr().add(at * 4 + FRAME_HEADER as usize),
        message.as_mut_ptr(),
        message.len(),
      );
    }
    self.rx_head = self
      .rx_head
      .wrapping_add(skipped)
      .wrapping_add(frame_size(length));
    self
      .word(HEAD_WORD + self.rx)
      .store(self.rx_head, Ordering::SeqCst);
    self.notify(TX_WAITING_WORD + self.rx);
    Ok(Some(message))
  }

  /// Sleeps until the incoming ring may hold a message (`data`) or the outgoing ring may have room
  /// for a message of `room` bytes, or the peer is gone: r[wake.wait], r[wake.room],
  /// r[wake.doorbell]. May return early (a spurious wake); callers re-check.
  pub async fn wait_ready(&mut self, data: bool, room: Option<usize>) -> io::Result<()> {
    self.check()?;
    if self.peer_dead {
      return Ok(());
    }
    let rx_flag = RX_WAITING_WORD + self.rx;
    let tx_flag = TX_WAITING_WORD + self.tx;
    if data {
      self.word(rx_flag).store(1, Ordering::SeqCst);
    }
    if room.is_some() {
      self.word(tx_flag).store(1, Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
    let ready = (data && self.rx_used()? > 0)
      || match room {
        Some(length) => self.has_room(length.min(self.max_message_size()) as u32)?,
        None => false,
      };
    let result = if ready {
      Ok(())
    } else {
      match self.doorbell.wait().await {
        Err(err) if is_peer_gone(&err) => {
          self.peer_dead = true;
          Ok(())
        }
        other => other,
      }
    };
    self.word(rx_flag).store(0, Ordering::Relaxed);
    self.word(tx_flag).store(0, Ordering::Relaxed);
    result
  }

  /// Writes `message`, waiting for room.
  pub async fn send(&mut self, message: &[u8]) -> io::Result<()> {
    while !self.try_send(message)? {
      self.wait_ready(false, Some(message.len())).await?;
    }
    Ok(())
  }

  /// The next message, waiting for one; the peer-gone error once the peer is gone and its
  /// messages are all received.
  pub async fn recv(&mut self) -> io::Result<Vec<u8>> {
    loop {
      if let Some(message) = self.try_recv()? {
        return Ok(message);
      }
      self.wait_ready(true, None).await?;
    }
  }
}

#[cfg(test)]
mod tests;
