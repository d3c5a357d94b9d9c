import { constants as bufferConstants } from 'node:buffer'
import { inspect, type InspectOptions } from 'node:util'

import { inspectState } from './doorbell'
import * as binding from './native'
import { checkFd, closedError, codedError, fdFromArgv, invalidArgType, native, outOfRange } from './errors'

/** The command-line flag that carries a guest's region fd: `--region-fd N` or `--region-fd=N`. */
export const REGION_ARG_NAME = '--region-fd'

/** The fd of an open region; throws `ERR_DOORBELL_CLOSED` once closed or handed over. */
export function fdOfOpenRegion(region: SharedRegion): number {
  return openFd(region)
}

const constructing = Symbol('shm-doorbell constructing')

// Set by SharedRegion's static block: spawn's access to the fd of an open region.
let openFd: (region: SharedRegion) => number

/**
 * Memory shared with another process: an anonymous shared-memory object, mapped here, whose fd a
 * peer inherits (`spawn(command, args, { region })`) and maps too. `buffer` is the mapping itself,
 * never a copy: views over it (`Uint8Array`, `Int32Array`, `BigInt64Array`, `DataView`) and
 * `Atomics.load/store/add/compareExchange` on them reach the peer.
 *
 * An open region is never unmapped or closed by garbage collection: only `close()`,
 * `intoRawFd()`, or the end of its thread does that. On Linux a region made by `create()` is
 * sealed, so no process can shrink or grow it under the mapping.
 */
export class SharedRegion {
  /**
   * The largest region, in bytes: 1 TiB on 64-bit platforms, or the runtime's largest ArrayBuffer
   * if smaller (4 GiB on Node 20, whose external ArrayBuffers are Buffers underneath).
   */
  static readonly MAX_SIZE: number = Math.min(binding.REGION_MAX_SIZE, bufferConstants.MAX_LENGTH)

  #native: binding.NativeRegion
  /** The fd it was made with, for error messages once it is gone. */
  #fd: number
  #buffer: ArrayBuffer
  #closed = false

  static {
    openFd = (region) => {
      if (region.#closed) throw closedError('region', region.#fd)
      return region.#fd
    }
  }

  private constructor(token: typeof constructing, region: binding.NativeRegion) {
    if (token !== constructing) {
      throw codedError(new TypeError('Illegal constructor: use SharedRegion.create()'), 'ERR_ILLEGAL_CONSTRUCTOR')
    }
    this.#native = region
    this.#fd = region.fd
    this.#buffer = region.buffer() as ArrayBuffer
  }

  /**
   * Creates anonymous shared memory of `size` bytes rounded up to the page size, zero-filled:
   * a memfd sealed against shrinking and growing on Linux, an unlinked `shm_open` object on macOS.
   */
  static create(size: number): SharedRegion {
    if (typeof size !== 'number') throw invalidArgType('size', 'of type number', size)
    if (!Number.isInteger(size) || size < 1 || size > SharedRegion.MAX_SIZE) {
      throw outOfRange('size', `an integer >= 1 && <= ${SharedRegion.MAX_SIZE}`, size)
    }
    return new SharedRegion(
      constructing,
      native(() => binding.NativeRegion.create(size)),
    )
  }

  /**
   * Maps the whole shared-memory object that `fd` names, and takes ownership of `fd` on success
   * only. Refuses, leaving the fd open and as it was, anything but a shared-memory object of 1 to
   * `MAX_SIZE` bytes that is sealed against shrinking (on Linux): `ERR_DOORBELL_NOT_SHARED_MEMORY`,
   * `ERR_DOORBELL_REGION_NOT_SEALED`, `ERR_DOORBELL_REGION_EMPTY`, `ERR_DOORBELL_REGION_TOO_LARGE`.
   */
  static fromRawFd(fd: number): SharedRegion {
    checkFd(fd)
    return new SharedRegion(
      constructing,
      native(() => binding.NativeRegion.fromRawFd(fd, SharedRegion.MAX_SIZE)),
    )
  }

  /** The guest's side: the region whose fd is given by `--region-fd N` or `--region-fd=N`. */
  static fromArgv(argv: readonly string[] = process.argv): SharedRegion {
    return SharedRegion.fromRawFd(fdFromArgv(argv, REGION_ARG_NAME))
  }

  /** The fd, or -1 once closed or handed over. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd
  }

  /** Bytes mapped. */
  get size(): number {
    return this.#native.size
  }

  /** The mapping as an ArrayBuffer; detached (`byteLength` 0) once closed or handed over. */
  get buffer(): ArrayBuffer {
    return this.#buffer
  }

  /** Whether `close()` or `intoRawFd()` has been called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Lets go of the fd without closing it, as Rust's `IntoRawFd`: `buffer` is detached and the
   * memory unmapped here, and the caller owns the fd (adopt it with `fromRawFd`, in this or
   * another thread). Throws `ERR_DOORBELL_CLOSED` once closed or handed over.
   */
  intoRawFd(): number {
    const fd = openFd(this)
    this.#native.intoRawFd()
    this.#closed = true
    return fd
  }

  /** Detaches `buffer` (every view then has length 0), unmaps and closes the fd. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
  }

  /** Closes the region, so that `using region = ...` works. */
  [Symbol.dispose](): void {
    this.close()
  }

  /** `SharedRegion { fd, size, closed }` in `util.inspect` and `console.log`. */
  [inspect.custom](depth: number, options: InspectOptions): string {
    return inspectState('SharedRegion', { fd: this.fd, size: this.size, closed: this.closed }, depth, options)
  }
}
