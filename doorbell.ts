import * as binding from './native'
import './engine'
import {
  AbortError,
  type CodedError,
  checkFd,
  closedError,
  codedError,
  fdFromArgv,
  fromNative,
  invalidArgType,
  native,
  parseFdArg,
  peerDeadError,
  systemError,
} from './errors'

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

function wakeError(status: number): CodedError {
  return status === WAKE_PEER_GONE ? peerDeadError() : systemError(-status, 'recv')
}

/**
 * One end of a doorbell pair that this process owns but does not watch: the end to hand to a
 * child process. Closed when garbage-collected; `fd` is -1 once closed or consumed.
 */
export class DoorbellHandle {
  /** The command-line flag that carries the fd. */
  static readonly ARG_NAME = ARG_NAME

  #native: binding.NativeHandle

  static {
    wrapHandle = (handle) => new DoorbellHandle(constructing, handle)
    consumeHandle = (handle, onWake) => native(() => binding.NativeDoorbell.fromHandle(handle.#native, onWake))
  }

  private constructor(token: typeof constructing, handle: binding.NativeHandle) {
    if (token !== constructing) {
      throw codedError(new TypeError('Illegal constructor: use DoorbellHandle.fromRawFd()'), 'ERR_ILLEGAL_CONSTRUCTOR')
    }
    this.#native = handle
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

  /** The fd; throws `ERR_DOORBELL_CLOSED` once closed or consumed. */
  asRawFd(): number {
    const fd = this.#native.fd
    if (fd < 0) throw closedError()
    return fd
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
}

interface Waiter {
  resolve(): void
  reject(err: Error): void
  signal?: AbortSignal
  onAbort?: () => void
}

/**
 * What the native wake callback may reach. It never points at the doorbell while the doorbell
 * is idle, so an idle doorbell can be garbage-collected (which closes its fd).
 */
interface WakeRoute {
  /** Set while waits are pending: they keep the doorbell alive, as a pending read keeps a socket. */
  owner?: Doorbell
}

/**
 * One end of a doorbell: `signal()` rings the peer, `wait()` resolves on the peer's next ring.
 *
 * Rings coalesce: any number of signals before a wait wake it once. A pending wait keeps the
 * process alive unless `unref()` was called; an idle doorbell never does. Closed when
 * garbage-collected.
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

  /** The fd, or -1 once closed. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError()
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
   * that moment resolve. Rejects with `ERR_DOORBELL_PEER_DEAD` once the peer is gone (after the
   * rings it sent first), `ERR_DOORBELL_CLOSED` on close, and an `AbortError` when `signal` aborts.
   */
  wait(options?: WaitOptions): Promise<void> {
    try {
      return this.#wait(waitSignal(options))
    } catch (err) {
      return Promise.reject(fromNative(err))
    }
  }

  #wait(signal: AbortSignal | undefined): Promise<void> {
    this.#assertOpen()
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
    if (this.#waiters.size === 0) {
      const status = arm(this.#fd)
      if (status === WAKE_RANG) return Promise.resolve()
      if (status !== WAKE_EMPTY) throw wakeError(status)
      this.#route.owner = this
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal }
      if (signal) {
        waiter.onAbort = () => {
          this.#waiters.delete(waiter)
          if (this.#waiters.size === 0) {
            this.#route.owner = undefined
            disarm(this.#fd)
          }
          reject(new AbortError(undefined, { cause: signal.reason }))
        }
        signal.addEventListener('abort', waiter.onAbort, { once: true })
      }
      this.#waiters.add(waiter)
    })
  }

  /** Settles every pending wait. The native watch needs no disarm: it disarms as it reports a wake. */
  #settleAll(error?: Error): void {
    this.#route.owner = undefined
    for (const waiter of this.#waiters) {
      if (waiter.onAbort) waiter.signal!.removeEventListener('abort', waiter.onAbort)
      if (error) waiter.reject(error)
      else waiter.resolve()
    }
    this.#waiters.clear()
  }

  #onWake(status: number): void {
    this.#settleAll(status === WAKE_RANG ? undefined : wakeError(status))
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
    return this
  }

  /** Lets the process exit while a wait is pending. */
  unref(): this {
    this.#assertOpen()
    this.#native.setKeepsLoopAlive(false)
    return this
  }

  /** Closes the fd and rejects pending waits with `ERR_DOORBELL_CLOSED`. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
    this.#settleAll(closedError())
  }

  /** Closes the doorbell, so that `using doorbell = ...` works. */
  [Symbol.dispose](): void {
    this.close()
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

function waitSignal(options: WaitOptions | undefined): AbortSignal | undefined {
  if (options === undefined) return undefined
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options)
  const { signal } = options
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal)
  }
  return signal
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
