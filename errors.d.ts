/** An error with Node's `code` property. */
export type CodedError = Error & {
    code: string;
};
/** The largest fd number. */
export declare const MAX_FD: number;
/** `error` with its `code` set. */
export declare function codedError<E extends Error>(error: E, code: string): E & {
    code: string;
};
/** Node's `ERR_INVALID_ARG_TYPE`. */
export declare function invalidArgType(name: string, expected: string, value: unknown): CodedError;
/** Node's `ERR_INVALID_ARG_VALUE`. */
export declare function invalidArgValue(name: string, value: unknown, reason: string): CodedError;
/** `ERR_DOORBELL_CLOSED`: the object on `fd` (the fd it had while open) was closed or handed over. */
export declare function closedError(what: string, fd: number): CodedError;
/** `ERR_DOORBELL_PEER_DEAD`: the peer of the doorbell on `fd` has closed its end. */
export declare function peerDeadError(fd: number): CodedError;
/** The error a wait rejects with when its `signal` aborts, as Node's own APIs do. */
export declare class AbortError extends Error {
    readonly code = "ABORT_ERR";
    constructor(message?: string, options?: {
        cause?: unknown;
    });
}
/** A Node-style system error: `code` is the errno name, `errno` its negated number. */
export declare function systemError(errno: number, syscall: string): CodedError;
/** Runs a native call, turning its errno failures into Node-style system errors. */
export declare function native<T>(call: () => T): T;
/** A native error as Node would make it: an errno failure becomes a Node-style system error. */
export declare function fromNative(err: unknown): unknown;
/** Node's `ERR_OUT_OF_RANGE`; `range` says what is allowed, as in "an integer >= 0". */
export declare function outOfRange(name: string, range: string, value: unknown): CodedError;
/** Throws unless `fd` is a number that can name an fd. */
export declare function checkFd(fd: unknown, name?: string): asserts fd is number;
/** Parses the value of an fd flag such as `--doorbell-fd`: a plain non-negative decimal that fits an fd. */
export declare function parseFdArg(value: unknown, name: string): number;
/**
 * The fd that `flag` names in `argv`, as `flag N` or `flag=N`. The last occurrence wins, as with
 * Node's own flags: `spawn()` appends its flags after the caller's args.
 */
export declare function fdFromArgv(argv: readonly string[], flag: string): number;
/** The `signal` of an options object such as `{ signal }`, checked as Node checks it. */
export declare function signalOption(options: {
    signal?: AbortSignal;
} | undefined): AbortSignal | undefined;
