// Channel: messages through a ring per direction in shared memory, with the doorbell rung only for a
// sleeping peer. The protocol, and the rule names cited below, are docs/channel-layout.md.
import { openSync } from 'node:fs'
import { inspect, type InspectOptionsStylized } from 'node:util'

import { ARG_NAME, Doorbell, DoorbellHandle, type Waiter } from './doorbell'
import {
  AbortError,
  type CodedError,
  closedError,
  codedError,
  fdFromArgv,
  invalidArgType,
  signalOption,
  outOfRange,
  peerDeadError,
} from './errors'
import { REGION_ARG_NAME, SharedRegion } from './region'
import {
  type ChannelConnectOptions,
  type ChannelListenOptions,
  type ChannelListener,
  connectChannel,
  listenChannel,
} from './rendezvous'

/** Options of {@link Channel.createPair} and `spawnChannel`. */
export interface ChannelOptions {
  /**
   * Bytes of ring per direction. Rounded up to a power of two, at least 4096 (a page) and at most
   * 2^30. Default 1 MiB. A message can be up to half of it, less 8 bytes ({@link Channel.maxMessageSize}).
   */
  capacity?: number
  /**
   * Microseconds a waiting `recv` or `send` polls the ring before it sleeps on the doorbell.
   * Default 0. Spinning blocks the event loop for up to that long each time a side would wait, in
   * exchange for a round trip without a wake-up: for latency-critical services with a core to spare.
   */
  spin?: number
}

/** Options of {@link Channel.send} and {@link Channel.recv}. */
export interface ChannelWaitOptions {
  /** Rejects with an `AbortError` (`code: 'ABORT_ERR'`) once aborted; a send aborted while waiting has written nothing. */
  signal?: AbortSignal
}

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
const TAIL_WORD = 64 / 4
const HEAD_WORD = 128 / 4
const RX_WAITING_WORD = 192 / 4
const TX_WAITING_WORD = 196 / 4
const RING_WORDS = 192 / 4
// r[frame.header]
const FRAME_HEADER = 8
const KIND_MESSAGE = 1
const KIND_PADDING = 2
/** Bytes a frame of `length` message bytes takes in the ring: its header, and the message padded to 8: r[frame.header]. */
const frameSize = (length: number): number => FRAME_HEADER + ((length + 7) & ~7)
/** Messages up to this size are read in batches (#stage), of up to STAGE_SPAN bytes, into pools of POOL_SIZE. */
const STAGED_MAX = 1024
const STAGE_SPAN = 16 * 1024
const POOL_SIZE = 64 * 1024
/** Larger messages are read ahead (#readAhead): whole frames, up to this many bytes of ring per store of `head`. */
const READ_AHEAD = 512 * 1024

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

function spinMicroseconds(spin: unknown): number {
  if (spin === undefined) return 0
  if (typeof spin !== 'number') throw invalidArgType('options.spin', 'of type number', spin)
  if (!(spin >= 0 && spin <= 1_000_000)) throw outOfRange('options.spin', '>= 0 && <= 1000000', spin)
  return spin
}

/** Checks `options` of a constructor: an object or undefined. */
export function channelOptions(options: unknown): { capacity: number; spin: number } {
  if (options === undefined) return { capacity: DEFAULT_CAPACITY, spin: 0 }
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options)
  const { capacity, spin } = options as ChannelOptions
  return { capacity: channelCapacity(capacity), spin: spinMicroseconds(spin) }
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

/** What a channel maps: the region's memory, and how to let go of it. */
export interface ChannelMemory {
  readonly buffer: ArrayBuffer
  close(): void
}

interface Receiver {
  resolve(message: Buffer): void
  reject(err: unknown): void
  signal?: AbortSignal
  onAbort?: () => void
}

interface Sender {
  message: Uint8Array | string
  length: number
  resolve(): void
  reject(err: unknown): void
  signal?: AbortSignal
  onAbort?: () => void
}

const constructing = Symbol('shm-doorbell constructing')

/**
 * Messages between two processes through shared memory: one ring per direction in one region,
 * and a doorbell that is rung only when the peer sleeps. Made with `Channel.createPair()` or
 * `spawnChannel()` (the host) and `Channel.fromHandle()` or `Channel.fromArgv()` (the guest).
 */
export class Channel {
  /** The largest message, in bytes: half the ring less 8 bytes (r[frame.max]). */
  readonly maxMessageSize: number

  readonly #doorbell: Doorbell
  /** The doorbell's fd, which errors name: it stays the same until `close()`. */
  readonly #fd: number
  readonly #memory: ChannelMemory
  readonly #buffer: ArrayBuffer
  readonly #words: Uint32Array
  readonly #bytes: Buffer
  readonly #capacity: number
  readonly #mask: number
  readonly #spin: number
  /** Word index of this side's outgoing ring's fields, and byte offset of its data. */
  readonly #tx: number
  readonly #txData: number
  readonly #rx: number
  readonly #rxData: number
  // r[ring.own]: the index this side writes, never read back; and the last value of the peer's.
  #txTail: number
  #txHead: number
  #rxHead: number
  #rxTail: number

  // Messages taken from the ring in a batch, not yet returned: #stage.
  #pool = new ArrayBuffer(0)
  #poolBytes = new Uint8Array(0)
  #poolWords = new Uint32Array(0)
  #poolUsed = 0
  #stageRead = 0
  #stageEnd = 0
  // Larger messages taken from the ring in a batch, not yet returned: #readAhead.
  readonly #ahead: Buffer[] = []
  #aheadRead = 0

  #closed = false
  #peerDead = false
  #corrupt: CodedError | undefined
  /** Whether {@link #wake} waits on the doorbell. */
  #sleeping = false
  /**
   * This side's one doorbell wait, made once: a wake runs {@link #woken} straight from the
   * doorbell's callback, with no promise, AbortController or microtask between it and the pump.
   */
  readonly #wake: Waiter = {
    resolve: () => this.#woken(undefined),
    reject: (err) => this.#woken(err as CodedError),
  }
  readonly #receivers: Receiver[] = []
  readonly #senders: Sender[] = []

  private constructor(token: symbol, memory: ChannelMemory, doorbell: () => Doorbell, host: boolean, spin: number) {
    if (token !== constructing) {
      throw codedError(new TypeError('Illegal constructor: use Channel.createPair()'), 'ERR_ILLEGAL_CONSTRUCTOR')
    }
    const { buffer } = memory
    if (buffer.byteLength < HEADER_SIZE + 2 * MIN_CAPACITY) throw corruptError('the region is too small')
    const words = new Uint32Array(buffer)
    // r[layout.attach]
    if (Atomics.load(words, MAGIC_WORD) !== MAGIC) throw corruptError('bad magic')
    if (words[VERSION_WORD] !== VERSION) throw corruptError(`unknown version ${words[VERSION_WORD]}`)
    const capacity = words[CAPACITY_WORD]
    if (!(capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY && (capacity & (capacity - 1)) === 0)) {
      throw corruptError(`bad capacity ${capacity}`)
    }
    if (buffer.byteLength < regionSize(capacity)) throw corruptError('the region is smaller than its rings')
    this.#tx = host ? 0 : RING_WORDS
    this.#rx = host ? RING_WORDS : 0
    this.#txData = HEADER_SIZE + (host ? 0 : capacity)
    this.#rxData = HEADER_SIZE + (host ? capacity : 0)
    this.#txTail = Atomics.load(words, TAIL_WORD + this.#tx)
    this.#txHead = Atomics.load(words, HEAD_WORD + this.#tx)
    this.#rxHead = Atomics.load(words, HEAD_WORD + this.#rx)
    this.#rxTail = this.#rxHead
    for (const [tail, head] of [
      [this.#txTail, this.#txHead],
      [Atomics.load(words, TAIL_WORD + this.#rx), this.#rxHead],
    ]) {
      if ((tail | head) & 7 || (tail - head) >>> 0 > capacity) throw corruptError('bad indices')
    }
    this.#memory = memory
    this.#doorbell = doorbell()
    this.#fd = this.#doorbell.fd
    this.#buffer = buffer
    this.#words = words
    this.#bytes = Buffer.from(buffer, 0, regionSize(capacity))
    this.#capacity = capacity
    this.#mask = capacity - 1
    this.#spin = spin
    this.maxMessageSize = capacity / 2 - FRAME_HEADER
  }

  /**
   * @internal A channel over `memory`, which the host side has initialised (r[layout.init]);
   * `doorbell` is called once the region has passed r[layout.attach], so that a refusal takes nothing.
   */
  static attach(memory: ChannelMemory, doorbell: () => Doorbell, host: boolean, spin: number): Channel {
    return new Channel(constructing, memory, doorbell, host, spin)
  }

  /**
   * Creates a channel: a shared region with a ring per direction, and a doorbell pair. Returns
   * this side (the host) and the end to hand to the peer, whose fds a child inherits (see
   * `spawnChannel`, which does all of it).
   */
  static createPair(options?: ChannelOptions): [Channel, ChannelHandle] {
    return createPairAt(options, 0)
  }

  /** The guest's side, from a handle; the handle is consumed. `spin` as in {@link ChannelOptions}. */
  static fromHandle(handle: ChannelHandle, options?: Pick<ChannelOptions, 'spin'>): Channel {
    if (!(handle instanceof ChannelHandle)) throw invalidArgType('handle', 'an instance of ChannelHandle', handle)
    const { spin } = channelOptions(options)
    return consumeHandle(handle, (region, doorbell) =>
      Channel.attach(region, () => Doorbell.fromHandle(doorbell), false, spin),
    )
  }

  /**
   * The guest's side, from the fds that `--doorbell-fd N --region-fd M` name (also `--flag=N`).
   * Takes ownership of both on success only: a region that fails r[layout.attach]
   * (`ERR_CHANNEL_CORRUPT`) leaves both fds open and as they were.
   */
  static fromArgv(argv: readonly string[] = process.argv, options?: Pick<ChannelOptions, 'spin'>): Channel {
    const doorbellFd = fdFromArgv(argv, ARG_NAME)
    const regionFd = fdFromArgv(argv, REGION_ARG_NAME)
    const { spin } = channelOptions(options)
    const region = SharedRegion.fromRawFd(regionFd)
    try {
      return Channel.attach(region, () => Doorbell.fromRawFd(doorbellFd), false, spin)
    } catch (err) {
      region.intoRawFd()
      throw err
    }
  }

  /**
   * Listens on the Unix socket `path` for processes that `Channel.connect(path)`: this side is the
   * host of each one's channel (see `ChannelListener`).
   */
  static listen(path: string, options?: ChannelListenOptions): ChannelListener {
    return listenChannel(path, options)
  }

  /** Connects to a `Channel.listen` listener at `path`: this side of a new channel, the guest. */
  static connect(path: string, options?: ChannelConnectOptions): Promise<Channel> {
    return connectChannel(path, options)
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  #check(): void {
    if (this.#closed) throw closedError('channel', this.#fd)
    if (this.#corrupt) throw this.#corrupt
    // r[layout.magic-checked]
    const words = this.#words
    if (words[MAGIC_WORD] !== MAGIC || words[VERSION_WORD] !== VERSION) this.#fail(corruptError('bad magic or version'))
  }

  /** Marks the channel corrupt, fails every pending call, and throws: r[corrupt]. */
  #fail(err: CodedError): never {
    this.#corrupt = err
    this.#rejectAll(err)
    throw err
  }

  /** The checks of a message to send, in the order both send calls make them; its length in bytes. */
  #checkSend(message: Uint8Array | string): number {
    const length = messageLength(message)
    this.#check()
    if (length > this.maxMessageSize) throw outOfRange('message.length', `<= ${this.maxMessageSize}`, length)
    if (this.#peerDead) throw peerDeadError(this.#fd)
    return length
  }

  /**
   * Writes `message` (a string goes as UTF-8) if the ring has room for it; false, with nothing
   * written, if not, or while earlier `send()` calls still wait for room (messages keep their order).
   */
  trySend(message: Uint8Array | string): boolean {
    const length = this.#checkSend(message)
    if (this.#senders.length > 0) return false
    return this.#write(message, length)
  }

  /** Writes `message`, waiting for room; rejects as {@link trySend} throws, and with `ABORT_ERR`. */
  send(message: Uint8Array | string, options?: ChannelWaitOptions): Promise<void> {
    try {
      const signal = signalOption(options)
      const length = this.#checkSend(message)
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (this.#senders.length === 0 && this.#write(message, length)) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const sender: Sender = { message, length, resolve, reject, signal }
        this.#enqueue(this.#senders, sender)
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The next message, or undefined if there is none yet. Throws `ERR_DOORBELL_PEER_DEAD` once the peer is gone and every message it sent has been received. */
  tryRecv(): Buffer | undefined {
    this.#check()
    const message = this.#read()
    if (message === undefined && this.#peerDead) throw peerDeadError(this.#fd)
    return message
  }

  /** The next message, waiting for one; rejects as {@link tryRecv} throws, and with `ABORT_ERR`. */
  recv(options?: ChannelWaitOptions): Promise<Buffer> {
    try {
      const signal = signalOption(options)
      this.#check()
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (this.#receivers.length === 0) {
        const message = this.#read()
        if (message !== undefined) return Promise.resolve(message)
        if (this.#peerDead) throw peerDeadError(this.#fd)
      }
      return new Promise<Buffer>((resolve, reject) => {
        this.#enqueue(this.#receivers, { resolve, reject, signal })
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #enqueue<W extends Receiver | Sender>(queue: W[], waiter: W): void {
    const { signal } = waiter
    if (signal) {
      waiter.onAbort = () => {
        queue.splice(queue.indexOf(waiter), 1)
        waiter.reject(new AbortError(undefined, { cause: signal.reason }))
        // A send that gave up may have been what the others queued behind.
        if (queue === this.#senders) this.#pump()
        else this.#sleep()
      }
      signal.addEventListener('abort', waiter.onAbort, { once: true })
    }
    queue.push(waiter)
    this.#sleep()
  }

  /** Writes one message if it fits: r[ring.wrap], r[ring.commit], r[wake.notify]. */
  #write(message: Uint8Array | string, length: number): boolean {
    const capacity = this.#capacity
    const tail = this.#txTail
    const frame = frameSize(length)
    let pos = tail & this.#mask
    const gap = capacity - pos
    const needed = gap < frame ? gap + frame : frame
    if (((tail - this.#txHead) >>> 0) + needed > capacity) {
      this.#loadTxHead()
      if (((tail - this.#txHead) >>> 0) + needed > capacity) return false
    }
    const words = this.#words
    if (gap < frame) {
      const at = (this.#txData + pos) >> 2
      words[at] = gap - FRAME_HEADER
      words[at + 1] = KIND_PADDING
      pos = 0
    }
    const at = this.#txData + pos
    words[at >> 2] = length
    words[(at >> 2) + 1] = KIND_MESSAGE
    if (typeof message === 'string') this.#bytes.write(message, at + FRAME_HEADER, length, 'utf8')
    else this.#bytes.set(message, at + FRAME_HEADER)
    this.#txTail = (tail + needed) >>> 0
    Atomics.store(words, TAIL_WORD + this.#tx, this.#txTail)
    this.#notify(RX_WAITING_WORD + this.#tx)
    return true
  }

  /** r[ring.room], r[ring.check]: the consumer's head, checked. */
  #loadTxHead(): void {
    const head = Atomics.load(this.#words, HEAD_WORD + this.#tx)
    const last = this.#txHead
    if (head & 7 || (head - last) >>> 0 > (this.#txTail - last) >>> 0) {
      this.#fail(corruptError(`the peer's head moved from ${last} to ${head} (tail ${this.#txTail})`))
    }
    this.#txHead = head
  }

  /** r[ring.consume], r[ring.check]: bytes of frames in the incoming ring. */
  #rxUsed(): number {
    const head = this.#rxHead
    let used = (this.#rxTail - head) >>> 0
    if (used === 0) {
      const tail = Atomics.load(this.#words, TAIL_WORD + this.#rx)
      const next = (tail - head) >>> 0
      if (tail & 7 || next > this.#capacity) {
        this.#fail(corruptError(`the peer's tail moved from ${this.#rxTail} to ${tail} (head ${head})`))
      }
      this.#rxTail = tail
      used = next
    }
    return used
  }

  /**
   * Reads one message, or undefined if the ring is empty: r[ring.consume], r[wake.room]. Small
   * messages are taken from the ring in batches: one copy of the run of frames after the first into
   * a pool of this side's (as `Buffer.allocUnsafe` pools small buffers), one store of `head` for the
   * batch, and each message a `Buffer` over the pool. The copy is private, so a frame checked there
   * cannot change after its check.
   */
  #read(): Buffer | undefined {
    if (this.#stageRead < this.#stageEnd) return this.#nextStaged()
    if (this.#aheadRead < this.#ahead.length) return this.#nextAhead()
    let used = this.#rxUsed()
    if (used === 0) return undefined
    const capacity = this.#capacity
    const words = this.#words
    let pos = this.#rxHead & this.#mask
    let at = (this.#rxData + pos) >> 2
    let skipped = 0
    if (words[at + 1] === KIND_PADDING) {
      const gap = capacity - pos
      if (words[at] !== gap - FRAME_HEADER || gap > used) this.#fail(corruptError('a bad padding frame'))
      skipped = gap
      used -= gap
      pos = 0
      at = this.#rxData >> 2
      if (used === 0) this.#fail(corruptError('padding with no frame after it'))
    }
    const length = words[at]
    const frame = frameSize(length)
    if (words[at + 1] !== KIND_MESSAGE) this.#fail(corruptError(`a frame of kind ${words[at + 1]}`))
    if (length > this.maxMessageSize || frame > capacity - pos || frame > used) {
      this.#fail(corruptError(`a frame of ${length} bytes with ${used} in the ring`))
    }
    if (length <= STAGED_MAX) return this.#stage(pos, Math.min(used, capacity - pos, STAGE_SPAN), skipped)
    return this.#readAhead(pos, length, used, skipped)
  }

  /** A copy of the `length` bytes of the message whose frame, checked, is at `pos` of the incoming ring. */
  #copyOut(pos: number, length: number): Buffer {
    const message = Buffer.allocUnsafe(length)
    // A fresh view is cheaper here than Buffer.copy or subarray (measured: half the time at 64 B).
    message.set(new Uint8Array(this.#buffer, this.#rxData + pos + FRAME_HEADER, length))
    return message
  }

  /**
   * Copies out the large message whose frame, checked, is at `pos`, and the whole large message
   * frames after it that the ring already holds, checked the same way, up to READ_AHEAD bytes; stores
   * `head` once for all of them and returns the first. Fewer stores of `head` are fewer wakes of a
   * sender that waits for room, each with room for more. It stops at anything else, which the next
   * read takes (or finds corrupt).
   */
  #readAhead(pos: number, length: number, used: number, skipped: number): Buffer {
    const capacity = this.#capacity
    const words = this.#words
    const first = this.#copyOut(pos, length)
    let frame = frameSize(length)
    let taken = skipped + frame
    used -= frame
    pos = (pos + frame) & this.#mask
    while (used > 0 && taken < READ_AHEAD) {
      let at = (this.#rxData + pos) >> 2
      let gap = 0
      if (words[at + 1] === KIND_PADDING) {
        gap = capacity - pos
        if (words[at] !== gap - FRAME_HEADER || gap >= used) break
        at = this.#rxData >> 2
      }
      const next = words[at]
      frame = frameSize(next)
      const start = gap > 0 ? 0 : pos
      if (words[at + 1] !== KIND_MESSAGE || next <= STAGED_MAX || next > this.maxMessageSize) break
      if (frame > capacity - start || gap + frame > used) break
      this.#ahead.push(this.#copyOut(start, next))
      taken += gap + frame
      used -= gap + frame
      pos = (start + frame) & this.#mask
    }
    this.#consumed(taken)
    return first
  }

  /** The next message read ahead. */
  #nextAhead(): Buffer {
    const ahead = this.#ahead
    const message = ahead[this.#aheadRead++]!
    if (this.#aheadRead === ahead.length) {
      ahead.length = 0
      this.#aheadRead = 0
    }
    return message
  }

  /** Gives `bytes` of the incoming ring back to the producer: r[ring.consume], r[wake.room]. */
  #consumed(bytes: number): void {
    this.#rxHead = (this.#rxHead + bytes) >>> 0
    Atomics.store(this.#words, HEAD_WORD + this.#rx, this.#rxHead)
    this.#notify(TX_WAITING_WORD + this.#rx)
  }

  /**
   * Copies `span` bytes of frames at `pos` (the first one checked in the ring, small) into the pool,
   * takes every whole small message frame of the copy, checked again there, and returns the first.
   */
  #stage(pos: number, span: number, skipped: number): Buffer {
    if (this.#pool.byteLength - this.#poolUsed < span) {
      this.#pool = new ArrayBuffer(POOL_SIZE)
      this.#poolBytes = new Uint8Array(this.#pool)
      this.#poolWords = new Uint32Array(this.#pool)
      this.#poolUsed = 0
    }
    const from = this.#poolUsed
    this.#poolBytes.set(new Uint8Array(this.#buffer, this.#rxData + pos, span), from)
    const words = this.#poolWords
    const end = from + span
    let next = from
    while (next + FRAME_HEADER <= end) {
      const length = words[next >> 2]
      const frame = frameSize(length)
      if (words[(next >> 2) + 1] !== KIND_MESSAGE || length > STAGED_MAX || frame > end - next) break
      next += frame
    }
    // The first frame was checked in the ring; if its copy fails, the peer changed it meanwhile.
    if (next === from) this.#fail(corruptError('a frame that changed as it was read'))
    this.#poolUsed = next
    this.#stageRead = from
    this.#stageEnd = next
    this.#consumed(skipped + next - from)
    return this.#nextStaged()
  }

  /** The next message of the batch in the pool, checked as it was taken. */
  #nextStaged(): Buffer {
    const at = this.#stageRead
    const length = this.#poolWords[at >> 2]
    this.#stageRead = at + frameSize(length)
    return Buffer.from(this.#pool, at + FRAME_HEADER, length)
  }

  /** r[wake.notify]: rings the peer if it said it sleeps on `flag`. */
  #notify(flag: number): void {
    const words = this.#words
    // Atomics.load, not a plain read: on arm64 only an acquire load stays after the release store of the index.
    if (Atomics.load(words, flag) !== 0 && Atomics.exchange(words, flag, 0) !== 0) {
      if (this.#doorbell.signalNow() === 'PeerDead') this.#peerDead = true
    }
  }

  /** Whether a waiting call can go on now: data for a receiver, room for the first sender. */
  #ready(): boolean {
    if (
      this.#receivers.length > 0 &&
      (this.#stageRead < this.#stageEnd || this.#aheadRead < this.#ahead.length || this.#rxUsed() > 0)
    )
      return true
    const sender = this.#senders[0]
    if (sender === undefined) return false
    const frame = frameSize(sender.length)
    const gap = this.#capacity - (this.#txTail & this.#mask)
    this.#loadTxHead()
    return ((this.#txTail - this.#txHead) >>> 0) + (gap < frame ? gap + frame : frame) <= this.#capacity
  }

  /** Serves waiting calls in order from what the rings hold, then sleeps if some still wait. */
  #pump(): void {
    if (this.#closed || this.#corrupt) return
    try {
      while (this.#receivers.length > 0) {
        const message = this.#read()
        if (message === undefined) break
        settle(this.#receivers.shift()!).resolve(message)
      }
      while (this.#senders.length > 0 && !this.#peerDead) {
        const sender = this.#senders[0]
        if (!this.#write(sender.message, sender.length)) break
        settle(this.#senders.shift()!).resolve()
      }
    } catch {
      return // #fail has rejected every waiter
    }
    if (this.#peerDead) this.#rejectAll(peerDeadError(this.#fd))
    this.#sleep()
  }

  /** Waits on the doorbell for what the waiting calls need: r[wake.spin], r[wake.wait], r[wake.doorbell]. */
  #sleep(): void {
    const wantData = this.#receivers.length > 0
    const wantRoom = this.#senders.length > 0
    if (!wantData && !wantRoom) {
      this.#cancelSleep()
      return
    }
    if (this.#sleeping || this.#closed || this.#corrupt) return
    const words = this.#words
    const rxFlag = RX_WAITING_WORD + this.#rx
    const txFlag = TX_WAITING_WORD + this.#tx
    let ready: boolean
    try {
      ready = this.#spinUntilReady()
      if (!ready) {
        if (wantData) Atomics.store(words, rxFlag, 1)
        if (wantRoom) Atomics.store(words, txFlag, 1)
        ready = this.#ready()
      }
    } catch {
      return
    }
    if (ready) {
      if (wantData) Atomics.store(words, rxFlag, 0)
      if (wantRoom) Atomics.store(words, txFlag, 0)
      queueMicrotask(() => this.#pump())
      return
    }
    let waiting: boolean
    try {
      waiting = this.#doorbell.waitWith(this.#wake)
    } catch (err) {
      this.#clearFlags()
      if ((err as CodedError).code !== 'ERR_DOORBELL_PEER_DEAD') return this.#rejectAll(err)
      this.#peerDead = true
      waiting = false
    }
    if (waiting) {
      this.#sleeping = true
      return
    }
    // A ring was already there (or the peer is gone): look at both rings again, as a wake does.
    this.#clearFlags()
    queueMicrotask(() => this.#pump())
  }

  /** The doorbell rang (`err` undefined) or failed: look at both rings (r[wake.doorbell]). */
  #woken(err: CodedError | undefined): void {
    this.#sleeping = false
    if (this.#closed) return
    this.#clearFlags()
    if (err !== undefined) {
      if (err.code !== 'ERR_DOORBELL_PEER_DEAD') return this.#rejectAll(err)
      this.#peerDead = true
    }
    this.#pump()
  }

  /** Takes back the doorbell wait when no call needs it any more (so it keeps nothing alive). */
  #cancelSleep(): void {
    if (!this.#sleeping) return
    this.#sleeping = false
    this.#doorbell.cancelWait(this.#wake)
    this.#clearFlags()
  }

  /** Clears both waiting flags of this side (none once the region is gone or corrupt). */
  #clearFlags(): void {
    if (this.#closed || this.#corrupt) return
    Atomics.store(this.#words, RX_WAITING_WORD + this.#rx, 0)
    Atomics.store(this.#words, TX_WAITING_WORD + this.#tx, 0)
  }

  #spinUntilReady(): boolean {
    if (this.#spin === 0) return false
    const deadline = performance.now() + this.#spin / 1000
    do {
      if (this.#ready()) return true
    } while (performance.now() < deadline)
    return false
  }

  #rejectAll(err: unknown): void {
    for (const queue of [this.#receivers, this.#senders]) {
      for (const waiter of queue.splice(0)) settle(waiter).reject(err)
    }
    this.#cancelSleep()
  }

  /** Lets a pending `recv` or `send` keep the process alive (the default), as the doorbell's `ref()`. */
  ref(): this {
    if (this.#closed) throw closedError('channel', this.#fd)
    this.#doorbell.ref()
    return this
  }

  /** Lets the process exit while a `recv` or `send` is pending. */
  unref(): this {
    if (this.#closed) throw closedError('channel', this.#fd)
    this.#doorbell.unref()
    return this
  }

  /**
   * Closes the doorbell (the peer sees this side gone) and unmaps the region; pending `recv` and
   * `send` calls reject with `ERR_DOORBELL_CLOSED`. Idempotent.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#rejectAll(closedError('channel', this.#fd))
    this.#doorbell.close()
    this.#memory.close()
  }

  /** Closes the channel, so that `using channel = ...` works. */
  [Symbol.dispose](): void {
    this.close()
  }

  /** `Channel { maxMessageSize: 524280, closed: false }` */
  [inspect.custom](depth: number, options: InspectOptionsStylized): string {
    const fields = { maxMessageSize: this.maxMessageSize, closed: this.#closed }
    return depth < 0 ? options.stylize('[Channel]', 'special') : `Channel ${inspect(fields, options)}`
  }

  /** Yields each message; ends once the peer is gone and its messages are all received, or on close. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    for (;;) {
      let message: Buffer
      try {
        message = await this.recv()
      } catch (err) {
        const code = (err as Partial<CodedError>).code
        if (code === 'ERR_DOORBELL_CLOSED' || code === 'ERR_DOORBELL_PEER_DEAD') return
        throw err
      }
      yield message
    }
  }
}

/** Removes a waiter's abort listener, and gives the waiter back to be settled. */
function settle<W extends Receiver | Sender>(waiter: W): W {
  if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort)
  return waiter
}

function messageLength(message: unknown): number {
  if (typeof message === 'string') return Buffer.byteLength(message, 'utf8')
  if (message instanceof Uint8Array) return message.byteLength
  throw invalidArgType('message', 'of type string or an instance of Uint8Array', message)
}

/** A second fd for the object that `fd` names (Linux and macOS both reopen /dev/fd/N so). */
function reopen(fd: number): number {
  return openSync(`/dev/fd/${fd}`, 'r+')
}

let consumeHandle: <T>(handle: ChannelHandle, use: (region: SharedRegion, doorbell: DoorbellHandle) => T) => T

/**
 * The end of a channel to hand to the peer: a doorbell end and a region (mapped here until it is
 * handed over). Give its fds to a child (`spawnChannel` does) and close it, or open it here with
 * `Channel.fromHandle()`. Its fds are close-on-exec.
 */
export class ChannelHandle {
  #doorbell: DoorbellHandle
  #region: SharedRegion
  /** The doorbell end's fd, which errors name. */
  #fd: number
  #open = true

  static {
    consumeHandle = (handle, use) => {
      if (!handle.#open) throw closedError('channel handle', handle.#fd)
      const result = use(handle.#region, handle.#doorbell)
      handle.#open = false
      return result
    }
  }

  /** @internal */
  constructor(token: symbol, doorbell: DoorbellHandle, region: SharedRegion) {
    if (token !== constructing) {
      throw codedError(new TypeError('Illegal constructor: use Channel.createPair()'), 'ERR_ILLEGAL_CONSTRUCTOR')
    }
    this.#doorbell = doorbell
    this.#region = region
    this.#fd = doorbell.fd
  }

  /** The doorbell end's fd, for `--doorbell-fd`; -1 once closed or handed over. */
  get doorbellFd(): number {
    return this.#open ? this.#doorbell.fd : -1
  }

  /** The region's fd, for `--region-fd`; -1 once closed or handed over. */
  get regionFd(): number {
    return this.#open ? this.#region.fd : -1
  }

  /** Whether it was closed, consumed by `Channel.fromHandle()` or let go of by `intoRawFds()`. */
  get closed(): boolean {
    return !this.#open
  }

  /**
   * Lets go of both fds without closing them, as the doorbell handle's `intoRawFd()`: the caller
   * owns them (for a child started by hand, or a worker). Throws `ERR_DOORBELL_CLOSED` once closed.
   */
  intoRawFds(): { doorbellFd: number; regionFd: number } {
    if (!this.#open) throw closedError('channel handle', this.#fd)
    this.#open = false
    return { doorbellFd: this.#doorbell.intoRawFd(), regionFd: this.#region.intoRawFd() }
  }

  /** Closes both fds (the region is unmapped here). Idempotent. */
  close(): void {
    if (!this.#open) return
    this.#open = false
    this.#doorbell.close()
    this.#region.close()
  }

  /** Closes the handle, so that `using handle = ...` works. */
  [Symbol.dispose](): void {
    this.close()
  }
}

/** @internal {@link Channel.createPair} with every index starting at `start` (r[layout.init]): tests go past 2^32 so. */
export function createPairAt(options: ChannelOptions | undefined, start: number): [Channel, ChannelHandle] {
  const { capacity, spin } = channelOptions(options)
  const region = SharedRegion.create(regionSize(capacity))
  let guestRegion: SharedRegion | undefined
  let doorbells: [Doorbell, DoorbellHandle] | undefined
  try {
    initRegion(region.buffer, capacity, start)
    guestRegion = SharedRegion.fromRawFd(reopen(region.fd))
    doorbells = Doorbell.createPair()
    const [doorbell, guestDoorbell] = doorbells
    const host = Channel.attach(region, () => doorbell, true, spin)
    return [host, new ChannelHandle(constructing, guestDoorbell, guestRegion)]
  } catch (err) {
    region.close()
    guestRegion?.close()
    doorbells?.[0].close()
    doorbells?.[1].close()
    throw err
  }
}

/**
 * @internal Two channels over one ArrayBuffer in this process, joined by a doorbell pair: the ring
 * without a region, for tests. `start` is the value of every index at the start (r[layout.init]).
 */
export function createLocalPair(options?: ChannelOptions, start = 0): [Channel, Channel, ArrayBuffer] {
  const { capacity, spin } = channelOptions(options)
  const buffer = new ArrayBuffer(regionSize(capacity))
  initRegion(buffer, capacity, start)
  const memory: ChannelMemory = { buffer, close() {} }
  const [hostBell, guestEnd] = Doorbell.createPair()
  return [
    Channel.attach(memory, () => hostBell, true, spin),
    Channel.attach(memory, () => Doorbell.fromHandle(guestEnd), false, spin),
    buffer,
  ]
}
