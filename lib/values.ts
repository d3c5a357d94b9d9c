// JS values as messages, in the format of `v8.serialize` (what child_process's 'advanced'
// serialization sends). Plain objects, dense arrays, strings, numbers, booleans, null, undefined
// and Dates, the bulk of what IPC carries, go through a codec of the same wire format written here,
// which writes into one reused buffer and reads straight from the ring; everything else goes through
// `v8.serialize` and `v8.deserialize`. Either side reads what the other writes.
import { types } from 'node:util'
import v8 from 'node:v8'

import { type CodedError, codedError } from './errors'

// The tags of V8's ValueSerializer (v8/src/objects/value-serializer.cc) that the codec speaks.
const VERSION_TAG = 0xff
const PADDING = 0x00
const THE_HOLE = 0x2d // '-'
const UNDEFINED = 0x5f // '_'
const NULL = 0x30 // '0'
const TRUE = 0x54 // 'T'
const FALSE = 0x46 // 'F'
const INT32 = 0x49 // 'I'
const UINT32 = 0x55 // 'U'
const DOUBLE = 0x4e // 'N'
const UTF8_STRING = 0x53 // 'S'
const ONE_BYTE_STRING = 0x22 // '"'
const TWO_BYTE_STRING = 0x63 // 'c'
const OBJECT_REFERENCE = 0x5e // '^'
const BEGIN_OBJECT = 0x6f // 'o'
const END_OBJECT = 0x7b // '{'
const BEGIN_DENSE_ARRAY = 0x41 // 'A'
const END_DENSE_ARRAY = 0x24 // '$'
const DATE = 0x44 // 'D'

/** The format version this Node's `v8.serialize` writes (15 on Node 20 to 24). */
const VERSION = v8.serialize(null)[1]!
/** Strings up to this many UTF-16 units are written and read a unit at a time; longer ones by Buffer. */
const SHORT_STRING = 32
/** Nesting past this depth goes to `v8.serialize`, whose own limit then applies. */
const MAX_DEPTH = 64
/** A message's objects are looked up in a list up to this many, in a Map past it. */
const SEEN_LINEAR = 16

/** Thrown inside the codec when a value needs `v8.serialize`; never escapes this module. */
const UNSUPPORTED = Symbol('unsupported')

/** `ERR_INVALID_ARG_VALUE`: a value that `v8.serialize` refuses (a function, a symbol, a proxy...). */
function unserializable(err: unknown): CodedError {
  const reason = err instanceof Error ? err.message : String(err)
  return codedError(
    new TypeError(`The argument 'value' cannot be serialized: ${reason}`, { cause: err }),
    'ERR_INVALID_ARG_VALUE',
  )
}

/** `ERR_CHANNEL_BAD_VALUE`: a message that is not a serialized value (the peer sent bytes, or garbage). */
export function badValueError(err?: unknown): CodedError {
  const reason = err instanceof Error ? `: ${err.message}` : ''
  return codedError(
    new Error(`The message is not a serialized value${reason}`, { cause: err }),
    'ERR_CHANNEL_BAD_VALUE',
  )
}

/**
 * The objects of one message in order, their index the id that a back-reference names: a list that
 * keeps its backing store from message to message (`array.length = 0` gives it up, and the next
 * push allocates anew: about 150 ns a message on Node 20 here), and drops its references when
 * cleared, so that it keeps none of the user's values alive.
 */
class ObjectList {
  readonly #items: (object | undefined)[] = []
  #length = 0

  get length(): number {
    return this.#length
  }

  push(item: object): void {
    this.#items[this.#length++] = item
  }

  at(index: number): object {
    return this.#items[index]!
  }

  indexOf(item: object): number {
    const items = this.#items
    for (let index = 0; index < this.#length; index++) if (items[index] === item) return index
    return -1
  }

  clear(): void {
    const items = this.#items
    for (let index = this.#length; index > 0;) items[--index] = undefined
    this.#length = 0
  }
}

/** Views of the writer's bytes are kept for lengths up to this ({@link ValueWriter.view}). */
const VIEWS_KEPT = 1024

/**
 * Serializes values into one buffer that it reuses: {@link write} returns the length of the value's
 * bytes at the start of {@link bytes}, valid until the next call.
 */
export class ValueWriter {
  bytes = Buffer.allocUnsafeSlow(4096)
  /**
   * A view of the first N bytes at index N, made once per buffer: messages of one shape come back to
   * the same few lengths, and a new view costs more than copying a small value (on Node 20 here,
   * 80 ns for `set(subarray())` against 16 with a kept view, at 84 bytes).
   */
  #views: (Uint8Array | undefined)[] = []
  #at = 0
  /** Objects written so far, in order: their index is the id a back-reference names. */
  readonly #seen = new ObjectList()
  /** The same, by object, once there are more than SEEN_LINEAR of them. */
  readonly #ids = new Map<object, number>()

  /** Serializes `value`; throws `ERR_INVALID_ARG_VALUE` for a value `v8.serialize` refuses. */
  write(value: unknown): number {
    this.#at = 0
    try {
      this.#room(2)
      this.bytes[0] = VERSION_TAG
      this.bytes[1] = VERSION
      this.#at = 2
      this.#value(value, 0)
      return this.#at
    } catch (err) {
      if (err !== UNSUPPORTED) throw err
    } finally {
      this.#seen.clear()
      if (this.#ids.size > 0) this.#ids.clear()
    }
    let serialized: Buffer
    try {
      serialized = v8.serialize(value)
    } catch (err) {
      throw unserializable(err)
    }
    this.#at = 0
    this.#room(serialized.length)
    this.bytes.set(serialized)
    return serialized.length
  }

  /** The first `length` bytes of {@link bytes}: what {@link write} wrote. */
  view(length: number): Uint8Array {
    if (length > VIEWS_KEPT) return this.bytes.subarray(0, length)
    return (this.#views[length] ??= this.bytes.subarray(0, length))
  }

  #room(bytes: number): void {
    if (this.#at + bytes <= this.bytes.length) return
    let size = this.bytes.length * 2
    while (size < this.#at + bytes) size *= 2
    const grown = Buffer.allocUnsafeSlow(size)
    grown.set(this.bytes.subarray(0, this.#at))
    this.bytes = grown
    this.#views = []
  }

  #byte(byte: number): void {
    this.#room(1)
    this.bytes[this.#at++] = byte
  }

  #varint(value: number): void {
    this.#room(5)
    const bytes = this.bytes
    let at = this.#at
    while (value > 0x7f) {
      bytes[at++] = (value & 0x7f) | 0x80
      value >>>= 7
    }
    bytes[at++] = value
    this.#at = at
  }

  #double(value: number): void {
    this.#room(8)
    this.bytes.writeDoubleLE(value, this.#at)
    this.#at += 8
  }

  #value(value: unknown, depth: number): void {
    switch (typeof value) {
      case 'string':
        return this.#string(value)
      case 'number':
        if ((value | 0) === value && !Object.is(value, -0)) {
          this.#byte(INT32)
          return this.#varint(((value << 1) ^ (value >> 31)) >>> 0)
        }
        this.#byte(DOUBLE)
        return this.#double(value)
      case 'boolean':
        return this.#byte(value ? TRUE : FALSE)
      case 'undefined':
        return this.#byte(UNDEFINED)
      case 'object':
        if (value === null) return this.#byte(NULL)
        return this.#object(value, depth)
      default:
        // bigint goes to v8.serialize; a function or a symbol too, which refuses it.
        throw UNSUPPORTED
    }
  }

  /** The id of an object already written, or -1 after giving it the next one. */
  #id(value: object): number {
    const seen = this.#seen
    const id = seen.length <= SEEN_LINEAR ? seen.indexOf(value) : (this.#ids.get(value) ?? -1)
    if (id >= 0) return id
    seen.push(value)
    if (seen.length > SEEN_LINEAR) {
      if (this.#ids.size > 0) this.#ids.set(value, seen.length - 1)
      else for (let index = 0; index < seen.length; index++) this.#ids.set(seen.at(index), index)
    }
    return -1
  }

  #object(value: object, depth: number): void {
    if (depth >= MAX_DEPTH || types.isProxy(value)) throw UNSUPPORTED
    const id = this.#id(value)
    if (id >= 0) {
      this.#byte(OBJECT_REFERENCE)
      return this.#varint(id)
    }
    const prototype = Object.getPrototypeOf(value)
    if (prototype === Array.prototype) return this.#array(value as unknown[], depth)
    if (prototype === Date.prototype) {
      this.#byte(DATE)
      return this.#double((value as Date).getTime())
    }
    if (prototype !== Object.prototype && prototype !== null) throw UNSUPPORTED
    this.#byte(BEGIN_OBJECT)
    const keys = Object.keys(value)
    for (const key of keys) {
      this.#string(key)
      this.#value((value as Record<string, unknown>)[key], depth + 1)
    }
    this.#byte(END_OBJECT)
    this.#varint(keys.length)
  }

  /** A packed array (every index present, no other own property); anything else goes to v8.serialize. */
  #array(array: unknown[], depth: number): void {
    const length = array.length
    this.#byte(BEGIN_DENSE_ARRAY)
    this.#varint(length)
    for (let index = 0; index < length; index++) {
      const element = array[index]
      if (element === undefined && !(index in array)) throw UNSUPPORTED
      this.#value(element, depth + 1)
    }
    if (Object.keys(array).length !== length) throw UNSUPPORTED
    this.#byte(END_DENSE_ARRAY)
    this.#varint(0)
    this.#varint(length)
  }

  #string(value: string): void {
    const length = value.length
    if (length <= SHORT_STRING) {
      this.#room(6 + length)
      const bytes = this.bytes
      const start = this.#at
      bytes[start] = ONE_BYTE_STRING
      bytes[start + 1] = length
      let at = start + 2
      for (let index = 0; index < length; index++) {
        const unit = value.charCodeAt(index)
        if (unit > 0xff) break
        bytes[at++] = unit
      }
      if (at === start + 2 + length) {
        this.#at = at
        return
      }
    }
    // Two bytes a unit, as V8 writes a string that is not Latin-1: a lone surrogate stays one.
    const bytes = 2 * length
    this.#byte(TWO_BYTE_STRING)
    this.#varint(bytes)
    this.#room(bytes)
    this.#at += this.bytes.write(value, this.#at, bytes, 'utf16le')
  }
}

const EMPTY: Buffer = Buffer.alloc(0)
/** Keys up to this many bytes are cached by the reader, in a table of KEY_CACHE_SIZE slots. */
const KEY_CACHED = 24
const KEY_CACHE_SIZE = 256

/**
 * A Latin-1 string of up to SHORT_STRING bytes, 8 bytes a call to `String.fromCharCode`: for short
 * strings a third of the time of `Buffer#toString('latin1')` (on Node 20 here, 20 ns against 70 at 13 bytes).
 */
function shortString(bytes: Buffer, at: number, length: number): string {
  const code = String.fromCharCode
  if (length > 8) return shortString(bytes, at, 8) + shortString(bytes, at + 8, length - 8)
  switch (length) {
    case 0:
      return ''
    case 1:
      return code(bytes[at]!)
    case 2:
      return code(bytes[at]!, bytes[at + 1]!)
    case 3:
      return code(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!)
    case 4:
      return code(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!)
    case 5:
      return code(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!, bytes[at + 4]!)
    case 6:
      return code(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!, bytes[at + 4]!, bytes[at + 5]!)
    case 7:
      return code(
        bytes[at]!,
        bytes[at + 1]!,
        bytes[at + 2]!,
        bytes[at + 3]!,
        bytes[at + 4]!,
        bytes[at + 5]!,
        bytes[at + 6]!,
      )
    default:
      return code(
        bytes[at]!,
        bytes[at + 1]!,
        bytes[at + 2]!,
        bytes[at + 3]!,
        bytes[at + 4]!,
        bytes[at + 5]!,
        bytes[at + 6]!,
        bytes[at + 7]!,
      )
  }
}

/** Thrown inside the reader when the bytes need `v8.deserialize`; never escapes this module. */
const FALLBACK = Symbol('fallback')

/**
 * Reads values that {@link ValueWriter} or `v8.serialize` wrote, from a range of a Buffer (the ring,
 * during a drain): what it returns never aliases those bytes, and bytes that change as it reads
 * give a wrong value or `ERR_CHANNEL_BAD_VALUE`, never a read outside the range.
 */
export class ValueReader {
  #bytes: Buffer = EMPTY
  #at = 0
  readonly #keyBytes: (Uint8Array | undefined)[] = Array.from({ length: KEY_CACHE_SIZE }, () => undefined)
  readonly #keyStrings: (string | undefined)[] = Array.from({ length: KEY_CACHE_SIZE }, () => undefined)
  #end = 0
  readonly #seen = new ObjectList()

  /** The value in `bytes[start, end)`; throws `ERR_CHANNEL_BAD_VALUE` if it is none. */
  read(bytes: Buffer, start: number, end: number): unknown {
    this.#bytes = bytes
    this.#at = start
    this.#end = end
    try {
      if (this.#byte() !== VERSION_TAG || this.#varint() > VERSION) throw FALLBACK
      const value = this.#value(0)
      if (this.#at !== end) throw badValueError()
      return value
    } catch (err) {
      if (err !== FALLBACK) throw err instanceof Error && 'code' in err ? err : badValueError(err)
    } finally {
      this.#seen.clear()
      this.#bytes = EMPTY
    }
    // A private copy: what v8.deserialize makes of a Buffer inside the value is a view of its input.
    try {
      return v8.deserialize(Buffer.from(bytes.subarray(start, end)))
    } catch (err) {
      throw badValueError(err)
    }
  }

  #byte(): number {
    if (this.#at >= this.#end) throw badValueError()
    return this.#bytes[this.#at++]!
  }

  #tag(): number {
    let tag = this.#byte()
    while (tag === PADDING) tag = this.#byte()
    return tag
  }

  #varint(): number {
    const first = this.#at < this.#end ? this.#bytes[this.#at]! : 0x80
    if (first < 0x80) {
      this.#at++
      return first
    }
    let value = 0
    for (let shift = 0; ; shift += 7) {
      const byte = this.#byte()
      if (shift > 28) throw FALLBACK
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return value
    }
  }

  #double(): number {
    if (this.#end - this.#at < 8) throw badValueError()
    const value = this.#bytes.readDoubleLE(this.#at)
    this.#at += 8
    return value
  }

  #value(depth: number): unknown {
    const tag = this.#tag()
    switch (tag) {
      case INT32: {
        const zigzag = this.#varint()
        return (zigzag & 1 ? -(zigzag + 1) / 2 : zigzag / 2) | 0
      }
      case UINT32:
        return this.#varint() >>> 0
      case DOUBLE:
        return this.#double()
      case ONE_BYTE_STRING:
      case UTF8_STRING:
      case TWO_BYTE_STRING:
        return this.#string(tag)
      case TRUE:
        return true
      case FALSE:
        return false
      case NULL:
        return null
      case UNDEFINED:
        return undefined
      case BEGIN_OBJECT:
        return this.#object(depth)
      case BEGIN_DENSE_ARRAY:
        return this.#array(depth)
      case DATE: {
        const date = new Date(this.#double())
        this.#seen.push(date)
        return date
      }
      case OBJECT_REFERENCE: {
        const id = this.#varint()
        if (id >= this.#seen.length) throw badValueError()
        return this.#seen.at(id)
      }
      default:
        throw FALLBACK
    }
  }

  #string(tag: number): string {
    const length = this.#varint()
    const start = this.#at
    if (length > this.#end - start) throw badValueError()
    this.#at = start + length
    if (tag === ONE_BYTE_STRING && length <= SHORT_STRING) return shortString(this.#bytes, start, length)
    if (tag === TWO_BYTE_STRING && length & 1) throw badValueError()
    const encoding = tag === ONE_BYTE_STRING ? 'latin1' : tag === UTF8_STRING ? 'utf8' : 'utf16le'
    return this.#bytes.toString(encoding, start, start + length)
  }

  /**
   * A Latin-1 key: keys repeat from message to message, so a short one is looked up in a cache by
   * its bytes (compared in full), and the string made once.
   */
  #cachedKey(): string {
    const bytes = this.#bytes
    const at = this.#at
    const length = at < this.#end ? bytes[at]! : 0x80
    if (length === 0 || length > KEY_CACHED || at + 1 + length > this.#end) return this.#string(ONE_BYTE_STRING)
    const start = at + 1
    const slot = (length * 31 + bytes[start]! * 7 + bytes[start + length - 1]!) & (KEY_CACHE_SIZE - 1)
    const cached = this.#keyBytes[slot]
    if (cached !== undefined && cached.length === length) {
      let same = true
      for (let i = 0; i < length; i++) {
        if (cached[i] !== bytes[start + i]) {
          same = false
          break
        }
      }
      if (same) {
        this.#at = start + length
        return this.#keyStrings[slot]!
      }
    }
    const key = this.#string(ONE_BYTE_STRING)
    this.#keyBytes[slot] = Uint8Array.prototype.slice.call(bytes, start, start + length)
    this.#keyStrings[slot] = key
    return key
  }

  /** A property key: a string, or a number as V8 writes integer keys. */
  #key(tag: number): string | number {
    if (tag === ONE_BYTE_STRING) return this.#cachedKey()
    if (tag === UTF8_STRING || tag === TWO_BYTE_STRING) return this.#string(tag)
    if (tag === INT32) {
      const zigzag = this.#varint()
      return zigzag & 1 ? -(zigzag + 1) / 2 : zigzag / 2
    }
    if (tag === UINT32) return this.#varint()
    if (tag === DOUBLE) return this.#double()
    throw FALLBACK
  }

  #object(depth: number): object {
    if (depth >= MAX_DEPTH) throw FALLBACK
    const object: Record<string | number, unknown> = {}
    this.#seen.push(object)
    let count = 0
    for (let tag = this.#tag(); tag !== END_OBJECT; tag = this.#tag(), count++) {
      const key = this.#key(tag)
      const value = this.#value(depth + 1)
      // As V8's deserializer: an own data property, even for '__proto__'.
      if (key === '__proto__')
        Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true })
      else object[key] = value
    }
    if (this.#varint() !== count) throw badValueError()
    return object
  }

  #array(depth: number): unknown[] {
    if (depth >= MAX_DEPTH) throw FALLBACK
    const length = this.#varint()
    // Each element takes a byte at least: a length past the bytes left is not a value.
    if (length > this.#end - this.#at) throw badValueError()
    const array: unknown[] = []
    this.#seen.push(array)
    for (let index = 0; index < length; index++) {
      if (this.#bytes[this.#at] === THE_HOLE) throw FALLBACK
      array.push(this.#value(depth + 1))
    }
    if (this.#tag() !== END_DENSE_ARRAY) throw FALLBACK
    if (this.#varint() !== 0 || this.#varint() !== length) throw badValueError()
    return array
  }
}
