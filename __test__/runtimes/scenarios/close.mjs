// close() rejects every pending wait with ERR_DOORBELL_CLOSED and frees the fd at once.
import { Doorbell } from 'shm-doorbell'

import { assert, failsWith, within } from '../lib.mjs'

export async function host() {
  const [doorbell, handle] = Doorbell.createPair()
  const pending = [doorbell.wait(), doorbell.wait()]
  doorbell.close()
  for (const wait of pending) await within(failsWith(wait, 'ERR_DOORBELL_CLOSED'), 'the rejection')
  assert.equal(doorbell.fd, -1)
  assert.equal(doorbell.closed, true)
  await failsWith(() => doorbell.signalNow(), 'ERR_DOORBELL_CLOSED')
  await failsWith(doorbell.wait(), 'ERR_DOORBELL_CLOSED')
  doorbell.close()
  handle.close()
  return '2 pending waits rejected'
}
