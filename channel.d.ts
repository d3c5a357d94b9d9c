import { inspect, type InspectOptionsStylized } from 'node:util';
import { Doorbell, DoorbellHandle } from './doorbell';
import { type CodedError } from './errors';
import { SharedRegion } from './region';
/** Options of {@link Channel.createPair} and `spawnChannel`. */
export interface ChannelOptions {
    /**
     * Bytes of ring per direction. Rounded up to a power of two, at least 4096 (a page) and at most
     * 2^30. Default 1 MiB. A message can be up to half of it, less 8 bytes ({@link Channel.maxMessageSize}).
     */
    capacity?: number;
    /**
     * Microseconds a waiting `recv` or `send` polls the ring before it sleeps on the doorbell.
     * Default 0. Spinning blocks the event loop for up to that long each time a side would wait, in
     * exchange for a round trip without a wake-up: for latency-critical services with a core to spare.
     */
    spin?: number;
}
/** Options of {@link Channel.send} and {@link Channel.recv}. */
export interface ChannelWaitOptions {
    /** Rejects with an `AbortError` (`code: 'ABORT_ERR'`) once aborted; a send aborted while waiting has written nothing. */
    signal?: AbortSignal;
}
export declare const MAGIC = 1212367955;
export declare const VERSION = 1;
export declare const HEADER_SIZE = 4096;
export declare const MIN_CAPACITY = 4096;
export declare const MAX_CAPACITY: number;
export declare const DEFAULT_CAPACITY: number;
/** The region size a channel of `capacity` bytes per ring needs: r[layout.size]. */
export declare function regionSize(capacity: number): number;
/** `ERR_CHANNEL_CORRUPT`: the peer wrote something the protocol does not allow. */
export declare function corruptError(what: string): CodedError;
/** The `capacity` option as r[layout.capacity] wants it. */
export declare function channelCapacity(capacity: unknown): number;
/** Checks `options` of a constructor: an object or undefined. */
export declare function channelOptions(options: unknown): {
    capacity: number;
    spin: number;
};
/** Writes a new channel's header into `buffer` (zero-filled): r[layout.init]. */
export declare function initRegion(buffer: ArrayBuffer, capacity: number, start?: number): void;
/** What a channel maps: the region's memory, and how to let go of it. */
export interface ChannelMemory {
    readonly buffer: ArrayBuffer;
    close(): void;
}
/**
 * Messages between two processes through shared memory: one ring per direction in one region,
 * and a doorbell that is rung only when the peer sleeps. Made with `Channel.createPair()` or
 * `spawnChannel()` (the host) and `Channel.fromHandle()` or `Channel.fromArgv()` (the guest).
 */
export declare class Channel {
    #private;
    /** The largest message, in bytes: half the ring less 8 bytes (r[frame.max]). */
    readonly maxMessageSize: number;
    private constructor();
    /**
     * @internal A channel over `memory`, which the host side has initialised (r[layout.init]);
     * `doorbell` is called once the region has passed r[layout.attach], so that a refusal takes nothing.
     */
    static attach(memory: ChannelMemory, doorbell: () => Doorbell, host: boolean, spin: number): Channel;
    /**
     * Creates a channel: a shared region with a ring per direction, and a doorbell pair. Returns
     * this side (the host) and the end to hand to the peer, whose fds a child inherits (see
     * `spawnChannel`, which does all of it).
     */
    static createPair(options?: ChannelOptions): [Channel, ChannelHandle];
    /** The guest's side, from a handle; the handle is consumed. `spin` as in {@link ChannelOptions}. */
    static fromHandle(handle: ChannelHandle, options?: Pick<ChannelOptions, 'spin'>): Channel;
    /**
     * The guest's side, from the fds that `--doorbell-fd N --region-fd M` name (also `--flag=N`).
     * Takes ownership of both on success only: a region that fails r[layout.attach]
     * (`ERR_CHANNEL_CORRUPT`) leaves both fds open and as they were.
     */
    static fromArgv(argv?: readonly string[], options?: Pick<ChannelOptions, 'spin'>): Channel;
    /** Whether `close()` was called. */
    get closed(): boolean;
    /**
     * Writes `message` (a string goes as UTF-8) if the ring has room for it; false, with nothing
     * written, if not, or while earlier `send()` calls still wait for room (messages keep their order).
     */
    trySend(message: Uint8Array | string): boolean;
    /** Writes `message`, waiting for room; rejects as {@link trySend} throws, and with `ABORT_ERR`. */
    send(message: Uint8Array | string, options?: ChannelWaitOptions): Promise<void>;
    /** The next message, or undefined if there is none yet. Throws `ERR_DOORBELL_PEER_DEAD` once the peer is gone and every message it sent has been received. */
    tryRecv(): Buffer | undefined;
    /** The next message, waiting for one; rejects as {@link tryRecv} throws, and with `ABORT_ERR`. */
    recv(options?: ChannelWaitOptions): Promise<Buffer>;
    /** Lets a pending `recv` or `send` keep the process alive (the default), as the doorbell's `ref()`. */
    ref(): this;
    /** Lets the process exit while a `recv` or `send` is pending. */
    unref(): this;
    /**
     * Closes the doorbell (the peer sees this side gone) and unmaps the region; pending `recv` and
     * `send` calls reject with `ERR_DOORBELL_CLOSED`. Idempotent.
     */
    close(): void;
    /** Closes the channel, so that `using channel = ...` works. */
    [Symbol.dispose](): void;
    /** `Channel { maxMessageSize: 524280, closed: false }` */
    [inspect.custom](depth: number, options: InspectOptionsStylized): string;
    /** Yields each message; ends once the peer is gone and its messages are all received, or on close. */
    [Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined>;
}
/**
 * The end of a channel to hand to the peer: a doorbell end and a region (mapped here until it is
 * handed over). Give its fds to a child (`spawnChannel` does) and close it, or open it here with
 * `Channel.fromHandle()`. Its fds are close-on-exec.
 */
export declare class ChannelHandle {
    #private;
    /** @internal */
    constructor(token: symbol, doorbell: DoorbellHandle, region: SharedRegion);
    /** The doorbell end's fd, for `--doorbell-fd`; -1 once closed or handed over. */
    get doorbellFd(): number;
    /** The region's fd, for `--region-fd`; -1 once closed or handed over. */
    get regionFd(): number;
    /** Whether it was closed, consumed by `Channel.fromHandle()` or let go of by `intoRawFds()`. */
    get closed(): boolean;
    /**
     * Lets go of both fds without closing them, as the doorbell handle's `intoRawFd()`: the caller
     * owns them (for a child started by hand, or a worker). Throws `ERR_DOORBELL_CLOSED` once closed.
     */
    intoRawFds(): {
        doorbellFd: number;
        regionFd: number;
    };
    /** Closes both fds (the region is unmapped here). Idempotent. */
    close(): void;
    /** Closes the handle, so that `using handle = ...` works. */
    [Symbol.dispose](): void;
}
/** @internal {@link Channel.createPair} with every index starting at `start` (r[layout.init]): tests go past 2^32 so. */
export declare function createPairAt(options: ChannelOptions | undefined, start: number): [Channel, ChannelHandle];
/**
 * @internal Two channels over one ArrayBuffer in this process, joined by a doorbell pair: the ring
 * without a region, for tests. `start` is the value of every index at the start (r[layout.init]).
 */
export declare function createLocalPair(options?: ChannelOptions, start?: number): [Channel, Channel, ArrayBuffer];
