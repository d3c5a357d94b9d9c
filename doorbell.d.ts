import { inspect, type InspectOptions } from 'node:util';
/** What a ring did: reached the peer, was coalesced into a full buffer, or found the peer gone. */
export type SignalResult = 'Sent' | 'BufferFull' | 'PeerDead';
/** The command-line flag that carries the guest's fd: `--doorbell-fd N` or `--doorbell-fd=N`. */
export declare const ARG_NAME = "--doorbell-fd";
/** Options of {@link Doorbell.wait}. */
export interface WaitOptions {
    /** Rejects the wait with an `AbortError` (`code: 'ABORT_ERR'`) once aborted. Default: none. */
    signal?: AbortSignal;
}
/** `Name { key: value, ... }`, as Node prints its own handles; `[Name]` below the inspected depth. */
export declare function inspectState(name: string, state: object, depth: number, options: InspectOptions): string;
/**
 * One end of a doorbell pair that this process owns but does not watch: the end to hand to a
 * child process or to a worker thread (see {@link intoRawFd}). It stays open until `close()`,
 * until it is consumed or let go of, or until its thread ends: garbage collection never closes it.
 * `fd` is -1 once closed or consumed.
 */
export declare class DoorbellHandle {
    #private;
    /** The command-line flag that carries the fd. */
    static readonly ARG_NAME = "--doorbell-fd";
    private constructor();
    /** Takes ownership of `fd`, which must be an open socket; on error the fd is left as it was. */
    static fromRawFd(fd: number): DoorbellHandle;
    /** Takes ownership of the fd named by a `--doorbell-fd` value, such as `'3'`. */
    static fromArg(arg: string): DoorbellHandle;
    /** The fd, or -1 once closed or consumed. */
    get fd(): number;
    /** Whether it was closed, consumed by `Doorbell.fromHandle()` or let go of by `intoRawFd()`. */
    get closed(): boolean;
    /** The fd; throws `ERR_DOORBELL_CLOSED` once closed or consumed. */
    asRawFd(): number;
    /**
     * Lets go of the fd without closing it and returns it, as Rust's `IntoRawFd`: the handle reads
     * `fd === -1` and `closed === true` afterwards, and the caller owns the fd. Adopt it with
     * `fromRawFd` in this thread or another (a worker), or close it with `closePeerFd`. Throws
     * `ERR_DOORBELL_CLOSED` once closed or consumed.
     */
    intoRawFd(): number;
    /** The fd as a `--doorbell-fd` value. */
    toArg(): string;
    /** Closes the fd. Idempotent. */
    close(): void;
    /** Closes the fd, so that `using handle = ...` works. */
    [Symbol.dispose](): void;
    /** `DoorbellHandle { fd, closed }` in `util.inspect` and `console.log`. */
    [inspect.custom](depth: number, options: InspectOptions): string;
}
/** @internal A pending wait: a promise's settlers, or the Channel's wake callbacks (`waitWith`). */
export interface Waiter {
    resolve(): void;
    reject(err: Error): void;
    signal?: AbortSignal;
}
/**
 * One end of a doorbell: `signal()` rings the peer, `wait()` resolves on the peer's next ring.
 *
 * Rings coalesce: any number of signals before a wait wake it once. A pending wait keeps the
 * process alive unless `unref()` was called; an idle doorbell never does. It stays open until
 * `close()`, `intoRawFd()` or the end of its thread (a worker that ends, the process that exits):
 * garbage collection never closes it, since closing tells the peer "I am gone".
 */
export declare class Doorbell {
    #private;
    /** The command-line flag that carries the guest's fd. */
    static readonly ARG_NAME = "--doorbell-fd";
    private constructor();
    /** Creates a connected pair: `[host, guest]`. Hand the guest to a child, or use {@link spawn}. */
    static createPair(): [Doorbell, DoorbellHandle];
    /** Watches the handle's fd; the handle is consumed (its `fd` becomes -1). */
    static fromHandle(handle: DoorbellHandle): Doorbell;
    /** Watches `fd`, an open socket, and takes ownership of it on success; on error it is left as it was. */
    static fromRawFd(fd: number): Doorbell;
    /** The guest's side: the doorbell whose fd is given by `--doorbell-fd N` or `--doorbell-fd=N`. */
    static fromArgv(argv?: readonly string[]): Doorbell;
    /** The fd, or -1 once closed. */
    get fd(): number;
    /** Whether `close()` or `intoRawFd()` has been called. */
    get closed(): boolean;
    /** Rings the peer. Never blocks: the same as {@link signalNow}, as a promise. */
    signal(): Promise<SignalResult>;
    /** Rings the peer: 'Sent', 'BufferFull' (the peer has rings it has not drained yet) or 'PeerDead'. */
    signalNow(): SignalResult;
    /**
     * Resolves on the peer's next ring, draining every ring pending by then; all waits pending at
     * that moment resolve, and so do all waits made in the same synchronous run of JS as a wait that
     * found a ring already in the socket. Rejects with `ERR_DOORBELL_PEER_DEAD` once the peer is gone
     * (after the rings it sent first), `ERR_DOORBELL_CLOSED` on close, and an `AbortError` when
     * `signal` aborts.
     */
    wait(options?: WaitOptions): Promise<void>;
    /**
     * @internal For the Channel's wake path: waits as {@link wait} does, but settles `waiter` (called
     * with the doorbell's error on failure) instead of a promise, and takes no AbortSignal: the caller
     * cancels with {@link cancelWait}. False, with nothing pending, if a ring was already there (it is
     * drained); throws what `wait()` would reject with. `waiter` must not be pending already.
     */
    waitWith(waiter: Waiter): boolean;
    /** @internal Takes back a `waitWith` waiter that is still pending, unsettled; true if it was. */
    cancelWait(waiter: Waiter): boolean;
    /** Drains pending rings without waiting; true if there were any. */
    drain(): boolean;
    /** Bytes of rings waiting in the socket (for diagnostics). */
    pendingBytes(): number;
    /** True once a signal returned 'PeerDead' or a wait saw the peer gone. */
    isPeerDead(): boolean;
    /** Resolves at once: a socketpair is connected from the start (kept for peers on other platforms). */
    accept(): Promise<void>;
    /** Lets pending waits keep the process alive (the default). */
    ref(): this;
    /** Lets the process exit while a wait is pending. */
    unref(): this;
    /** Closes the fd and rejects pending waits with `ERR_DOORBELL_CLOSED`. Idempotent. */
    close(): void;
    /**
     * Stops watching and lets go of the fd without closing it, and returns it, as Rust's
     * `IntoRawFd`: the doorbell reads `fd === -1` and `closed === true` afterwards, and its pending
     * waits reject with `ERR_DOORBELL_CLOSED`. The caller owns the fd: adopt it with `fromRawFd` in
     * this thread or another (a worker), or close it with `closePeerFd`. Rings not yet drained stay
     * in the socket. Throws `ERR_DOORBELL_CLOSED` once closed.
     */
    intoRawFd(): number;
    /** Closes the doorbell, so that `using doorbell = ...` works. */
    [Symbol.dispose](): void;
    /** `Doorbell { fd, closed, peerDead, ref, pendingWaits, engine }` in `util.inspect` and `console.log`. */
    [inspect.custom](depth: number, options: InspectOptions): string;
    /** Yields once per wake; ends when the doorbell is closed or the peer is gone. */
    [Symbol.asyncIterator](): AsyncGenerator<void, void, undefined>;
}
/** Sets O_NONBLOCK on `fd`. */
export declare function setNonblocking(fd: number): void;
/** Closes `fd` (the host's copy of the guest end, after spawning by hand). Throws EBADF if it is not open. */
export declare function closePeerFd(fd: number): void;
/** Throws EBADF unless `fd` is open. */
export declare function validateFd(fd: number): void;
/** Clears FD_CLOEXEC on `fd`, so that a child started by hand inherits it. */
export declare function clearCloexec(fd: number): void;
