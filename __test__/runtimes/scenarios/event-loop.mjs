// A pending wait keeps the process alive; an idle doorbell, or an unref()'d one with a wait
// pending, does not.
import { setTimeout } from 'node:timers'

import { Doorbell } from 'shm-doorbell'

import { assert, nextLine, startRole, within } from '../lib.mjs'

async function run(role) {
  const { exit, lines } = startRole('event-loop', role)
  const line = await nextLine(lines)
  assert.deepEqual(await within(exit, `the ${role} process exit`), { code: 0, signal: null })
  return line
}

export async function host() {
  assert.equal(await run('held'), 'woken')
  assert.equal(await run('idle'), 'idle')
  return 'held by a pending wait; exits with idle and unref()d doorbells'
}

/** A wait pending for 300 ms, with nothing else to keep the process alive. */
export async function held() {
  const [host, handle] = Doorbell.createPair()
  const guest = Doorbell.fromHandle(handle)
  const ring = guest.signalNow.bind(guest)
  const woken = host.wait().then(() => console.log('woken'))
  // The timer is unref()'d: only the pending wait can keep the process alive until it fires.
  setTimeout(ring, 300).unref()
  await woken
  host.close()
  guest.close()
}

/** Doorbells left open and idle, and a pending wait on an unref()'d one: the process exits. */
export async function idle() {
  const [host, handle] = Doorbell.createPair()
  const guest = Doorbell.fromHandle(handle)
  guest.signalNow()
  await host.wait()
  host
    .unref()
    .wait()
    .then(() => console.log('unexpected ring'))
  console.log('idle')
}
