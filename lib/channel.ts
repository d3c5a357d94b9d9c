// Channel: messages through a ring per direction in shared memory, with the doorbell rung only for a
// sleeping peer. The class composes the layout (./channel/layout), one producer and one consumer
// (./channel/ring) and this side's waiting (./channel/waiting), and keeps the calls that wait.
// The protocol, and the rule names cited, are docs/channel-layout.md.
import { openSync } from 'node:fs'
import { inspect, type InspectOptionsStylized } from 'node:util'

import { ARG_NAME, Doorbell, DoorbellHandle } from './doorbell'
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
  DEFAULT_CAPACITY,
  attachLayout,
  channelCapacity,
  corruptError,
  headerIntact,
  initRegion,
  maxMessageSize,
  regionSize,
} from './channel/layout'
import { Consumer, Producer } from './channel/ring'
import { Waiting, spinMicroseconds } from './channel/waiting'
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

/** Checks `options` of a constructor: an object or undefined. */
export function channelOptions(options: unknown): { capacity: number; spin: number } {
  if (options === undefined) return { capacity: DEFAULT_CAPACITY, spin: 0 }
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options)
  const { capacity, spin } = options as ChannelOptions
  return { capacity: channelCapacity(capacity), spin: spinMicroseconds(spin) }
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

// Set by Channel's static block: its constructor, for attachChannel.
let construct: (memory: ChannelMemory, doorbell: () => Doorbell, host: boolean, spin: number) => Channel

/**
 * A channel over `memory`, which the host side has initialised (r[layout.init]); `doorbell` is
 * called once the region has passed r[layout.attach], so that a refusal takes nothing.
 */
export function attachChannel(memory: ChannelMemory, doorbell: () => Doorbell, host: boolean, spin: number): Channel {
  return construct(memory, doorbell, host, spin)
}

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
  readonly #words: Uint32Array
  readonly #producer: Producer
  readonly #consumer: Consumer
  readonly #waiting: Waiting

  #closed = false
  #peerDead = false
  #corrupt: CodedError | undefined
  readonly #receivers: Receiver[] = []
  readonly #senders: Sender[] = []

  static {
    construct = (memory, doorbell, host, spin) => new Channel(constructing, memory, doorbell, host, spin)
  }

  private constructor(token: symbol, memory: ChannelMemory, doorbell: () => Doorbell, host: boolean, spin: number) {
    if (token !== constructing) {
      throw codedError(new TypeError('Illegal constructor: use Channel.createPair()'), 'ERR_ILLEGAL_CONSTRUCTOR')
    }
    const layout = attachLayout(memory.buffer, host)
    const fail = (err: CodedError): never => this.#fail(err)
    this.#producer = new Producer(layout.tx, () => this.#waiting.notifyData(), fail)
    this.#consumer = new Consumer(layout.rx, () => this.#waiting.notifyRoom(), fail)
    this.#memory = memory
    this.#doorbell = doorbell()
    this.#fd = this.#doorbell.fd
    this.#words = layout.words
    this.#waiting = new Waiting(layout, this.#doorbell, spin, {
      ready: () => this.#ready(),
      pump: () => this.#pump(),
      peerGone: () => {
        this.#peerDead = true
      },
      failed: (err) => this.#rejectAll(err),
    })
    this.maxMessageSize = maxMessageSize(layout.capacity)
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
      attachChannel(region, () => Doorbell.fromHandle(doorbell), false, spin),
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
      return attachChannel(region, () => Doorbell.fromRawFd(doorbellFd), false, spin)
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
    if (!headerIntact(this.#words)) this.#fail(corruptError('bad magic or version'))
  }

  /** Marks the channel corrupt, fails every pending call, and throws: r[corrupt]. */
  #fail(err: CodedError): never {
    this.#corrupt = err
    this.#waiting.stop()
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
    return this.#producer.write(message, length)
  }

  /** Writes `message`, waiting for room; rejects as {@link trySend} throws, and with `ABORT_ERR`. */
  send(message: Uint8Array | string, options?: ChannelWaitOptions): Promise<void> {
    try {
      const signal = signalOption(options)
      const length = this.#checkSend(message)
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (this.#senders.length === 0 && this.#producer.write(message, length)) return Promise.resolve()
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
    const message = this.#consumer.read()
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
        const message = this.#consumer.read()
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

  /** Whether a waiting call can go on now: data for a receiver, room for the first sender. */
  #ready(): boolean {
    if (this.#receivers.length > 0 && this.#consumer.hasMessage()) return true
    const sender = this.#senders[0]
    return sender !== undefined && this.#producer.hasRoom(sender.length)
  }

  /** Serves waiting calls in order from what the rings hold, then sleeps if some still wait. */
  #pump(): void {
    if (this.#closed || this.#corrupt) return
    try {
      while (this.#receivers.length > 0) {
        const message = this.#consumer.read()
        if (message === undefined) break
        settle(this.#receivers.shift()!).resolve(message)
      }
      while (this.#senders.length > 0 && !this.#peerDead) {
        const sender = this.#senders[0]
        if (!this.#producer.write(sender.message, sender.length)) break
        settle(this.#senders.shift()!).resolve()
      }
    } catch {
      return // #fail has rejected every waiter
    }
    if (this.#peerDead) this.#rejectAll(peerDeadError(this.#fd))
    this.#sleep()
  }

  #sleep(): void {
    this.#waiting.sleep(this.#receivers.length > 0, this.#senders.length > 0)
  }

  #rejectAll(err: unknown): void {
    for (const queue of [this.#receivers, this.#senders]) {
      for (const waiter of queue.splice(0)) settle(waiter).reject(err)
    }
    this.#waiting.cancel()
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
    this.#waiting.stop()
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
    const host = attachChannel(region, () => doorbell, true, spin)
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
    attachChannel(memory, () => hostBell, true, spin),
    attachChannel(memory, () => Doorbell.fromHandle(guestEnd), false, spin),
    buffer,
  ]
}
