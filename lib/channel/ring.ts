// The ring arithmetic of one direction of a channel, over the bytes alone: the producer writes
// frames and publishes `tail`, the consumer checks and takes them and publishes `head`
// (docs/channel-layout.md, r[ring.*] and r[frame.*]). No doorbell and no waiting here: after each
// store of an index the ring calls `published`, which the channel's waiting turns into
// r[wake.notify]; what the peer wrote that breaks a rule goes to `fail`.
import type { CodedError } from '../errors'
import {
  FRAME_HEADER,
  HEAD_WORD,
  KIND_MESSAGE,
  KIND_PADDING,
  TAIL_WORD,
  corruptError,
  frameSize,
  maxMessageSize,
  type RingPlace,
} from './layout'

/** Messages up to this size are read in batches (#stage), of up to STAGE_SPAN bytes, into pools of POOL_SIZE. */
const STAGED_MAX = 1024
const STAGE_SPAN = 16 * 1024
const POOL_SIZE = 64 * 1024
/** Larger messages are read ahead (#readAhead): whole frames, up to this many bytes of ring per store of `head`. */
const READ_AHEAD = 512 * 1024
/** {@link Consumer.take} gives the ring's bytes back to the producer at least every this many bytes. */
const TAKE_RELEASE = 64 * 1024

/** What {@link Consumer.take} calls for each message: its `length` bytes are `bytes[start, start + length)`. */
export type Visit = (bytes: Buffer, start: number, length: number) => void

/** Rings up to this capacity keep a view per frame position ({@link RingViews}); larger ones make each view anew. */
const VIEWS_MAX_CAPACITY = 1024 * 1024

/**
 * Views of a ring's data area, one kept per frame position and reused while its length is the
 * one asked for: a stream of messages of one size comes back to the same few positions, and a new
 * `Uint8Array` per message costs more than a small message's bytes (on Node 20 here, about 32 ns
 * for a new view against 3 ns for a kept one). A view is what `tryReserve` and `drain` promise:
 * valid until the commit, or during the call; a kept one is the same memory again.
 */
class RingViews {
  readonly #buffer: ArrayBuffer
  readonly #data: number
  readonly #capacity: number
  #views: (Uint8Array | undefined)[] | undefined

  constructor(buffer: ArrayBuffer, data: number, capacity: number) {
    this.#buffer = buffer
    this.#data = data
    this.#capacity = capacity
  }

  /** A view of `length` bytes at `offset` of the data area, a multiple of 8 (the body of a frame). */
  at(offset: number, length: number): Uint8Array {
    if (this.#capacity > VIEWS_MAX_CAPACITY) return new Uint8Array(this.#buffer, this.#data + offset, length)
    // Allocated on first use: a channel that never drains or reserves keeps none.
    const views = (this.#views ??= Array.from<Uint8Array | undefined>({ length: this.#capacity >> 3 }))
    const view = views[offset >> 3]
    if (view !== undefined && view.length === length) return view
    return (views[offset >> 3] = new Uint8Array(this.#buffer, this.#data + offset, length))
  }
}

/** Marks the channel corrupt and throws: r[corrupt]. */
export type Fail = (err: CodedError) => never

/** A ring's indices as one side loads them: both multiples of 8, `tail` at most `capacity` past `head` (r[ring.check]). */
function checkedIndices(place: RingPlace): { tail: number; head: number } {
  const tail = Atomics.load(place.words, TAIL_WORD + place.fields)
  const head = Atomics.load(place.words, HEAD_WORD + place.fields)
  if ((tail | head) & 7 || (tail - head) >>> 0 > place.capacity) throw corruptError('bad indices')
  return { tail, head }
}

/** The producer's side of a ring: writes frames, and stores `tail` (r[ring.own]). */
export class Producer {
  readonly #words: Uint32Array
  readonly #bytes: Buffer
  readonly #capacity: number
  readonly #mask: number
  readonly #tailWord: number
  readonly #headWord: number
  readonly #data: number
  readonly #published: () => void
  readonly #fail: Fail
  // r[ring.own]: the index this side writes, never read back; and the last value of the peer's.
  #tail: number
  #head: number
  /** The open reservation (r[reserve.open]): its length, -1 if none, and the bytes its frame takes with any padding. */
  #reserved = -1
  #reservedNeeded = 0
  readonly #views: RingViews

  /** Throws `ERR_CHANNEL_CORRUPT` if the ring's indices fail r[ring.check]. */
  constructor(place: RingPlace, published: () => void, fail: Fail) {
    const { tail, head } = checkedIndices(place)
    this.#words = place.words
    this.#bytes = Buffer.from(place.buffer, place.data, place.capacity)
    this.#capacity = place.capacity
    this.#mask = place.capacity - 1
    this.#tailWord = TAIL_WORD + place.fields
    this.#headWord = HEAD_WORD + place.fields
    this.#data = place.data
    this.#published = published
    this.#fail = fail
    this.#tail = tail
    this.#head = head
    this.#views = new RingViews(place.buffer, place.data, place.capacity)
  }

  /** Writes one message of `length` bytes (a string goes as UTF-8) if it fits: r[ring.wrap], r[ring.commit]. */
  write(message: Uint8Array | string, length: number): boolean {
    const needed = this.#room(length)
    if (needed < 0) return false
    const pos = this.#frameAt(needed, length)
    if (typeof message === 'string') this.#bytes.write(message, pos + FRAME_HEADER, length, 'utf8')
    else if (message.length === length) this.#bytes.set(message, pos + FRAME_HEADER)
    else this.#bytes.set(message.subarray(0, length), pos + FRAME_HEADER)
    this.#publish(needed)
    return true
  }

  /** Whether a message of `length` bytes fits now. */
  hasRoom(length: number): boolean {
    const frame = frameSize(length)
    const gap = this.#capacity - (this.#tail & this.#mask)
    this.#loadHead()
    return ((this.#tail - this.#head) >>> 0) + (gap < frame ? gap + frame : frame) <= this.#capacity
  }

  /** The open reservation's length in bytes, -1 if there is none. */
  get reserved(): number {
    return this.#reserved
  }

  /**
   * Opens a reservation of `length` bytes if the ring has room for its frame, where r[ring.wrap]
   * puts it, and returns a view of its body; writes nothing the consumer can see (r[reserve.open]).
   */
  reserve(length: number): Uint8Array | undefined {
    const needed = this.#room(length)
    if (needed < 0) return undefined
    this.#reserved = length
    this.#reservedNeeded = needed
    const pos = needed > frameSize(length) ? 0 : this.#tail & this.#mask
    return this.#views.at(pos + FRAME_HEADER, length)
  }

  /**
   * Publishes the first `length` bytes (at most those reserved, which the caller checks) of the open
   * reservation as a message, in the place it was reserved: r[reserve.commit].
   */
  commit(length: number): void {
    const reserved = this.#reserved
    // A reservation that wrapped stays at 0 with its padding, even if its message would fit now.
    const gap = this.#reservedNeeded - frameSize(reserved)
    this.#reserved = -1
    this.#frameAt(gap + frameSize(length), length)
    this.#publish(gap + frameSize(length))
  }

  /** Drops the open reservation; nothing of it was ever visible (r[reserve.abort]). */
  abort(): void {
    this.#reserved = -1
  }

  /**
   * The bytes that a frame of `length` message bytes takes at the tail, padding included
   * (r[ring.wrap]), if the ring has room for them now; -1 if not.
   */
  #room(length: number): number {
    const capacity = this.#capacity
    const tail = this.#tail
    const frame = frameSize(length)
    const gap = capacity - (tail & this.#mask)
    const needed = gap < frame ? gap + frame : frame
    if (((tail - this.#head) >>> 0) + needed > capacity) {
      this.#loadHead()
      if (((tail - this.#head) >>> 0) + needed > capacity) return -1
    }
    return needed
  }

  /**
   * Writes the headers of a frame of `length` bytes that takes `needed` bytes at the tail: a padding
   * frame first when `needed` is more than the frame (r[ring.wrap]). Returns the frame's position.
   */
  #frameAt(needed: number, length: number): number {
    const words = this.#words
    let pos = this.#tail & this.#mask
    const padding = needed - frameSize(length)
    if (padding > 0) {
      const at = (this.#data + pos) >> 2
      words[at] = padding - FRAME_HEADER
      words[at + 1] = KIND_PADDING
      pos = 0
    }
    const at = (this.#data + pos) >> 2
    words[at] = length
    words[at + 1] = KIND_MESSAGE
    return pos
  }

  /** Moves the tail past `bytes` of frames written: r[ring.commit]. */
  #publish(bytes: number): void {
    this.#tail = (this.#tail + bytes) >>> 0
    Atomics.store(this.#words, this.#tailWord, this.#tail)
    this.#published()
  }

  /** r[ring.room], r[ring.check]: the consumer's head, checked. */
  #loadHead(): void {
    const head = Atomics.load(this.#words, this.#headWord)
    const last = this.#head
    if (head & 7 || (head - last) >>> 0 > (this.#tail - last) >>> 0) {
      this.#fail(corruptError(`the peer's head moved from ${last} to ${head} (tail ${this.#tail})`))
    }
    this.#head = head
  }
}

/** The consumer's side of a ring: checks and takes frames, and stores `head` (r[ring.own]). */
export class Consumer {
  readonly #words: Uint32Array
  readonly #buffer: ArrayBuffer
  /** The ring's data area. */
  readonly #bytes: Buffer
  readonly #capacity: number
  readonly #mask: number
  readonly #maxMessageSize: number
  readonly #tailWord: number
  readonly #headWord: number
  readonly #data: number
  readonly #published: () => void
  readonly #fail: Fail
  // r[ring.own]: the index this side writes, never read back; and the last value of the peer's.
  #head: number
  #tail: number

  // Messages taken from the ring in a batch, not yet returned: #stage.
  #pool = new ArrayBuffer(0)
  #poolBytes = new Uint8Array(0)
  #poolBuffer = Buffer.alloc(0)
  #poolWords = new Uint32Array(0)
  #poolUsed = 0
  #stageRead = 0
  #stageEnd = 0
  // Larger messages taken from the ring in a batch, not yet returned: #readAhead.
  readonly #ahead: Buffer[] = []
  #aheadRead = 0
  readonly #views: RingViews

  /** Throws `ERR_CHANNEL_CORRUPT` if the ring's indices fail r[ring.check]. */
  constructor(place: RingPlace, published: () => void, fail: Fail) {
    const { head } = checkedIndices(place)
    this.#words = place.words
    this.#buffer = place.buffer
    this.#bytes = Buffer.from(place.buffer, place.data, place.capacity)
    this.#capacity = place.capacity
    this.#mask = place.capacity - 1
    this.#maxMessageSize = maxMessageSize(place.capacity)
    this.#tailWord = TAIL_WORD + place.fields
    this.#headWord = HEAD_WORD + place.fields
    this.#data = place.data
    this.#published = published
    this.#fail = fail
    this.#head = head
    this.#tail = head
    this.#views = new RingViews(place.buffer, place.data, place.capacity)
  }

  /** A view of what {@link take} visits: of the ring, kept per position ({@link RingViews}), or of a batch copied out. */
  view(bytes: Buffer, start: number, length: number): Uint8Array {
    if (bytes === this.#bytes) return this.#views.at(start, length)
    return new Uint8Array(bytes.buffer, bytes.byteOffset + start, length)
  }

  /** Whether a message can be read now: one taken in a batch, or a frame in the ring. */
  hasMessage(): boolean {
    return this.#stageRead < this.#stageEnd || this.#aheadRead < this.#ahead.length || this.#used() > 0
  }

  /**
   * Calls `visit` for up to `max` messages, in order, and returns how many it took: first those
   * already copied out in a batch (#stage, #readAhead), then those in the ring, each checked as
   * {@link read} checks it (r[ring.consume]) and visited in place (r[drain.view]). The ring's bytes
   * go back to the producer only after their visit, in one store of `head` per TAKE_RELEASE bytes
   * and one at the end. If `visit` throws, its message and the rest stay. `stopped()` is asked after
   * each visit, which may have closed the channel.
   */
  take(max: number, visit: Visit, stopped: () => boolean): number {
    let taken = 0
    while (taken < max && this.#stageRead < this.#stageEnd) {
      const at = this.#stageRead
      const length = this.#poolWords[at >> 2]!
      visit(this.#poolBuffer, at + FRAME_HEADER, length)
      this.#stageRead = at + frameSize(length)
      taken++
    }
    while (taken < max && this.#aheadRead < this.#ahead.length) {
      const message = this.#ahead[this.#aheadRead]!
      visit(message, 0, message.length)
      this.#nextAhead()
      taken++
    }
    return taken < max ? taken + this.#takeInPlace(max - taken, visit, stopped) : taken
  }

  #takeInPlace(max: number, visit: Visit, stopped: () => boolean): number {
    const capacity = this.#capacity
    const words = this.#words
    const wordsAt = this.#data >> 2
    let taken = 0
    // Bytes taken but not given back yet (after #head), and bytes of frames after those.
    let pending = 0
    let used = this.#used()
    try {
      while (taken < max && used > 0) {
        let pos = (this.#head + pending) & this.#mask
        let skipped = 0
        if (words[wordsAt + (pos >> 2) + 1] === KIND_PADDING) {
          const gap = capacity - pos
          if (words[wordsAt + (pos >> 2)] !== gap - FRAME_HEADER || gap >= used) {
            this.#fail(corruptError('a bad padding frame'))
          }
          skipped = gap
          pos = 0
        }
        const at = wordsAt + (pos >> 2)
        const length = words[at]!
        const frame = frameSize(length)
        if (words[at + 1] !== KIND_MESSAGE) this.#fail(corruptError(`a frame of kind ${words[at + 1]}`))
        if (length > this.#maxMessageSize || frame > capacity - pos || skipped + frame > used) {
          this.#fail(corruptError(`a frame of ${length} bytes with ${used - skipped} in the ring`))
        }
        visit(this.#bytes, pos + FRAME_HEADER, length)
        taken++
        pending += skipped + frame
        used -= skipped + frame
        if (stopped()) {
          pending = 0
          break
        }
        if (pending >= TAKE_RELEASE || (used === 0 && taken < max)) {
          this.#consumed(pending)
          pending = 0
          // Every frame checked is taken: look for more that the producer committed since.
          if (used === 0) used = this.#used()
        }
      }
    } finally {
      if (pending > 0 && !stopped()) this.#consumed(pending)
    }
    return taken
  }

  /**
   * Reads one message, or undefined if the ring is empty: r[ring.consume]. Small messages are taken
   * from the ring in batches: one copy of the run of frames after the first into a pool of this
   * side's (as `Buffer.allocUnsafe` pools small buffers), one store of `head` for the batch, and
   * each message a `Buffer` over the pool. The copy is private, so a frame checked there cannot
   * change after its check.
   */
  read(): Buffer | undefined {
    if (this.#stageRead < this.#stageEnd || this.#fetch()) return this.#nextStaged()
    if (this.#aheadRead < this.#ahead.length) return this.#nextAhead()
    return undefined
  }

  /**
   * Takes one message as {@link read} does, in the same batches, and visits it where the batch holds
   * it instead of making a `Buffer` of it: a message read so is one copy and a share of one store of
   * `head`, not a store of its own. The message is taken before its visit, even if `visit` throws.
   * False if the ring is empty.
   */
  takeNext(visit: Visit): boolean {
    if (this.#stageRead < this.#stageEnd || this.#fetch()) {
      const at = this.#stageRead
      const length = this.#poolWords[at >> 2]!
      this.#stageRead = at + frameSize(length)
      visit(this.#poolBuffer, at + FRAME_HEADER, length)
      return true
    }
    if (this.#aheadRead === this.#ahead.length) return false
    const message = this.#nextAhead()
    visit(message, 0, message.length)
    return true
  }

  /**
   * Takes the next frames of the ring into a batch when none is left: small ones into the pool
   * (true), large ones read ahead (false, as for an empty ring).
   */
  #fetch(): boolean {
    if (this.#aheadRead < this.#ahead.length) return false
    let used = this.#used()
    if (used === 0) return false
    const capacity = this.#capacity
    const words = this.#words
    let pos = this.#head & this.#mask
    let at = (this.#data + pos) >> 2
    let skipped = 0
    if (words[at + 1] === KIND_PADDING) {
      const gap = capacity - pos
      if (words[at] !== gap - FRAME_HEADER || gap > used) this.#fail(corruptError('a bad padding frame'))
      skipped = gap
      used -= gap
      pos = 0
      at = this.#data >> 2
      if (used === 0) this.#fail(corruptError('padding with no frame after it'))
    }
    const length = words[at]
    const frame = frameSize(length)
    if (words[at + 1] !== KIND_MESSAGE) this.#fail(corruptError(`a frame of kind ${words[at + 1]}`))
    if (length > this.#maxMessageSize || frame > capacity - pos || frame > used) {
      this.#fail(corruptError(`a frame of ${length} bytes with ${used} in the ring`))
    }
    if (length <= STAGED_MAX) {
      this.#stage(pos, Math.min(used, capacity - pos, STAGE_SPAN), skipped)
      return true
    }
    this.#readAhead(pos, length, used, skipped)
    return false
  }

  /** r[ring.consume], r[ring.check]: bytes of frames in the ring. */
  #used(): number {
    const head = this.#head
    let used = (this.#tail - head) >>> 0
    if (used === 0) {
      const tail = Atomics.load(this.#words, this.#tailWord)
      const next = (tail - head) >>> 0
      if (tail & 7 || next > this.#capacity) {
        this.#fail(corruptError(`the peer's tail moved from ${this.#tail} to ${tail} (head ${head})`))
      }
      this.#tail = tail
      used = next
    }
    return used
  }

  /** A copy of the `length` bytes of the message whose frame, checked, is at `pos` of the ring. */
  #copyOut(pos: number, length: number): Buffer {
    const message = Buffer.allocUnsafe(length)
    // A fresh view is cheaper here than Buffer.copy or subarray (measured: half the time at 64 B).
    message.set(new Uint8Array(this.#buffer, this.#data + pos + FRAME_HEADER, length))
    return message
  }

  /**
   * Copies out the large message whose frame, checked, is at `pos`, and the whole large message
   * frames after it that the ring already holds, checked the same way, up to READ_AHEAD bytes, to be
   * read in turn; stores `head` once for all of them. Fewer stores of `head` are fewer wakes of a
   * sender that waits for room, each with room for more. It stops at anything else, which the next
   * read takes (or finds corrupt).
   */
  #readAhead(pos: number, length: number, used: number, skipped: number): void {
    const capacity = this.#capacity
    const words = this.#words
    this.#ahead.push(this.#copyOut(pos, length))
    let frame = frameSize(length)
    let taken = skipped + frame
    used -= frame
    pos = (pos + frame) & this.#mask
    while (used > 0 && taken < READ_AHEAD) {
      let at = (this.#data + pos) >> 2
      let gap = 0
      if (words[at + 1] === KIND_PADDING) {
        gap = capacity - pos
        if (words[at] !== gap - FRAME_HEADER || gap >= used) break
        at = this.#data >> 2
      }
      const next = words[at]
      frame = frameSize(next)
      const start = gap > 0 ? 0 : pos
      if (words[at + 1] !== KIND_MESSAGE || next <= STAGED_MAX || next > this.#maxMessageSize) break
      if (frame > capacity - start || gap + frame > used) break
      this.#ahead.push(this.#copyOut(start, next))
      taken += gap + frame
      used -= gap + frame
      pos = (start + frame) & this.#mask
    }
    this.#consumed(taken)
  }

  /** The next message read ahead. */
  #nextAhead(): Buffer {
    const ahead = this.#ahead
    const message = ahead[this.#aheadRead++]!
    if (this.#aheadRead === ahead.length) {
      ahead.length = 0
      this.#aheadRead = 0
    }
    return message
  }

  /** Gives `bytes` of the ring back to the producer: r[ring.consume]. */
  #consumed(bytes: number): void {
    this.#head = (this.#head + bytes) >>> 0
    Atomics.store(this.#words, this.#headWord, this.#head)
    this.#published()
  }

  /**
   * Copies `span` bytes of frames at `pos` (the first one checked in the ring, small) into the pool,
   * takes every whole small message frame of the copy, checked again there, to be read in turn.
   */
  #stage(pos: number, span: number, skipped: number): void {
    if (this.#pool.byteLength - this.#poolUsed < span) {
      this.#pool = new ArrayBuffer(POOL_SIZE)
      this.#poolBytes = new Uint8Array(this.#pool)
      this.#poolBuffer = Buffer.from(this.#pool)
      this.#poolWords = new Uint32Array(this.#pool)
      this.#poolUsed = 0
    }
    const from = this.#poolUsed
    this.#poolBytes.set(new Uint8Array(this.#buffer, this.#data + pos, span), from)
    const words = this.#poolWords
    const end = from + span
    let next = from
    while (next + FRAME_HEADER <= end) {
      const length = words[next >> 2]
      const frame = frameSize(length)
      if (words[(next >> 2) + 1] !== KIND_MESSAGE || length > STAGED_MAX || frame > end - next) break
      next += frame
    }
    // The first frame was checked in the ring; if its copy fails, the peer changed it meanwhile.
    if (next === from) this.#fail(corruptError('a frame that changed as it was read'))
    this.#poolUsed = next
    this.#stageRead = from
    this.#stageEnd = next
    this.#consumed(skipped + next - from)
  }

  /** The next message of the batch in the pool, checked as it was taken. */
  #nextStaged(): Buffer {
    const at = this.#stageRead
    const length = this.#poolWords[at >> 2]
    this.#stageRead = at + frameSize(length)
    return Buffer.from(this.#pool, at + FRAME_HEADER, length)
  }
}
