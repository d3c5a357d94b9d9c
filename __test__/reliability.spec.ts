// Reliability under peer crashes, load, leaks and fd exhaustion, with real child processes.
// These run at the full counts; `npm run soak` runs the same workloads mixed, for longer.
import test from 'ava'

import { openFdCount } from './helpers.ts'
import {
  DEATH_PHASES,
  LOST_WAKEUP_MS,
  exhaustFds,
  killHostOfGuest,
  leakCycles,
  peerDeathCycle,
  percentile,
  runBursts,
  type DeathResult,
} from '../scripts/workloads/reliability.ts'

const MiB = 2 ** 20

// A lost wakeup leaves the host's wait for an ack pending: runBursts fails the test once one has
// waited 10 s, a bound that a busy machine never reaches; waits over 1 s are logged.

test.serial('no wakeup is lost in 10,000 bursts between two processes, with random delays', async (t) => {
  const stats = await runBursts({ guests: 1, bursts: 10_000, maxDelayMs: 2 })
  t.is(stats.bursts, 10_000)
  t.log(
    `${stats.rings} rings, slowest ack ${stats.maxAckMs.toFixed(1)} ms, ${stats.late.length} over ${LOST_WAKEUP_MS} ms`,
  )
})

test.serial('no wakeup is lost in 10,000 bursts shared by 64 guest processes against one host', async (t) => {
  const stats = await runBursts({ guests: 64, bursts: 10_000, maxDelayMs: 2 })
  t.true(stats.bursts >= 10_000)
  t.log(
    `${stats.rings} rings, slowest ack ${stats.maxAckMs.toFixed(1)} ms, ${stats.late.length} over ${LOST_WAKEUP_MS} ms`,
  )
})

test.serial(
  'over 500 SIGKILL cycles (before the guest opens, while the host waits, while it signals) every pending wait rejects with ERR_DOORBELL_PEER_DEAD, signals return PeerDead and no fd leaks',
  async (t) => {
    const before = openFdCount()
    const results: DeathResult[] = []
    for (let cycle = 0; cycle < 500; cycle++) {
      results.push(await peerDeathCycle(DEATH_PHASES[cycle % DEATH_PHASES.length]))
    }
    for (const result of results) {
      t.true(
        result.codes.every((code) => code === 'ERR_DOORBELL_PEER_DEAD'),
        `${result.phase}: ${result.codes}`,
      )
      t.is(result.signalAfter, 'PeerDead', result.phase)
      t.true(result.isPeerDead, result.phase)
      t.is(result.exit.signal, 'SIGKILL', result.phase)
    }
    t.is(openFdCount(), before)
    const latencies = results.map((result) => result.latencyMs)
    t.log(
      `peer-death latency over ${results.length} kills: p50 ${percentile(latencies, 0.5).toFixed(1)} ms, ` +
        `p99 ${percentile(latencies, 0.99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`,
    )
  },
)

test.serial('a guest in for await ends, and its process exits, when its host is killed', async (t) => {
  t.deepEqual(await killHostOfGuest(), { hostSignal: 'SIGKILL', wakes: 10 })
})

for (const [kind, what] of [
  ['pairs', 'createPair/close'],
  ['waits', 'wait/abort'],
  ['dropped', 'drop-without-close (in workers, which close what they dropped as they end)'],
] as const) {
  test.serial(`100,000 ${what} cycles leave the fd count as it was and RSS within 5 MiB`, async (t) => {
    const { before, after } = await leakCycles(kind, 100_000)
    const changed = [
      ...after.list.filter((fd) => !before.list.includes(fd)),
      ...before.list.filter((fd) => !after.list.includes(fd)).map((fd) => `closed ${fd}`),
    ]
    t.is(after.fds, before.fds, `fds that changed: ${changed.join(', ')}`)
    const growth = after.rss - before.rss
    t.log(`RSS ${(before.rss / MiB).toFixed(1)} -> ${(after.rss / MiB).toFixed(1)} MiB`)
    t.true(growth < 5 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`)
  })
}

for (const [mode, what] of [
  ['pairs', 'doorbells'],
  ['files', 'files opened before the first doorbell'],
] as const) {
  test(`under ulimit -n 64, with the fd table full of ${what}, createPair throws EMFILE and works again once fds are freed`, async (t) => {
    const report = await exhaustFds(mode)
    t.true(report.atLimit >= 60, `only ${report.atLimit} fds open at the limit`)
    t.deepEqual(report.failure, { isError: true, code: 'EMFILE', syscall: 'socketpair' })
    t.deepEqual(report.again, ['EMFILE', 'EMFILE', 'EMFILE'])
    t.is(report.freed, report.before)
    t.is(report.after, report.before)
  })
}
