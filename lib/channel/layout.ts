// The layout a channel speaks (docs/channel-layout.md): the region's header and the frames' shape,
// a new region's set-up, and the checks a region passes before it is used. The rule names cited are
// the document's.
import { type CodedError, codedError, invalidArgType, outOfRange } from '../errors'

// r[layout.header]
export const MAGIC = 0x48434453
export const VERSION = 1
export const HEADER_SIZE = 4096
export const MIN_CAPACITY = 4096
export const MAX_CAPACITY = 2 ** 30
export const DEFAULT_CAPACITY = 2 ** 20
const MAGIC_WORD = 0
const VERSION_WORD = 1
const CAPACITY_WORD = 2
/** Word offsets of a ring's fields, from r[layout.header]: ring r's are at `RING_WORDS * r` past these. */
export const TAIL_WORD = 64 / 4
export const HEAD_WORD = 128 / 4
export const RX_WAITING_WORD = 192 / 4
export const TX_WAITING_WORD = 196 / 4
const RING_WORDS = 192 / 4

// r[frame.header]
export const FRAME_HEADER = 8
export const KIND_MESSAGE = 1
export const KIND_PADDING = 2

/** Bytes a frame of `length` message bytes takes in the ring: its header, and the message padded to 8: r[frame.header]. */
export const frameSize = (length: number): number => FRAME_HEADER + ((length + 7) & ~7)

/** The largest message of a ring of `capacity` bytes: r[frame.max]. */
export const maxMessageSize = (capacity: number): number => capacity / 2 - FRAME_HEADER

/** The region size a channel of `capacity` bytes per ring needs: r[layout.size]. */
export function regionSize(capacity: number): number {
  return HEADER_SIZE + 2 * capacity
}

/** `ERR_CHANNEL_CORRUPT`: the peer wrote something the protocol does not allow. */
export function corruptError(what: string): CodedError {
  return codedError(new Error(`The channel is corrupt: ${what}`), 'ERR_CHANNEL_CORRUPT')
}

/** The `capacity` option as r[layout.capacity] wants it. */
export function channelCapacity(capacity: unknown): number {
  if (capacity === undefined) return DEFAULT_CAPACITY
  if (typeof capacity !== 'number') throw invalidArgType('options.capacity', 'of type number', capacity)
  if (!(capacity >= 1 && capacity <= MAX_CAPACITY)) {
    throw outOfRange('options.capacity', `>= 1 && <= ${MAX_CAPACITY}`, capacity)
  }
  let rounded = MIN_CAPACITY
  while (rounded < capacity) rounded *= 2
  return rounded
}

/** Writes a new channel's header into `buffer` (zero-filled): r[layout.init]. */
export function initRegion(buffer: ArrayBuffer, capacity: number, start = 0): void {
  const words = new Uint32Array(buffer, 0, HEADER_SIZE / 4)
  words[VERSION_WORD] = VERSION
  words[CAPACITY_WORD] = capacity
  for (const ring of [0, 1]) {
    words[TAIL_WORD + RING_WORDS * ring] = start
    words[HEAD_WORD + RING_WORDS * ring] = start
  }
  Atomics.store(words, MAGIC_WORD, MAGIC)
}

/** One ring of a region, as one side sees it: where its fields and its data are. */
export interface RingPlace {
  /** The whole region, as words: the ring's fields are `words[TAIL_WORD + fields]` and so on. */
  readonly words: Uint32Array
  readonly buffer: ArrayBuffer
  /** Bytes of data, a power of two. */
  readonly capacity: number
  /** Word offset of the ring's fields past those of ring 0. */
  readonly fields: number
  /** Byte offset of the ring's data in the region. */
  readonly data: number
}

/** A region that passed r[layout.attach]: the ring this side produces into and the one it consumes. */
export interface Layout {
  readonly words: Uint32Array
  readonly capacity: number
  readonly tx: RingPlace
  readonly rx: RingPlace
}

/**
 * Checks a region's header (r[layout.attach]) and returns its rings as the host (ring 0 out,
 * ring 1 in) or the guest sees them. The rings' indices are checked by whoever uses them.
 */
export function attachLayout(buffer: ArrayBuffer, host: boolean): Layout {
  if (buffer.byteLength < HEADER_SIZE + 2 * MIN_CAPACITY) throw corruptError('the region is too small')
  const words = new Uint32Array(buffer)
  if (Atomics.load(words, MAGIC_WORD) !== MAGIC) throw corruptError('bad magic')
  if (words[VERSION_WORD] !== VERSION) throw corruptError(`unknown version ${words[VERSION_WORD]}`)
  const capacity = words[CAPACITY_WORD]
  if (!(capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY && (capacity & (capacity - 1)) === 0)) {
    throw corruptError(`bad capacity ${capacity}`)
  }
  if (buffer.byteLength < regionSize(capacity)) throw corruptError('the region is smaller than its rings')
  const ring = (r: number): RingPlace => ({
    words,
    buffer,
    capacity,
    fields: RING_WORDS * r,
    data: HEADER_SIZE + capacity * r,
  })
  return { words, capacity, tx: ring(host ? 0 : 1), rx: ring(host ? 1 : 0) }
}

/** Whether the header still says what r[layout.attach] checked: r[layout.magic-checked]. */
export function headerIntact(words: Uint32Array): boolean {
  return words[MAGIC_WORD] === MAGIC && words[VERSION_WORD] === VERSION
}
