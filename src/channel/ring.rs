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
  /// The open reservation (r[reserve.open]): its length, and the bytes its frame takes with any padding.
  reserved: Option<(u32, u32)>,
}

impl Producer {
  pub fn attach(region: &SharedRegion, place: RingPlace) -> Result<Self, Broken> {
    let (tail, head) = checked_indices(region, place)?;
    Ok(Self {
      place,
      tail,
      head,
      reserved: None,
    })
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
    let needed = self.needed(length);
    let body = self.frame_at(region, needed, length);
    // SAFETY: body + length <= data + capacity <= the region's length (checked at attach and by
    // the frame's fit); the peer may read these bytes only after the release store of `tail`.
    unsafe {
      std::ptr::copy_nonoverlapping(message.as_ptr(), region.as_ptr().add(body), message.len());
    }
    self.publish(region, needed);
    Ok(true)
  }

  /// The open reservation's length, if there is one.
  pub fn reserved(&self) -> Option<u32> {
    self.reserved.map(|(length, _)| length)
  }

  /// Opens a reservation of `length` bytes (at most half the ring less 8) if the ring has room
  /// for its frame, where r[ring.wrap] puts it: the body's offset in the region. Writes nothing the
  /// consumer can see (r[reserve.open]).
  pub fn reserve(&mut self, region: &SharedRegion, length: u32) -> Result<Option<usize>, Broken> {
    if !self.has_room(region, length)? {
      return Ok(None);
    }
    let needed = self.needed(length);
    self.reserved = Some((length, needed));
    let pos = if needed > frame_size(length) {
      0
    } else {
      self.tail & (self.place.capacity - 1)
    };
    Ok(Some(self.place.data + (pos + FRAME_HEADER) as usize))
  }

  /// Publishes the first `length` bytes (at most those reserved, which the caller checks) of the
  /// open reservation as a message, where it was reserved: r[reserve.commit].
  pub fn commit(&mut self, region: &SharedRegion, length: u32) {
    let Some((reserved, needed)) = self.reserved.take() else {
      return;
    };
    // A reservation that wrapped stays at 0 with its padding, even if its message would fit now.
    let needed = needed - frame_size(reserved) + frame_size(length);
    self.frame_at(region, needed, length);
    self.publish(region, needed);
  }

  /// Drops the open reservation; nothing of it was ever visible (r[reserve.abort]).
  pub fn abort(&mut self) {
    self.reserved = None;
  }

  /// Writes the headers of a frame of `length` bytes that takes `needed` bytes at the tail, a
  /// padding frame first when `needed` is more than the frame (r[ring.wrap]); the body's offset in
  /// the region.
  fn frame_at(&self, region: &SharedRegion, needed: u32, length: u32) -> usize {
    let words = region.atomic_u32s();
    let mut pos = self.tail & (self.place.capacity - 1);
    let padding = needed - frame_size(length);
    if padding > 0 {
      let at = (self.place.data + pos as usize) / 4;
      words[at].store(padding - FRAME_HEADER, Ordering::Relaxed);
      words[at + 1].store(KIND_PADDING, Ordering::Relaxed);
      pos = 0;
    }
    let at = self.place.data + pos as usize;
    words[at / 4].store(length, Ordering::Relaxed);
    words[at / 4 + 1].store(KIND_MESSAGE, Ordering::Relaxed);
    at + FRAME_HEADER as usize
  }

  /// Moves the tail past `bytes` of frames written: r[ring.commit].
  fn publish(&mut self, region: &SharedRegion, bytes: u32) {
    self.tail = self.tail.wrapping_add(bytes);
    region.atomic_u32s()[TAIL_WORD + self.place.fields].store(self.tail, Ordering::SeqCst);
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
    let mut message = None;
    self.take(region, max, 1, &mut |bytes| message = Some(bytes.to_vec()))?;
    Ok(message)
  }

  /// Calls `visit` with each message in the ring, in place, up to `count` of them, each checked as
  /// r[ring.consume] says; stores `head` after the visits (r[drain.view]), so the producer gets the
  /// bytes back only then. `max` is the largest message. Returns how many it took.
  pub fn take(
    &mut self,
    region: &SharedRegion,
    max: usize,
    count: usize,
    visit: &mut dyn FnMut(&[u8]),
  ) -> Result<usize, Broken> {
    let capacity = self.place.capacity;
    let words = region.atomic_u32s();
    let mut taken = 0;
    let mut used = self.used(region)?;
    let mut pending = 0u32;
    while taken < count && used > 0 {
      let mut pos = self.head.wrapping_add(pending) & (capacity - 1);
      let mut skipped = 0;
      let mut at = (self.place.data + pos as usize) / 4;
      if words[at + 1].load(Ordering::Relaxed) == KIND_PADDING {
        let gap = capacity - pos;
        if words[at].load(Ordering::Relaxed) != gap - FRAME_HEADER || gap >= used {
          return Err("a bad padding frame".to_string());
        }
        skipped = gap;
        pos = 0;
        at = self.place.data / 4;
      }
      let length = words[at].load(Ordering::Relaxed);
      let kind = words[at + 1].load(Ordering::Relaxed);
      if kind != KIND_MESSAGE {
        return Err(format!("a frame of kind {kind}"));
      }
      let frame = frame_size(length);
      if length as usize > max || frame > capacity - pos || skipped + frame > used {
        return Err(format!(
          "a frame of {length} bytes with {} in the ring",
          used - skipped
        ));
      }
      // SAFETY: at * 4 + 8 + length <= data + capacity <= the region's length, checked above; the
      // producer does not write these bytes until `head` passes them. A broken peer may, which
      // changes what `visit` sees but not where it looks.
      let body = unsafe {
        std::slice::from_raw_parts(
          region.as_ptr().add(at * 4 + FRAME_HEADER as usize),
          length as usize,
        )
      };
      visit(body);
      taken += 1;
      pending += skipped + frame;
      used -= skipped + frame;
      if used == 0 && taken < count {
        self.consumed(region, pending);
        pending = 0;
        used = self.used(region)?;
      }
    }
    if pending > 0 {
      self.consumed(region, pending);
    }
    Ok(taken)
  }

  /// Gives `bytes` of the ring back to the producer: r[ring.consume].
  fn consumed(&mut self, region: &SharedRegion, bytes: u32) {
    self.head = self.head.wrapping_add(bytes);
    region.atomic_u32s()[HEAD_WORD + self.place.fields].store(self.head, Ordering::SeqCst);
  }
}
