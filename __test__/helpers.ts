// The tests' helpers. Those the soaks share live in scripts/workloads/helpers.ts (scripts import
// nothing from __test__/) and are re-exported here, so that a test imports its helpers from one place.
import { fstatSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

import type { ExecutionContext } from 'ava'
import fc from 'fast-check'
import { type Channel, type SpawnedGuest, spawnChannel } from 'shm-doorbell'

import { type Exit, exitOf, within, workloadFixture } from '../scripts/workloads/helpers.ts'

export {
  type Exit,
  GENEROUS_MS,
  emulator,
  exitOf,
  fdCountBackTo,
  openFdCount,
  regionMappings,
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

/**
 * Against the scribbling guest (channel-guest.cjs `scribble SEED`, one per fast-check seed, 25 runs):
 * calls `step(channel, seed)` until it fails with ERR_CHANNEL_CORRUPT or ERR_DOORBELL_PEER_DEAD
 * (anything else fails the run), then requires the guest to exit 0; at least one run must end
 * corrupt. Logs how the runs ended.
 */
export async function againstScribblingGuest(
  t: ExecutionContext,
  capacity: number,
  step: (channel: Channel, seed: number) => Promise<void>,
): Promise<void> {
  const endings = new Map<string, number>()
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
      const { child, channel } = spawnChannel(
        process.execPath,
        [workloadFixture('channel-guest.cjs'), 'scribble', String(seed)],
        { stdio: ['ignore', 'ignore', 'inherit'], capacity },
      )
      const exit = exitOf(child)
      let ending: string | undefined
      while (ending === undefined) {
        try {
          await step(channel, seed)
        } catch (err) {
          const code = (err as { code?: string }).code
          if (code !== 'ERR_CHANNEL_CORRUPT' && code !== 'ERR_DOORBELL_PEER_DEAD') throw err
          ending = code
        }
      }
      endings.set(ending, (endings.get(ending) ?? 0) + 1)
      if ((await within(exit, 'guest exit')).code !== 0) throw new Error('the guest failed')
      channel.close()
    }),
    { numRuns: 25, includeErrorInReport: true },
  )
  t.true((endings.get('ERR_CHANNEL_CORRUPT') ?? 0) > 0)
  t.log([...endings].map(([code, count]) => `${code} ${count}`).join(', '))
}
