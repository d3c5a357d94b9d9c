//! The layout a channel speaks (`docs/channel-layout.md`): the region's header and the frames'
//! shape, a new region's set-up, and the checks a region passes before it is used.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

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
pub(crate) const MAGIC_WORD: usize = 0;
pub(crate) const VERSION_WORD: usize = 1;
const CAPACITY_WORD: usize = 2;
/// Word offsets of a ring's fields: ring r's are at `RING_WORDS * r` past these.
pub(crate) const TAIL_WORD: usize = 64 / 4;
pub(crate) const HEAD_WORD: usize = 128 / 4;
pub(crate) const RX_WAITING_WORD: usize = 192 / 4;
pub(crate) const TX_WAITING_WORD: usize = 196 / 4;
const RING_WORDS: usize = 192 / 4;
// r[frame.header]
pub(crate) const FRAME_HEADER: u32 = 8;
pub(crate) const KIND_MESSAGE: u32 = 1;
pub(crate) const KIND_PADDING: u32 = 2;

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

/// Bytes a frame of `length` message bytes takes: its header, and the message padded to 8.
pub(crate) fn frame_size(length: u32) -> u32 {
  FRAME_HEADER + ((length + 7) & !7)
}

/// The capacity of a new channel asked for `capacity` bytes per ring: r[layout.capacity].
pub(crate) fn checked_capacity(capacity: usize) -> io::Result<usize> {
  if capacity == 0 || capacity > MAX_CAPACITY {
    return Err(io::Error::new(
      io::ErrorKind::InvalidInput,
      format!("capacity must be > 0 and <= {MAX_CAPACITY}"),
    ));
  }
  Ok(capacity.next_power_of_two().max(MIN_CAPACITY))
}

/// Writes a new channel's header into `words` (zero-filled), every index at `start`: r[layout.init].
pub(crate) fn init(words: &[AtomicU32], capacity: usize, start: u32) {
  words[VERSION_WORD].store(VERSION, Ordering::Relaxed);
  words[CAPACITY_WORD].store(capacity as u32, Ordering::Relaxed);
  for ring in [0, RING_WORDS] {
    words[TAIL_WORD + ring].store(start, Ordering::Relaxed);
    words[HEAD_WORD + ring].store(start, Ordering::Relaxed);
  }
  words[MAGIC_WORD].store(MAGIC, Ordering::Release);
}

/// One ring of a region, as one side sees it: where its fields and its data are.
#[derive(Clone, Copy)]
pub(crate) struct RingPlace {
  /// Bytes of data, a power of two.
  pub capacity: u32,
  /// Word offset of the ring's fields past those of ring 0.
  pub fields: usize,
  /// Byte offset of the ring's data in the region.
  pub data: usize,
}

/// Checks a region's header (r[layout.attach]) and returns the ring this side produces into and
/// the one it consumes, as the host (ring 0 out) or the guest sees them.
pub(crate) fn attach(
  words: &[AtomicU32],
  len: usize,
  host: bool,
) -> io::Result<(RingPlace, RingPlace)> {
  if len < region_size(MIN_CAPACITY) {
    return Err(corrupt("the region is too small"));
  }
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
  if len < region_size(size) {
    return Err(corrupt("the region is smaller than its rings"));
  }
  let ring = |r: usize| RingPlace {
    capacity,
    fields: RING_WORDS * r,
    data: HEADER_SIZE + size * r,
  };
  Ok(if host {
    (ring(0), ring(1))
  } else {
    (ring(1), ring(0))
  })
}

/// Whether the header still says what [`attach`] checked: r[layout.magic-checked].
pub(crate) fn header_intact(words: &[AtomicU32]) -> bool {
  words[MAGIC_WORD].load(Ordering::Relaxed) == MAGIC
    && words[VERSION_WORD].load(Ordering::Relaxed) == VERSION
}
