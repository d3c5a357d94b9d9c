// Channel: the ring (docs/channel-layout.md), in this process over one region and across processes.
import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { inspect } from 'node:util'

import test, { type ExecutionContext } from 'ava'
import fc from 'fast-check'
import { Channel, ChannelHandle, Doorbell, SharedRegion, spawnChannel, validateFd } from 'shm-doorbell'

// The modules' internals, as the compiled package loads them (so that their classes are the package's).
const {
  Channel: SourceChannel,
  createLocalPair,
  createPairAt,
} = createRequire(import.meta.url)('../lib/channel.js') as typeof import('../lib/channel.ts')
const { HEADER_SIZE, initRegion, regionSize } = createRequire(import.meta.url)(
  '../lib/channel/layout.js',
) as typeof import('../lib/channel/layout.ts')
import {
  againstScribblingGuest,
  exitOf,
  fdCountBackTo,
  openFdCount,
  stateAfter,
  within,
  workloadFixture,
} from './helpers.ts'
import { type StreamReport, streamBothWays } from '../scripts/workloads/reliability.ts'

const { receiveStream, sendStream } = createRequire(import.meta.url)(
  '../scripts/workloads/fixtures/channel-stream.cjs',
) as {
  sendStream(channel: Channel, count: number, seed: number): Promise<number>
  receiveStream(
    channel: Channel,
    count: number,
    seed: number,
    from?: number,
  ): Promise<{ received: number; checksum: number; error?: Error & { code: string } }>
}

/** A host and its guest, both in this process, over a real region and doorbell. */
function connectedPair(options?: Parameters<typeof Channel.createPair>[0]): [Channel, Channel] {
  const [host, handle] = Channel.createPair(options)
  return [host, Channel.fromHandle(handle)]
}

const bytes = (length: number, fill: number): Buffer => Buffer.alloc(length, fill)

test('a message sent by the host is received by the guest, and the reverse; strings go as UTF-8', async (t) => {
  const [host, guest] = connectedPair()
  t.true(host.trySend(Buffer.from('hello')))
  t.is(guest.tryRecv()?.toString(), 'hello')
  t.is(guest.tryRecv(), undefined)
  await guest.send('grüße, 世界')
  t.is((await within(host.recv(), 'recv')).toString(), 'grüße, 世界')
  host.close()
  guest.close()
})

test('util.inspect shows maxMessageSize and closed', (t) => {
  const [host, handle] = Channel.createPair({ capacity: 4096 })
  t.is(inspect(host), 'Channel { maxMessageSize: 2040, closed: false }')
  host.close()
  handle.close()
  t.is(inspect(host), 'Channel { maxMessageSize: 2040, closed: true }')
})

test('capacity is rounded up to a power of two of at least 4096, and maxMessageSize is half of it less 8', (t) => {
  for (const [capacity, max] of [
    [undefined, 2 ** 19 - 8],
    [1, 2040],
    [4096, 2040],
    [4097, 4088],
    [100_000, 2 ** 16 - 8],
  ] as const) {
    const [host, handle] = Channel.createPair({ capacity })
    t.is(host.maxMessageSize, max, `capacity ${capacity}`)
    host.close()
    handle.close()
  }
})

test('bad options and messages fail with ERR_INVALID_ARG_TYPE and ERR_OUT_OF_RANGE', async (t) => {
  for (const capacity of [0, -1, NaN, Infinity, 2 ** 30 + 1]) {
    t.throws(() => Channel.createPair({ capacity }), { code: 'ERR_OUT_OF_RANGE' }, `capacity ${capacity}`)
  }
  t.throws(() => Channel.createPair({ capacity: '4096' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.createPair({ spin: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.createPair(5 as unknown as undefined), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.fromHandle({} as ChannelHandle), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.fromArgv(['--doorbell-fd', '3']), { code: 'ERR_MISSING_ARGS' })
  t.throws(() => Channel.fromArgv(['--region-fd', '4']), { code: 'ERR_MISSING_ARGS' })
  t.throws(() => Channel.fromArgv(['--doorbell-fd', '3', '--region-fd', 'x']), { code: 'ERR_INVALID_ARG_VALUE' })
  const [host, guest] = connectedPair({ capacity: 4096 })
  for (const message of [undefined, 5, {}, [1, 2], new Uint16Array(2)]) {
    t.throws(() => host.trySend(message as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
    await t.throwsAsync(host.send(message as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  }
  await t.throwsAsync(host.recv({ signal: 'no' as unknown as AbortSignal }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(guest.tryRecv(), undefined, 'nothing was written')
  host.close()
  guest.close()
})

test('zero-length and maximum-size messages arrive whole; one byte over is ERR_OUT_OF_RANGE and writes nothing', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  const max = host.maxMessageSize
  t.true(host.trySend(new Uint8Array(0)))
  t.true(host.trySend(bytes(max, 0xab)))
  t.throws(() => host.trySend(bytes(max + 1, 1)), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(host.send(bytes(max + 1, 1)), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => host.trySend('é'.repeat(max / 2) + 'x'), { code: 'ERR_OUT_OF_RANGE' }, 'strings count UTF-8 bytes')
  t.is(guest.tryRecv()?.length, 0)
  t.deepEqual(guest.tryRecv(), bytes(max, 0xab))
  t.is(guest.tryRecv(), undefined)
  host.close()
  guest.close()
})

// r[ring.wrap], r[ring.index]: a ring of 4096 bytes whose indices start at every multiple of 8, near
// 0 and just under 2^32, so that frames wrap (with and without padding) at every offset and the
// indices wrap past 2^32.
test('wraparound at every offset of a small ring, with indices starting near 0 and near 2^32', async (t) => {
  const sizes = [0, 1, 7, 8, 9, 100, 1000, 2040, 13, 2033, 500, 4]
  let messages = 0
  for (const base of [0, 2 ** 32 - 4096]) {
    for (let offset = 0; offset < 4096; offset += 8) {
      const [host, handle] = createPairAt({ capacity: 4096 }, (base + offset) >>> 0)
      const guest = SourceChannel.fromHandle(handle)
      for (const [index, size] of sizes.entries()) {
        const message = bytes(size, (offset + index) & 255)
        t.true(host.trySend(message) && guest.trySend(message), `offset ${offset}, message ${index}`)
        if (!guest.tryRecv()?.equals(message) || !host.tryRecv()?.equals(message)) {
          t.fail(`offset ${offset} from ${base}: message ${index} of ${size} bytes came out wrong`)
        }
        messages++
      }
      host.close()
      guest.close()
    }
  }
  t.is(messages, 2 * 512 * sizes.length)
})

test('indices that wrap past 2^32 in the middle of a long stream go on working (r[ring.index])', async (t) => {
  const [host, guest] = createLocalPair({ capacity: 4096 }, 2 ** 32 - 64 * 1024)
  const [sent, got] = await within(
    Promise.all([sendStream(host, 20_000, 3), receiveStream(guest, 20_000, 3)]),
    'stream past 2^32',
    60_000,
  )
  t.is(got.received, 20_000)
  t.is(got.checksum, sent)
  host.close()
  guest.close()
})

test('a full ring: trySend returns false and writes nothing, send waits for room, an aborted send writes nothing', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  let count = 0
  while (host.trySend(bytes(1000, count))) count++
  t.is(count, 4, 'four 1008-byte frames fill 4096 bytes')
  const aborted = new AbortController()
  const abortedSend = host.send(bytes(1000, 0xee), { signal: aborted.signal })
  const waitingSend = host.send(bytes(1000, 0xdd))
  t.is(await stateAfter(waitingSend, 100), 'pending')
  t.false(host.trySend(bytes(1, 0)), 'trySend never jumps the queue of waiting sends')
  aborted.abort(new Error('changed my mind'))
  await t.throwsAsync(abortedSend, { code: 'ABORT_ERR', name: 'AbortError', message: /aborted/ })
  t.is(await stateAfter(waitingSend, 50), 'pending')
  for (let index = 0; index < count; index++) t.deepEqual(guest.tryRecv(), bytes(1000, index))
  await within(waitingSend, 'send after room')
  t.deepEqual(await guest.recv(), bytes(1000, 0xdd), 'the aborted message never appears')
  t.is(guest.tryRecv(), undefined)
  await t.throwsAsync(host.send('x', { signal: AbortSignal.abort() }), { code: 'ABORT_ERR' })
  host.close()
  guest.close()
})

test('small messages taken from the ring in one batch stay as they were while the ring and the pool are reused', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  const first: Buffer[] = []
  for (let index = 0; index < 50; index++) t.true(host.trySend(bytes(index, index)))
  for (let index = 0; index < 50; index++) first.push(guest.tryRecv()!)
  t.is(guest.tryRecv(), undefined)
  // 2,000 more small messages go through the same ring bytes and fill several pools.
  for (let index = 0; index < 2000; index++) {
    t.true(host.trySend(bytes(index % 1024, 0xee)))
    if (!guest.tryRecv()?.equals(bytes(index % 1024, 0xee))) t.fail(`message ${index}`)
  }
  first.forEach((message, index) => t.deepEqual(message, bytes(index, index)))
  host.close()
  guest.close()
})

test('large messages are read ahead in one batch, in order, across the wrap and up to a small message', (t) => {
  const [host, guest] = connectedPair({ capacity: 16384 })
  const sizes = [3000, 3000, 3000, 2000, 5, 4000, 3000, 1025]
  for (let round = 0; round < 40; round++) {
    const sent: Buffer[] = []
    for (let index = 0; index < sizes.length; index++) {
      const message = bytes(sizes[(index + round) % sizes.length]!, (round * 8 + index) & 0xff)
      if (!host.trySend(message)) break
      sent.push(message)
    }
    sent.forEach((message, index) => {
      if (!guest.tryRecv()?.equals(message)) t.fail(`round ${round}, message ${index}`)
    })
    t.is(guest.tryRecv(), undefined)
  }
  host.close()
  guest.close()
})

test('one receive of a large message gives back the room of the large messages read ahead with it', (t) => {
  const [host, guest] = connectedPair({ capacity: 16384 })
  for (let index = 0; index < 3; index++) t.true(host.trySend(bytes(4000, index)))
  t.false(host.trySend(bytes(host.maxMessageSize, 9))) // it would wrap: the room of all three is needed
  t.deepEqual(guest.tryRecv(), bytes(4000, 0))
  t.true(host.trySend(bytes(host.maxMessageSize, 9)))
  t.deepEqual(guest.tryRecv(), bytes(4000, 1))
  t.deepEqual(guest.tryRecv(), bytes(4000, 2))
  t.deepEqual(guest.tryRecv(), bytes(host.maxMessageSize, 9))
  host.close()
  guest.close()
})

test('a bad frame after a large message read ahead: the message arrives, then ERR_CHANNEL_CORRUPT', (t) => {
  const [host, guest, buffer] = createLocalPair({ capacity: 16384 })
  t.true(host.trySend(bytes(2000, 1)))
  t.true(host.trySend(bytes(2000, 2)))
  new Uint32Array(buffer)[(HEADER_SIZE + 2008) / 4 + 1] = 7 // the second frame's kind
  t.deepEqual(guest.tryRecv(), bytes(2000, 1))
  t.throws(() => guest.tryRecv(), { code: 'ERR_CHANNEL_CORRUPT' })
  host.close()
  guest.close()
})

test('recv waits for a message, wakes on the doorbell, and an aborted recv takes nothing', async (t) => {
  const [host, guest] = connectedPair()
  const aborted = new AbortController()
  const first = guest.recv({ signal: aborted.signal })
  t.is(await stateAfter(first, 50), 'pending')
  aborted.abort()
  await t.throwsAsync(first, { code: 'ABORT_ERR' })
  const second = guest.recv()
  t.is(await stateAfter(second, 50), 'pending')
  host.trySend('one')
  t.is((await within(second, 'recv')).toString(), 'one')
  host.close()
  guest.close()
})

test('close rejects a pending recv and a pending send with ERR_DOORBELL_CLOSED; later calls throw it', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  while (host.trySend(bytes(1000, 1)));
  const sending = host.send(bytes(1000, 2))
  const receiving = host.recv()
  host.close()
  await t.throwsAsync(sending, { code: 'ERR_DOORBELL_CLOSED' })
  await t.throwsAsync(receiving, { code: 'ERR_DOORBELL_CLOSED' })
  t.true(host.closed)
  t.throws(() => host.trySend('x'), { code: 'ERR_DOORBELL_CLOSED' })
  t.throws(() => host.tryRecv(), { code: 'ERR_DOORBELL_CLOSED' })
  await t.throwsAsync(host.recv(), { code: 'ERR_DOORBELL_CLOSED' })
  t.throws(() => host.ref(), { code: 'ERR_DOORBELL_CLOSED' })
  host.close()
  // The guest reads what the host completed, then sees it gone.
  let received = 0
  for await (const message of guest) {
    t.deepEqual(message, bytes(1000, 1))
    received++
  }
  t.is(received, 4)
  await t.throwsAsync(guest.recv(), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.throws(() => guest.tryRecv(), { code: 'ERR_DOORBELL_PEER_DEAD' })
  guest.close()
})

test('the async iterator ends on close', async (t) => {
  const [host, guest] = connectedPair()
  host.trySend('a')
  const seen: string[] = []
  const loop = (async () => {
    for await (const message of guest) seen.push(message.toString())
  })()
  await stateAfter(loop, 50)
  guest.close()
  await within(loop, 'iterator end')
  t.deepEqual(seen, ['a'])
  host.close()
})

test('intoRawFds lets go of both fds open, and Channel.fromArgv adopts them', async (t) => {
  const [host, handle] = Channel.createPair({ capacity: 4096 })
  const { doorbellFd, regionFd } = handle.intoRawFds()
  t.true(handle.closed)
  t.is(handle.doorbellFd, -1)
  t.throws(() => handle.intoRawFds(), { code: 'ERR_DOORBELL_CLOSED' })
  {
    using guest = Channel.fromArgv(['--doorbell-fd', String(doorbellFd), '--region-fd', String(regionFd)])
    t.true(host.trySend('adopted'))
    t.is((await within(guest.recv(), 'recv')).toString(), 'adopted')
  }
  await t.throwsAsync(within(host.recv(), 'recv'), { code: 'ERR_DOORBELL_PEER_DEAD' }, '`using` closed the guest')
  host.close()
})

test.serial('a closed or consumed handle cannot be opened, and createPair/close cycles leak no fd', (t) => {
  const before = openFdCount()
  for (let index = 0; index < 200; index++) {
    const [host, handle] = Channel.createPair({ capacity: 4096 })
    if (index % 2) Channel.fromHandle(handle).close()
    else handle.close()
    t.is(handle.doorbellFd, -1)
    t.is(handle.regionFd, -1)
    t.throws(() => Channel.fromHandle(handle), { code: 'ERR_DOORBELL_CLOSED' })
    host.close()
  }
  t.is(openFdCount(), before)
})

test.serial(
  'a region without the magic, or of another version or capacity, is ERR_CHANNEL_CORRUPT on attach, and the fds stay open',
  (t) => {
    const cases: Array<[string, (words: Uint32Array) => void]> = [
      ['magic', (words) => (words[0] = 0)],
      ['version', (words) => (words[1] = 2)],
      ['capacity not a power of two', (words) => (words[2] = 6000)],
      ['capacity past the region', (words) => (words[2] = 2 ** 20)],
      ['indices', (words) => (words[64 / 4] = 8192)],
    ]
    for (const [what, spoil] of cases) {
      const region = SharedRegion.create(regionSize(4096))
      initRegion(region.buffer, 4096)
      spoil(new Uint32Array(region.buffer))
      const [doorbell, end] = Doorbell.createPair()
      const regionFd = openSync(`/dev/fd/${region.fd}`, 'r+') // the guest's own fd, as it inherits one
      const fds = openFdCount()
      t.throws(
        () => Channel.fromArgv(['--doorbell-fd', String(end.fd), '--region-fd', String(regionFd)]),
        {
          code: 'ERR_CHANNEL_CORRUPT',
        },
        what,
      )
      t.is(openFdCount(), fds, what)
      t.notThrows(() => validateFd(end.fd))
      t.notThrows(() => validateFd(regionFd))
      closeSync(regionFd)
      region.close()
      end.close()
      doorbell.close()
    }
  },
)

// r[corrupt]: the peer scribbles random bytes anywhere in the region between calls. Every call
// returns valid data or fails with ERR_CHANNEL_CORRUPT (and then fails so for good); nothing
// crashes, hangs or reads past the region.
test('a peer that scribbles random bytes over the region gets ERR_CHANNEL_CORRUPT or valid data, never a crash or a hang', async (t) => {
  const codes = new Map<string, number>()
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          at: fc.oneof(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 0, max: HEADER_SIZE + 8191 })),
          value: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 4200 })),
          word: fc.boolean(),
          op: fc.constantFrom('send', 'recv', 'both'),
          size: fc.integer({ min: 0, max: 2040 }),
        }),
        { minLength: 1, maxLength: 40 },
      ),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      async (steps, start) => {
        const [host, guest, memory] = createLocalPair({ capacity: 4096 }, start & ~7)
        let corrupt = false
        for (const step of steps) {
          if (step.word) new DataView(memory).setUint32(step.at & ~3, step.value, true)
          else new Uint8Array(memory)[step.at] = step.value & 255
          for (const side of step.op === 'both' ? [host, guest] : [step.op === 'send' ? host : guest]) {
            try {
              if (step.op !== 'recv') side.trySend(bytes(step.size, 7))
              const message = side.tryRecv()
              if (message !== undefined && !(message.length <= side.maxMessageSize)) {
                throw new Error(`a message of ${message.length} bytes`)
              }
              if (corrupt && side === host) throw new Error('a call succeeded after ERR_CHANNEL_CORRUPT')
            } catch (err) {
              const code = (err as { code?: string }).code
              if (code !== 'ERR_CHANNEL_CORRUPT') throw err
              codes.set(code, (codes.get(code) ?? 0) + 1)
              if (side === host) corrupt = true
            }
          }
        }
        host.close()
        guest.close()
      },
    ),
    { numRuns: 500, includeErrorInReport: true },
  )
  t.true((codes.get('ERR_CHANNEL_CORRUPT') ?? 0) > 0, 'some scribbles were caught')
  t.log([...codes].map(([code, count]) => `${code} ${count}`).join(', '))
})

test('a scribbled frame fails the pending recv with ERR_CHANNEL_CORRUPT', async (t) => {
  const [host, guest, buffer] = createLocalPair({ capacity: 4096 })
  const receiving = guest.recv()
  const memory = new Uint32Array(buffer)
  memory[HEADER_SIZE / 4] = 5000 // a frame length past the ring
  memory[HEADER_SIZE / 4 + 1] = 1
  memory[64 / 4] = 16 // the tail, as a peer would publish it
  host.close() // rings nothing; the guest notices on its own: a corrupt peer that then dies
  await t.throwsAsync(within(receiving, 'recv'), { code: 'ERR_CHANNEL_CORRUPT' })
  t.throws(() => guest.tryRecv(), { code: 'ERR_CHANNEL_CORRUPT' })
  guest.close()
})

const guestScript = workloadFixture('channel-guest.cjs')

test('a guest process that scribbles random bytes over the region (fast-check seeds): every call gives a valid message or ERR_CHANNEL_CORRUPT, and the stream ends', async (t) => {
  await againstScribblingGuest(t, 4096, async (channel, seed) => {
    channel.trySend(bytes(seed % 2041, 1))
    const message = await within(channel.recv(), 'a message, corruption or the end')
    if (!(message.length <= channel.maxMessageSize)) throw new Error(`a message of ${message.length} bytes`)
  })
})

test('with spin on both sides, 1000 round trips through a Node guest arrive whole', async (t) => {
  const { child, channel } = spawnChannel(process.execPath, [guestScript, 'echo'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CHANNEL_SPIN: '50' },
    spin: 50,
  })
  const exit = exitOf(child)
  for (let round = 0; round < 1000; round++) {
    const message = Buffer.from(`spin ${round}`)
    t.true(channel.trySend(message))
    t.deepEqual(await within(channel.recv(), `round ${round}`), message)
  }
  channel.close()
  t.is((await within(exit, 'guest exit')).code, 0)
})

/** Both sides of a two-way stream got every message, and each side's checksums match the other's. */
function assertStreamedBothWays(t: ExecutionContext, report: StreamReport, count: number): void {
  t.is(report.exit.code, 0, report.exit.stderr)
  t.deepEqual(report.guest, {
    sent: count,
    sentChecksum: report.receivedChecksum,
    received: count,
    receivedChecksum: report.sentChecksum,
  })
  t.is(report.received, count)
}

test('200,000 messages of random sizes each way at once between two processes: nothing lost, reordered or duplicated (10,000,000 in npm run soak:channel)', async (t) => {
  const count = 200_000
  const report = await streamBothWays({
    command: process.execPath,
    args: [guestScript],
    count,
    seed: 11,
    capacity: 4096,
  })
  assertStreamedBothWays(t, report, count)
})

test('a guest SIGKILLed mid-stream: every message it completed arrives in order, then ERR_DOORBELL_PEER_DEAD', async (t) => {
  const { child, channel } = spawnChannel(process.execPath, [guestScript, 'flood', '5'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    capacity: 4096,
  })
  const exit = exitOf(child)
  // A thousand messages through, then the guest is killed while it writes (its ring is full by then).
  t.is((await within(receiveStream(channel, 1000, 5), 'the first messages', 30_000)).received, 1000)
  child.kill('SIGKILL')
  t.is((await exit).signal, 'SIGKILL')
  const got = await within(receiveStream(channel, Infinity, 5, 1000), 'the stream to its end')
  t.is(got.error?.code, 'ERR_DOORBELL_PEER_DEAD')
  t.true(got.received >= 1000, `${got.received} messages`)
  await t.throwsAsync(channel.recv(), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.throws(() => channel.trySend('x'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  channel.close()
})

test.serial('a Node guest echoes through spawnChannel, and its iterator ends when the host closes', async (t) => {
  const before = openFdCount()
  const { child, channel } = spawnChannel(process.execPath, [guestScript, 'echo'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exit = exitOf(child)
  for (let round = 0; round < 1000; round++) {
    const message = Buffer.from(`round ${round}`)
    await channel.send(message)
    t.deepEqual(await within(channel.recv(), `round ${round}`), message)
  }
  channel.close()
  const result = await within(exit, 'guest exit')
  t.is(result.code, 0)
  t.deepEqual(JSON.parse(result.stdout), { messages: 1000 })
  t.true((await fdCountBackTo(before)) <= before)
})

test('a pending recv keeps the process alive, and not after unref() or once it is aborted', async (t) => {
  const script = `
    const { Channel } = require(${JSON.stringify(process.cwd())})
    const [host, handle] = Channel.createPair()
    const guest = Channel.fromHandle(handle)
    const aborted = new AbortController()
    guest.recv({ signal: aborted.signal }).then(() => console.log('received'), (err) => console.log(err.code))
    if (process.argv[1] === 'unref') guest.unref()
    else if (process.argv[1] === 'abort') setTimeout(() => aborted.abort(), 100)
    else setTimeout(() => { host.trySend('late') }, 300)
  `
  for (const [mode, output] of [
    ['ref', 'received\n'],
    ['unref', ''],
    ['abort', 'ABORT_ERR\n'],
  ]) {
    const { execFileSync } = await import('node:child_process')
    t.is(execFileSync(process.execPath, ['-e', script, mode], { encoding: 'utf8', timeout: 10_000 }), output, mode)
  }
})

// Built from examples/rust-channel-peer.rs by scripts/prepare-test.mjs: a peer on the crate's own
// `shm_doorbell::channel::Channel`, as a guest of a Node host and as the host of a Node guest.
const rustPeer = resolve('target/debug/examples/rust-channel-peer')

test('Node host and Rust guest: 50,000 messages of random sizes each way at once, every byte checked', async (t) => {
  const count = 50_000
  const report = await streamBothWays({ command: rustPeer, count, seed: 21, capacity: 8192 })
  assertStreamedBothWays(t, report, count)
})

test('a Rust guest echoes through spawnChannel and exits once the Node host closes', async (t) => {
  const { child, channel } = spawnChannel(rustPeer, ['echo'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exit = exitOf(child)
  for (let round = 0; round < 1000; round++) {
    const message = Buffer.alloc(round % 300, round & 255)
    await channel.send(message)
    t.deepEqual(await within(channel.recv(), `round ${round}`), message)
  }
  channel.close()
  const result = await within(exit, 'guest exit')
  t.is(result.code, 0, result.stderr)
  t.deepEqual(JSON.parse(result.stdout), { messages: 1000 })
})

test('Rust host and Node guest: 50,000 messages of random sizes each way at once, every byte checked', async (t) => {
  const count = 50_000
  const result = await within(
    runCommand(rustPeer, [
      'host',
      String(count),
      '33',
      '8192',
      process.execPath,
      guestScript,
      'stream',
      String(count),
      '33',
    ]),
    'the Rust host',
    100_000,
  )
  t.is(result.code, 0, result.stderr)
  const [guestLine, hostLine] = result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
  for (const line of [guestLine, hostLine]) {
    t.like(line, { sent: count, received: count })
  }
  t.is(hostLine.sentChecksum, guestLine.receivedChecksum)
  t.is(hostLine.receivedChecksum, guestLine.sentChecksum)
})

function runCommand(command: string, args: string[]): ReturnType<typeof exitOf> {
  return exitOf(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
}

test('trySend and send of a view of a detached ArrayBuffer fail with ERR_INVALID_ARG_VALUE and send nothing', async (t) => {
  const [host, handle] = Channel.createPair({ capacity: 4096 })
  const guest = Channel.fromHandle(handle)
  try {
    const buffer = new ArrayBuffer(8)
    const view = new Uint8Array(buffer)
    structuredClone(buffer, { transfer: [buffer] })
    t.throws(() => host.trySend(view), { code: 'ERR_INVALID_ARG_VALUE', instanceOf: TypeError })
    await t.throwsAsync(host.send(view), { code: 'ERR_INVALID_ARG_VALUE', instanceOf: TypeError })
    t.is(guest.tryRecv(), undefined, 'nothing was sent')
    t.true(host.trySend(new Uint8Array(0)), 'a view of length 0 over a live buffer is still a message')
    t.is(guest.tryRecv()?.length, 0)
  } finally {
    host.close()
    guest.close()
  }
})
