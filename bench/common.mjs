// What the scenario scripts share: paths, statistics, and how a scenario reports.
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const benchDir = dirname(fileURLToPath(import.meta.url))
export const rootDir = dirname(benchDir)
export const buildDir = join(benchDir, 'build')
export const guestScript = join(benchDir, 'guest.mjs')
export const floorBinary = join(buildDir, 'floor')
export const rustGuestBinary = join(rootDir, 'target', 'release', 'examples', 'rust-guest')

/** `spin` (µs) of the Channel's spinning round trip: longer than a round trip, so neither side sleeps. */
export const CHANNEL_SPIN_MICROS = 1000

/** The value at quantile `q` of `values`, which this sorts. */
export function quantile(values, q) {
  values.sort((a, b) => a - b)
  return values[Math.min(values.length - 1, Math.floor(q * values.length))]
}

export const median = (values) => quantile([...values], 0.5)

/** Reads a count (a non-negative integer) from argv[index], or `fallback` when it is absent. */
export function countArg(index, fallback) {
  const value = process.argv[index] === undefined ? fallback : Number(process.argv[index])
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`argument ${index} must be a count`)
  return value
}

/** A scenario's result: one JSON line on stdout, which bench/run.mjs reads. */
export function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

/** Resolves when `child` has exited, with its whole stdout. */
export async function exited(child) {
  let stdout = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  // Not 'close': a parent's disconnect() from an IPC child keeps 'close' from ever firing.
  const [[code, signal]] = await Promise.all([once(child, 'exit'), child.stdout && once(child.stdout, 'end')])
  if (code !== 0) throw new Error(`${child.spawnfile} exited with ${code ?? signal}`)
  return stdout
}

/** Frames of the streaming stdio pipe are a u32 LE length, then the payload; this length ends the stream. */
export const PIPE_END = 0xffffffff

/** The first 4 bytes of a message, as the little-endian u32 sequence number the senders write. */
export const sequenceOf = (bytes) => (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0

/**
 * What a streaming receiver counts: messages and payload bytes from the end of a warm-up (while
 * the JIT settles) to the end of the stream. Throws when a message is lost, duplicated or reordered.
 */
export class Tally {
  static WARM_UP_MS = 200
  expected = 0
  messages = 0
  bytes = 0
  start = undefined
  counted = undefined

  /** Counts one message, whose first 4 bytes are its sequence number. */
  add(message) {
    if (message.length >= 4 && sequenceOf(message) !== this.expected >>> 0) {
      throw new Error(`message ${this.expected} arrived as ${sequenceOf(message)}`)
    }
    this.expected++
    this.messages++
    this.bytes += message.length
    if ((this.messages & 255) === 1 && this.counted === undefined) this.#checkWarmUp()
  }

  #checkWarmUp() {
    const now = performance.now()
    this.start ??= now
    if (now - this.start >= Tally.WARM_UP_MS) {
      this.counted = now
      this.messages = 0
      this.bytes = 0
    }
  }

  /** Counts one value of {@link smallObject}, whose `id` is its sequence number. */
  addValue(value) {
    if (value?.id !== this.expected >>> 0) throw new Error(`value ${this.expected} arrived as ${value?.id}`)
    this.expected++
    this.messages++
    if ((this.messages & 255) === 1 && this.counted === undefined) this.#checkWarmUp()
  }

  /** The figures after the warm-up: {messages, bytes, seconds, msgsPerSecond, mbPerSecond}. */
  result() {
    if (this.counted === undefined) throw new Error('the stream ended within its warm-up')
    const seconds = (performance.now() - this.counted) / 1000
    const { messages, bytes } = this
    return { messages, bytes, seconds, msgsPerSecond: messages / seconds, mbPerSecond: bytes / seconds / 1e6 }
  }
}

/** The size argument of the streaming scenarios that send {@link smallObject} values, not bytes. */
export const OBJECT_SIZE = 0

/** The small object of the value scenarios (issue 17): `{ id, name, tags: [3 strings], at: Date }`. */
export const smallObject = (sequence) => ({
  id: sequence,
  name: `object ${sequence}`,
  tags: ['alpha', 'beta', 'gamma'],
  at: new Date(1_700_000_000_000 + sequence),
})
