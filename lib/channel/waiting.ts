// The sleep and wake protocol of one side of a channel (docs/channel-layout.md, r[wake.*]): the
// waiting flags, polling for a while (spin), sleeping on the doorbell, waking, and ringing a peer
// that sleeps. What to wait for and what to do on waking are the channel's (its `Sleeper`).
import { cancelWait, type Doorbell, type Waiter, waitWith } from '../doorbell'
import { type CodedError, invalidArgType, outOfRange } from '../errors'
import { RX_WAITING_WORD, TX_WAITING_WORD, type Layout } from './layout'

/** The `spin` option: microseconds to poll before sleeping, 0 to 1,000,000. */
export function spinMicroseconds(spin: unknown): number {
  if (spin === undefined) return 0
  if (typeof spin !== 'number') throw invalidArgType('options.spin', 'of type number', spin)
  if (!(spin >= 0 && spin <= 1_000_000)) throw outOfRange('options.spin', '>= 0 && <= 1000000', spin)
  return spin
}

/** What a side waits on behalf of: the channel. */
export interface Sleeper {
  /** Whether a waiting call can go on now (may throw `ERR_CHANNEL_CORRUPT`). */
  ready(): boolean
  /** Serves the waiting calls from what the rings hold; called on waking. */
  pump(): void
  /** The peer is gone: its doorbell end closed, or a ring found it dead. */
  peerGone(): void
  /** The doorbell failed with something other than the peer's death. */
  failed(err: unknown): void
}

/** One side's waiting: its two flags, the peer's two, and its one doorbell wait. */
export class Waiting {
  readonly #words: Uint32Array
  readonly #doorbell: Doorbell
  readonly #sleeper: Sleeper
  readonly #spin: number
  /** This side's flags: waiting for data in the incoming ring, for room in the outgoing one. */
  readonly #dataFlag: number
  readonly #roomFlag: number
  /** The peer's flags: waiting for data in this side's outgoing ring, for room in the incoming one. */
  readonly #peerDataFlag: number
  readonly #peerRoomFlag: number
  /** Whether {@link #wake} waits on the doorbell. */
  #sleeping = false
  /** Set once the channel is closed or corrupt: the flags are no longer touched. */
  #stopped = false
  /**
   * This side's one doorbell wait, made once: a wake runs {@link #woken} straight from the
   * doorbell's callback, with no promise, AbortController or microtask between it and the pump.
   */
  readonly #wake: Waiter = {
    resolve: () => this.#woken(undefined),
    reject: (err) => this.#woken(err as CodedError),
  }

  constructor(layout: Layout, doorbell: Doorbell, spin: number, sleeper: Sleeper) {
    this.#words = layout.words
    this.#doorbell = doorbell
    this.#spin = spin
    this.#sleeper = sleeper
    this.#dataFlag = RX_WAITING_WORD + layout.rx.fields
    this.#roomFlag = TX_WAITING_WORD + layout.tx.fields
    this.#peerDataFlag = RX_WAITING_WORD + layout.tx.fields
    this.#peerRoomFlag = TX_WAITING_WORD + layout.rx.fields
  }

  /** r[wake.notify], after a commit to the outgoing ring: rings the peer if it sleeps for data. */
  notifyData(): void {
    this.#notify(this.#peerDataFlag)
  }

  /** r[wake.room], after a store of the incoming ring's head: rings the peer if it sleeps for room. */
  notifyRoom(): void {
    this.#notify(this.#peerRoomFlag)
  }

  #notify(flag: number): void {
    const words = this.#words
    // Atomics.load, not a plain read: on arm64 only an acquire load stays after the release store of the index.
    if (Atomics.load(words, flag) !== 0 && Atomics.exchange(words, flag, 0) !== 0) {
      if (this.#doorbell.signalNow() === 'PeerDead') this.#sleeper.peerGone()
    }
  }

  /**
   * Waits on the doorbell for what the waiting calls need, or takes the wait back if they need
   * nothing: r[wake.spin], r[wake.wait], r[wake.doorbell].
   */
  sleep(wantData: boolean, wantRoom: boolean): void {
    if (!wantData && !wantRoom) {
      this.cancel()
      return
    }
    if (this.#sleeping || this.#stopped) return
    const words = this.#words
    let ready: boolean
    try {
      ready = this.#spinUntilReady()
      if (!ready) {
        if (wantData) Atomics.store(words, this.#dataFlag, 1)
        if (wantRoom) Atomics.store(words, this.#roomFlag, 1)
        ready = this.#sleeper.ready()
      }
    } catch {
      return // the channel is corrupt, and has failed every waiting call
    }
    if (ready) {
      if (wantData) Atomics.store(words, this.#dataFlag, 0)
      if (wantRoom) Atomics.store(words, this.#roomFlag, 0)
      queueMicrotask(() => this.#sleeper.pump())
      return
    }
    let waiting: boolean
    try {
      waiting = waitWith(this.#doorbell, this.#wake)
    } catch (err) {
      this.#clearFlags()
      if ((err as CodedError).code !== 'ERR_DOORBELL_PEER_DEAD') return this.#sleeper.failed(err)
      this.#sleeper.peerGone()
      waiting = false
    }
    if (waiting) {
      this.#sleeping = true
      return
    }
    // A ring was already there (or the peer is gone): look at both rings again, as a wake does.
    this.#clearFlags()
    queueMicrotask(() => this.#sleeper.pump())
  }

  /** Takes back the doorbell wait when no call needs it any more (so it keeps nothing alive). */
  cancel(): void {
    if (!this.#sleeping) return
    this.#sleeping = false
    cancelWait(this.#doorbell, this.#wake)
    this.#clearFlags()
  }

  /** The channel is closed or corrupt: the wait is taken back, and the flags are left as they are. */
  stop(): void {
    this.#stopped = true
    this.cancel()
  }

  /** The doorbell rang (`err` undefined) or failed: look at both rings (r[wake.doorbell]). */
  #woken(err: CodedError | undefined): void {
    this.#sleeping = false
    if (this.#stopped) return
    this.#clearFlags()
    if (err !== undefined) {
      if (err.code !== 'ERR_DOORBELL_PEER_DEAD') return this.#sleeper.failed(err)
      this.#sleeper.peerGone()
    }
    this.#sleeper.pump()
  }

  /** Clears both waiting flags of this side (none once the region is gone or corrupt). */
  #clearFlags(): void {
    if (this.#stopped) return
    Atomics.store(this.#words, this.#dataFlag, 0)
    Atomics.store(this.#words, this.#roomFlag, 0)
  }

  #spinUntilReady(): boolean {
    if (this.#spin === 0) return false
    const deadline = performance.now() + this.#spin / 1000
    do {
      if (this.#sleeper.ready()) return true
    } while (performance.now() < deadline)
    return false
  }
}
