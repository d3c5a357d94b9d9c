// SharedRegion on this runtime: a guest on the same runtime maps the host's region through
// spawn({ region }), both add to one counter a million times each with Atomics.add, and the guest's
// ftruncate fails with EPERM; then close() detaches live views, and bad input gets its codes.
import { SharedRegion } from 'shm-doorbell'

import { assert, failsWith, openDoorbell, spawnRole, within } from '../lib.mjs'

const ADDS = 1_000_000
const STEP = 10_000
/** Int32 slots: the counter, then each side's step (see stepped). */
const COUNTER = 0
const HOST_STEP = 1
const GUEST_STEP = 2
const PATTERN_FROM = 64
const hostByte = (i) => (i * 31 + 7) & 0xff

/** `count` adds in steps of STEP, each begun once the other side has finished the one before. */
function stepped(words, mine, theirs, count) {
  let interleaved = 0
  let last = -2
  for (let step = 0; step * STEP < count; step++) {
    const deadline = Date.now() + 30_000
    for (let spins = 1; Atomics.load(words, theirs) < step; spins++) {
      if (spins % 65536 === 0 && Date.now() > deadline) throw new Error(`the peer did not finish step ${step - 1}`)
    }
    for (let i = step * STEP; i < Math.min(count, (step + 1) * STEP); i++) {
      const old = Atomics.add(words, COUNTER, 1)
      if (i % STEP !== 0 && old !== last + 1) interleaved++
      last = old
    }
    Atomics.store(words, mine, step + 1)
  }
  return interleaved
}

export async function host() {
  const region = SharedRegion.create(4096 * 4)
  const bytes = new Uint8Array(region.buffer)
  for (let i = PATTERN_FROM; i < bytes.length; i++) bytes[i] = hostByte(i)
  const words = new Int32Array(region.buffer)
  const { doorbell, exit } = spawnRole('region', 'guest', [], { region })
  await within(doorbell.wait(), 'the guest mapped the region')
  const started = performance.now()
  const interleaved = stepped(words, HOST_STEP, GUEST_STEP, ADDS)
  assert.deepEqual(await within(exit, 'guest exit'), { code: 0, signal: null })
  const ms = performance.now() - started
  assert.equal(Atomics.load(words, COUNTER), 2 * ADDS)
  assert.equal(region.size, 4096 * 4, 'the guest could not truncate the region')
  let sum = 0
  for (let i = 0; i < bytes.length; i++) sum += bytes[i]
  assert.ok(sum > 0)
  doorbell.close()

  const views = [new Uint8Array(region.buffer), new Int32Array(region.buffer), new BigInt64Array(region.buffer)]
  region.close()
  for (const view of views) assert.equal(view.length, 0)
  assert.equal(views[0][0], undefined)
  await failsWith(() => SharedRegion.create('1'), 'ERR_INVALID_ARG_TYPE')
  await failsWith(() => SharedRegion.create(0), 'ERR_OUT_OF_RANGE')
  await failsWith(() => SharedRegion.fromRawFd(-1), 'ERR_OUT_OF_RANGE')
  await failsWith(() => region.intoRawFd(), 'ERR_DOORBELL_CLOSED')
  return `2,000,000 cross-process Atomics.add exact in ${ms.toFixed(0)} ms (interleaved ${interleaved} times)`
}

/** Checks the host's pattern, rings, adds in step with the host, and tries to truncate the region. */
export async function guest() {
  const doorbell = openDoorbell()
  const region = SharedRegion.fromArgv()
  const bytes = new Uint8Array(region.buffer)
  for (let i = PATTERN_FROM; i < bytes.length; i++) assert.equal(bytes[i], hostByte(i), `byte ${i}`)
  doorbell.signalNow()
  stepped(new Int32Array(region.buffer), GUEST_STEP, HOST_STEP, ADDS)
  const { ftruncateSync } = await import('node:fs')
  await failsWith(() => ftruncateSync(region.fd, 0), 'EPERM')
  region.close()
  doorbell.close()
}
