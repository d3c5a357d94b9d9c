"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.Doorbell = exports.DoorbellHandle = exports.ARG_NAME = void 0;
exports.inspectState = inspectState;
exports.setNonblocking = setNonblocking;
exports.closePeerFd = closePeerFd;
exports.validateFd = validateFd;
exports.clearCloexec = clearCloexec;
const node_util_1 = require("node:util");
const binding = __importStar(require("./native"));
const engine_1 = require("./engine");
const errors_1 = require("./errors");
// Taken once: the module's re-exports are getters, too slow for calls made on every ring.
const { WAKE_EMPTY, WAKE_RANG, WAKE_PEER_GONE, arm, disarm, signal: ring } = binding;
/** The command-line flag that carries the guest's fd: `--doorbell-fd N` or `--doorbell-fd=N`. */
exports.ARG_NAME = '--doorbell-fd';
const SIGNAL_RESULTS = {
    [binding.SIGNAL_SENT]: 'Sent',
    [binding.SIGNAL_BUFFER_FULL]: 'BufferFull',
    [binding.SIGNAL_PEER_DEAD]: 'PeerDead',
};
const constructing = Symbol('shm-doorbell constructing');
// Set by DoorbellHandle's static block: Doorbell's access to its private parts.
let wrapHandle;
let consumeHandle;
function wakeError(status, fd) {
    return status === WAKE_PEER_GONE ? (0, errors_1.peerDeadError)(fd) : (0, errors_1.systemError)(-status, 'recv');
}
/** `Name { key: value, ... }`, as Node prints its own handles; `[Name]` below the inspected depth. */
function inspectState(name, state, depth, options) {
    if (depth < 0)
        return `[${name}]`;
    return `${name} ${(0, node_util_1.inspect)(state, { ...options, depth: options.depth == null ? null : options.depth - 1 })}`;
}
/**
 * One end of a doorbell pair that this process owns but does not watch: the end to hand to a
 * child process or to a worker thread (see {@link intoRawFd}). It stays open until `close()`,
 * until it is consumed or let go of, or until its thread ends: garbage collection never closes it.
 * `fd` is -1 once closed or consumed.
 */
class DoorbellHandle {
    /** The command-line flag that carries the fd. */
    static ARG_NAME = exports.ARG_NAME;
    #native;
    /** The fd it was made with, for error messages once it is gone. */
    #fd;
    static {
        wrapHandle = (handle) => new DoorbellHandle(constructing, handle);
        consumeHandle = (handle, onWake) => (0, errors_1.native)(() => binding.NativeDoorbell.fromHandle(handle.#native, onWake));
    }
    constructor(token, handle) {
        if (token !== constructing) {
            throw (0, errors_1.codedError)(new TypeError('Illegal constructor: use DoorbellHandle.fromRawFd()'), 'ERR_ILLEGAL_CONSTRUCTOR');
        }
        this.#native = handle;
        this.#fd = handle.fd;
    }
    /** Takes ownership of `fd`, which must be an open socket; on error the fd is left as it was. */
    static fromRawFd(fd) {
        (0, errors_1.checkFd)(fd);
        return new DoorbellHandle(constructing, (0, errors_1.native)(() => binding.NativeHandle.fromRawFd(fd)));
    }
    /** Takes ownership of the fd named by a `--doorbell-fd` value, such as `'3'`. */
    static fromArg(arg) {
        return DoorbellHandle.fromRawFd((0, errors_1.parseFdArg)(arg, 'arg'));
    }
    /** The fd, or -1 once closed or consumed. */
    get fd() {
        return this.#native.fd;
    }
    /** Whether it was closed, consumed by `Doorbell.fromHandle()` or let go of by `intoRawFd()`. */
    get closed() {
        return this.#native.fd < 0;
    }
    /** The fd; throws `ERR_DOORBELL_CLOSED` once closed or consumed. */
    asRawFd() {
        const fd = this.#native.fd;
        if (fd < 0)
            throw (0, errors_1.closedError)('doorbell handle', this.#fd);
        return fd;
    }
    /**
     * Lets go of the fd without closing it and returns it, as Rust's `IntoRawFd`: the handle reads
     * `fd === -1` and `closed === true` afterwards, and the caller owns the fd. Adopt it with
     * `fromRawFd` in this thread or another (a worker), or close it with `closePeerFd`. Throws
     * `ERR_DOORBELL_CLOSED` once closed or consumed.
     */
    intoRawFd() {
        this.asRawFd();
        return this.#native.intoRawFd();
    }
    /** The fd as a `--doorbell-fd` value. */
    toArg() {
        return String(this.asRawFd());
    }
    /** Closes the fd. Idempotent. */
    close() {
        this.#native.close();
    }
    /** Closes the fd, so that `using handle = ...` works. */
    [Symbol.dispose]() {
        this.close();
    }
    /** `DoorbellHandle { fd, closed }` in `util.inspect` and `console.log`. */
    [node_util_1.inspect.custom](depth, options) {
        return inspectState('DoorbellHandle', { fd: this.fd, closed: this.closed }, depth, options);
    }
}
exports.DoorbellHandle = DoorbellHandle;
/**
 * One end of a doorbell: `signal()` rings the peer, `wait()` resolves on the peer's next ring.
 *
 * Rings coalesce: any number of signals before a wait wake it once. A pending wait keeps the
 * process alive unless `unref()` was called; an idle doorbell never does. It stays open until
 * `close()`, `intoRawFd()` or the end of its thread (a worker that ends, the process that exits):
 * garbage collection never closes it, since closing tells the peer "I am gone".
 */
class Doorbell {
    /** The command-line flag that carries the guest's fd. */
    static ARG_NAME = exports.ARG_NAME;
    #native;
    /** The native fd, which the per-ring calls take: it stays the same until `close()`. */
    #fd;
    #closed = false;
    #route = {};
    #waiters = new Set();
    /**
     * One abort listener per signal that pending waits share: many waits add no more listeners.
     * Made by the first wait given a signal, so that a doorbell that never gets one pays nothing.
     */
    #abortListeners;
    /** Set while the JS that found a ring already in the socket runs: its other waits share the ring. */
    #rangThisTick = false;
    /** Clears {@link #rangThisTick}; made by the first wait that finds a ring already there. */
    #clearRang;
    #keepsLoopAlive = true;
    /** Whether the peer was dead when the doorbell was closed, for `util.inspect`. */
    #peerDeadAtClose = false;
    constructor(token, create) {
        if (token !== constructing) {
            throw (0, errors_1.codedError)(new TypeError('Illegal constructor: use Doorbell.createPair()'), 'ERR_ILLEGAL_CONSTRUCTOR');
        }
        const route = this.#route;
        this.#native = create((status) => {
            if (route.owner)
                route.owner.#onWake(status);
        });
        this.#fd = this.#native.fd;
    }
    /** Creates a connected pair: `[host, guest]`. Hand the guest to a child, or use {@link spawn}. */
    static createPair() {
        let guest;
        const host = new Doorbell(constructing, (onWake) => {
            const [nativeHost, nativeGuest] = (0, errors_1.native)(() => binding.NativeDoorbell.createPair(onWake));
            guest = nativeGuest;
            return nativeHost;
        });
        return [host, wrapHandle(guest)];
    }
    /** Watches the handle's fd; the handle is consumed (its `fd` becomes -1). */
    static fromHandle(handle) {
        if (!(handle instanceof DoorbellHandle))
            throw (0, errors_1.invalidArgType)('handle', 'an instance of DoorbellHandle', handle);
        return new Doorbell(constructing, (onWake) => consumeHandle(handle, onWake));
    }
    /** Watches `fd`, an open socket, and takes ownership of it on success; on error it is left as it was. */
    static fromRawFd(fd) {
        (0, errors_1.checkFd)(fd);
        return new Doorbell(constructing, (onWake) => (0, errors_1.native)(() => binding.NativeDoorbell.fromRawFd(fd, onWake)));
    }
    /** The guest's side: the doorbell whose fd is given by `--doorbell-fd N` or `--doorbell-fd=N`. */
    static fromArgv(argv = process.argv) {
        return Doorbell.fromRawFd((0, errors_1.fdFromArgv)(argv, exports.ARG_NAME));
    }
    /** The fd, or -1 once closed. */
    get fd() {
        return this.#closed ? -1 : this.#fd;
    }
    /** Whether `close()` or `intoRawFd()` has been called. */
    get closed() {
        return this.#closed;
    }
    #assertOpen() {
        if (this.#closed)
            throw (0, errors_1.closedError)('doorbell', this.#fd);
    }
    /** Rings the peer. Never blocks: the same as {@link signalNow}, as a promise. */
    async signal() {
        return this.signalNow();
    }
    /** Rings the peer: 'Sent', 'BufferFull' (the peer has rings it has not drained yet) or 'PeerDead'. */
    signalNow() {
        this.#assertOpen();
        return SIGNAL_RESULTS[ring(this.#fd)];
    }
    /**
     * Resolves on the peer's next ring, draining every ring pending by then; all waits pending at
     * that moment resolve, and so do all waits made in the same synchronous run of JS as a wait that
     * found a ring already in the socket. Rejects with `ERR_DOORBELL_PEER_DEAD` once the peer is gone
     * (after the rings it sent first), `ERR_DOORBELL_CLOSED` on close, and an `AbortError` when
     * `signal` aborts.
     */
    wait(options) {
        try {
            return this.#wait((0, errors_1.signalOption)(options));
        }
        catch (err) {
            return Promise.reject((0, errors_1.fromNative)(err));
        }
    }
    #wait(signal) {
        this.#assertOpen();
        if (signal?.aborted)
            throw new errors_1.AbortError(undefined, { cause: signal.reason });
        if (!this.#arm())
            return Promise.resolve();
        return new Promise((resolve, reject) => {
            const waiter = { resolve, reject, signal };
            if (signal) {
                const abortListeners = (this.#abortListeners ??= new Map());
                if (!abortListeners.has(signal)) {
                    const onAbort = () => this.#abort(signal);
                    abortListeners.set(signal, onAbort);
                    signal.addEventListener('abort', onAbort, { once: true });
                }
            }
            this.#waiters.add(waiter);
        });
    }
    /**
     * Readies a wait: false if a ring was already there (drained at once), true once the watch is
     * armed for the wait to be added. One rule whatever the doorbell did before: a ring wakes every
     * wait made in the same run of JS, whether it was already in the socket or arrives later (reported
     * by the loop to every pending wait).
     */
    #arm() {
        if (this.#rangThisTick)
            return false;
        if (this.#waiters.size === 0) {
            const status = arm(this.#fd);
            if (status === WAKE_RANG) {
                this.#rangNow();
                return false;
            }
            if (status !== WAKE_EMPTY)
                throw wakeError(status, this.#fd);
            this.#route.owner = this;
        }
        return true;
    }
    /** A ring was already in the socket: the waits of this run of JS share it (see {@link #arm}). */
    #rangNow() {
        this.#rangThisTick = true;
        queueMicrotask((this.#clearRang ??= () => {
            this.#rangThisTick = false;
        }));
    }
    /**
     * @internal For the Channel's wake path: waits as {@link wait} does, but settles `waiter` (called
     * with the doorbell's error on failure) instead of a promise, and takes no AbortSignal: the caller
     * cancels with {@link cancelWait}. False, with nothing pending, if a ring was already there (it is
     * drained); throws what `wait()` would reject with. `waiter` must not be pending already.
     */
    waitWith(waiter) {
        try {
            this.#assertOpen();
            if (!this.#arm())
                return false;
        }
        catch (err) {
            throw (0, errors_1.fromNative)(err);
        }
        this.#waiters.add(waiter);
        return true;
    }
    /** @internal Takes back a `waitWith` waiter that is still pending, unsettled; true if it was. */
    cancelWait(waiter) {
        if (!this.#waiters.delete(waiter))
            return false;
        this.#disarmIfIdle();
        return true;
    }
    /** Rejects the waits that `signal` was given to; a ring that comes later stays for the next wait. */
    #abort(signal) {
        this.#abortListeners?.delete(signal);
        const error = new errors_1.AbortError(undefined, { cause: signal.reason });
        for (const waiter of this.#waiters) {
            if (waiter.signal !== signal)
                continue;
            this.#waiters.delete(waiter);
            waiter.reject(error);
        }
        this.#disarmIfIdle();
    }
    /** Ends the native wait once no wait is pending; a ring that comes later stays for the next wait. */
    #disarmIfIdle() {
        if (this.#waiters.size === 0 && this.#route.owner) {
            this.#route.owner = undefined;
            disarm(this.#fd);
        }
    }
    /** Settles every pending wait. The native watch needs no disarm: it disarms as it reports a wake. */
    #settleAll(error) {
        this.#route.owner = undefined;
        if (this.#abortListeners) {
            for (const [signal, onAbort] of this.#abortListeners)
                signal.removeEventListener('abort', onAbort);
            this.#abortListeners.clear();
        }
        // A waiter settled here may wait again at once (the Channel's does): that wait is a new one.
        const waiters = [...this.#waiters];
        this.#waiters.clear();
        for (const waiter of waiters) {
            if (error)
                waiter.reject(error);
            else
                waiter.resolve();
        }
    }
    #onWake(status) {
        this.#settleAll(status === WAKE_RANG ? undefined : wakeError(status, this.#fd));
    }
    /** Drains pending rings without waiting; true if there were any. */
    drain() {
        this.#assertOpen();
        return this.#native.tryDrain() === WAKE_RANG;
    }
    /** Bytes of rings waiting in the socket (for diagnostics). */
    pendingBytes() {
        this.#assertOpen();
        return this.#native.pendingBytes();
    }
    /** True once a signal returned 'PeerDead' or a wait saw the peer gone. */
    isPeerDead() {
        this.#assertOpen();
        return this.#native.isPeerDead();
    }
    /** Resolves at once: a socketpair is connected from the start (kept for peers on other platforms). */
    async accept() {
        this.#assertOpen();
    }
    /** Lets pending waits keep the process alive (the default). */
    ref() {
        this.#assertOpen();
        this.#native.setKeepsLoopAlive(true);
        this.#keepsLoopAlive = true;
        return this;
    }
    /** Lets the process exit while a wait is pending. */
    unref() {
        this.#assertOpen();
        this.#native.setKeepsLoopAlive(false);
        this.#keepsLoopAlive = false;
        return this;
    }
    /** Closes the fd and rejects pending waits with `ERR_DOORBELL_CLOSED`. Idempotent. */
    close() {
        if (this.#closed)
            return;
        this.#peerDeadAtClose = this.#native.isPeerDead();
        this.#closed = true;
        this.#native.close();
        this.#settleAll((0, errors_1.closedError)('doorbell', this.#fd));
    }
    /**
     * Stops watching and lets go of the fd without closing it, and returns it, as Rust's
     * `IntoRawFd`: the doorbell reads `fd === -1` and `closed === true` afterwards, and its pending
     * waits reject with `ERR_DOORBELL_CLOSED`. The caller owns the fd: adopt it with `fromRawFd` in
     * this thread or another (a worker), or close it with `closePeerFd`. Rings not yet drained stay
     * in the socket. Throws `ERR_DOORBELL_CLOSED` once closed.
     */
    intoRawFd() {
        this.#assertOpen();
        this.#peerDeadAtClose = this.#native.isPeerDead();
        const fd = this.#native.intoRawFd();
        this.#closed = true;
        this.#settleAll((0, errors_1.closedError)('doorbell', fd));
        return fd;
    }
    /** Closes the doorbell, so that `using doorbell = ...` works. */
    [Symbol.dispose]() {
        this.close();
    }
    /** `Doorbell { fd, closed, peerDead, ref, pendingWaits, engine }` in `util.inspect` and `console.log`. */
    [node_util_1.inspect.custom](depth, options) {
        const state = {
            fd: this.fd,
            closed: this.#closed,
            peerDead: this.#closed ? this.#peerDeadAtClose : this.#native.isPeerDead(),
            ref: this.#keepsLoopAlive,
            pendingWaits: this.#waiters.size,
            engine: engine_1.engine,
        };
        return inspectState('Doorbell', state, depth, options);
    }
    /** Yields once per wake; ends when the doorbell is closed or the peer is gone. */
    async *[Symbol.asyncIterator]() {
        for (;;) {
            try {
                await this.wait();
            }
            catch (err) {
                const code = err.code;
                if (code === 'ERR_DOORBELL_CLOSED' || code === 'ERR_DOORBELL_PEER_DEAD')
                    return;
                throw err;
            }
            yield;
        }
    }
}
exports.Doorbell = Doorbell;
/** Sets O_NONBLOCK on `fd`. */
function setNonblocking(fd) {
    (0, errors_1.checkFd)(fd);
    (0, errors_1.native)(() => binding.setNonblocking(fd));
}
/** Closes `fd` (the host's copy of the guest end, after spawning by hand). Throws EBADF if it is not open. */
function closePeerFd(fd) {
    (0, errors_1.checkFd)(fd);
    (0, errors_1.native)(() => binding.closePeerFd(fd));
}
/** Throws EBADF unless `fd` is open. */
function validateFd(fd) {
    (0, errors_1.checkFd)(fd);
    (0, errors_1.native)(() => binding.validateFd(fd));
}
/** Clears FD_CLOEXEC on `fd`, so that a child started by hand inherits it. */
function clearCloexec(fd) {
    (0, errors_1.checkFd)(fd);
    (0, errors_1.native)(() => binding.clearCloexec(fd));
}
