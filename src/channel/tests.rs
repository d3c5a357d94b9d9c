use super::*;

fn runtime() -> tokio::runtime::Runtime {
  tokio::runtime::Builder::new_current_thread()
    .enable_io()
    .build()
    .unwrap()
}

fn pair_at(capacity: usize, start: u32) -> (Channel, Channel) {
  let (host, handle) = Channel::create_pair_at(capacity, start).unwrap();
  (host, Channel::from_handle(handle).unwrap())
}

#[test]
fn messages_go_both_ways_whole_and_in_order() {
  runtime().block_on(async {
    let (mut host, mut guest) = pair_at(4096, 0);
    assert_eq!(host.max_message_size(), 2040);
    assert!(host.try_send(b"hello").unwrap());
    assert!(host.try_send(b"").unwrap());
    assert_eq!(guest.try_recv().unwrap().unwrap(), b"hello");
    assert_eq!(guest.try_recv().unwrap().unwrap(), b"");
    assert_eq!(guest.try_recv().unwrap(), None);
    guest.send(&[7; 2040]).await.unwrap();
    assert_eq!(host.recv().await.unwrap(), vec![7; 2040]);
    let err = host.try_send(&[0; 2041]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
  });
}

#[test]
fn frames_wrap_at_every_offset_and_indices_past_2_pow_32() {
  runtime().block_on(async {
    for base in [0u32, 0u32.wrapping_sub(4096)] {
      for offset in (0..4096).step_by(8) {
        let (mut host, mut guest) = pair_at(4096, base.wrapping_add(offset));
        for (index, size) in [0usize, 1, 7, 9, 1000, 2040, 13, 2033]
          .into_iter()
          .enumerate()
        {
          let message = vec![(offset as usize + index) as u8; size];
          assert!(host.try_send(&message).unwrap());
          assert_eq!(
            guest.try_recv().unwrap().unwrap(),
            message,
            "offset {offset}"
          );
        }
      }
    }
  });
}

#[test]
fn a_full_ring_refuses_and_writes_nothing() {
  runtime().block_on(async {
    let (mut host, mut guest) = pair_at(4096, 0);
    let mut sent = 0u8;
    while host.try_send(&[sent; 1000]).unwrap() {
      sent += 1;
    }
    assert_eq!(sent, 4);
    for index in 0..sent {
      assert_eq!(guest.try_recv().unwrap().unwrap(), vec![index; 1000]);
    }
    assert_eq!(guest.try_recv().unwrap(), None);
  });
}

#[test]
fn a_bad_magic_is_corrupt_on_attach_and_on_the_next_call() {
  runtime().block_on(async {
    let (host, handle) = Channel::create_pair(4096).unwrap();
    host.word(MAGIC_WORD).store(0, Ordering::SeqCst);
    let err = Channel::from_handle(handle).err().unwrap();
    assert!(is_corrupt(&err), "{err}");
    let (mut host, mut guest) = pair_at(4096, 0);
    host.word(VERSION_WORD).store(9, Ordering::SeqCst);
    assert!(is_corrupt(&guest.try_recv().unwrap_err()));
    assert!(is_corrupt(&host.try_send(b"x").unwrap_err()));
  });
}

/// r[corrupt]: random words anywhere in the region, between calls: every call gives a message of
/// a valid size, or nothing, or ERR_CHANNEL_CORRUPT; never a crash or a read outside the region.
#[test]
fn scribbles_over_the_region_are_corrupt_or_valid_never_a_crash() {
  runtime().block_on(async {
    let mut state = 0x9e37_79b9u32;
    let mut next = move || {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      state
    };
    let mut corrupted = 0;
    for _ in 0..300 {
      let (mut host, mut guest) = pair_at(4096, next() & !7);
      for _ in 0..30 {
        let words = host.region.atomic_u32s();
        let at = if next() % 2 == 0 {
          next() as usize % 128
        } else {
          next() as usize % (region_size(4096) / 4)
        };
        let value = if next() % 2 == 0 {
          next()
        } else {
          next() % 4200
        };
        words[at].store(value, Ordering::Relaxed);
        for side in [&mut host, &mut guest] {
          let size = next() as usize % 2041;
          let sent = side.try_send(&vec![1; size]);
          let received = side.try_recv();
          for err in [
            sent.err(),
            received
              .as_ref()
              .err()
              .map(|e| io::Error::new(e.kind(), e.to_string())),
          ]
          .into_iter()
          .flatten()
          {
            assert!(is_corrupt(&err), "{err}");
            corrupted += 1;
          }
          if let Ok(Some(message)) = received {
            assert!(message.len() <= side.max_message_size());
          }
        }
      }
    }
    assert!(corrupted > 0);
  });
}

#[test]
fn messages_sent_before_the_peer_closes_arrive_then_peer_gone() {
  runtime().block_on(async {
    let (mut host, mut guest) = pair_at(4096, 0);
    assert!(guest.try_send(b"one").unwrap());
    assert!(guest.try_send(b"two").unwrap());
    drop(guest);
    assert_eq!(host.recv().await.unwrap(), b"one");
    assert_eq!(host.recv().await.unwrap(), b"two");
    let err = host.recv().await.unwrap_err();
    assert!(is_peer_gone(&err), "{err}");
    assert!(is_peer_gone(&host.try_send(b"x").unwrap_err()));
  });
}

#[test]
fn a_sender_waiting_for_room_wakes_when_the_peer_reads() {
  runtime().block_on(async {
    let (mut host, mut guest) = pair_at(4096, 0);
    while host.try_send(&[1; 1000]).unwrap() {}
    let reader = async {
      tokio::task::yield_now().await;
      guest.try_recv().unwrap().unwrap()
    };
    let (sent, read) = tokio::join!(host.send(&[2; 1000]), reader);
    sent.unwrap();
    assert_eq!(read, vec![1; 1000]);
  });
}

#[test]
fn a_reservation_committed_in_part_arrives_as_that_many_bytes_and_only_then() {
  runtime().block_on(async {
    let (mut host, mut guest) = pair_at(4096, 0);
    host
      .try_reserve(10)
      .unwrap()
      .unwrap()
      .copy_from_slice(b"0123456789");
    let mut seen = Vec::new();
    assert_eq!(
      guest.drain(usize::MAX, |m| seen.push(m.to_vec())).unwrap(),
      0
    );
    assert_eq!(
      host.commit(11).unwrap_err().kind(),
      io::ErrorKind::InvalidInput
    );
    host.commit(4).unwrap();
    assert_eq!(
      guest.drain(usize::MAX, |m| seen.push(m.to_vec())).unwrap(),
      1
    );
    assert_eq!(seen, vec![b"0123".to_vec()]);
    assert!(host.commit(0).is_err(), "no reservation is open");
  });
}

#[test]
fn nothing_else_is_sent_while_a_reservation_is_open_and_abort_sends_nothing() {
  runtime().block_on(async {
    let (mut host, mut guest) = pair_at(4096, 0);
    host.try_reserve(8).unwrap().unwrap();
    let err = host.try_send(b"x").unwrap_err();
    assert!(err.to_string().starts_with("ERR_CHANNEL_RESERVATION_OPEN"));
    assert!(host.try_reserve(8).is_err());
    host.abort().unwrap();
    assert!(host.abort().is_err());
    assert!(host.try_send(b"after").unwrap());
    assert_eq!(guest.try_recv().unwrap().unwrap(), b"after");
  });
}

#[test]
fn reservations_wrap_at_every_offset_and_drain_takes_them_in_order_up_to_max() {
  runtime().block_on(async {
    for base in [0u32, 0u32.wrapping_sub(8192)] {
      for offset in (4096 - 512..4096).step_by(8) {
        let (mut host, mut guest) = pair_at(4096, base.wrapping_add(offset));
        for (index, size) in [0usize, 9, 505, 2040, 13].into_iter().enumerate() {
          let fill = (offset as usize + index) as u8;
          host.try_reserve(size).unwrap().unwrap().fill(fill);
          host.commit(size / 2 + size % 2).unwrap();
          let mut got = Vec::new();
          assert_eq!(guest.drain(1, |m| got.push(m.to_vec())).unwrap(), 1);
          assert_eq!(
            got,
            vec![vec![fill; size / 2 + size % 2]],
            "offset {offset}"
          );
        }
        for message in [&b"a"[..], b"b", b"c"] {
          assert!(host.try_send(message).unwrap());
        }
        let mut got = Vec::new();
        assert_eq!(guest.drain(2, |m| got.push(m.to_vec())).unwrap(), 2);
        assert_eq!(
          guest.drain(usize::MAX, |m| got.push(m.to_vec())).unwrap(),
          1
        );
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
      }
    }
  });
}
