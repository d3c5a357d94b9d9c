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
  invalidArgValue,
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
import { Consumer, Producer, type Visit } from './channel/ring'
import { Waiting, spinMicroseconds } from './channel/waiting'
import {
  type ChannelConnectOptions,
  type ChannelListenOptions,
  type ChannelListener,
  connectChannel,
  listenChannel,
} from './rendezvous'
import { ValueReader, ValueWriter } from './values'

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

/** A waiting `recv` (`kind` 'message'), `recvValue` ('value') or `readable` ('readable'). */
interface Receiver {
  kind: 'message' | 'value' | 'readable'
  resolve(message: unknown): void
  reject(err: unknown): void
  signal?: AbortSignal
  onAbort?: () => void
}

/** A waiting `send` or `sendValue` (`reserve` false), or `reserve` (true: `message` is unused). */
interface Sender {
  message: Uint8Array | string
  length: number
  reserve: boolean
  resolve(view?: Uint8Array): void
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
  /** Whether a `drain` is calling its function: receiving is refused meanwhile (r[drain.view]). */
  #draining = false
  #writer: ValueWriter | undefined
  #reader: ValueReader | undefined
  /** What the last {@link #takeValue} read: the value, or the error of a message that is none. */
  #taken: unknown
  #takenError: unknown
  readonly #stopped = (): boolean => this.#closed || this.#corrupt !== undefined

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
    this.#checkSending()
    if (length > this.maxMessageSize) throw outOfRange('message.length', `<= ${this.maxMessageSize}`, length)
    if (this.#peerDead) throw peerDeadError(this.#fd)
    return length
  }

  /** The checks of every way to send: the channel, and no open reservation (r[reserve.open]). */
  #checkSending(): void {
    this.#check()
    if (this.#producer.reserved >= 0) {
      throw codedError(
        new Error('A reservation is open: commit() or abort() it before sending anything else'),
        'ERR_CHANNEL_RESERVATION_OPEN',
      )
    }
  }

  /** The checks of every way to receive: the channel, and not from inside a drain's function (r[drain.view]). */
  #checkReceiving(): void {
    this.#check()
    if (this.#draining) {
      throw codedError(new Error('Cannot receive inside the function of drain()'), 'ERR_CHANNEL_DRAINING')
    }
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
        const sender: Sender = { message, length, reserve: false, resolve: () => resolve(), reject, signal }
        this.#enqueue(this.#senders, sender)
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The next message, or undefined if there is none yet. Throws `ERR_DOORBELL_PEER_DEAD` once the peer is gone and every message it sent has been received. */
  tryRecv(): Buffer | undefined {
    this.#checkReceiving()
    const message = this.#consumer.read()
    if (message === undefined && this.#peerDead) throw peerDeadError(this.#fd)
    return message
  }

  /** The next message, waiting for one; rejects as {@link tryRecv} throws, and with `ABORT_ERR`. */
  recv(options?: ChannelWaitOptions): Promise<Buffer> {
    try {
      const signal = signalOption(options)
      this.#checkReceiving()
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (this.#receivers.length === 0) {
        const message = this.#consumer.read()
        if (message !== undefined) return Promise.resolve(message)
        if (this.#peerDead) throw peerDeadError(this.#fd)
      }
      return new Promise<Buffer>((resolve, reject) => {
        this.#enqueue(this.#receivers, {
          kind: 'message',
          resolve: resolve as (message: unknown) => void,
          reject,
          signal,
        })
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * A view of `length` bytes of free space in the outgoing ring, to write a message into in place,
   * or undefined if the ring has no room for it (or earlier `send()` calls still wait for room).
   * Then `commit()` sends it, or `abort()` drops it; until then the peer sees nothing of it and
   * nothing else can be sent (`ERR_CHANNEL_RESERVATION_OPEN`). The view is valid until then.
   * r[reserve.open]
   */
  tryReserve(length: number): Uint8Array | undefined {
    this.#checkReserve(length)
    if (this.#senders.length > 0) return undefined
    return this.#producer.reserve(length)
  }

  /** The view of {@link tryReserve}, waiting for room; rejects as it throws, and with `ABORT_ERR`. */
  reserve(length: number, options?: ChannelWaitOptions): Promise<Uint8Array> {
    try {
      const signal = signalOption(options)
      this.#checkReserve(length)
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      const view = this.#senders.length === 0 ? this.#producer.reserve(length) : undefined
      if (view !== undefined) return Promise.resolve(view)
      return new Promise<Uint8Array>((resolve, reject) => {
        const sender: Sender = {
          message: '',
          length,
          reserve: true,
          resolve: resolve as (view?: Uint8Array) => void,
          reject,
          signal,
        }
        this.#enqueue(this.#senders, sender)
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Sends the first `length` bytes (default: all) of the open reservation as one message:
   * r[reserve.commit]. `ERR_CHANNEL_NO_RESERVATION` without one, `ERR_OUT_OF_RANGE` (and nothing
   * sent, the reservation still open) for more than was reserved.
   */
  commit(length?: number): void {
    // The header was checked when the reservation opened (r[layout.magic-checked]: once per send).
    if (this.#closed) throw closedError('channel', this.#fd)
    if (this.#corrupt) throw this.#corrupt
    const reserved = this.#openReservation()
    if (length === undefined) length = reserved
    else if (typeof length !== 'number') throw invalidArgType('length', 'of type number', length)
    else if (!(Number.isInteger(length) && length >= 0 && length <= reserved)) {
      throw outOfRange('length', `an integer >= 0 && <= ${reserved} (the bytes reserved)`, length)
    }
    if (this.#peerDead) {
      this.#producer.abort()
      throw peerDeadError(this.#fd)
    }
    this.#producer.commit(length)
    if (this.#senders.length > 0) this.#pump()
  }

  /** Drops the open reservation: the peer sees nothing of it (r[reserve.abort]). `ERR_CHANNEL_NO_RESERVATION` without one. */
  abort(): void {
    if (this.#closed) throw closedError('channel', this.#fd)
    this.#openReservation()
    this.#producer.abort()
    if (this.#senders.length > 0) this.#pump()
  }

  /**
   * Calls `fn(view)` for each message already received, in order, up to `max` of them, and returns
   * how many it took. The view is of the ring (or of a batch that `tryRecv` copied out), and valid
   * only during the call: copy what must outlive it. `fn` may send, but not receive
   * (`ERR_CHANNEL_DRAINING`). If `fn` throws, the drain stops and rethrows: the messages before
   * it are taken, that one and the rest stay. Throws `ERR_DOORBELL_PEER_DEAD` once the peer is gone
   * and every message it sent has been taken. r[drain.view]
   */
  drain(fn: (view: Uint8Array) => void, max = Infinity): number {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn)
    if (typeof max !== 'number') throw invalidArgType('max', 'of type number', max)
    if (!(max >= 0 && (Number.isInteger(max) || max === Infinity))) throw outOfRange('max', 'an integer >= 0', max)
    this.#checkReceiving()
    const consumer = this.#consumer
    const taken = this.#take(max, (bytes, start, length) => fn(consumer.view(bytes, start, length)))
    if (taken === 0 && max > 0 && this.#peerDead && !this.#consumer.hasMessage()) throw peerDeadError(this.#fd)
    return taken
  }

  /**
   * Resolves once a message is there to take (`drain` takes at least one, `tryRecv` returns one);
   * rejects with `ERR_DOORBELL_PEER_DEAD` once the peer is gone and every message it sent is taken,
   * and as `recv` does.
   */
  readable(options?: ChannelWaitOptions): Promise<void> {
    try {
      const signal = signalOption(options)
      this.#checkReceiving()
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (this.#receivers.length === 0) {
        if (this.#consumer.hasMessage()) return Promise.resolve()
        if (this.#peerDead) throw peerDeadError(this.#fd)
      }
      return new Promise<void>((resolve, reject) => {
        this.#enqueue(this.#receivers, { kind: 'readable', resolve, reject, signal })
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Sends `value` in the format of `v8.serialize` (as child_process's `'advanced'` serialization
   * does) if the ring has room; false, with nothing sent, if not. A value it cannot serialize
   * throws `ERR_INVALID_ARG_VALUE`, one larger than {@link maxMessageSize} `ERR_OUT_OF_RANGE`; nothing is sent.
   */
  trySendValue(value: unknown): boolean {
    const length = this.#serialize(value)
    if (this.#senders.length > 0) return false
    return this.#producer.write(this.#writer!.view(length), length)
  }

  /** Sends `value` as {@link trySendValue}, waiting for room; the value is serialized at once. */
  sendValue(value: unknown, options?: ChannelWaitOptions): Promise<void> {
    try {
      const signal = signalOption(options)
      const length = this.#serialize(value)
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      const written = this.#writer!.view(length)
      if (this.#senders.length === 0 && this.#producer.write(written, length)) return Promise.resolve()
      const message = Buffer.from(written)
      return new Promise<void>((resolve, reject) => {
        this.#enqueue(this.#senders, { message, length, reserve: false, resolve: () => resolve(), reject, signal })
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * The next value, as `{ value }` (as `receiveMessageOnPort` returns), or undefined if there is
   * none yet. A message that is not a value is taken and throws `ERR_CHANNEL_BAD_VALUE`. Throws
   * `ERR_DOORBELL_PEER_DEAD` once the peer is gone and every message it sent has been received.
   */
  tryRecvValue(): { value: unknown } | undefined {
    this.#checkReceiving()
    if (this.#takeValue()) return { value: this.#takenValue() }
    if (this.#peerDead) throw peerDeadError(this.#fd)
    return undefined
  }

  /** The next value, waiting for one; rejects as {@link tryRecvValue} throws, and with `ABORT_ERR`. */
  recvValue(options?: ChannelWaitOptions): Promise<unknown> {
    try {
      const signal = signalOption(options)
      this.#checkReceiving()
      if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
      if (this.#receivers.length === 0) {
        if (this.#takeValue()) return Promise.resolve(this.#takenValue())
        if (this.#peerDead) throw peerDeadError(this.#fd)
      }
      return new Promise<unknown>((resolve, reject) => {
        this.#enqueue(this.#receivers, { kind: 'value', resolve, reject, signal })
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Yields each value; ends once the peer is gone and its messages are all received, or on close. */
  async *values(): AsyncGenerator<unknown, void, undefined> {
    for (;;) {
      let value: unknown
      try {
        value = await this.recvValue()
      } catch (err) {
        if (endsIteration(err)) return
        throw err
      }
      yield value
    }
  }

  #checkReserve(length: number): void {
    if (typeof length !== 'number') throw invalidArgType('length', 'of type number', length)
    if (!(Number.isInteger(length) && length >= 0 && length <= this.maxMessageSize)) {
      throw outOfRange('length', `an integer >= 0 && <= ${this.maxMessageSize}`, length)
    }
    this.#checkSending()
    if (this.#peerDead) throw peerDeadError(this.#fd)
  }

  /** The open reservation's length; `ERR_CHANNEL_NO_RESERVATION` if there is none. */
  #openReservation(): number {
    if (this.#producer.reserved < 0) {
      throw codedError(
        new Error('No reservation is open: tryReserve() or reserve() first'),
        'ERR_CHANNEL_NO_RESERVATION',
      )
    }
    return this.#producer.reserved
  }

  /** Serializes `value` for a send, after the checks of every send; its length in the writer's bytes. */
  #serialize(value: unknown): number {
    this.#checkSending()
    if (this.#peerDead) throw peerDeadError(this.#fd)
    this.#writer ??= new ValueWriter()
    const length = this.#writer.write(value)
    if (length > this.maxMessageSize)
      throw outOfRange('the serialized value', `<= ${this.maxMessageSize} bytes`, length)
    return length
  }

  /** Takes one message as a value into #taken (or its error into #takenError); false if there is none. */
  #takeValue(): boolean {
    this.#reader ??= new ValueReader()
    return this.#consumer.takeNext(this.#readValue)
  }

  readonly #readValue = (bytes: Buffer, start: number, length: number): void => {
    try {
      this.#taken = this.#reader!.read(bytes, start, start + length)
      this.#takenError = undefined
    } catch (err) {
      this.#taken = undefined
      this.#takenError = err
    }
  }

  /** The value {@link #takeValue} took, or throws its error. */
  #takenValue(): unknown {
    const value = this.#taken
    const err = this.#takenError
    this.#taken = this.#takenError = undefined
    if (err !== undefined) throw err
    return value
  }

  /** Calls `visit` for up to `max` messages (Consumer.take), refusing receives meanwhile (r[drain.view]). */
  #take(max: number, visit: Visit): number {
    this.#draining = true
    try {
      return this.#consumer.take(max, visit, this.#stopped)
    } finally {
      this.#draining = false
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
    return sender !== undefined && this.#producer.reserved < 0 && this.#producer.hasRoom(sender.length)
  }

  /** Serves waiting calls in order from what the rings hold, then sleeps if some still wait. */
  #pump(): void {
    if (this.#closed || this.#corrupt) return
    try {
      while (this.#receivers.length > 0 && !this.#draining) {
        const { kind } = this.#receivers[0]!
        if (kind === 'readable') {
          if (!this.#consumer.hasMessage()) break
          settle(this.#receivers.shift()!).resolve(undefined)
        } else if (kind === 'value') {
          if (!this.#takeValue()) break
          const receiver = settle(this.#receivers.shift()!)
          try {
            receiver.resolve(this.#takenValue())
          } catch (err) {
            receiver.reject(err)
          }
        } else {
          const message = this.#consumer.read()
          if (message === undefined) break
          settle(this.#receivers.shift()!).resolve(message)
        }
      }
      while (this.#senders.length > 0 && !this.#peerDead && this.#producer.reserved < 0) {
        const sender = this.#senders[0]!
        if (sender.reserve) {
          const view = this.#producer.reserve(sender.length)
          if (view === undefined) break
          settle(this.#senders.shift()!).resolve(view)
        } else {
          if (!this.#producer.write(sender.message, sender.length)) break
          settle(this.#senders.shift()!).resolve()
        }
      }
    } catch {
      return // #fail has rejected every waiter
    }
    if (this.#peerDead) this.#rejectAll(peerDeadError(this.#fd))
    this.#sleep()
  }

  #sleep(): void {
    // Senders queued behind an open reservation wait for its commit() or abort(), not for room.
    this.#waiting.sleep(this.#receivers.length > 0, this.#senders.length > 0 && this.#producer.reserved < 0)
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
        if (endsIteration(err)) return
        throw err
      }
      yield message
    }
  }
}

/** Whether `err` ends an iteration of messages or values: the channel closed, or the peer gone. */
function endsIteration(err: unknown): boolean {
  const code = (err as Partial<CodedError>).code
  return code === 'ERR_DOORBELL_CLOSED' || code === 'ERR_DOORBELL_PEER_DEAD'
}

/** Removes a waiter's abort listener, and gives the waiter back to be settled. */
function settle<W extends Receiver | Sender>(waiter: W): W {
  if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort)
  return waiter
}

function messageLength(message: unknown): number {
  if (typeof message === 'string') return Buffer.byteLength(message, 'utf8')
  if (!(message instanceof Uint8Array)) {
    throw invalidArgType('message', 'of type string or an instance of Uint8Array', message)
  }
  if (message.byteLength === 0 && isDetached(message.buffer)) {
    throw invalidArgValue('message', message, 'is a view of a detached ArrayBuffer')
  }
  return message.byteLength
}

/** Whether `buffer` was detached (transferred, or a closed region's): Node 20 has no `buffer.detached`. */
function isDetached(buffer: ArrayBufferLike): boolean {
  if (buffer.byteLength > 0) return false
  try {
    new Uint8Array(buffer)
    return false
  } catch {
    return true
  }
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
