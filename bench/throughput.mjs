// One-way streaming from this process to a guest that receives every message:
//   node bench/throughput.mjs SCENARIO SIZE MILLISECONDS
// SCENARIO is one of the keys of `senders`; SIZE is 0 for those that send a small object (issue 17)
// instead of bytes. This process sends SIZE-byte messages (each starting
// with its sequence number, u32 LE) for MILLISECONDS plus the guest's 200 ms warm-up, then an end
// marker; the guest checks the order and counts. Prints the guest's {"messages","bytes","seconds",
// "msgsPerSecond","mbPerSecond"} (after its warm-up) with the scenario and size.
import { fork, spawn as spawnChild } from 'node:child_process'
import { once } from 'node:events'

// A namespace import: a build without the Channel still runs the other scenarios.
import * as shm from 'shm-doorbell'

import { OBJECT_SIZE, PIPE_END, Tally, countArg, exited, guestScript, report, smallObject } from './common.mjs'

/** Messages sent between two looks at the clock. */
const BATCH = 64
/** A framed stdio pipe's sender; `batched`: corked around each batch, so one writev() sends it. */
function pipeSender(size, batched) {
  const child = spawnChild(process.execPath, [guestScript, 'pipeSink'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const { stdin } = child
  return {
    startBatch: batched ? () => stdin.cork() : undefined,
    endBatch: batched ? () => stdin.uncork() : undefined,
    send(sequence) {
      const frame = Buffer.allocUnsafe(4 + size)
      frame.writeUInt32LE(size, 0)
      frame.writeUInt32LE(sequence, 4)
      if (!stdin.write(frame)) return once(stdin, 'drain')
    },
    end() {
      const end = Buffer.alloc(4)
      end.writeUInt32LE(PIPE_END, 0)
      stdin.end(end)
    },
    child,
    exit: exited(child),
  }
}

/** Messages per second of the paced Channel scenarios: 64 MB/s of 64 B, 655 MB/s of 64 KiB. */
const PACED_RATE = (size) => (size <= 1024 ? 1_000_000 : 10_000)
/** The paced receiver's `spin`: longer than the gap between two messages at PACED_RATE. */
const PACED_SPIN_MICROS = 100

/** A Channel's sender; `rate`: messages per second at most; `receiverSpin`: the guest's `spin`, µs. */
function channelSender(size, { rate = Infinity, receiverSpin = 0 } = {}) {
  const { child, channel } = shm.spawnChannel(process.execPath, [guestScript, 'channelSink', String(receiverSpin)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const message = Buffer.alloc(size)
  const interval = 1000 / rate
  let start
  return {
    send(sequence) {
      if (rate !== Infinity) {
        start ??= performance.now()
        while (performance.now() < start + sequence * interval);
      }
      message.writeUInt32LE(sequence, 0)
      if (!channel.trySend(message)) return channel.send(message)
    },
    async end() {
      // A zero-length message ends the stream.
      await channel.send(Buffer.alloc(0))
    },
    child,
    exit: exited(child).finally(() => channel.close()),
  }
}

/** child_process IPC with `serialization`, sending {@link smallObject} values. */
function ipcValueSender(serialization) {
  const child = fork(guestScript, ['ipcValueSink'], { serialization, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  return {
    send(sequence) {
      const value = smallObject(sequence)
      // As for bytes: wait for every 256th message to be written, so the queue here stays short.
      if ((sequence & 255) !== 255) child.send(value)
      else return new Promise((resolve, reject) => child.send(value, (err) => (err ? reject(err) : resolve())))
    },
    end() {
      child.send('end')
    },
    child,
    exit: exited(child),
  }
}

/** The Channel sending {@link smallObject} values: `trySendValue`, and `await sendValue` when full. */
function channelValueSender() {
  const { child, channel } = shm.spawnChannel(process.execPath, [guestScript, 'channelValueSink'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return {
    send(sequence) {
      const value = smallObject(sequence)
      if (!channel.trySendValue(value)) return channel.sendValue(value)
    },
    async end() {
      await channel.sendValue(null)
    },
    child,
    exit: exited(child).finally(() => channel.close()),
  }
}

/**
 * The Channel without a copy: the sender writes each message's sequence number into a view of the
 * ring (`tryReserve`, `commit`), the receiver reads it from a view of the ring (`drain`).
 */
function channelZeroCopySender(size) {
  const { child, channel } = shm.spawnChannel(process.execPath, [guestScript, 'channelDrainSink'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const fill = (view, sequence) => {
    view[0] = sequence
    view[1] = sequence >>> 8
    view[2] = sequence >>> 16
    view[3] = sequence >>> 24
    channel.commit()
  }
  return {
    send(sequence) {
      const view = channel.tryReserve(size)
      if (view !== undefined) fill(view, sequence)
      else return channel.reserve(size).then((later) => fill(later, sequence))
    },
    async end() {
      await channel.send(Buffer.alloc(0))
    },
    child,
    exit: exited(child).finally(() => channel.close()),
  }
}

/**
 * Each sender starts its guest and returns `{ child, send(sequence), end(), exit }` and, optionally,
 * `startBatch()` and `endBatch()` around each batch: `send` may return a promise when the sender
 * must wait for room, `end` sends the end marker, `exit` resolves with the guest's stdout.
 */
const senders = {
  /** Node's stdio pipe, with 4-byte length framing: a new framed Buffer, one write() per message. */
  pipe: (size) => pipeSender(size, false),
  /** The same, corked around each batch of 64 messages: one writev() per batch. */
  'pipe-batched': (size) => pipeSender(size, true),
  /** child_process IPC with `serialization: 'advanced'`: a new Buffer per message. */
  ipc(size) {
    const child = fork(guestScript, ['ipcSink'], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    })
    return {
      send(sequence) {
        const message = Buffer.allocUnsafe(size)
        message.writeUInt32LE(sequence, 0)
        // Wait for every 256th message to be written, so the queue in this process stays short.
        if ((sequence & 255) !== 255) child.send(message)
        else return new Promise((resolve, reject) => child.send(message, (err) => (err ? reject(err) : resolve())))
      },
      end() {
        child.send('end')
      },
      child,
      exit: exited(child),
    }
  },
  /** child_process IPC, `serialization: 'advanced'`, small objects (SIZE 0). */
  'ipc-values': () => ipcValueSender('advanced'),
  /** child_process IPC, `serialization: 'json'` (the default), small objects (SIZE 0). */
  'ipc-values-json': () => ipcValueSender('json'),
  /** The Channel's `trySendValue` and `tryRecvValue`, small objects (SIZE 0). */
  'channel-values': () => channelValueSender(),
  /** The Channel's `tryReserve` + `commit` and `drain`. */
  'channel-zero-copy': (size) => channelZeroCopySender(size),
  /** shm-doorbell's Channel: one Buffer, copied into the ring by each send. */
  channel: (size) => channelSender(size),
  /**
   * The Channel with a receiver that keeps up: the sender holds each message until its time at
   * PACED_RATE (a busy wait on the clock, which makes no syscall), well under what the receiver takes.
   */
  'channel-paced': (size) => channelSender(size, { rate: PACED_RATE(size) }),
  /** The same, with a receiver that polls its ring for PACED_SPIN_MICROS before it sleeps. */
  'channel-paced-spin': (size) => channelSender(size, { rate: PACED_RATE(size), receiverSpin: PACED_SPIN_MICROS }),
}

const scenario = process.argv[2]
if (!Object.hasOwn(senders, scenario)) throw new Error(`unknown scenario ${scenario}`)
const size = countArg(3, 64)
const milliseconds = countArg(4, 1000)
const values = ['ipc-values', 'ipc-values-json', 'channel-values'].includes(scenario)
if (values !== (size === OBJECT_SIZE)) throw new RangeError('SIZE is 0 (a small object) for the value scenarios only')
if (!values && size < 4) throw new RangeError('messages carry a 4-byte sequence number: SIZE must be at least 4')

const sender = senders[scenario](size)
// The clock starts when the guest is up: it prints a line once it listens.
await once(sender.child.stdout, 'data')
const end = performance.now() + Tally.WARM_UP_MS + milliseconds
for (let sequence = 0; ;) {
  if (performance.now() >= end) break
  sender.startBatch?.()
  let wait
  for (const stop = sequence + BATCH; sequence < stop && !wait;) wait = sender.send(sequence++ >>> 0)
  sender.endBatch?.()
  if (wait) await wait
}
await sender.end()
report({ scenario, size, ...JSON.parse((await sender.exit).trim().split('\n').at(-1)) })
