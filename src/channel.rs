//! Channel: messages through a ring per direction in a [`SharedRegion`], with the [`Doorbell`] rung
//! only for a sleeping peer. The same layout as the TypeScript `Channel`; the protocol, and the rule
//! names cited here, are `docs/channel-layout.md`. [`layout`] is the header and the frames, `ring`
//! the producer's and the consumer's arithmetic; this module composes them with the doorbell and
//! does the waiting (r[wake.*]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};

use crate::doorbell::{is_peer_gone, peer_gone, Doorbell, DoorbellHandle, SignalResult};
use crate::region::SharedRegion;

pub mod layout;
mod ring;

pub use layout::{
  corrupt, is_corrupt, region_size, DEFAULT_CAPACITY, HEADER_SIZE, MAGIC, MAX_CAPACITY,
  MIN_CAPACITY, VERSION,
};
#[cfg(test)]
use layout::{MAGIC_WORD, VERSION_WORD};
use layout::{RX_WAITING_WORD, TX_WAITING_WORD};
use ring::{Broken, Consumer, Producer};

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
  producer: Producer,
  consumer: Consumer,
  /// This side's flags (waiting for data, for room) and the peer's (r[wake.wait]).
  data_flag: usize,
  room_flag: usize,
  peer_data_flag: usize,
  peer_room_flag: usize,
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
    let capacity = layout::checked_capacity(capacity)?;
    let region = SharedRegion::create(region_size(capacity))?;
    layout::init(region.atomic_u32s(), capacity, start & !7);
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
    let (tx, rx) = layout::attach(region.atomic_u32s(), region.len(), host)?;
    let producer = Producer::attach(&region, tx).map_err(|what| corrupt(&what))?;
    let consumer = Consumer::attach(&region, rx).map_err(|what| corrupt(&what))?;
    Ok(Self {
      doorbell,
      capacity: tx.capacity,
      producer,
      consumer,
      data_flag: RX_WAITING_WORD + rx.fields,
      room_flag: TX_WAITING_WORD + tx.fields,
      peer_data_flag: RX_WAITING_WORD + tx.fields,
      peer_room_flag: TX_WAITING_WORD + rx.fields,
      corrupt: None,
      peer_dead: false,
      region,
    })
  }

  /// The largest message, in bytes: half the ring less 8 (r[frame.max]).
  pub fn max_message_size(&self) -> usize {
    (self.capacity / 2 - layout::FRAME_HEADER) as usize
  }

  /// The doorbell, for diagnostics.
  pub fn doorbell(&self) -> &Doorbell {
    &self.doorbell
  }

  fn word(&self, index: usize) -> &AtomicU32 {
    &self.region.atomic_u32s()[index]
  }

  /// Marks the channel corrupt (r[corrupt]): every later call fails with the same error.
  fn fail(&mut self, what: Broken) -> io::Error {
    let err = corrupt(&what);
    self.corrupt = Some(what);
    err
  }

  fn check(&mut self) -> io::Result<()> {
    if let Some(what) = &self.corrupt {
      return Err(corrupt(what));
    }
    if !layout::header_intact(self.region.atomic_u32s()) {
      return Err(self.fail("bad magic or version".to_string()));
    }
    Ok(())
  }

  /// The checks of every way to send a message of `length` bytes: the channel, no open
  /// reservation (r[reserve.open]), the length, the peer.
  fn check_send(&mut self, length: usize) -> io::Result<()> {
    self.check()?;
    if self.producer.reserved().is_some() {
      return Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "ERR_CHANNEL_RESERVATION_OPEN: a reservation is open: commit or abort it before sending anything else",
      ));
    }
    if length > self.max_message_size() {
      return Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("message of {length} bytes over {}", self.max_message_size()),
      ));
    }
    if self.peer_dead {
      return Err(peer_gone());
    }
    Ok(())
  }

  /// Writes `message` if the ring has room: `Ok(false)`, with nothing written, if not. Fails with
  /// `InvalidInput` for a message over [`max_message_size`](Self::max_message_size) or while a
  /// reservation is open, with the doorbell's peer-gone error once the peer is gone, and with
  /// [`corrupt`]'s.
  pub fn try_send(&mut self, message: &[u8]) -> io::Result<bool> {
    self.check_send(message.len())?;
    match self.producer.write(&self.region, message) {
      Ok(true) => {
        self.notify(self.peer_data_flag);
        Ok(true)
      }
      Ok(false) => Ok(false),
      Err(what) => Err(self.fail(what)),
    }
  }

  /// The `length` bytes of free space in the outgoing ring where a message goes, to write it in
  /// place, or `None` if the ring has no room for it; then [`commit`](Self::commit) sends it or
  /// [`abort`](Self::abort) drops it. Until then the peer sees nothing of it and nothing else can be
  /// sent. Fails as [`try_send`](Self::try_send) does. r[reserve.open]
  pub fn try_reserve(&mut self, length: usize) -> io::Result<Option<&mut [u8]>> {
    self.check_send(length)?;
    let body = match self.producer.reserve(&self.region, length as u32) {
      Ok(Some(body)) => body,
      Ok(None) => return Ok(None),
      Err(what) => return Err(self.fail(what)),
    };
    // SAFETY: body + length <= the outgoing ring's data (the producer placed the frame in it); the
    // consumer reads none of it before the commit's release store of `tail`, and the borrow of
    // `self` keeps a second reservation or a send from writing there meanwhile.
    Ok(Some(unsafe {
      std::slice::from_raw_parts_mut(self.region.as_ptr().add(body), length)
    }))
  }

  /// Sends the first `length` bytes of the open reservation as one message (r[reserve.commit]).
  /// `InvalidInput` (and nothing sent, the reservation still open) without a reservation or for
  /// more than was reserved; the peer-gone error, the reservation dropped, once the peer is gone.
  pub fn commit(&mut self, length: usize) -> io::Result<()> {
    self.check()?;
    let reserved = self.producer.reserved().ok_or_else(no_reservation)? as usize;
    if length > reserved {
      return Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("commit of {length} bytes, {reserved} reserved"),
      ));
    }
    if self.peer_dead {
      self.producer.abort();
      return Err(peer_gone());
    }
    self.producer.commit(&self.region, length as u32);
    self.notify(self.peer_data_flag);
    Ok(())
  }

  /// Drops the open reservation: the peer sees nothing of it (r[reserve.abort]). `InvalidInput`
  /// without one.
  pub fn abort(&mut self) -> io::Result<()> {
    self.producer.reserved().ok_or_else(no_reservation)?;
    self.producer.abort();
    Ok(())
  }

  /// Calls `visit` with each message already in the incoming ring, in place and in order, up to
  /// `max` of them, and returns how many it took; the bytes go back to the peer after the calls
  /// (r[drain.view]). The peer-gone error once the peer is gone and every message it sent has been
  /// taken, and [`corrupt`]'s.
  pub fn drain(&mut self, max: usize, mut visit: impl FnMut(&[u8])) -> io::Result<usize> {
    self.check()?;
    let size = self.max_message_size();
    match self.consumer.take(&self.region, size, max, &mut visit) {
      Ok(0) if max > 0 && self.peer_dead => Err(peer_gone()),
      Ok(taken) => {
        if taken > 0 {
          self.notify(self.peer_room_flag);
        }
        Ok(taken)
      }
      Err(what) => Err(self.fail(what)),
    }
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

  /// The next message, or `None` if there is none yet; once the peer is gone and every message
  /// it sent has been received, the doorbell's peer-gone error.
  pub fn try_recv(&mut self) -> io::Result<Option<Vec<u8>>> {
    self.check()?;
    let max = self.max_message_size();
    match self.consumer.read(&self.region, max) {
      Ok(Some(message)) => {
        self.notify(self.peer_room_flag);
        Ok(Some(message))
      }
      Ok(None) if self.peer_dead => Err(peer_gone()),
      Ok(None) => Ok(None),
      Err(what) => Err(self.fail(what)),
    }
  }

  /// Sleeps until the incoming ring may hold a message (`data`) or the outgoing ring may have room
  /// for a message of `room` bytes, or the peer is gone: r[wake.wait], r[wake.room],
  /// r[wake.doorbell]. May return early (a spurious wake); callers re-check.
  pub async fn wait_ready(&mut self, data: bool, room: Option<usize>) -> io::Result<()> {
    self.check()?;
    if self.peer_dead {
      return Ok(());
    }
    if data {
      self.word(self.data_flag).store(1, Ordering::SeqCst);
    }
    if room.is_some() {
      self.word(self.room_flag).store(1, Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
    let ready = self.ready(data, room).map_err(|what| self.fail(what))?;
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
    self.word(self.data_flag).store(0, Ordering::Relaxed);
    self.word(self.room_flag).store(0, Ordering::Relaxed);
    result
  }

  /// Whether the incoming ring holds a frame (`data`), or the outgoing one has room for `room` bytes.
  fn ready(&mut self, data: bool, room: Option<usize>) -> Result<bool, Broken> {
    if data && self.consumer.used(&self.region)? > 0 {
      return Ok(true);
    }
    match room {
      Some(length) => {
        let length = length.min(self.max_message_size()) as u32;
        self.producer.has_room(&self.region, length)
      }
      None => Ok(false),
    }
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

/// The error of a commit or abort without a reservation.
fn no_reservation() -> io::Error {
  io::Error::new(
    io::ErrorKind::InvalidInput,
    "ERR_CHANNEL_NO_RESERVATION: no reservation is open",
  )
}

#[cfg(test)]
mod tests;
