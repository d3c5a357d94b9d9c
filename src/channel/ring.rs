//! The ring arithmetic of one direction of a channel, over the region's bytes alone: the producer
//! writes frames and stores `tail`, the consumer checks and takes them and stores `head`
//! (`docs/channel-layout.md`, r[ring.*] and r[frame.*]). No doorbell and no waiting here: the
//! channel does r[wake.notify] after each store. What the peer wrote that breaks a rule is an
//! `Err` describing it, which the channel turns into [`corrupt`](super::corrupt)'s error.

use std::sync::atomic::Ordering;

use super::layout::{
  frame_size, RingPlace, FRAME_HEADER, HEAD_WORD, KIND_MESSAGE, KIND_PADDING, TAIL_WORD,
};
use crate::region::SharedRegion;

/// What the peer broke, for [`corrupt`](super::corrupt).
pub(crate) type Broken = String;

/// A ring's indices as one side loads them, checked (r[ring.check]): `(tail, head)`.
fn checked_indices(region: &SharedRegion, place: RingPlace) -> Result<(u32, u32), Broken> {
  let words = region.atomic_u32s();
  let tail = words[TAIL_WORD + place.fields].load(Ordering::Acquire);
  let head = words[HEAD_WORD + place.fields].load(Ordering::Acquire);
  if (tail | head) & 7 != 0 || tail.wrapping_sub(head) > place.capacity {
    return Err("bad indices".to_string());
  }
  Ok((tail, head))
}

/// The producer's side of a ring: writes frames, and stores `tail` (r[ring.own]).
pub(crate) struct Producer {
  place: RingPlace,
  // r[ring.own]: the index this side writes, never read back; and the last value of the peer's.
  tail: u32,
  head: u32,
}

impl Producer {
  pub fn attach(region: &SharedRegion, place: RingPlace) -> Result<Self, Broken> {
    let (tail, head) = checked_indices(region, place)?;
    Ok(Self { place, tail, head })
  }

  /// Bytes a frame of `length` takes at the tail, padding included (r[ring.wrap]).
  fn needed(&self, length: u32) -> u32 {
    let gap = self.place.capacity - (self.tail & (self.place.capacity - 1));
    let frame = frame_size(length);
    if gap < frame {
      gap + frame
    } else {
      frame
    }
  }

  /// r[ring.room], r[ring.check]: loads the consumer's head, checked.
  fn load_head(&mut self, region: &SharedRegion) -> Result<(), Broken> {
    let head = region.atomic_u32s()[HEAD_WORD + self.place.fields].load(Ordering::Acquire);
    let last = self.head;
    if head & 7 != 0 || head.wrapping_sub(last) > self.tail.wrapping_sub(last) {
      return Err(format!(
        "the peer's head moved from {last} to {head} (tail {})",
        self.tail
      ));
    }
    self.head = head;
    Ok(())
  }

  /// Whether a message of `length` bytes fits now.
  pub fn has_room(&mut self, region: &SharedRegion, length: u32) -> Result<bool, Broken> {
    let needed = self.needed(length);
    if self.tail.wrapping_sub(self.head) + needed <= self.place.capacity {
      return Ok(true);
    }
    self.load_head(region)?;
    Ok(self.tail.wrapping_sub(self.head) + needed <= self.place.capacity)
  }

  /// Writes `message` (at most half the ring less 8 bytes, as the caller checked) if it fits, and
  /// stores `tail`: r[ring.wrap], r[ring.commit]. `Ok(false)`, with nothing written, if not.
  pub fn write(&mut self, region: &SharedRegion, message: &[u8]) -> Result<bool, Broken> {
    let length = message.len() as u32;
    if !self.has_room(region, length)? {
      return Ok(false);
    }
    let capacity = self.place.capacity;
    let mut pos = self.tail & (capacity - 1);
    let gap = capacity - pos;
    let needed = self.needed(length);
    let words = region.atomic_u32s();
    if gap < frame_size(length) {
      let at = (self.place.data + pos as usize) / 4;
      words[at].store(gap - FRAME_HEADER, Ordering::Relaxed);
      words[at + 1].store(KIND_PADDING, Ordering::Relaxed);
      pos = 0;
    }
    let at = self.place.data + pos as usize;
    words[at / 4].store(length, Ordering::Relaxed);
    words[at / 4 + 1].store(KIND_MESSAGE, Ordering::Relaxed);
    // SAFETY: at + 8 + length <= data + capacity <= the region's length (checked at attach and
    // by the frame's fit); the peer may read these bytes only after the release store below.
    unsafe {
      std::ptr::copy_nonoverlapping(
        message.as_ptr(),
        region.as_ptr().add(at + FRAME_HEADER as usize),
        message.len(),
      );
    }
    self.tail = self.tail.wrapping_add(needed);
    words[TAIL_WORD + self.place.fields].store(self.tail, Ordering::SeqCst);
    Ok(true)
  }
}

/// The consumer's side of a ring: checks and takes frames, and stores `head` (r[ring.own]).
pub(crate) struct Consumer {
  place: RingPlace,
  // r[ring.own]: the index this side writes, never read back; and the last value of the peer's.
  head: u32,
  tail: u32,
}

impl Consumer {
  pub fn attach(region: &SharedRegion, place: RingPlace) -> Result<Self, Broken> {
    let (_, head) = checked_indices(region, place)?;
    Ok(Self {
      place,
      head,
      tail: head,
    })
  }

  /// r[ring.consume], r[ring.check]: bytes of frames in the ring.
  pub fn used(&mut self, region: &SharedRegion) -> Result<u32, Broken> {
    let used = self.tail.wrapping_sub(self.head);
    if used != 0 {
      return Ok(used);
    }
    let tail = region.atomic_u32s()[TAIL_WORD + self.place.fields].load(Ordering::Acquire);
    let used = tail.wrapping_sub(self.head);
    if tail & 7 != 0 || used > self.place.capacity {
      return Err(format!(
        "the peer's tail moved from {} to {tail} (head {})",
        self.tail, self.head
      ));
    }
    self.tail = tail;
    Ok(used)
  }

  /// Takes the next message, checked, and stores `head`: r[ring.consume]. `Ok(None)` if the ring
  /// is empty. `max` is the largest message (r[frame.max]).
  pub fn read(&mut self, region: &SharedRegion, max: usize) -> Result<Option<Vec<u8>>, Broken> {
    let mut used = self.used(region)?;
    if used == 0 {
      return Ok(None);
    }
    let capacity = self.place.capacity;
    let mut pos = self.head & (capacity - 1);
    let mut skipped = 0;
    let words = region.atomic_u32s();
    let mut at = (self.place.data + pos as usize) / 4;
    if words[at + 1].load(Ordering::Relaxed) == KIND_PADDING {
      let gap = capacity - pos;
      if words[at].load(Ordering::Relaxed) != gap - FRAME_HEADER || gap >= used {
        return Err("a bad padding frame".to_string());
      }
      skipped = gap;
      used -= gap;
      pos = 0;
      at = self.place.data / 4;
    }
    let length = words[at].load(Ordering::Relaxed);
    let kind = words[at + 1].load(Ordering::Relaxed);
    if kind != KIND_MESSAGE {
      return Err(format!("a frame of kind {kind}"));
    }
    if length as usize > max || frame_size(length) > capacity - pos || frame_size(length) > used {
      return Err(format!("a frame of {length} bytes with {used} in the ring"));
    }
    let mut message = vec![0u8; length as usize];
    // SAFETY: at * 4 + 8 + length <= data + capacity <= the region's length, checked above.
    unsafe {
      std::ptr::copy_nonoverlapping(
        region.as_ptr().add(at * 4 + FRAME_HEADER as usize),
        message.as_mut_ptr(),
        message.len(),
      );
    }
    self.head = self
      .head
      .wrapping_add(skipped)
      .wrapping_add(frame_size(length));
    words[HEAD_WORD + self.place.fields].store(self.head, Ordering::SeqCst);
    Ok(Some(message))
  }
}
