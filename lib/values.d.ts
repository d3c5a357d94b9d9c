import { type CodedError } from './errors';
/** `ERR_CHANNEL_BAD_VALUE`: a message that is not a serialized value (the peer sent bytes, or garbage). */
export declare function badValueError(err?: unknown): CodedError;
/**
 * Serializes values into one buffer that it reuses: {@link write} returns the length of the value's
 * bytes at the start of {@link bytes}, valid until the next call.
 */
export declare class ValueWriter {
    #private;
    bytes: Buffer<ArrayBuffer>;
    /** Serializes `value`; throws `ERR_INVALID_ARG_VALUE` for a value `v8.serialize` refuses. */
    write(value: unknown): number;
}
/**
 * Reads values that {@link ValueWriter} or `v8.serialize` wrote, from a range of a Buffer (the ring,
 * during a drain): what it returns never aliases those bytes, and bytes that change as it reads
 * give a wrong value or `ERR_CHANNEL_BAD_VALUE`, never a read outside the range.
 */
export declare class ValueReader {
    #private;
    /** The value in `bytes[start, end)`; throws `ERR_CHANNEL_BAD_VALUE` if it is none. */
    read(bytes: Buffer, start: number, end: number): unknown;
}
