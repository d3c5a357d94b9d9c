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
exports.SharedRegion = exports.REGION_ARG_NAME = void 0;
exports.fdOfOpenRegion = fdOfOpenRegion;
const node_buffer_1 = require("node:buffer");
const node_util_1 = require("node:util");
const doorbell_1 = require("./doorbell");
const binding = __importStar(require("./native"));
const errors_1 = require("./errors");
/** The command-line flag that carries a guest's region fd: `--region-fd N` or `--region-fd=N`. */
exports.REGION_ARG_NAME = '--region-fd';
/** The fd of an open region; throws `ERR_DOORBELL_CLOSED` once closed or handed over. */
function fdOfOpenRegion(region) {
    return openFd(region);
}
const constructing = Symbol('shm-doorbell constructing');
// Set by SharedRegion's static block: spawn's access to the fd of an open region.
let openFd;
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
class SharedRegion {
    /**
     * The largest region, in bytes: 1 TiB on 64-bit platforms, or the runtime's largest ArrayBuffer
     * if smaller (4 GiB on Node 20, whose external ArrayBuffers are Buffers underneath).
     */
    static MAX_SIZE = Math.min(binding.REGION_MAX_SIZE, node_buffer_1.constants.MAX_LENGTH);
    #native;
    /** The fd it was made with, for error messages once it is gone. */
    #fd;
    #buffer;
    #closed = false;
    static {
        openFd = (region) => {
            if (region.#closed)
                throw (0, errors_1.closedError)('region', region.#fd);
            return region.#fd;
        };
    }
    constructor(token, region) {
        if (token !== constructing) {
            throw (0, errors_1.codedError)(new TypeError('Illegal constructor: use SharedRegion.create()'), 'ERR_ILLEGAL_CONSTRUCTOR');
        }
        this.#native = region;
        this.#fd = region.fd;
        this.#buffer = region.buffer();
    }
    /**
     * Creates anonymous shared memory of `size` bytes rounded up to the page size, zero-filled:
     * a memfd sealed against shrinking and growing on Linux, an unlinked `shm_open` object on macOS.
     */
    static create(size) {
        if (typeof size !== 'number')
            throw (0, errors_1.invalidArgType)('size', 'of type number', size);
        if (!Number.isInteger(size) || size < 1 || size > SharedRegion.MAX_SIZE) {
            throw (0, errors_1.outOfRange)('size', `an integer >= 1 && <= ${SharedRegion.MAX_SIZE}`, size);
        }
        return new SharedRegion(constructing, (0, errors_1.native)(() => binding.NativeRegion.create(size)));
    }
    /**
     * Maps the whole shared-memory object that `fd` names, and takes ownership of `fd` on success
     * only. Refuses, leaving the fd open and as it was, anything but a shared-memory object of 1 to
     * `MAX_SIZE` bytes that is sealed against shrinking (on Linux): `ERR_DOORBELL_NOT_SHARED_MEMORY`,
     * `ERR_DOORBELL_REGION_NOT_SEALED`, `ERR_DOORBELL_REGION_EMPTY`, `ERR_DOORBELL_REGION_TOO_LARGE`.
     */
    static fromRawFd(fd) {
        (0, errors_1.checkFd)(fd);
        return new SharedRegion(constructing, (0, errors_1.native)(() => binding.NativeRegion.fromRawFd(fd, SharedRegion.MAX_SIZE)));
    }
    /** The guest's side: the region whose fd is given by `--region-fd N` or `--region-fd=N`. */
    static fromArgv(argv = process.argv) {
        return SharedRegion.fromRawFd((0, errors_1.fdFromArgv)(argv, exports.REGION_ARG_NAME));
    }
    /** The fd, or -1 once closed or handed over. */
    get fd() {
        return this.#closed ? -1 : this.#fd;
    }
    /** Bytes mapped. */
    get size() {
        return this.#native.size;
    }
    /** The mapping as an ArrayBuffer; detached (`byteLength` 0) once closed or handed over. */
    get buffer() {
        return this.#buffer;
    }
    /** Whether `close()` or `intoRawFd()` has been called. */
    get closed() {
        return this.#closed;
    }
    /**
     * Lets go of the fd without closing it, as Rust's `IntoRawFd`: `buffer` is detached and the
     * memory unmapped here, and the caller owns the fd (adopt it with `fromRawFd`, in this or
     * another thread). Throws `ERR_DOORBELL_CLOSED` once closed or handed over.
     */
    intoRawFd() {
        const fd = openFd(this);
        this.#native.intoRawFd();
        this.#closed = true;
        return fd;
    }
    /** Detaches `buffer` (every view then has length 0), unmaps and closes the fd. Idempotent. */
    close() {
        if (this.#closed)
            return;
        this.#closed = true;
        this.#native.close();
    }
    /** Closes the region, so that `using region = ...` works. */
    [Symbol.dispose]() {
        this.close();
    }
    /** `SharedRegion { fd, size, closed }` in `util.inspect` and `console.log`. */
    [node_util_1.inspect.custom](depth, options) {
        return (0, doorbell_1.inspectState)('SharedRegion', { fd: this.fd, size: this.size, closed: this.closed }, depth, options);
    }
}
exports.SharedRegion = SharedRegion;
