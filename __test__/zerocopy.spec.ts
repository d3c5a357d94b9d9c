// The Channel without a copy: tryReserve/reserve, commit, abort (r[reserve.*]) and drain (r[drain.*]),
// in this process over a real region and across processes.
import { createRequire } from 'node:module'
import { resolve } from 'node:path'

import test, { type ExecutionContext } from 'ava'
import fc from 'fast-check'
import { Channel, spawnChannel } from 'shm-doorbell'

import { againstScribblingGuest, exitOf, within, workloadFixture } from './helpers.ts'

const {
  Channel: SourceChannel,
  createPairAt,
  createLocalPair,
} = createRequire(import.meta.url)('../lib/channel.js') as typeof import('../lib/channel.ts')
const { HEADER_SIZE } = createRequire(import.meta.url)(
  '../lib/channel/layout.js',
) as typeof import('../lib/channel/layout.ts')
const { sendStream, receiveStream, sendStreamInPlace, receiveStreamInPlace } = createRequire(import.meta.url)(
  '../scripts/workloads/fixtures/channel-stream.cjs',
) as Record<'sendStream' | 'sendStreamInPlace', (channel: Channel, count: number, seed: number) => Promise<number>> &
  Record<
    'receiveStream' | 'receiveStreamInPlace',
    (channel: Channel, count: number, seed: number) => Promise<{ received: number; checksum: number }>
  >

const guestScript = workloadFixture('channel-guest.cjs')
const { length } = createRequire(import.meta.url)('../scripts/workloads/fixtures/channel-stream.cjs') as {
  length(seq: number, seed: number, max: number): number
}

/** A host and its guest, both in this process, over a real region and doorbell. */
function connectedPair(options?: Parameters<typeof Channel.createPair>[0]): [Channel, Channel] {
  const [host, handle] = Channel.createPair(options)
  return [host, Channel.fromHandle(handle)]
}

/** Fills `channel`'s outgoing ring to the last byte: messages of 1000 bytes, then empty ones. */
function fill(channel: Channel): void {
  while (channel.trySend(Buffer.alloc(1000, 9)));
  while (channel.trySend(''));
}

/** The messages `drain` gives, copied out. */
function drained(channel: Channel, max?: number): Buffer[] {
  const messages: Buffer[] = []
  channel.drain((view) => messages.push(Buffer.from(view)), max)
  return messages
}

test('a reserved view written in place arrives as one message on commit, and only then', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  const view = host.tryReserve(5)!
  t.true(view instanceof Uint8Array)
  t.is(view.length, 5)
  view.set(Buffer.from('hello'))
  t.deepEqual(drained(guest), [], 'nothing is visible before the commit')
  host.commit()
  t.deepEqual(drained(guest), [Buffer.from('hello')])
  host.close()
  guest.close()
})

test('commit(length) sends that many bytes of the reservation; more than reserved is ERR_OUT_OF_RANGE and sends nothing', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  host.tryReserve(100)!.fill(7)
  t.throws(() => host.commit(101), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => host.commit(-1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => host.commit(1.5), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => host.commit('3' as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' })
  t.deepEqual(drained(guest), [], 'a refused commit publishes nothing')
  host.commit(3)
  t.deepEqual(drained(guest), [Buffer.from([7, 7, 7])])
  t.throws(() => host.commit(), { code: 'ERR_CHANNEL_NO_RESERVATION' })
  t.throws(() => host.abort(), { code: 'ERR_CHANNEL_NO_RESERVATION' })
  host.close()
  guest.close()
})

test('abort() publishes nothing, and the next message goes where the aborted one would have', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  host.tryReserve(64)!.fill(1)
  host.abort()
  t.deepEqual(drained(guest), [])
  t.true(host.trySend('after'))
  t.deepEqual(drained(guest), [Buffer.from('after')])
  host.close()
  guest.close()
})

test('while a reservation is open nothing else can be sent: ERR_CHANNEL_RESERVATION_OPEN; receiving still works', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  guest.trySend('to the host')
  host.tryReserve(8)
  const open = { code: 'ERR_CHANNEL_RESERVATION_OPEN' }
  t.throws(() => host.trySend('x'), open)
  t.throws(() => host.tryReserve(8), open)
  t.throws(() => host.trySendValue(1), open)
  await t.throwsAsync(host.send('x'), open)
  await t.throwsAsync(host.reserve(8), open)
  await t.throwsAsync(host.sendValue(1), open)
  t.is(host.tryRecv()?.toString(), 'to the host')
  host.abort()
  t.true(host.trySend('x'))
  host.close()
  guest.close()
})

test('bad arguments: ERR_INVALID_ARG_TYPE and ERR_OUT_OF_RANGE, and nothing reserved', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  t.throws(() => host.tryReserve('8' as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => host.tryReserve(-1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => host.tryReserve(host.maxMessageSize + 1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => guest.drain('f' as unknown as () => void), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => guest.drain(() => {}, -1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => guest.drain(() => {}, 1.5), { code: 'ERR_OUT_OF_RANGE' })
  t.true(host.trySend('nothing was reserved'))
  t.is(host.tryReserve(host.maxMessageSize)?.length, host.maxMessageSize)
  host.close()
  guest.close()
})

test('tryReserve returns undefined when the ring is full; reserve waits for room and an aborted reserve takes none', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  fill(host)
  t.is(host.tryReserve(0), undefined)
  const controller = new AbortController()
  const aborted = host.reserve(1000, { signal: controller.signal })
  controller.abort()
  await t.throwsAsync(aborted, { code: 'ABORT_ERR' })
  const waiting = host.reserve(1000)
  t.is(drained(guest, 1).length, 1)
  const view = await within(waiting, 'reserve')
  view.fill(3)
  host.commit()
  const all = drained(guest)
  t.deepEqual(all.at(-1), Buffer.alloc(1000, 3))
  host.close()
  guest.close()
})

test('sends queued before a reserve go first, and sends after its view wait for the commit', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  fill(host)
  const first = host.send('first')
  const reserving = host.reserve(6)
  drained(guest)
  await within(first, 'first send')
  const view = await within(reserving, 'reserve')
  view.set(Buffer.from('second'))
  t.throws(() => host.trySend('third'), { code: 'ERR_CHANNEL_RESERVATION_OPEN' })
  host.commit()
  t.true(host.trySend('third'))
  t.deepEqual(
    drained(guest)
      .map((message) => message.toString())
      .filter((text) => !text.startsWith('\t') && text !== ''),
    ['first', 'second', 'third'],
  )
  host.close()
  guest.close()
})

// r[ring.wrap], r[reserve.commit]: reservations of sizes that straddle the end of the data area, at
// every offset of the last 512 bytes before it (and indices just under 2^32), committed whole or in
// part: each arrives once, whole, with the bytes written into its view.
test('a reservation at every offset near the wrap point arrives whole, committed whole or in part', (t) => {
  const capacity = 4096
  let messages = 0
  for (const base of [0, 2 ** 32 - 2 * capacity]) {
    for (let offset = capacity - 512; offset < capacity; offset += 8) {
      for (const size of [0, 1, 7, 8, 9, 100, 503, 504, 505, 1000, 2040]) {
        for (const commit of new Set([size, size >> 1, 0])) {
          const [host, handle] = createPairAt({ capacity }, (base + offset) >>> 0)
          const guest = SourceChannel.fromHandle(handle)
          const view = host.tryReserve(size)!
          for (let i = 0; i < size; i++) view[i] = (offset + i) & 255
          host.commit(commit)
          const got = drained(guest)
          const want = Buffer.from(Array.from({ length: commit }, (_, i) => (offset + i) & 255))
          if (got.length !== 1 || !got[0]!.equals(want)) {
            t.fail(`offset ${offset} from ${base}: ${size} reserved, ${commit} committed, came out wrong`)
          }
          t.true(host.trySend('next'), 'the ring goes on after it')
          if (drained(guest)[0]?.toString() !== 'next') t.fail(`offset ${offset}: the next message came out wrong`)
          messages++
          host.close()
          guest.close()
        }
      }
    }
  }
  t.true(messages > 2 * 64 * 11)
})

test('drain takes the messages in order, up to max, and counts them; drain on an empty ring is 0', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  for (const message of ['a', 'b', 'c', 'd']) host.trySend(message)
  t.deepEqual(drained(guest, 2).map(String), ['a', 'b'])
  t.is(
    guest.drain(() => {}, 0),
    0,
  )
  t.deepEqual(drained(guest).map(String), ['c', 'd'])
  t.is(
    guest.drain(() => {}),
    0,
  )
  host.close()
  guest.close()
})

test('fn throwing stops the drain: the messages before it are taken, it and the rest stay', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  for (const message of ['1', '2', '3']) host.trySend(message)
  const seen: string[] = []
  t.throws(
    () =>
      guest.drain((view) => {
        const text = Buffer.from(view).toString()
        if (text === '2') throw new Error('stop at 2')
        seen.push(text)
      }),
    { message: 'stop at 2' },
  )
  t.deepEqual(seen, ['1'])
  t.deepEqual(drained(guest).map(String), ['2', '3'])
  host.close()
  guest.close()
})

test('inside a drain fn may send but not receive: ERR_CHANNEL_DRAINING', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  host.trySend('ping')
  host.trySend('pong')
  const draining = { code: 'ERR_CHANNEL_DRAINING' }
  t.is(
    guest.drain((view) => {
      t.throws(() => guest.tryRecv(), draining)
      t.throws(() => guest.drain(() => {}), draining)
      t.throws(() => guest.tryRecvValue(), draining)
      t.true(guest.trySend(view))
    }),
    2,
  )
  t.deepEqual(drained(host).map(String), ['ping', 'pong'])
  host.close()
  guest.close()
})

test('messages tryRecv copied out in a batch come first in a drain, then those in the ring', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  for (let i = 0; i < 10; i++) host.trySend(`m${i}`)
  t.is(guest.tryRecv()?.toString(), 'm0')
  for (let i = 10; i < 12; i++) host.trySend(`m${i}`)
  t.deepEqual(
    drained(guest).map(String),
    Array.from({ length: 11 }, (_, i) => `m${i + 1}`),
  )
  host.close()
  guest.close()
})

test('close() inside a drain stops it; the drain returns what it took and later calls throw ERR_DOORBELL_CLOSED', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  for (const message of ['1', '2', '3']) host.trySend(message)
  t.is(
    guest.drain(() => guest.close()),
    1,
  )
  t.throws(() => guest.drain(() => {}), { code: 'ERR_DOORBELL_CLOSED' })
  host.close()
})

test('readable() resolves once a message is there, without taking it; it rejects with ERR_DOORBELL_PEER_DEAD once the peer is gone', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  const readable = guest.readable()
  host.trySend('here')
  await within(readable, 'readable')
  t.deepEqual(drained(guest).map(String), ['here'])
  host.close()
  await t.throwsAsync(within(guest.readable(), 'readable after the host closed'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.throws(() => guest.drain(() => {}), { code: 'ERR_DOORBELL_PEER_DEAD' })
  guest.close()
})

// r[drain.view]: each view covers its own message's bytes (every byte checked: a view of a message
// already taken would show that one's), inside the ring's data area; the messages tryRecv returned
// (copies) keep their bytes while later drains and batches reuse the ring and the pool.
test('views never alias a message already taken: each is its own message, inside the ring, and taken copies keep their bytes', async (t) => {
  const capacity = 8192
  const count = 50_000
  const seed = 5
  const { child, channel } = spawnChannel(process.execPath, [guestScript, 'flood', String(seed)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    capacity,
  })
  const exit = exitOf(child)
  const dataStart = HEADER_SIZE + capacity // the host's incoming ring is ring 1
  const max = channel.maxMessageSize
  const expected = (seq: number): Buffer => {
    const message = Buffer.alloc(length(seq, seed, max))
    for (let i = 0; i < message.length; i++) message[i] = (((seq & 255) + i) * 131 + 7) & 255
    if (message.length >= 4) message.writeUInt32LE(seq, 0)
    return message
  }
  const kept: [number, Buffer][] = []
  let seq = 0
  while (seq < count) {
    if (seq % 7 === 3) {
      const message = channel.tryRecv()
      if (message === undefined) {
        await within(channel.readable(), `message ${seq}`)
        continue
      }
      if (!message.equals(expected(seq))) throw new Error(`message ${seq}, from tryRecv, came out wrong`)
      if (kept.length < 2000) kept.push([seq, message])
      seq++
    }
    const taken = channel.drain(
      (view) => {
        const start = view.byteOffset
        const end = start + view.length
        const inRing = view.buffer.byteLength === HEADER_SIZE + 2 * capacity
        if (inRing && (start < dataStart || end > dataStart + capacity)) {
          throw new Error(`message ${seq}: a view at ${start}-${end}, outside the ring`)
        }
        if (!Buffer.from(view.buffer, start, view.length).equals(expected(seq))) {
          throw new Error(`message ${seq}, from drain, came out wrong`)
        }
        seq++
      },
      Math.min(count - seq, 1 + (seq % 100)),
    )
    if (taken === 0) await within(channel.readable(), `message ${seq}`)
  }
  t.is(seq, count)
  for (const [at, message] of kept)
    if (!message.equals(expected(at))) t.fail(`message ${at} changed after it was taken`)
  t.true(kept.length > 100)
  child.kill()
  await within(exit, 'guest exit')
  channel.close()
})

// r[corrupt], r[drain.view]: a guest process scribbles over the whole region while this side drains.
// Every drain gives views inside the ring and of at most maxMessageSize, or fails with
// ERR_CHANNEL_CORRUPT; none crashes or hangs.
test('a peer scribbling during a drain gives ERR_CHANNEL_CORRUPT or views inside the ring, never outside it', async (t) => {
  const capacity = 4096
  const dataStart = HEADER_SIZE + capacity
  await againstScribblingGuest(t, capacity, async (channel, seed) => {
    channel.trySend(Buffer.alloc(seed % 2041, 1))
    await within(channel.readable(), 'a message, corruption or the end')
    channel.drain((view) => {
      const end = view.byteOffset + view.length
      const inPool = view.buffer.byteLength !== HEADER_SIZE + 2 * capacity
      if (!inPool && (view.byteOffset < dataStart || end > dataStart + capacity)) {
        throw new Error(`a view at ${view.byteOffset}-${end}, outside the ring`)
      }
      if (view.length > channel.maxMessageSize) throw new Error(`a view of ${view.length} bytes`)
    })
  })
})

test('in one process, scribbles between reservations and drains give ERR_CHANNEL_CORRUPT or valid data (fast-check)', async (t) => {
  let corrupt = 0
  await fc.assert(
    fc.property(
      fc.array(
        fc.record({
          at: fc.integer({ min: 0, max: HEADER_SIZE + 8191 }),
          value: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 4200 })),
          size: fc.integer({ min: 0, max: 2040 }),
          commit: fc.integer({ min: 0, max: 2040 }),
        }),
        { minLength: 1, maxLength: 30 },
      ),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      (steps, start) => {
        const [host, guest, memory] = createLocalPair({ capacity: 4096 }, start & ~7)
        for (const step of steps) {
          new DataView(memory).setUint32(step.at & ~3, step.value, true)
          try {
            const view = host.tryReserve(step.size)
            if (view !== undefined) {
              if (view.byteOffset < HEADER_SIZE || view.byteOffset + view.length > HEADER_SIZE + 4096) {
                throw new Error('a reservation outside the ring')
              }
              host.commit(Math.min(step.commit, step.size))
            }
            guest.drain((got) => {
              const inRing = got.buffer === memory
              if (inRing && (got.byteOffset < HEADER_SIZE || got.byteOffset + got.length > HEADER_SIZE + 4096)) {
                throw new Error('a view outside the ring')
              }
            })
          } catch (err) {
            if ((err as { code?: string }).code !== 'ERR_CHANNEL_CORRUPT') throw err
            corrupt++
            break
          }
        }
        host.close()
        guest.close()
      },
    ),
    { numRuns: 500 },
  )
  t.true(corrupt > 0, 'some scribbles were caught')
})

test('200,000 messages each way between two processes, sent with tryReserve/commit and received with drain, every byte checked', async (t) => {
  const count = 200_000
  const { child, channel } = spawnChannel(process.execPath, [guestScript, 'stream-in-place', String(count), '9'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    capacity: 16384,
  })
  const exit = exitOf(child)
  const [sent, got] = await within(
    Promise.all([sendStreamInPlace(channel, count, 9), receiveStreamInPlace(channel, count, 9)]),
    'the stream',
    100_000,
  )
  const result = await within(exit, 'guest exit')
  t.is(result.code, 0)
  const guest = JSON.parse(result.stdout)
  t.like(guest, { sent: count, received: count, receivedChecksum: sent, sentChecksum: got.checksum })
  t.is(got.received, count)
  channel.close()
})

test('a guest that echoes from a drain view into a reservation sends back every message, in order', async (t) => {
  const { child, channel } = spawnChannel(process.execPath, [guestScript, 'drain-echo'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    capacity: 8192,
  })
  const exit = exitOf(child)
  const count = 20_000
  const [, got] = await within(
    Promise.all([sendStream(channel, count, 3), receiveStream(channel, count, 3)]),
    'the echo',
    100_000,
  )
  t.is(got.received, count)
  channel.close()
  const result = await within(exit, 'guest exit')
  t.is(result.code, 0)
  t.deepEqual(JSON.parse(result.stdout), { messages: count })
})

// Built from examples/rust-channel-peer.rs by scripts/prepare-test.mjs: the crate's own Channel.
const rustPeer = resolve('target/debug/examples/rust-channel-peer')

/** Streams `count` messages each way with a Rust guest in `mode`, this side in place or not. */
async function streamWithRust(
  t: ExecutionContext,
  mode: 'stream' | 'stream-in-place',
  inPlace: boolean,
  count: number,
): Promise<void> {
  const { child, channel } = spawnChannel(rustPeer, [mode, String(count), '17'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    capacity: 8192,
  })
  const exit = exitOf(child)
  const [sent, got] = await within(
    Promise.all(
      inPlace
        ? [sendStreamInPlace(channel, count, 17), receiveStreamInPlace(channel, count, 17)]
        : [sendStream(channel, count, 17), receiveStream(channel, count, 17)],
    ),
    'the stream',
    100_000,
  )
  const result = await within(exit, 'guest exit')
  t.is(result.code, 0, result.stderr)
  t.like(JSON.parse(result.stdout), {
    sent: count,
    received: count,
    receivedChecksum: sent,
    sentChecksum: got.checksum,
  })
  t.is(got.received, count)
  channel.close()
}

test('a Rust guest reads every message that commit wrote, and drain reads every message it sent (50,000 each way)', async (t) => {
  await streamWithRust(t, 'stream', true, 50_000)
})

test("Node reads every message the Rust Channel's try_reserve/commit wrote, and the Rust drain reads Node's (50,000 each way)", async (t) => {
  await streamWithRust(t, 'stream-in-place', false, 50_000)
})

test('a Rust guest and Node both in place: try_reserve/commit and drain on both sides (50,000 each way)', async (t) => {
  await streamWithRust(t, 'stream-in-place', true, 50_000)
})
