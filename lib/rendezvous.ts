// Rendezvous: processes that did not spawn each other meet by a Unix socket path. The listener is
// the host: for each connecting process whose credentials `allow` accepts, it makes a Doorbell pair
// or a Channel and sends the guest's fds with SCM_RIGHTS. The handshake is docs/channel-layout.md,
// section Rendezvous; src/rendezvous.rs is the same for Rust peers. Channel.listen/connect and
// Doorbell.listen/connect are thin statics over the functions at the end.
import { inspect, type InspectOptions } from 'node:util'

import { Channel, type ChannelOptions, attachChannel, channelOptions } from './channel'
import { Doorbell, inspectState } from './doorbell'
import {
  AbortError,
  type CodedError,
  closedError,
  codedError,
  fromNative,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  signalOption,
} from './errors'
import * as binding from './native'
import { SharedRegion, fdOfOpenRegion } from './region'

const { WAKE_EMPTY, WAKE_RANG, arm, disarm } = binding

/** A connecting process's credentials, taken from the kernel (never from what it sends). */
export interface Peer {
  pid: number
  uid: number
  gid: number
}

/** Options of `Doorbell.listen` and `Channel.listen`. */
export interface ListenOptions {
  /** The socket file's permissions (ignored for an abstract name). Default `0o600`: this user only. */
  mode?: number
  /** The most connections the kernel queues before `accept` takes them. Default 511, as `net.Server`. */
  backlog?: number
  /**
   * Decides, from its credentials, whether a connecting process gets a doorbell or channel: false
   * (or a promise of false) refuses it, and its `connect` rejects with `ERR_DOORBELL_REFUSED`. An
   * `allow` that throws refuses too, and the next `accept()` rejects with its error. Default: allow all.
   */
  allow?: (peer: Peer) => boolean | Promise<boolean>
}

/** Options of `Channel.listen`: the listener's and each channel's (capacity, spin). */
export interface ChannelListenOptions extends ListenOptions, ChannelOptions {}

/** Options of `Doorbell.listen`. */
export interface DoorbellListenOptions extends ListenOptions {
  /** A region whose fd every connecting process gets with its doorbell. The listener never closes it. Default: none. */
  region?: SharedRegion
}

/** Options of `Doorbell.connect`. */
export interface ConnectOptions {
  /** Rejects with an `AbortError` once aborted, having left nothing open. Default: none. */
  signal?: AbortSignal
}

/** Options of `Channel.connect`. */
export interface ChannelConnectOptions extends ConnectOptions, Pick<ChannelOptions, 'spin'> {}

/** What `ChannelListener.accept()` resolves to. */
export interface AcceptedChannel {
  /** The host's side of a new channel; the connecting process has the other. */
  channel: Channel
  peer: Peer
}

/** What `DoorbellListener.accept()` resolves to. */
export interface AcceptedDoorbell {
  /** This side of a new doorbell pair; the connecting process has the other end. */
  doorbell: Doorbell
  peer: Peer
}

/** What `Doorbell.connect()` resolves to. */
export interface ConnectedDoorbell {
  doorbell: Doorbell
  /** The listener's region, mapped here, if it has one. */
  region: SharedRegion | undefined
}

/** How long a listener waits for a connecting process's hello before it drops the connection. */
export const HELLO_TIMEOUT_MS = binding.HELLO_TIMEOUT_MS

type WakeCallback = (status: number) => void

/**
 * A socket of the rendezvous (the listening socket, a connection), watched for readability by the
 * doorbell's engine without reading: its owner reads. One wait at a time.
 */
class WatchedSocket {
  readonly #native: binding.NativeDoorbell
  readonly fd: number
  #waiter: { resolve(): void; reject(err: unknown): void } | undefined

  constructor(create: (onWake: WakeCallback) => binding.NativeDoorbell) {
    this.#native = create((status) => this.#onWake(status))
    this.fd = this.#native.fd
  }

  /** Resolves once the socket is readable; rejects with an `AbortError` when `signal` aborts. */
  readable(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    const status = arm(this.fd)
    if (status === WAKE_RANG) return Promise.resolve()
    if (status !== WAKE_EMPTY) return Promise.reject(fromNative(wakeError(status)))
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.cancel()
        reject(new AbortError(undefined, { cause: signal!.reason }))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = (): void => signal?.removeEventListener('abort', onAbort)
      this.#waiter = {
        resolve: () => (settle(), resolve()),
        reject: (err) => (settle(), reject(err)),
      }
    })
  }

  #onWake(status: number): void {
    const waiter = this.#waiter
    this.#waiter = undefined
    if (status === WAKE_RANG) waiter?.resolve()
    else waiter?.reject(wakeError(status))
  }

  /** Ends the pending wait, unsettled. */
  cancel(): void {
    if (!this.#waiter) return
    this.#waiter = undefined
    if (this.#native.fd >= 0) disarm(this.fd)
  }

  setRef(keep: boolean): void {
    if (this.#native.fd >= 0) this.#native.setKeepsLoopAlive(keep)
  }

  close(): void {
    this.#waiter = undefined
    this.#native.close()
  }
}

function wakeError(status: number): unknown {
  return fromNative(codedError(new Error(`${-status} poll`), binding.OS_ERROR_CODE))
}

/** Runs a native call, its errors as Node makes them, naming `path` when they are system errors. */
function native<T>(call: () => T, path?: string): T {
  try {
    return call()
  } catch (err) {
    throw withPath(fromNative(err), path)
  }
}

function withPath(err: unknown, path: string | undefined): unknown {
  const error = err as CodedError & { syscall?: string; path?: string }
  if (path !== undefined && error.syscall !== undefined) {
    error.path = path
    error.message += ` ${inspect(path)}`
  }
  return err
}

/** Checks a socket path: a non-empty string with no NUL byte but an abstract name's first (Linux). */
function checkPath(path: unknown): asserts path is string {
  if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path)
  if (path.length === 0) throw invalidArgValue('path', path, 'must not be empty')
  const isAbstract = path.startsWith('\0')
  if (isAbstract && process.platform !== 'linux') {
    throw invalidArgValue('path', path, 'names an abstract socket, which exists on Linux only')
  }
  if (path.indexOf('\0', isAbstract ? 1 : 0) >= 0) throw invalidArgValue('path', path, 'must not contain a NUL byte')
}

function integerOption(name: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw invalidArgType(`options.${name}`, 'of type number', value)
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw outOfRange(`options.${name}`, `an integer >= 0 && <= ${max}`, value)
  }
  return value
}

function listenOptions(options: unknown): Required<Pick<ListenOptions, 'mode' | 'backlog'>> & ListenOptions {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options)
  const { mode, backlog, allow } = options as ListenOptions
  if (allow !== undefined && typeof allow !== 'function') throw invalidArgType('options.allow', 'a function', allow)
  return {
    mode: integerOption('mode', mode, 0o600, 0o777),
    backlog: integerOption('backlog', backlog, 511, 2 ** 31 - 1),
    allow,
  }
}

/** A connection whose hello came, or is awaited. */
interface Handshake {
  socket: WatchedSocket
  timer: ReturnType<typeof setTimeout>
}

/** An accept() waiting for a connection. */
interface Accepter<T> {
  resolve(value: T): void
  reject(err: unknown): void
}

const constructing = Symbol('shm-doorbell constructing')

/**
 * What a listener does for each connection allowed in: the hello it serves, how it makes the pair
 * and sends the guest's fds on `fd`, and how it closes a pair that no accept() took. Held in a
 * private field, so that no caller of a listener can reach it.
 */
interface Service<T> {
  readonly kind: number
  serve(fd: number, peer: Peer): T
  discard(value: T): void
}

/**
 * What the two listeners share: a listening socket watched on the event loop while an `accept()`
 * is pending, concurrent handshakes (a silent connection is dropped after {@link HELLO_TIMEOUT_MS}),
 * and the queue of connections made while no `accept()` waited.
 */
abstract class Listener<T extends { peer: Peer }> {
  readonly #path: string
  readonly #socket: WatchedSocket
  readonly #file: binding.NativeSocketFile
  readonly #allow: ListenOptions['allow']
  readonly #accepters: Accepter<T>[] = []
  /** Connections made (or errors of `allow`) that no accept() has taken yet. */
  readonly #ready: Array<{ value: T } | { error: unknown }> = []
  readonly #handshakes = new Set<Handshake>()
  readonly #service: Service<T>
  #watching = false
  #closed = false
  #ref = true

  protected constructor(token: symbol, path: unknown, options: ListenOptions, service: Service<T>) {
    if (token !== constructing) {
      throw codedError(
        new TypeError('Illegal constructor: use Channel.listen() or Doorbell.listen()'),
        'ERR_ILLEGAL_CONSTRUCTOR',
      )
    }
    checkPath(path)
    const { mode, backlog, allow } = listenOptions(options)
    let file: binding.NativeSocketFile | undefined
    this.#socket = new WatchedSocket((onWake) =>
      native(() => {
        const [socket, made] = binding.rendezvousListen(path, mode, backlog, onWake)
        file = made
        return socket
      }, path),
    )
    this.#file = file!
    this.#path = path
    this.#allow = allow
    this.#service = service
  }

  /** The path it listens on, as given. */
  get path(): string {
    return this.#path
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * The next process that connects and is allowed in, with its credentials. Rejects with
   * `ERR_DOORBELL_CLOSED` once the listener is closed, and with the error of an `allow` that threw.
   */
  accept(): Promise<T> {
    if (this.#closed) return Promise.reject(closedError('listener', this.#socket.fd))
    const ready = this.#ready.shift()
    if (ready) return 'value' in ready ? Promise.resolve(ready.value) : Promise.reject(ready.error)
    return new Promise<T>((resolve, reject) => {
      this.#accepters.push({ resolve, reject })
      this.#watch()
    })
  }

  /** Watches the listening socket while an accept() waits. */
  #watch(): void {
    if (this.#watching || this.#closed || this.#accepters.length === 0) return
    this.#watching = true
    this.#socket.readable().then(
      () => {
        this.#watching = false
        this.#acceptAll()
        this.#watch()
      },
      (err: unknown) => {
        this.#watching = false
        if (!this.#closed) this.#deliver({ error: err })
      },
    )
  }

  /** Takes every connection waiting, and starts each one's handshake. */
  #acceptAll(): void {
    for (;;) {
      if (this.#closed) return
      let socket: WatchedSocket | undefined
      try {
        socket = new WatchedSocket((onWake) => {
          const conn = native(() => binding.rendezvousAccept(this.#socket.fd, onWake))
          if (!conn) throw noConnection
          return conn
        })
      } catch (err) {
        if (err === noConnection) return
        // EMFILE and the like: report it, and try again on the next readiness.
        this.#deliver({ error: err })
        return
      }
      this.#handshake(socket)
    }
  }

  /** r[rendezvous.hello], r[rendezvous.silent], r[rendezvous.reply]. */
  #handshake(socket: WatchedSocket): void {
    const handshake: Handshake = {
      socket,
      timer: setTimeout(() => this.#drop(handshake), HELLO_TIMEOUT_MS),
    }
    handshake.timer.unref?.()
    socket.setRef(this.#ref)
    this.#handshakes.add(handshake)
    this.#readHello(handshake).catch(() => this.#drop(handshake))
  }

  async #readHello(handshake: Handshake): Promise<void> {
    const { socket } = handshake
    let hello: number
    for (;;) {
      await socket.readable()
      if (!this.#handshakes.has(handshake)) return
      hello = binding.rendezvousReadHello(socket.fd)
      if (hello !== binding.HELLO_NOT_YET) break
    }
    clearTimeout(handshake.timer)
    if (hello === binding.HELLO_GARBAGE) return this.#drop(handshake)
    if (hello === binding.HELLO_UNSUPPORTED_VERSION) return this.#reply(handshake, binding.REPLY_UNSUPPORTED_VERSION)
    if (hello !== this.#service.kind) return this.#reply(handshake, binding.REPLY_WRONG_KIND)
    const peer = binding.rendezvousPeer(socket.fd)
    let allowed: boolean
    try {
      allowed = this.#allow === undefined || (await this.#allow(peer)) === true
    } catch (err) {
      this.#reply(handshake, binding.REPLY_REFUSED)
      this.#deliver({ error: err })
      return
    }
    if (!this.#handshakes.has(handshake)) return
    if (!allowed) return this.#reply(handshake, binding.REPLY_REFUSED)
    try {
      this.#deliver({ value: this.#service.serve(socket.fd, { pid: peer.pid, uid: peer.uid, gid: peer.gid }) })
    } catch (err) {
      // A process that died since its hello has no one to serve; other failures (EMFILE) are reported.
      if (!PEER_GONE_CODES.includes((err as Partial<CodedError>).code ?? '')) this.#deliver({ error: err })
    } finally {
      this.#drop(handshake)
    }
  }

  #reply(handshake: Handshake, status: number): void {
    try {
      binding.rendezvousReply(handshake.socket.fd, status, -1, -1)
    } catch {
      // The peer is gone: there is no one to tell.
    }
    this.#drop(handshake)
  }

  #drop(handshake: Handshake): void {
    if (!this.#handshakes.delete(handshake)) return
    clearTimeout(handshake.timer)
    handshake.socket.close()
  }

  /** Gives a connection (or an error) to the oldest accept() waiting, or keeps it for the next. */
  #deliver(result: { value: T } | { error: unknown }): void {
    if (this.#closed) {
      if ('value' in result) this.#service.discard(result.value)
      return
    }
    const accepter = this.#accepters.shift()
    if (!accepter) this.#ready.push(result)
    else if ('value' in result) accepter.resolve(result.value)
    else accepter.reject(result.error)
    if (this.#accepters.length === 0 && this.#watching) {
      this.#socket.cancel()
      this.#watching = false
    }
  }

  /** Lets a pending `accept()` (and the handshakes under way) keep the process alive: the default. */
  ref(): this {
    return this.#setRef(true)
  }

  /** Lets the process exit while an `accept()` is pending. */
  unref(): this {
    return this.#setRef(false)
  }

  #setRef(keep: boolean): this {
    if (this.#closed) throw closedError('listener', this.#socket.fd)
    this.#ref = keep
    this.#socket.setRef(keep)
    for (const { socket } of this.#handshakes) socket.setRef(keep)
    return this
  }

  /**
   * Stops listening: closes the socket, unlinks the socket file it made (only that one: a file put
   * there since is left alone), drops the handshakes under way (their processes get
   * `ERR_DOORBELL_PEER_DEAD`), closes connections that no `accept()` took, and rejects pending
   * `accept()` calls with `ERR_DOORBELL_CLOSED`. Doorbells and channels already accepted stay open.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    const fd = this.#socket.fd
    this.#socket.close()
    this.#file.unlink()
    for (const handshake of this.#handshakes) this.#drop(handshake)
    for (const ready of this.#ready.splice(0)) if ('value' in ready) this.#service.discard(ready.value)
    const error = closedError('listener', fd)
    for (const accepter of this.#accepters.splice(0)) accepter.reject(error)
  }

  /** Closes the listener, so that `await using listener = ...` works. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
  }

  /** Yields each connection accepted; ends when the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      let value: T
      try {
        value = await this.accept()
      } catch (err) {
        if ((err as Partial<CodedError>).code === 'ERR_DOORBELL_CLOSED') return
        throw err
      }
      yield value
    }
  }

  /** `ChannelListener { path, closed, ref }` in `util.inspect`. */
  [inspect.custom](depth: number, options: InspectOptions): string {
    const state = { path: this.#path, closed: this.#closed, ref: this.#ref, handshakes: this.#handshakes.size }
    return inspectState(this.constructor.name, state, depth, options)
  }
}

const noConnection = Symbol('no connection waiting')

/** What a reply to a connecting process that is gone fails with. */
const PEER_GONE_CODES = ['EPIPE', 'ECONNRESET', 'ENOTCONN']

/**
 * A channel listener, made by `Channel.listen(path, options)`: the host of a new channel for each
 * process that connects with `Channel.connect(path)` and is allowed in.
 */
export class ChannelListener extends Listener<AcceptedChannel> {
  /** @internal Use `Channel.listen()`. */
  constructor(token: symbol, path: unknown, options: ChannelListenOptions | undefined) {
    const { capacity, spin } = channelOptions(
      options === undefined || options === null || typeof options !== 'object'
        ? options
        : { capacity: options.capacity, spin: options.spin },
    )
    super(token, path, options ?? {}, channelService({ capacity, spin }))
  }
}

/** A new channel for each connection: the host's side kept, the guest's fds sent. */
function channelService(options: ChannelOptions): Service<AcceptedChannel> {
  return {
    kind: binding.HELLO_CHANNEL,
    serve(fd, peer) {
      const [channel, handle] = Channel.createPair(options)
      try {
        native(() => binding.rendezvousReply(fd, binding.REPLY_ACCEPTED, handle.doorbellFd, handle.regionFd))
      } catch (err) {
        channel.close()
        throw err
      } finally {
        handle.close()
      }
      return { channel, peer }
    },
    discard: ({ channel }) => channel.close(),
  }
}

/**
 * A doorbell listener, made by `Doorbell.listen(path, options)`: one end of a new doorbell pair
 * (and the `region`'s fd, if given) for each process that connects with `Doorbell.connect(path)`
 * and is allowed in.
 */
export class DoorbellListener extends Listener<AcceptedDoorbell> {
  /** @internal Use `Doorbell.listen()`. */
  constructor(token: symbol, path: unknown, options: DoorbellListenOptions | undefined) {
    const region = options !== null && typeof options === 'object' ? options.region : undefined
    if (region !== undefined && !(region instanceof SharedRegion)) {
      throw invalidArgType('options.region', 'an instance of SharedRegion', region)
    }
    if (region) fdOfOpenRegion(region)
    super(token, path, options ?? {}, doorbellService(region))
  }
}

/** A new doorbell pair for each connection, and the region's fd if there is one: this end kept, the other sent. */
function doorbellService(region: SharedRegion | undefined): Service<AcceptedDoorbell> {
  return {
    kind: binding.HELLO_DOORBELL,
    serve(fd, peer) {
      const regionFd = region ? fdOfOpenRegion(region) : -1
      const [doorbell, guest] = Doorbell.createPair()
      try {
        native(() => binding.rendezvousReply(fd, binding.REPLY_ACCEPTED, guest.fd, regionFd))
      } catch (err) {
        doorbell.close()
        throw err
      } finally {
        guest.close()
      }
      return { doorbell, peer }
    },
    discard: ({ doorbell }) => doorbell.close(),
  }
}

/** `Channel.listen`. */
export function listenChannel(path: string, options?: ChannelListenOptions): ChannelListener {
  return new ChannelListener(constructing, path, options)
}

/** `Doorbell.listen`. */
export function listenDoorbell(path: string, options?: DoorbellListenOptions): DoorbellListener {
  return new DoorbellListener(constructing, path, options)
}

/** The first wait after a full backlog (`EAGAIN`), doubled each time up to {@link MAX_BACKLOG_RETRY_MS}. */
const BACKLOG_RETRY_MS = 1
const MAX_BACKLOG_RETRY_MS = 50

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(new AbortError(undefined, { cause: signal!.reason }))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Connects, says hello for `kind` and waits for the reply: the fds it carried, owned by the caller. */
async function rendezvous(path: unknown, kind: number, signal: AbortSignal | undefined): Promise<number[]> {
  checkPath(path)
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
  let retry = BACKLOG_RETRY_MS
  let socket: WatchedSocket
  for (;;) {
    try {
      socket = new WatchedSocket((onWake) => native(() => binding.rendezvousConnect(path, kind, onWake), path))
      break
    } catch (err) {
      if ((err as Partial<CodedError>).code !== 'EAGAIN') throw err
      await delay(retry, signal)
      retry = Math.min(retry * 2, MAX_BACKLOG_RETRY_MS)
    }
  }
  try {
    for (;;) {
      await socket.readable(signal)
      const fds = native(() => binding.rendezvousRecvReply(socket.fd, kind))
      if (fds) return fds
    }
  } catch (err) {
    throw rendezvousError(err, path)
  } finally {
    socket.close()
  }
}

function rendezvousError(err: unknown, path: string): unknown {
  const error = err as CodedError
  if (error.code?.startsWith('ERR_DOORBELL_')) error.message += ` (${inspect(path)})`
  return withPath(err, path)
}

/** Closes received fds that no object took. */
function closeFds(fds: readonly number[]): void {
  for (const fd of fds) binding.closePeerFd(fd)
}

/** `Channel.connect`: this side of a new channel, the guest. */
export async function connectChannel(path: string, options?: ChannelConnectOptions): Promise<Channel> {
  const signal = signalOption(options)
  const { spin } = channelOptions(options === undefined ? undefined : { spin: options.spin })
  const fds = await rendezvous(path, binding.HELLO_CHANNEL, signal)
  const [doorbellFd, regionFd] = fds
  let region: SharedRegion
  try {
    region = SharedRegion.fromRawFd(regionFd)
  } catch (err) {
    closeFds(fds)
    throw err
  }
  try {
    return attachChannel(region, () => Doorbell.fromRawFd(doorbellFd), false, spin)
  } catch (err) {
    region.close()
    closeFds([doorbellFd])
    throw err
  }
}

/** `Doorbell.connect`: this end of a new doorbell pair, and the listener's region if it sent one. */
export async function connectDoorbell(path: string, options?: ConnectOptions): Promise<ConnectedDoorbell> {
  const signal = signalOption(options)
  const fds = await rendezvous(path, binding.HELLO_DOORBELL, signal)
  const [doorbellFd, regionFd] = fds
  let region: SharedRegion | undefined
  try {
    region = regionFd === undefined ? undefined : SharedRegion.fromRawFd(regionFd)
  } catch (err) {
    closeFds(fds)
    throw err
  }
  try {
    return { doorbell: Doorbell.fromRawFd(doorbellFd), region }
  } catch (err) {
    region?.close()
    closeFds([doorbellFd])
    throw err
  }
}
