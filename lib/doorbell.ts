import { inspect, type InspectOptions } from 'node:util'

import * as binding from './native'
import { engine } from './engine'
import {
  AbortError,
  type CodedError,
  checkFd,
  closedError,
  codedError,
  fdFromArgv,
  fromNative,
  invalidArgType,
  signalOption,
  native,
  parseFdArg,
  peerDeadError,
  systemError,
} from './errors'
import {
  type ConnectOptions,
  type ConnectedDoorbell,
  type DoorbellListenOptions,
  type DoorbellListener,
  connectDoorbell,
  listenDoorbell,
} from './rendezvous'

// Taken once: the module's re-exports are getters, too slow for calls made on every ring.
const { WAKE_EMPTY, WAKE_RANG, WAKE_PEER_GONE, arm, disarm, signal: ring } = binding

/** What a ring did: reached the peer, was coalesced into a full buffer, or found the peer gone. */
export type SignalResult = 'Sent' | 'BufferFull' | 'PeerDead'

/** The command-line flag that carries the guest's fd: `--doorbell-fd N` or `--doorbell-fd=N`. */
export const ARG_NAME = '--doorbell-fd'

/** Options of {@link Doorbell.wait}. */
export interface WaitOptions {
  /** Rejects the wait with an `AbortError` (`code: 'ABORT_ERR'`) once aborted. Default: none. */
  signal?: AbortSignal
}

const SIGNAL_RESULTS: Record<number, SignalResult> = {
  [binding.SIGNAL_SENT]: 'Sent',
  [binding.SIGNAL_BUFFER_FULL]: 'BufferFull',
  [binding.SIGNAL_PEER_DEAD]: 'PeerDead',
}
const constructing = Symbol('shm-doorbell constructing')

type WakeCallback = (status: number) => void

// Set by DoorbellHandle's static block: Doorbell's access to its private parts.
let wrapHandle: (handle: binding.NativeHandle) => DoorbellHandle
let consumeHandle: (handle: DoorbellHandle, onWake: WakeCallback) => binding.NativeDoorbell

function wakeError(status: number, fd: number): CodedError {
  return status === WAKE_PEER_GONE ? peerDeadError(fd) : systemError(-status, 'recv')
}

/** `Name { key: value, ... }`, as Node prints its own handles; `[Name]` below the inspected depth. */
export function inspectState(name: string, state: object, depth: number, options: InspectOptions): string {
  if (depth < 0) return `[${name}]`
  return `${name} ${inspect(state, { ...options, depth: options.depth == null ? null : options.depth - 1 })}`
}

/**
 * One end of a doorbell pair that this process owns but does not watch: the end to hand to a
 * child process or to a worker thread (see {@link intoRawFd}). It stays open until `close()`,
 * until it is consumed or let go of, or until its thread ends: garbage collection never closes it.
 * `fd` is -1 once closed or consumed.
 */
export class DoorbellHandle {
  /** The command-line flag that carries the fd. */
  static readonly ARG_NAME = ARG_NAME

  #native: binding.NativeHandle
  /** The fd it was made with, for error messages once it is gone. */
  #fd: number

  static {
    wrapHandle = (handle) => new DoorbellHandle(constructing, handle)
    consumeHandle = (handle, onWake) => native(() => binding.NativeDoorbell.fromHandle(handle.#native, onWake))
  }

  private constructor(token: typeof constructing, handle: binding.NativeHandle) {
    if (token !== constructing) {
      throw codedError(new TypeError('Illegal constructor: use DoorbellHandle.fromRawFd()'), 'ERR_ILLEGAL_CONSTRUCTOR')
    }
    this.#native = handle
    this.#fd = handle.fd
  }

  /** Takes ownership of `fd`, which must be an open socket; on error the fd is left as it was. */
  static fromRawFd(fd: number): DoorbellHandle {
    checkFd(fd)
    return new DoorbellHandle(
      constructing,
      native(() => binding.NativeHandle.fromRawFd(fd)),
    )
  }

  /** Takes ownership of the fd named by a `--doorbell-fd` value, such as `'3'`. */
  static fromArg(arg: string): DoorbellHandle {
    return DoorbellHandle.fromRawFd(parseFdArg(arg, 'arg'))
  }

  /** The fd, or -1 once closed or consumed. */
  get fd(): number {
    return this.#native.fd
  }

  /** Whether it was closed, consumed by `Doorbell.fromHandle()` or let go of by `intoRawFd()`. */
  get closed(): boolean {
    return this.#native.fd < 0
  }

  /** The fd; throws `ERR_DOORBELL_CLOSED` once closed or consumed. */
  asRawFd(): number {
    const fd = this.#native.fd
    if (fd < 0) throw closedError('doorbell handle', this.#fd)
    return fd
  }

  /**
   * Lets go of the fd without closing it and returns it, as Rust's `IntoRawFd`: the handle reads
   * `fd === -1` and `closed === true` afterwards, and the caller owns the fd. Adopt it with
   * `fromRawFd` in this thread or another (a worker), or close it with `closePeerFd`. Throws
   * `ERR_DOORBELL_CLOSED` once closed or consumed.
   */
  intoRawFd(): number {
    this.asRawFd()
    return this.#native.intoRawFd()
  }

  /** The fd as a `--doorbell-fd` value. */
  toArg(): string {
    return String(this.asRawFd())
  }

  /** Closes the fd. Idempotent. */
  close(): void {
    this.#native.close()
  }

  /** Closes the fd, so that `using handle = ...` works. */
  [Symbol.dispose](): void {
    this.close()
  }

  /** `DoorbellHandle { fd, closed }` in `util.inspect` and `console.log`. */
  [inspect.custom](depth: number, options: InspectOptions): string {
    return inspectState('DoorbellHandle', { fd: this.fd, closed: this.closed }, depth, options)
  }
}

/** @internal A pending wait: a promise's settlers, or the Channel's wake callbacks (`waitWith`). */
export interface Waiter {
  resolve(): void
  reject(err: Error): void
  signal?: AbortSignal
}

// Set by Doorbell's static block: the Channel's wake path, kept off the public object.
let waitWithAccess: (doorbell: Doorbell, waiter: Waiter) => boolean
let cancelWaitAccess: (doorbell: Doorbell, waiter: Waiter) => boolean

/**
 * For the Channel's wake path: waits as `doorbell.wait()` does, but settles `waiter` (called with
 * the doorbell's error on failure) instead of a promise, and takes no AbortSignal: the caller
 * cancels with {@link cancelWait}. False, with nothing pending, if a ring was already there (it is
 * drained); throws what `wait()` would reject with. `waiter` must not be pending already.
 */
export function waitWith(doorbell: Doorbell, waiter: Waiter): boolean {
  return waitWithAccess(doorbell, waiter)
}

/** Takes back a {@link waitWith} waiter that is still pending, unsettled; true if it was. */
export function cancelWait(doorbell: Doorbell, waiter: Waiter): boolean {
  return cancelWaitAccess(doorbell, waiter)
}

/**
 * What the native wake callback may reach. It never points at the doorbell while the doorbell
 * is idle, so an idle doorbell's JS object can be garbage-collected; its fd stays open and
 * watched until its thread's environment ends (garbage collection never closes it).
 */
interface WakeRoute {
  /** Set while waits are pending: they keep the doorbell alive, as a pending read keeps a socket. */
  owner?: Doorbell
}

/**
 * One end of a doorbell: `signal()` rings the peer, `wait()` resolves on the peer's next ring.
 *
 * Rings coalesce: any number of signals before a wait wake it once. A pending wait keeps the
 * process alive unless `unref()` was called; an idle doorbell never does. It stays open until
 * `close()`, `intoRawFd()` or the end of its thread (a worker that ends, the process that exits):
 * garbage collection never closes it, since closing tells the peer "I am gone".
 */
export class Doorbell {
  /** The command-line flag that carries the guest's fd. */
  static readonly ARG_NAME = ARG_NAME

  #native: binding.NativeDoorbell
  /** The native fd, which the per-ring calls take: it stays the same until `close()`. */
  #fd: number
  #closed = false
  #route: WakeRoute = {}
  readonly #waiters = new Set<Waiter>()
  /**
   * One abort listener per signal that pending waits share: many waits add no more listeners.
   * Made by the first wait given a signal, so that a doorbell that never gets one pays nothing.
   */
  #abortListeners: Map<AbortSignal, () => void> | undefined
  /** Set while the JS that found a ring already in the socket runs: its other waits share the ring. */
  #rangThisTick = false
  /** Clears {@link #rangThisTick}; made by the first wait that finds a ring already there. */
  #clearRang: (() => void) | undefined
  #keepsLoopAlive = true
  /** Whether the peer was dead when the doorbell was closed, for `util.inspect`. */
  #peerDeadAtClose = false

  static {
    waitWithAccess = (doorbell, waiter) => {
      try {
        doorbell.#assertOpen()
        if (!doorbell.#arm()) return false
      } catch (err) {
        throw fromNative(err)
      }
      doorbell.#waiters.add(waiter)
      return true
    }
    cancelWaitAccess = (doorbell, waiter) => {
      if (!doorbell.#waiters.delete(waiter)) return false
      doorbell.#disarmIfIdle()
      return true
    }
  }

  private constructor(token: typeof constructing, create: (onWake: WakeCallback) => binding.NativeDoorbell) {
    if (token !== constructing) {
      throw codedError(new TypeError('Illegal constructor: use Doorbell.createPair()'), 'ERR_ILLEGAL_CONSTRUCTOR')
    }
    const route = this.#route
    this.#native = create((status) => {
      if (route.owner) route.owner.#onWake(status)
    })
    this.#fd = this.#native.fd
  }

  /** Creates a connected pair: `[host, guest]`. Hand the guest to a child, or use {@link spawn}. */
  static createPair(): [Doorbell, DoorbellHandle] {
    let guest: binding.NativeHandle | undefined
    const host = new Doorbell(constructing, (onWake) => {
      const [nativeHost, nativeGuest] = native(() => binding.NativeDoorbell.createPair(onWake))
      guest = nativeGuest
      return nativeHost
    })
    return [host, wrapHandle(guest!)]
  }

  /** Watches the handle's fd; the handle is consumed (its `fd` becomes -1). */
  static fromHandle(handle: DoorbellHandle): Doorbell {
    if (!(handle instanceof DoorbellHandle)) throw invalidArgType('handle', 'an instance of DoorbellHandle', handle)
    return new Doorbell(constructing, (onWake) => consumeHandle(handle, onWake))
  }

  /** Watches `fd`, an open socket, and takes ownership of it on success; on error it is left as it was. */
  static fromRawFd(fd: number): Doorbell {
    checkFd(fd)
    return new Doorbell(constructing, (onWake) => native(() => binding.NativeDoorbell.fromRawFd(fd, onWake)))
  }

  /** The guest's side: the doorbell whose fd is given by `--doorbell-fd N` or `--doorbell-fd=N`. */
  static fromArgv(argv: readonly string[] = process.argv): Doorbell {
    return Doorbell.fromRawFd(fdFromArgv(argv, ARG_NAME))
  }

  /**
   * Listens on the Unix socket `path` for processes that `Doorbell.connect(path)`: each gets one
   * end of a new pair, and the `region`'s fd if given (see `DoorbellListener`).
   */
  static listen(path: string, options?: DoorbellListenOptions): DoorbellListener {
    return listenDoorbell(path, options)
  }

  /** Connects to a `Doorbell.listen` listener at `path`: this end of a new pair, and its region if it has one. */
  static connect(path: string, options?: ConnectOptions): Promise<ConnectedDoorbell> {
    return connectDoorbell(path, options)
  }

  /** The fd, or -1 once closed. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd
  }

  /** Whether `close()` or `intoRawFd()` has been called. */
  get closed(): boolean {
    return this.#closed
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError('doorbell', this.#fd)
  }

  /** Rings the peer. Never blocks: the same as {@link signalNow}, as a promise. */
  async signal(): Promise<SignalResult> {
    return this.signalNow()
  }

  /** Rings the peer: 'Sent', 'BufferFull' (the peer has rings it has not drained yet) or 'PeerDead'. */
  signalNow(): SignalResult {
    this.#assertOpen()
    return SIGNAL_RESULTS[ring(this.#fd)]
  }

  /**
   * Resolves on the peer's next ring, draining every ring pending by then; all waits pending at
   * that moment resolve, and so do all waits made in the same synchronous run of JS as a wait that
   * found a ring already in the socket. Rejects with `ERR_DOORBELL_PEER_DEAD` once the peer is gone
   * (after the rings it sent first), `ERR_DOORBELL_CLOSED` on close, and an `AbortError` when
   * `signal` aborts.
   */
  wait(options?: WaitOptions): Promise<void> {
    try {
      return this.#wait(signalOption(options))
    } catch (err) {
      return Promise.reject(fromNative(err))
    }
  }

  #wait(signal: AbortSignal | undefined): Promise<void> {
    this.#assertOpen()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    if (!this.#arm()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal }
      if (signal) {
        const abortListeners = (this.#abortListeners ??= new Map())
        if (!abortListeners.has(signal)) {
          const onAbort = (): void => this.#abort(signal)
          abortListeners.set(signal, onAbort)
          signal.addEventListener('abort', onAbort, { once: true })
        }
      }
      this.#waiters.add(waiter)
    })
  }

  /**
   * Readies a wait: false if a ring was already there (drained at once), true once the watch is
   * armed for the wait to be added. One rule whatever the doorbell did before: a ring wakes every
   * wait made in the same run of JS, whether it was already in the socket or arrives later (reported
   * by the loop to every pending wait).
   */
  #arm(): boolean {
    if (this.#rangThisTick) return false
    if (this.#waiters.size === 0) {
      const status = arm(this.#fd)
      if (status === WAKE_RANG) {
        this.#rangNow()
        return false
      }
      if (status !== WAKE_EMPTY) throw wakeError(status, this.#fd)
      this.#route.owner = this
    }
    return true
  }

  /** A ring was already in the socket: the waits of this run of JS share it (see {@link #arm}). */
  #rangNow(): void {
    this.#rangThisTick = true
    queueMicrotask(
      (this.#clearRang ??= () => {
        this.#rangThisTick = false
      }),
    )
  }

  /** Rejects the waits that `signal` was given to; a ring that comes later stays for the next wait. */
  #abort(signal: AbortSignal): void {
    this.#abortListeners?.delete(signal)
    const error = new AbortError(undefined, { cause: signal.reason })
    for (const waiter of this.#waiters) {
      if (waiter.signal !== signal) continue
      this.#waiters.delete(waiter)
      waiter.reject(error)
    }
    this.#disarmIfIdle()
  }

  /** Ends the native wait once no wait is pending; a ring that comes later stays for the next wait. */
  #disarmIfIdle(): void {
    if (this.#waiters.size === 0 && this.#route.owner) {
      this.#route.owner = undefined
      disarm(this.#fd)
    }
  }

  /** Settles every pending wait. The native watch needs no disarm: it disarms as it reports a wake. */
  #settleAll(error?: Error): void {
    this.#route.owner = undefined
    if (this.#abortListeners) {
      for (const [signal, onAbort] of this.#abortListeners) signal.removeEventListener('abort', onAbort)
      this.#abortListeners.clear()
    }
    // A waiter settled here may wait again at once (the Channel's does): that wait is a new one.
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const waiter of waiters) {
      if (error) waiter.reject(error)
      else waiter.resolve()
    }
  }

  #onWake(status: number): void {
    this.#settleAll(status === WAKE_RANG ? undefined : wakeError(status, this.#fd))
  }

  /** Drains pending rings without waiting; true if there were any. */
  drain(): boolean {
    this.#assertOpen()
    return this.#native.tryDrain() === WAKE_RANG
  }

  /** Bytes of rings waiting in the socket (for diagnostics). */
  pendingBytes(): number {
    this.#assertOpen()
    return this.#native.pendingBytes()
  }

  /** True once a signal returned 'PeerDead' or a wait saw the peer gone. */
  isPeerDead(): boolean {
    this.#assertOpen()
    return this.#native.isPeerDead()
  }

  /** Resolves at once: a socketpair is connected from the start (kept for peers on other platforms). */
  async accept(): Promise<void> {
    this.#assertOpen()
  }

  /** Lets pending waits keep the process alive (the default). */
  ref(): this {
    this.#assertOpen()
    this.#native.setKeepsLoopAlive(true)
    this.#keepsLoopAlive = true
    return this
  }

  /** Lets the process exit while a wait is pending. */
  unref(): this {
    this.#assertOpen()
    this.#native.setKeepsLoopAlive(false)
    this.#keepsLoopAlive = false
    return this
  }

  /** Closes the fd and rejects pending waits with `ERR_DOORBELL_CLOSED`. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#peerDeadAtClose = this.#native.isPeerDead()
    this.#closed = true
    this.#native.close()
    this.#settleAll(closedError('doorbell', this.#fd))
  }

  /**
   * Stops watching and lets go of the fd without closing it, and returns it, as Rust's
   * `IntoRawFd`: the doorbell reads `fd === -1` and `closed === true` afterwards, and its pending
   * waits reject with `ERR_DOORBELL_CLOSED`. The caller owns the fd: adopt it with `fromRawFd` in
   * this thread or another (a worker), or close it with `closePeerFd`. Rings not yet drained stay
   * in the socket. Throws `ERR_DOORBELL_CLOSED` once closed.
   */
  intoRawFd(): number {
    this.#assertOpen()
    this.#peerDeadAtClose = this.#native.isPeerDead()
    const fd = this.#native.intoRawFd()
    this.#closed = true
    this.#settleAll(closedError('doorbell', fd))
    return fd
  }

  /** Closes the doorbell, so that `using doorbell = ...` works. */
  [Symbol.dispose](): void {
    this.close()
  }

  /** `Doorbell { fd, closed, peerDead, ref, pendingWaits, engine }` in `util.inspect` and `console.log`. */
  [inspect.custom](depth: number, options: InspectOptions): string {
    const state = {
      fd: this.fd,
      closed: this.#closed,
      peerDead: this.#closed ? this.#peerDeadAtClose : this.#native.isPeerDead(),
      ref: this.#keepsLoopAlive,
      pendingWaits: this.#waiters.size,
      engine,
    }
    return inspectState('Doorbell', state, depth, options)
  }

  /** Yields once per wake; ends when the doorbell is closed or the peer is gone. */
  async *[Symbol.asyncIterator](): AsyncGenerator<void, void, undefined> {
    for (;;) {
      try {
        await this.wait()
      } catch (err) {
        const code = (err as Partial<CodedError>).code
        if (code === 'ERR_DOORBELL_CLOSED' || code === 'ERR_DOORBELL_PEER_DEAD') return
        throw err
      }
      yield
    }
  }
}

/** Sets O_NONBLOCK on `fd`. */
export function setNonblocking(fd: number): void {
  checkFd(fd)
  native(() => binding.setNonblocking(fd))
}

/** Closes `fd` (the host's copy of the guest end, after spawning by hand). Throws EBADF if it is not open. */
export function closePeerFd(fd: number): void {
  checkFd(fd)
  native(() => binding.closePeerFd(fd))
}

/** Throws EBADF unless `fd` is open. */
export function validateFd(fd: number): void {
  checkFd(fd)
  native(() => binding.validateFd(fd))
}

/** Clears FD_CLOEXEC on `fd`, so that a child started by hand inherits it. */
export function clearCloexec(fd: number): void {
  checkFd(fd)
  native(() => binding.clearCloexec(fd))
}
