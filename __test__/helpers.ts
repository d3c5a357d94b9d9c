// The tests' helpers. Those the soaks share live in scripts/workloads/helpers.ts (scripts import
// nothing from __test__/) and are re-exported here, so that a test imports its helpers from one place.
import { fstatSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

import type { ExecutionContext } from 'ava'
import type { SpawnedGuest } from 'shm-doorbell'

import { type Exit, exitOf, within } from '../scripts/workloads/helpers.ts'

export {
  type Exit,
  GENEROUS_MS,
  exitOf,
  fdCountBackTo,
  openFdCount,
  runNode,
  within,
  workloadFixture,
} from '../scripts/workloads/helpers.ts'

/** The path of a child script of the tests (__test__/fixtures/). */
export const fixture = (name: string): string => resolve('__test__/fixtures', name)

/** Open sockets only: unlike other fds, nothing but the code under test opens them during a test. */
export const openSocketCount = (): number =>
  readdirSync('/dev/fd').filter((fd) => {
    try {
      return fstatSync(Number(fd)).isSocket()
    } catch {
      return false // closed between the listing and the look
    }
  }).length

/** 'settled' if `promise` settles within `ms`, else 'pending'. */
export async function stateAfter(promise: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  const settled = promise.then(
    () => 'settled' as const,
    () => 'settled' as const,
  )
  return Promise.race([settled, delay(ms).then(() => 'pending' as const)])
}

/** Rings an echoing guest `rounds` times, each time waiting for its answer, then closes and awaits its exit. */
export async function pingPong(t: ExecutionContext, { child, doorbell }: SpawnedGuest, rounds: number): Promise<Exit> {
  const exit = exitOf(child)
  for (let round = 0; round < rounds; round++) {
    t.is(doorbell.signalNow(), 'Sent')
    await within(doorbell.wait(), `round ${round}`)
  }
  doorbell.close()
  return within(exit, 'child exit')
}
