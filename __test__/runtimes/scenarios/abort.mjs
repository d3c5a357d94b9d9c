// An aborted wait rejects with an AbortError and drains nothing; the doorbell stays usable.
import { Doorbell } from 'shm-doorbell'

import { assert, failsWith, within } from '../lib.mjs'

export async function host() {
  const [host, handle] = Doorbell.createPair()
  const guest = Doorbell.fromHandle(handle)
  const controller = new AbortController()
  const reason = new Error('stop')
  const aborted = host.wait({ signal: controller.signal })
  controller.abort(reason)
  const error = await within(failsWith(aborted, 'ABORT_ERR'), 'the abort')
  assert.equal(error.name, 'AbortError')
  assert.equal(error.cause, reason)
  await within(failsWith(host.wait({ signal: AbortSignal.timeout(20) }), 'ABORT_ERR'), 'the timeout')
  guest.signalNow()
  await failsWith(host.wait({ signal: AbortSignal.abort() }), 'ABORT_ERR')
  assert.equal(host.pendingBytes(), 1)
  await within(host.wait(), 'the ring after the aborts')
  host.close()
  guest.close()
  return 'abort, AbortSignal.timeout and an aborted signal'
}
