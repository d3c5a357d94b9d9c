// Property-based tests: hostile input to every public function and option never crashes, always
// fails with a coded Error, and never closes an fd that the caller still owns.
import test from 'ava'
import fc from 'fast-check'
import { Doorbell } from 'shm-doorbell'

import { anyOp, Outcomes, reflectiveCalls, runOps, spawnCall } from '../scripts/workloads/hostile.ts'
import { fdCountBackTo, openFdCount } from './helpers.ts'

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
  'every static, method and getter of every exported class and kind of instance, called by reflection with hostile arguments (functions, symbols, bigints, huge, negative and NaN numbers, detached buffers and views, throwing getters, Proxies, closed objects), returns or fails with a coded Error and leaves fds flat',
  async (t) => {
    const seed = Number(process.env.HOSTILE_SEED ?? Date.now() % 2 ** 31)
    t.log(`seed ${seed} (HOSTILE_SEED=${seed} repeats it)`)
    const outcomes = new Outcomes()
    // The first doorbell starts the engine, which keeps fds of its own.
    for (const end of Doorbell.createPair()) end.close()
    const before = openFdCount()
    let calls = 0
    try {
      calls = await reflectiveCalls(seed, 5000, outcomes)
    } finally {
      t.log(`${calls} hostile calls by reflection: ${summary(outcomes)}`)
      // Also when a promise never settled: what was thrown uncoded is the likelier cause.
      t.deepEqual(outcomes.uncoded, [])
    }
    t.true(calls >= 5000)
    t.true((await fdCountBackTo(before)) <= before, 'no fd left open')
  },
)
