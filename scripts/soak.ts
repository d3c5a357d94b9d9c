// The soak: every reliability workload of scripts/workloads/reliability.ts, mixed, for N seconds, with its own
// child processes (the channel's 10,000,000-message run is `npm run soak:channel`). Prints counts of rounds, bursts, deaths, aborts and errors by code, the
// peer-death latency, and fds, region mappings and RSS at start and end; exits non-zero on a lost
// wakeup (a wait over 1 s), a crash, a hang, an error without a code, an fd leak or a region left mapped.
//   npm run soak -- --seconds N
import { setImmediate as tick } from 'node:timers/promises'
import { parseArgs } from 'node:util'

import fc from 'fast-check'
import { Doorbell } from 'shm-doorbell'

import { fdCountBackTo, openFdCount, regionMappings, within, workloadFixture } from './workloads/helpers.ts'
import { anyOp, Outcomes, reflectiveCalls, runOps } from './workloads/hostile.ts'
import {
  DEATH_PHASES,
  dropPairsInWorker,
  LOST_WAKEUP_MS,
  exhaustFds,
  killHostOfGuest,
  peerDeathCycle,
  percentile,
  runBursts,
  streamBothWays,
} from './workloads/reliability.ts'

const MiB = 2 ** 20
const PEER_DEATH_GOAL_MS = 100

const counts = {
  rounds: new Map<string, number>(),
  bursts: 0,
  rings: 0,
  lostWakeups: [] as string[],
  deaths: new Map<string, number>(),
  hostDeaths: 0,
  aborts: 0,
  cycles: 0,
  reflectiveCalls: 0,
  errors: new Outcomes(),
  channelMessages: 0,
  failures: [] as string[],
}
const deathLatencies: number[] = []
const add = (map: Map<string, number>, key: string, n = 1): void => void map.set(key, (map.get(key) ?? 0) + n)
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]

async function bursts(guests: number): Promise<void> {
  const stats = await runBursts({ guests, bursts: guests === 1 ? 1000 : 2000, maxDelayMs: 2 })
  counts.bursts += stats.bursts
  counts.rings += stats.rings
  for (const late of stats.late) {
    counts.lostWakeups.push(
      `${guests} guests: an ack took ${late.ms.toFixed(0)} ms (${late.pendingBytes} bytes pending)`,
    )
  }
}

async function deaths(): Promise<void> {
  for (let cycle = 0; cycle < 25; cycle++) {
    const result = await peerDeathCycle(pick(DEATH_PHASES))
    add(counts.deaths, result.phase)
    deathLatencies.push(result.latencyMs)
    for (const code of result.codes) counts.errors.record(code)
    if (result.codes.some((code) => code !== 'ERR_DOORBELL_PEER_DEAD') || result.signalAfter !== 'PeerDead') {
      counts.failures.push(
        `${result.phase}: waits ended with ${result.codes}, then a signal gave ${result.signalAfter}`,
      )
    }
  }
}

async function hostDeath(): Promise<void> {
  const { hostSignal, wakes } = await killHostOfGuest()
  counts.hostDeaths++
  if (hostSignal !== 'SIGKILL' || wakes !== 10) counts.failures.push(`host death: ${hostSignal}, ${wakes} wakes`)
}

/** createPair/close and wait/abort in this process, and doorbells dropped in a worker that ends, 1000 of each. */
async function cycles(): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const [host, guest] = Doorbell.createPair()
    host.close()
    guest.close()
  }
  const [host, guest] = Doorbell.createPair()
  for (let i = 0; i < 1000; i++) {
    const abort = new AbortController()
    const waiting = counts.errors.settle(host.wait({ signal: abort.signal }))
    if (i % 16 === 0) await tick()
    abort.abort()
    await within(waiting, 'an aborted wait')
    counts.aborts++
  }
  host.close()
  guest.close()
  await dropPairsInWorker(1000)
  counts.cycles += 3000
}

async function exhaustion(): Promise<void> {
  const report = await exhaustFds(pick(['pairs', 'files'] as const))
  if (report.failure) counts.errors.record(report.failure.code)
  for (const code of report.again) counts.errors.record(code)
  if (report.failure?.code !== 'EMFILE' || report.after !== report.before) {
    counts.failures.push(`exhaustion: ${JSON.stringify(report)}`)
  }
}

async function hostile(): Promise<void> {
  for (const ops of fc.sample(fc.array(anyOp, { minLength: 1, maxLength: 30 }), 20)) await runOps(ops, counts.errors)
  for (const err of counts.errors.uncoded.splice(0))
    counts.failures.push(`hostile input: an error without a code: ${err}`)
}

/** 5,000 calls by reflection of every export with hostile arguments, from a fresh seed (logged if it fails). */
async function reflective(): Promise<void> {
  const seed = (Math.random() * 2 ** 31) >>> 0
  const run = await reflectiveCalls(seed, 5000, counts.errors)
  counts.reflectiveCalls += run.made
  for (const err of counts.errors.uncoded.splice(0))
    counts.failures.push(`hostile calls by reflection (HOSTILE_SEED=${seed}): an error without a code: ${err}`)
  if (run.socketFiles.length > 0)
    counts.failures.push(`hostile calls by reflection (HOSTILE_SEED=${seed}): socket files left: ${run.socketFiles}`)
}

/** The channel's two-way stream with a Node guest, 50,000 messages each way through a 4 KiB ring. */
async function channelStream(): Promise<void> {
  const count = 50_000
  const seed = (Math.random() * 2 ** 32) >>> 0
  const report = await streamBothWays({
    command: process.execPath,
    args: [workloadFixture('channel-guest.cjs')],
    count,
    seed,
    capacity: 4096,
  })
  const { guest } = report
  if (
    report.exit.code !== 0 ||
    report.received !== count ||
    guest.received !== count ||
    guest.receivedChecksum !== report.sentChecksum ||
    guest.sentChecksum !== report.receivedChecksum
  ) {
    counts.failures.push(`channel stream (seed ${seed}): ${JSON.stringify({ ...report, exit: report.exit.code })}`)
  }
  counts.channelMessages += report.received + guest.received
}

const workloads: Record<string, () => Promise<void>> = {
  'bursts (1 guest)': () => bursts(1),
  'bursts (64 guests)': () => bursts(64),
  'peer deaths': deaths,
  'host death': hostDeath,
  'leak cycles': cycles,
  exhaustion,
  'hostile input': hostile,
  'hostile calls by reflection': reflective,
  'channel stream': channelStream,
}

async function settle(): Promise<{ fds: number; regions: number; rss: number }> {
  for (let round = 0; round < 10; round++) {
    globalThis.gc?.()
    await tick()
  }
  const regions = process.platform === 'linux' ? regionMappings() : 0
  return { fds: openFdCount(), regions, rss: process.memoryUsage().rss }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' } } })
  const seconds = Number(values.seconds)
  if (!(seconds > 0)) throw new RangeError(`--seconds must be a positive number, got ${values.seconds}`)
  if (!globalThis.gc) throw new Error('run with node --expose-gc (npm run soak does)')

  // The first doorbell starts napi's tokio runtime, which keeps fds of its own.
  for (const end of Doorbell.createPair()) end.close()
  const start = await settle()
  const startedAt = Date.now()
  const deadline = startedAt + seconds * 1000
  // Each pass runs every workload once, in a random order, so even a short soak covers them all.
  while (Date.now() < deadline) {
    for (const name of fc.sample(
      fc.shuffledSubarray(Object.keys(workloads), { minLength: Object.keys(workloads).length }),
      1,
    )[0]) {
      if (Date.now() >= deadline) break
      add(counts.rounds, name)
      try {
        await workloads[name]()
      } catch (err) {
        counts.failures.push(`${name}: ${(err as Error).stack ?? err}`)
      }
    }
  }
  const elapsed = (Date.now() - startedAt) / 1000
  const end = await settle()
  end.fds = await fdCountBackTo(start.fds, 5000)

  const show = (map: Map<string, number>): string =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .map(([key, n]) => `${key} ${n}`)
      .join(', ')
  const errors = new Map(counts.errors.counts)
  errors.delete('ok')
  const ms = (value: number): string => `${value.toFixed(1)} ms`
  console.log(
    `soak: ${elapsed.toFixed(0)} s (asked ${seconds} s), ${new Date().toISOString()}, node ${process.version}`,
  )
  console.log(`rounds: ${[...counts.rounds.values()].reduce((a, b) => a + b, 0)} (${show(counts.rounds)})`)
  console.log(
    `bursts: ${counts.bursts} (${counts.rings} rings); lost wakeups (waits over ${LOST_WAKEUP_MS} ms): ${counts.lostWakeups.length}`,
  )
  console.log(
    `peer deaths: ${deathLatencies.length} (${show(counts.deaths)}); host deaths seen by a guest: ${counts.hostDeaths}`,
  )
  console.log(
    `peer-death latency (kill to rejection): p50 ${ms(percentile(deathLatencies, 0.5))}, p99 ${ms(percentile(deathLatencies, 0.99))}, ` +
      `max ${ms(Math.max(...deathLatencies))}; over ${PEER_DEATH_GOAL_MS} ms: ${deathLatencies.filter((v) => v > PEER_DEATH_GOAL_MS).length}`,
  )
  console.log(
    `aborts: ${counts.aborts}; leak cycles: ${counts.cycles}; channel messages: ${counts.channelMessages}; hostile calls by reflection: ${counts.reflectiveCalls}`,
  )
  console.log(`errors by code: ${show(errors)}`)
  console.log(
    `fds: ${start.fds} at start, ${end.fds} at end; region mappings: ${start.regions} at start, ${end.regions} at end`,
  )
  console.log(`RSS: ${(start.rss / MiB).toFixed(1)} MiB at start, ${(end.rss / MiB).toFixed(1)} MiB at end`)

  const problems = [...counts.lostWakeups.map((late) => `lost wakeup: ${late}`), ...counts.failures]
  if (end.fds > start.fds) problems.push(`fd leak: ${end.fds - start.fds} fds more than at start`)
  if (end.regions > start.regions) problems.push(`mapping leak: ${end.regions - start.regions} regions still mapped`)
  for (const problem of problems) console.error(`FAIL ${problem}`)
  process.exitCode = problems.length > 0 ? 1 : 0
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
