import { spawn as spawnChild } from 'node:child_process'
import type { ChildProcess, SpawnOptions, StdioOptions } from 'node:child_process'
import { getSystemErrorMap, inspect } from 'node:util'

import * as binding from './native'

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

/** What {@link spawn} returns. */
export interface SpawnedGuest {
  /** The child process, as `child_process.spawn` returns it. */
  child: ChildProcess
  /** The host's end of the pair; the child holds the other end as its fd 3. */
  doorbell: Doorbell
}

const MAX_FD = 2 ** 31 - 1
const SIGNAL_RESULTS: Record<number, SignalResult> = {
  [binding.SIGNAL_SENT]: 'Sent',
  [binding.SIGNAL_BUFFER_FULL]: 'BufferFull',
  [binding.SIGNAL_PEER_DEAD]: 'PeerDead',
}
const GUEST_FD = 3
const constructing = Symbol('shm-doorbell constructing')

type CodedError = Error & { code: string }
type WakeCallback = (status: number) => void

// Set by DoorbellHandle's static block: Doorbell's access to its private parts.
let wrapHandle: (handle: binding.NativeHandle) => DoorbellHandle
let consumeHandle: (handle: DoorbellHandle, onWake: WakeCallback) => binding.NativeDoorbell

function codedError<E extends Error>(error: E, code: string): E & { code: string } {
  return Object.assign(error, { code })
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return `Received ${value}`
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = value.constructor?.name
    return name ? `Received an instance of ${name}` : `Received ${inspect(value, { depth: -1 })}`
  }
  return `Received type ${typeof value} (${inspect(value)})`
}

function invalidArgType(name: string, expected: string, value: unknown): CodedError {
  return codedError(
    new TypeError(`The "${name}" argument must be ${expected}. ${describe(value)}`),
    'ERR_INVALID_ARG_TYPE',
  )
}

function invalidArgValue(name: string, value: unknown, reason: string): CodedError {
  return codedError(
    new TypeError(`The argument '${name}' ${reason}. Received ${inspect(value)}`),
    'ERR_INVALID_ARG_VALUE',
  )
}

function closedError(): CodedError {
  return codedError(new Error('The doorbell is closed'), 'ERR_DOORBELL_CLOSED')
}

function peerDeadError(): CodedError {
  return codedError(new Error("The doorbell's peer is gone"), 'ERR_DOORBELL_PEER_DEAD')
}

/** The error a wait rejects with when its `signal` aborts, as Node's own APIs do. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  constructor(message = 'The operation was aborted', options?: ErrorOptions) {
    super(message, options)
    this.name = 'AbortError'
  }
}

/** A Node-style system error: `code` is the errno name, `errno` its negated number. */
function systemError(errno: number, syscall: string): CodedError {
  const [code, description] = getSystemErrorMap().get(-errno) ?? [`Unknown system error ${errno}`, 'unknown error']
  return Object.assign(new Error(`${code}: ${description}, ${syscall}`), { code, errno: -errno, syscall })
}

const osErrorMessage = /^(\d+) (\w+)$/

/** Runs a native call, turning its errno failures into Node-style system errors. */
function native<T>(call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw fromNative(err)
  }
}

/** A native error as Node would make it: an errno failure becomes a Node-style system error. */
function fromNative(err: unknown): unknown {
  const match =
    (err as Partial<CodedError>).code === binding.OS_ERROR_CODE && osErrorMessage.exec((err as Error).message)
  return match ? systemError(Number(match[1]), match[2]) : err
}

function wakeError(status: number): CodedError {
  return status === WAKE_PEER_GONE ? peerDeadError() : systemError(-status, 'recv')
}

function checkFd(fd: unknown, name = 'fd'): asserts fd is number {
  if (typeof fd !== 'number') throw invalidArgType(name, 'of type number', fd)
  if (!Number.isInteger(fd) || fd < 0 || fd > MAX_FD) {
    throw codedError(
      new RangeError(
        `The value of "${name}" is out of range. It must be an integer >= 0 && <= ${MAX_FD}. Received ${inspect(fd)}`,
      ),
      'ERR_OUT_OF_RANGE',
    )
  }
}

/** Parses the value of `--doorbell-fd`: a plain non-negative decimal that fits an fd. */
function parseFdArg(value: unknown, name: string): number {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  if (!/^\d{1,10}$/.test(value) || Number(value) > MAX_FD) {
    throw invalidArgValue(name, value, `must be a plain non-negative decimal fd number up to ${MAX_FD}`)
  }
  return Number(value)
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
    if (!Array.isArray(argv)) throw invalidArgType('argv', 'an array of strings', argv)
    const index = argv.findIndex(
      (arg) => arg === ARG_NAME || (typeof arg === 'string' && arg.startsWith(`${ARG_NAME}=`)),
    )
    const value =
      index < 0 ? undefined : argv[index] === ARG_NAME ? argv[index + 1] : argv[index].slice(ARG_NAME.length + 1)
    if (value === undefined) {
      throw codedError(new TypeError(`The "${ARG_NAME}" argument must be specified`), 'ERR_MISSING_ARGS')
    }
    return Doorbell.fromRawFd(parseFdArg(value, ARG_NAME))
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

type StdioEntry = Extract<StdioOptions, readonly unknown[]>[number]

/** `stdio` for fds 0-2 as given to child_process.spawn, as an array to which fd 3 is added. */
function stdioForFds0to2(stdio: SpawnOptions['stdio']): StdioEntry[] {
  if (stdio === undefined || stdio === null) return ['pipe', 'pipe', 'pipe']
  if (typeof stdio === 'string') return [stdio, stdio, stdio] as StdioEntry[]
  if (!Array.isArray(stdio)) throw invalidArgType('options.stdio', 'a string or an array', stdio)
  if (stdio.length > GUEST_FD) {
    throw invalidArgValue('options.stdio', stdio, `may name fds 0-2 only: fd ${GUEST_FD} is the doorbell's`)
  }
  return Array.from({ length: GUEST_FD }, (_, fd) => stdio[fd] ?? 'pipe') as StdioEntry[]
}

/**
 * Starts `command` with a doorbell: the child gets the guest end as its fd 3 and
 * `--doorbell-fd 3` after `args`, and opens it with `Doorbell.fromArgv()`. `options` are
 * child_process.spawn's; `stdio` may name fds 0-2. The parent's copy of the guest end is closed.
 */
export function spawn(command: string, options?: SpawnOptions): SpawnedGuest
export function spawn(command: string, args?: readonly string[], options?: SpawnOptions): SpawnedGuest
export function spawn(
  command: string,
  argsOrOptions?: readonly string[] | SpawnOptions,
  maybeOptions?: SpawnOptions,
): SpawnedGuest {
  const args = Array.isArray(argsOrOptions) ? (argsOrOptions as readonly string[]) : []
  const options: SpawnOptions = (Array.isArray(argsOrOptions) ? maybeOptions : (argsOrOptions as SpawnOptions)) ?? {}
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options)
  const stdio = stdioForFds0to2(options.stdio)
  const [doorbell, guest] = Doorbell.createPair()
  try {
    const child = spawnChild(command, [...args, ARG_NAME, String(GUEST_FD)], {
      ...options,
      stdio: [...stdio, guest.fd],
    })
    return { child, doorbell }
  } catch (err) {
    doorbell.close()
    throw err
  } finally {
    guest.close()
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
