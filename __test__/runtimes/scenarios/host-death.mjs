// The guest's pending wait sees its host's death: a middle process hosts the guest's doorbell and
// is SIGKILLed; the guest reports on the stdout it inherited from the middle, then exits.
import { assert, nextLine, openDoorbell, spawnRole, startRole, within } from '../lib.mjs'

export async function host() {
  const { child, exit, lines } = startRole('host-death', 'middle')
  assert.equal(await nextLine(lines), 'guest waiting')
  child.kill('SIGKILL')
  assert.equal((await within(exit, 'the middle exit')).signal, 'SIGKILL')
  assert.equal(await nextLine(lines), 'guest saw ERR_DOORBELL_PEER_DEAD')
  return 'guest saw its host die'
}

/** Starts the guest, says when it waits, then idles until killed. */
export async function middle() {
  const { doorbell } = spawnRole('host-death', 'guest')
  await doorbell.wait()
  console.log('guest waiting')
  setInterval(() => {}, 1000)
}

export async function guest() {
  const doorbell = openDoorbell()
  const pending = doorbell.wait()
  doorbell.signalNow()
  try {
    await pending
    console.log('guest was rung')
  } catch (err) {
    console.log(`guest saw ${err.code}`)
  }
  doorbell.close()
}
