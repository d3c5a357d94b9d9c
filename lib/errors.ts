// Errors as Node makes them, and the checks of arguments that every module shares.
import { getSystemErrorMap, inspect } from 'node:util'

import * as binding from './native'

/** An error with Node's `code` property. */
export type CodedError = Error & { code: string }

/** The largest fd number. */
export const MAX_FD = 2 ** 31 - 1

/** `error` with its `code` set. */
export function codedError<E extends Error>(error: E, code: string): E & { code: string } {
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

/** Node's `ERR_INVALID_ARG_TYPE`. */
export function invalidArgType(name: string, expected: string, value: unknown): CodedError {
  return codedError(
    new TypeError(`The "${name}" argument must be ${expected}. ${describe(value)}`),
    'ERR_INVALID_ARG_TYPE',
  )
}

/** Node's `ERR_INVALID_ARG_VALUE`. */
export function invalidArgValue(name: string, value: unknown, reason: string): CodedError {
  return codedError(
    new TypeError(`The argument '${name}' ${reason}. Received ${inspect(value)}`),
    'ERR_INVALID_ARG_VALUE',
  )
}

/** `ERR_DOORBELL_CLOSED`: the object on `fd` (the fd it had while open) was closed or handed over. */
export function closedError(what: string, fd: number): CodedError {
  return codedError(new Error(`The ${what} on fd ${fd} is closed`), 'ERR_DOORBELL_CLOSED')
}

/** `ERR_DOORBELL_PEER_DEAD`: the peer of the doorbell on `fd` has closed its end. */
export function peerDeadError(fd: number): CodedError {
  return codedError(new Error(`The peer of the doorbell on fd ${fd} is gone`), 'ERR_DOORBELL_PEER_DEAD')
}

/** The error a wait rejects with when its `signal` aborts, as Node's own APIs do. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AbortError'
  }
}

/** A Node-style system error: `code` is the errno name, `errno` its negated number. */
export function systemError(errno: number, syscall: string): CodedError {
  const [code, description] = getSystemErrorMap().get(-errno) ?? [`Unknown system error ${errno}`, 'unknown error']
  return Object.assign(new Error(`${code}: ${description}, ${syscall}`), { code, errno: -errno, syscall })
}

const osErrorMessage = /^(\d+) (\w+)$/

/** Runs a native call, turning its errno failures into Node-style system errors. */
export function native<T>(call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw fromNative(err)
  }
}

/** A native error as Node would make it: an errno failure becomes a Node-style system error. */
export function fromNative(err: unknown): unknown {
  const match =
    (err as Partial<CodedError>).code === binding.OS_ERROR_CODE && osErrorMessage.exec((err as Error).message)
  return match ? systemError(Number(match[1]), match[2]) : err
}

/** Node's `ERR_OUT_OF_RANGE`; `range` says what is allowed, as in "an integer >= 0". */
export function outOfRange(name: string, range: string, value: unknown): CodedError {
  return codedError(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${inspect(value)}`),
    'ERR_OUT_OF_RANGE',
  )
}

/** Throws unless `fd` is a number that can name an fd. */
export function checkFd(fd: unknown, name = 'fd'): asserts fd is number {
  if (typeof fd !== 'number') throw invalidArgType(name, 'of type number', fd)
  if (!Number.isInteger(fd) || fd < 0 || fd > MAX_FD) throw outOfRange(name, `an integer >= 0 && <= ${MAX_FD}`, fd)
}

/** Parses the value of an fd flag such as `--doorbell-fd`: a plain non-negative decimal that fits an fd. */
export function parseFdArg(value: unknown, name: string): number {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  if (!/^\d{1,10}$/.test(value) || Number(value) > MAX_FD) {
    throw invalidArgValue(name, value, `must be a plain non-negative decimal fd number up to ${MAX_FD}`)
  }
  return Number(value)
}

/**
 * The fd that `flag` names in `argv`, as `flag N` or `flag=N`. The last occurrence wins, as with
 * Node's own flags: `spawn()` appends its flags after the caller's args.
 */
export function fdFromArgv(argv: readonly string[], flag: string): number {
  if (!Array.isArray(argv)) throw invalidArgType('argv', 'an array of strings', argv)
  let index = argv.length - 1
  while (
    index >= 0 &&
    !(argv[index] === flag || (typeof argv[index] === 'string' && argv[index].startsWith(`${flag}=`)))
  )
    index--
  const value = index < 0 ? undefined : argv[index] === flag ? argv[index + 1] : argv[index].slice(flag.length + 1)
  if (value === undefined)
    throw codedError(new TypeError(`The "${flag}" argument must be specified`), 'ERR_MISSING_ARGS')
  return parseFdArg(value, flag)
}

/** The `signal` of an options object such as `{ signal }`, checked as Node checks it. */
export function signalOption(options: { signal?: AbortSignal } | undefined): AbortSignal | undefined {
  if (options === undefined) return undefined
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options)
  const { signal } = options
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidArgType('options.signal', 'an instance of AbortSignal', signal)
  }
  return signal
}
