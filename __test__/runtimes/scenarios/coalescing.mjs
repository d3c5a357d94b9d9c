// Rings coalesce: five rings wake one wait, the next wait sleeps until a new ring, and every wait
// pending at a ring resolves.
import { assert, openDoorbell, spawnRole, staysPending, until, within } from '../lib.mjs'

export async function host() {
  const { doorbell, exit } = spawnRole('coalescing', 'guest')
  await until(() => doorbell.pendingBytes() >= 5, 'five rings from the guest')
  await within(doorbell.wait(), 'the wake of five rings')
  assert.equal(doorbell.pendingBytes(), 0)
  const next = [doorbell.wait(), doorbell.wait()]
  await staysPending(next[0], 200)
  doorbell.signalNow() // the guest answers with one ring
  await within(Promise.all(next), 'both waits woken by one ring')
  doorbell.close()
  assert.deepEqual(await within(exit, 'guest exit'), { code: 0, signal: null })
  return '5 rings, 1 wake; 2 waits, 1 ring'
}

export async function guest() {
  const doorbell = openDoorbell()
  for (let ring = 0; ring < 5; ring++) doorbell.signalNow()
  await doorbell.wait()
  doorbell.signalNow()
  await doorbell.wait().catch(() => {}) // until the host closes
  doorbell.close()
}
