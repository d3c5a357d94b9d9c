// Property-based tests: hostile input to every public function and option never crashes, always
// fails with a coded Error, and never closes an fd that the caller still owns.
import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'

import test from 'ava'
import fc from 'fast-check'
import * as shmDoorbell from 'shm-doorbell'
import { Doorbell } from 'shm-doorbell'

import { anyOp, Outcomes, reflectiveCalls, runOps, spawnCall } from '../scripts/workloads/hostile.ts'
import { fdCountBackTo, openFdCount, regionMappings } from './helpers.ts'

/** All lines of /proc/self/maps (Linux), or undefined where there is none. */
const mappingCount = (): number | undefined =>
  process.platform === 'linux' ? readFileSync('/proc/self/maps', 'utf8').split('\n').length : undefined

const summary = (outcomes: Outcomes): string =>
  [...outcomes.counts]
    .sort((a, b) => b[1] - a[1])
    .map(([code, count]) => `${code} ${count}`)
    .join(', ')

test.serial(
  'hostile calls, in any order (wrong types, huge, negative and NaN fds, foreign, closed and consumed fds, a closed doorbell, abort in every state) return or fail with a coded Error and close no fd the caller owns',
  async (t) => {
    const outcomes = new Outcomes()
    await fc.assert(
      fc.asyncProperty(fc.array(anyOp, { minLength: 1, maxLength: 30 }), async (ops) => {
        const before = openFdCount()
        await runOps(ops, outcomes)
        if (outcomes.uncoded.length > 0) throw outcomes.uncoded[0]
        const after = await fdCountBackTo(before)
        // Fewer is not a leak: the runner may have closed an fd of its own meanwhile.
        if (after > before) throw new Error(`${after} fds open after the run, ${before} before`)
      }),
      { numRuns: 1000, includeErrorInReport: true },
    )
    t.deepEqual(outcomes.uncoded, [])
    t.log(summary(outcomes))
  },
)

test.serial('spawn with a hostile command, args and options fails with a coded Error and leaks no fd', async (t) => {
  const outcomes = new Outcomes()
  await fc.assert(
    fc.asyncProperty(spawnCall, async (call) => {
      const before = openFdCount()
      await call.run(outcomes)
      if (outcomes.uncoded.length > 0) throw outcomes.uncoded[0]
      const after = await fdCountBackTo(before)
      if (after > before) throw new Error(`${after} fds open after the run, ${before} before`)
    }),
    { numRuns: 150, includeErrorInReport: true },
  )
  t.deepEqual(outcomes.uncoded, [])
  t.log(summary(outcomes))
})

test.serial(
  'every static, method and getter of every exported class and kind of instance, called by reflection with hostile arguments (functions, symbols, bigints, huge, negative and NaN numbers, detached buffers and views, throwing getters, Proxies, closed objects, socket paths that exist, are taken, are files or are too long), returns or fails with a coded Error and leaves fds, region mappings and socket files as they were',
  async (t) => {
    const seed = Number(process.env.HOSTILE_SEED ?? Date.now() % 2 ** 31)
    t.log(`seed ${seed} (HOSTILE_SEED=${seed} repeats it)`)
    const outcomes = new Outcomes()
    // The first doorbell starts the engine, which keeps fds of its own.
    for (const end of Doorbell.createPair()) end.close()
    const before = { fds: openFdCount(), regions: regionMappings(), maps: mappingCount() }
    let run = { made: 0, socketFiles: [] as string[] }
    try {
      run = await reflectiveCalls(seed, 5000, outcomes)
    } finally {
      t.log(`${run.made} hostile calls by reflection: ${summary(outcomes)}`)
      // Also when a promise never settled: what was thrown uncoded is the likelier cause.
      t.deepEqual(outcomes.uncoded, [])
    }
    t.true(run.made >= 5000)
    t.deepEqual(run.socketFiles, [], 'every listener unlinked its socket file')
    t.true((await fdCountBackTo(before.fds)) <= before.fds, 'no fd left open')
    // close() unmaps at once, so no region mapping outlives the run.
    t.is(regionMappings(), before.regions, 'no region left mapped')
    t.log(`mappings ${before.maps} -> ${mappingCount()}`)
  },
)

/** The protocol symbols a public object may have: dispose, async dispose, async iteration, util.inspect. */
const PROTOCOL_SYMBOLS = new Set<PropertyKey>([
  Symbol.dispose,
  Symbol.asyncDispose,
  Symbol.asyncIterator,
  inspect.custom,
])

/** Own keys along a prototype chain, from `start` up to the first built-in in `stops`. */
function chainKeys(start: object | null, stops: object[]): PropertyKey[] {
  const keys: PropertyKey[] = []
  for (let level = start; level && !stops.includes(level); level = Object.getPrototypeOf(level) as object | null)
    keys.push(...Reflect.ownKeys(level))
  return keys
}

test('every member reachable on an exported class or its instances is documented (docs/api.md, docs/rendezvous.md) or a protocol symbol: no internal method is callable', (t) => {
  const docs = ['docs/api.md', 'docs/rendezvous.md'].map((path) => readFileSync(path, 'utf8')).join('\n')
  const documented = (key: PropertyKey): boolean =>
    typeof key === 'symbol'
      ? PROTOCOL_SYMBOLS.has(key)
      : new RegExp(`\`[^\`]*\\b${String(key).replace(/[$]/g, '\\$&')}\\b`).test(docs)
  const classes = Object.entries(shmDoorbell as Record<string, unknown>).filter(
    ([, value]) => typeof value === 'function' && Function.prototype.toString.call(value).startsWith('class '),
  ) as [string, { prototype: object }][]
  t.true(classes.length >= 7, classes.map(([name]) => name).join(', '))
  const undocumented = classes.flatMap(([name, cls]) => [
    ...chainKeys(cls, [Function.prototype, Error])
      .filter((key) => !['length', 'name', 'prototype'].includes(key as string) && !documented(key))
      .map((key) => `${name}.${String(key)}`),
    ...chainKeys(cls.prototype, [Object.prototype, Error.prototype])
      .filter((key) => key !== 'constructor' && !documented(key))
      .map((key) => `${name}#${String(key)}`),
  ])
  t.deepEqual(undocumented, [])
})
