// Round trips between this process and a guest: `node bench/roundtrip.mjs SCENARIO ROUNDS WARMUP`.
// Prints {"rounds","p50","p99","rate"} (µs, round trips/s). SCENARIO is one of the keys of `peers`.
import { fork, spawn as spawnChild } from 'node:child_process'

import {
  CHANNEL_SPIN_MICROS,
  countArg,
  exited,
  guestScript,
  quantile,
  report,
  rustGuestBinary,
  smallObject,
} from './common.mjs'

const scenario = process.argv[2]
// The engine is chosen as the package loads, in this process and in the Node guest, which inherits
// the variable: `doorbell-node-tokio` runs both on tokio, every other scenario on uv.
process.env.SHM_DOORBELL_ENGINE = scenario === 'doorbell-node-tokio' ? 'tokio' : 'uv'
const shm = await import('shm-doorbell')

/** A doorbell host: ring, then wait for the guest's ring. */
function doorbellPeer(command, args) {
  const { child, doorbell } = shm.spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const exit = exited(child)
  return {
    roundTrip() {
      doorbell.signalNow()
      return doorbell.wait()
    },
    close() {
      doorbell.close()
      return exit
    },
  }
}

/** A peer that answers each message sent with `send`; `onAnswer(callback)` hooks its answers. */
function messagePeer(send, onAnswer, close) {
  let answered
  onAnswer(() => answered())
  return {
    roundTrip: () =>
      new Promise((resolve) => {
        answered = resolve
        send()
      }),
    close,
  }
}

/**
 * A Channel host: send a 64-byte request, receive the guest's echo. With `spin` (µs), both sides
 * poll their ring that long before they sleep on the doorbell.
 */
function channelPeer(spin) {
  const { child, channel } = shm.spawnChannel(process.execPath, [guestScript, 'channelEcho', String(spin)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    spin,
  })
  const exit = exited(child)
  const request = Buffer.alloc(CHANNEL_MESSAGE_SIZE, 1)
  return {
    async roundTrip() {
      if (!channel.trySend(request)) await channel.send(request)
      return channel.tryRecv() ?? channel.recv()
    },
    close() {
      channel.close()
      return exit
    },
  }
}

const CHANNEL_MESSAGE_SIZE = 64

/** A Channel host for values: `sendValue` a small object, receive the guest's echo, both with `spin`. */
function channelValuePeer(spin) {
  const { child, channel } = shm.spawnChannel(process.execPath, [guestScript, 'channelValueEcho', String(spin)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    spin,
  })
  const exit = exited(child)
  let sequence = 0
  return {
    async roundTrip() {
      const value = smallObject(sequence++)
      if (!channel.trySendValue(value)) await channel.sendValue(value)
      const got = channel.tryRecvValue()
      return got ? got.value : channel.recvValue()
    },
    close() {
      channel.close()
      return exit
    },
  }
}

/** child_process IPC with `serialization`: `child.send` of `message()`, answered by `process.send`. */
function ipcPeer(serialization, message) {
  const child = fork(guestScript, ['ipc'], { serialization, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const exit = exited(child)
  let sequence = 0
  return messagePeer(
    () => child.send(message(sequence++)),
    (answer) => child.on('message', answer),
    () => {
      child.disconnect()
      return exit
    },
  )
}

const peers = {
  'doorbell-node': () => doorbellPeer(process.execPath, [guestScript, 'doorbell']),
  'doorbell-node-tokio': () => doorbellPeer(process.execPath, [guestScript, 'doorbell']),
  'doorbell-rust': () => doorbellPeer(rustGuestBinary, ['echo']),
  channel: () => channelPeer(0),
  'channel-spin': () => channelPeer(CHANNEL_SPIN_MICROS),
  pipe() {
    const child = spawnChild(process.execPath, [guestScript, 'pipe'], { stdio: ['pipe', 'pipe', 'inherit'] })
    const exit = exited(child)
    const byte = Buffer.from([1])
    return messagePeer(
      () => child.stdin.write(byte),
      (answer) => child.stdout.on('data', answer),
      () => {
        child.stdin.end()
        return exit
      },
    )
  },
  ipc: () => ipcPeer('json', () => 1),
  'ipc-value': () => ipcPeer('json', smallObject),
  'ipc-value-advanced': () => ipcPeer('advanced', smallObject),
  'channel-value-spin': () => channelValuePeer(CHANNEL_SPIN_MICROS),
}

if (!Object.hasOwn(peers, scenario)) throw new Error(`unknown scenario ${scenario}`)
const rounds = countArg(3, 20_000)
const warmUp = countArg(4, 2_000)

const peer = peers[scenario]()
const micros = []
for (let round = 0; round < warmUp + rounds; round++) {
  const start = performance.now()
  await peer.roundTrip()
  if (round >= warmUp) micros.push((performance.now() - start) * 1000)
}
await peer.close()

const total = micros.reduce((sum, us) => sum + us, 0)
report(
  rounds === 0
    ? { rounds }
    : { rounds, p50: quantile(micros, 0.5), p99: quantile(micros, 0.99), rate: (rounds / total) * 1e6 },
)
