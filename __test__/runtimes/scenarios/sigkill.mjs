// A SIGKILLed guest is seen by the host's pending wait.
import { assert, failsWith, openDoorbell, spawnRole, within } from '../lib.mjs'

export async function host() {
  const { child, doorbell, exit } = spawnRole('sigkill', 'guest')
  await within(doorbell.wait(), 'the guest starting')
  const pending = doorbell.wait()
  const killed = performance.now()
  child.kill('SIGKILL')
  await within(failsWith(pending, 'ERR_DOORBELL_PEER_DEAD'), 'the rejection of the pending wait')
  const latency = performance.now() - killed
  assert.equal(doorbell.isPeerDead(), true)
  assert.equal(doorbell.signalNow(), 'PeerDead')
  assert.equal((await within(exit, 'guest exit')).signal, 'SIGKILL')
  doorbell.close()
  return `pending wait rejected ${latency.toFixed(1)} ms after kill()`
}

/** Says it is up, then idles until killed. */
export async function guest() {
  const doorbell = openDoorbell()
  doorbell.signalNow()
  setInterval(() => {}, 1000)
}
