// A 1,000-round ping-pong between a host and a guest on the same runtime.
import { assert, openDoorbell, spawnRole, within } from '../lib.mjs'

const ROUNDS = 1000

export async function host() {
  const { doorbell, exit } = spawnRole('ping-pong', 'guest')
  const micros = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now()
    assert.notEqual(doorbell.signalNow(), 'PeerDead')
    await within(doorbell.wait(), `answer to ring ${round}`)
    micros.push((performance.now() - start) * 1000)
  }
  doorbell.close()
  assert.deepEqual(await within(exit, 'guest exit'), { code: 0, signal: null })
  micros.sort((a, b) => a - b)
  return `${ROUNDS} round trips, p50 ${micros[ROUNDS / 2].toFixed(1)} µs`
}

/** Answers every ring until the host closes its end. */
export async function guest() {
  const doorbell = openDoorbell()
  for await (const _ of doorbell) doorbell.signalNow()
  doorbell.close()
}
