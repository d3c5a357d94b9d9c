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
exports.AbortError = exports.MAX_FD = void 0;
exports.codedError = codedError;
exports.invalidArgType = invalidArgType;
exports.invalidArgValue = invalidArgValue;
exports.closedError = closedError;
exports.peerDeadError = peerDeadError;
exports.systemError = systemError;
exports.native = native;
exports.fromNative = fromNative;
exports.outOfRange = outOfRange;
exports.checkFd = checkFd;
exports.parseFdArg = parseFdArg;
exports.fdFromArgv = fdFromArgv;
exports.signalOption = signalOption;
// Errors as Node makes them, and the checks of arguments that every module shares.
const node_util_1 = require("node:util");
const binding = __importStar(require("./native"));
/** The largest fd number. */
exports.MAX_FD = 2 ** 31 - 1;
/** `error` with its `code` set. */
function codedError(error, code) {
    return Object.assign(error, { code });
}
function describe(value) {
    if (value === null || value === undefined)
        return `Received ${value}`;
    if (typeof value === 'function')
        return `Received function ${value.name || '<anonymous>'}`;
    if (typeof value === 'object') {
        const name = value.constructor?.name;
        return name ? `Received an instance of ${name}` : `Received ${(0, node_util_1.inspect)(value, { depth: -1 })}`;
    }
    return `Received type ${typeof value} (${(0, node_util_1.inspect)(value)})`;
}
/** Node's `ERR_INVALID_ARG_TYPE`. */
function invalidArgType(name, expected, value) {
    return codedError(new TypeError(`The "${name}" argument must be ${expected}. ${describe(value)}`), 'ERR_INVALID_ARG_TYPE');
}
/** Node's `ERR_INVALID_ARG_VALUE`. */
function invalidArgValue(name, value, reason) {
    return codedError(new TypeError(`The argument '${name}' ${reason}. Received ${(0, node_util_1.inspect)(value)}`), 'ERR_INVALID_ARG_VALUE');
}
/** `ERR_DOORBELL_CLOSED`: the object on `fd` (the fd it had while open) was closed or handed over. */
function closedError(what, fd) {
    return codedError(new Error(`The ${what} on fd ${fd} is closed`), 'ERR_DOORBELL_CLOSED');
}
/** `ERR_DOORBELL_PEER_DEAD`: the peer of the doorbell on `fd` has closed its end. */
function peerDeadError(fd) {
    return codedError(new Error(`The peer of the doorbell on fd ${fd} is gone`), 'ERR_DOORBELL_PEER_DEAD');
}
/** The error a wait rejects with when its `signal` aborts, as Node's own APIs do. */
class AbortError extends Error {
    code = 'ABORT_ERR';
    constructor(message = 'The operation was aborted', options) {
        super(message, options);
        this.name = 'AbortError';
    }
}
exports.AbortError = AbortError;
/** A Node-style system error: `code` is the errno name, `errno` its negated number. */
function systemError(errno, syscall) {
    const [code, description] = (0, node_util_1.getSystemErrorMap)().get(-errno) ?? [`Unknown system error ${errno}`, 'unknown error'];
    return Object.assign(new Error(`${code}: ${description}, ${syscall}`), { code, errno: -errno, syscall });
}
const osErrorMessage = /^(\d+) (\w+)$/;
/** Runs a native call, turning its errno failures into Node-style system errors. */
function native(call) {
    try {
        return call();
    }
    catch (err) {
        throw fromNative(err);
    }
}
/** A native error as Node would make it: an errno failure becomes a Node-style system error. */
function fromNative(err) {
    const match = err.code === binding.OS_ERROR_CODE && osErrorMessage.exec(err.message);
    return match ? systemError(Number(match[1]), match[2]) : err;
}
/** Node's `ERR_OUT_OF_RANGE`; `range` says what is allowed, as in "an integer >= 0". */
function outOfRange(name, range, value) {
    return codedError(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${(0, node_util_1.inspect)(value)}`), 'ERR_OUT_OF_RANGE');
}
/** Throws unless `fd` is a number that can name an fd. */
function checkFd(fd, name = 'fd') {
    if (typeof fd !== 'number')
        throw invalidArgType(name, 'of type number', fd);
    if (!Number.isInteger(fd) || fd < 0 || fd > exports.MAX_FD)
        throw outOfRange(name, `an integer >= 0 && <= ${exports.MAX_FD}`, fd);
}
/** Parses the value of an fd flag such as `--doorbell-fd`: a plain non-negative decimal that fits an fd. */
function parseFdArg(value, name) {
    if (typeof value !== 'string')
        throw invalidArgType(name, 'of type string', value);
    if (!/^\d{1,10}$/.test(value) || Number(value) > exports.MAX_FD) {
        throw invalidArgValue(name, value, `must be a plain non-negative decimal fd number up to ${exports.MAX_FD}`);
    }
    return Number(value);
}
/**
 * The fd that `flag` names in `argv`, as `flag N` or `flag=N`. The last occurrence wins, as with
 * Node's own flags: `spawn()` appends its flags after the caller's args.
 */
function fdFromArgv(argv, flag) {
    if (!Array.isArray(argv))
        throw invalidArgType('argv', 'an array of strings', argv);
    let index = argv.length - 1;
    while (index >= 0 &&
        !(argv[index] === flag || (typeof argv[index] === 'string' && argv[index].startsWith(`${flag}=`))))
        index--;
    const value = index < 0 ? undefined : argv[index] === flag ? argv[index + 1] : argv[index].slice(flag.length + 1);
    if (value === undefined)
        throw codedError(new TypeError(`The "${flag}" argument must be specified`), 'ERR_MISSING_ARGS');
    return parseFdArg(value, flag);
}
/** The `signal` of an options object such as `{ signal }`, checked as Node checks it. */
function signalOption(options) {
    if (options === undefined)
        return undefined;
    if (options === null || typeof options !== 'object')
        throw invalidArgType('options', 'of type object', options);
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
        throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
    }
    return signal;
}
