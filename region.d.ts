import { inspect, type InspectOptions } from 'node:util';
/** The command-line flag that carries a guest's region fd: `--region-fd N` or `--region-fd=N`. */
export declare const REGION_ARG_NAME = "--region-fd";
/** The fd of an open region; throws `ERR_DOORBELL_CLOSED` once closed or handed over. */
export declare function fdOfOpenRegion(region: SharedRegion): number;
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
export declare class SharedRegion {
    #private;
    /**
     * The largest region, in bytes: 1 TiB on 64-bit platforms, or the runtime's largest ArrayBuffer
     * if smaller (4 GiB on Node 20, whose external ArrayBuffers are Buffers underneath).
     */
    static readonly MAX_SIZE: number;
    private constructor();
    /**
     * Creates anonymous shared memory of `size` bytes rounded up to the page size, zero-filled:
     * a memfd sealed against shrinking and growing on Linux, an unlinked `shm_open` object on macOS.
     */
    static create(size: number): SharedRegion;
    /**
     * Maps the whole shared-memory object that `fd` names, and takes ownership of `fd` on success
     * only. Refuses, leaving the fd open and as it was, anything but a shared-memory object of 1 to
     * `MAX_SIZE` bytes that is sealed against shrinking (on Linux): `ERR_DOORBELL_NOT_SHARED_MEMORY`,
     * `ERR_DOORBELL_REGION_NOT_SEALED`, `ERR_DOORBELL_REGION_EMPTY`, `ERR_DOORBELL_REGION_TOO_LARGE`.
     */
    static fromRawFd(fd: number): SharedRegion;
    /** The guest's side: the region whose fd is given by `--region-fd N` or `--region-fd=N`. */
    static fromArgv(argv?: readonly string[]): SharedRegion;
    /** The fd, or -1 once closed or handed over. */
    get fd(): number;
    /** Bytes mapped. */
    get size(): number;
    /** The mapping as an ArrayBuffer; detached (`byteLength` 0) once closed or handed over. */
    get buffer(): ArrayBuffer;
    /** Whether `close()` or `intoRawFd()` has been called. */
    get closed(): boolean;
    /**
     * Lets go of the fd without closing it, as Rust's `IntoRawFd`: `buffer` is detached and the
     * memory unmapped here, and the caller owns the fd (adopt it with `fromRawFd`, in this or
     * another thread). Throws `ERR_DOORBELL_CLOSED` once closed or handed over.
     */
    intoRawFd(): number;
    /** Detaches `buffer` (every view then has length 0), unmaps and closes the fd. Idempotent. */
    close(): void;
    /** Closes the region, so that `using region = ...` works. */
    [Symbol.dispose](): void;
    /** `SharedRegion { fd, size, closed }` in `util.inspect` and `console.log`. */
    [inspect.custom](depth: number, options: InspectOptions): string;
}
