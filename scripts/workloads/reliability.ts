// The reliability workloads, shared by the ava suite (__test__/reliability.spec.ts,
// __test__/channel.spec.ts) and the soaks (scripts/soak.ts, scripts/channel-soak.ts): the burst
// protocol, peer-death cycles, leak cycles, fd exhaustion and the channel's two-way stream, each with
// real child processes.
import { spawn as spawnChild } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { setTimeout as delay } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'

import { spawn, spawnChannel, type Channel, type Doorbell, type SignalResult } from 'shm-doorbell'

import { exitOf, GENEROUS_MS, runNode, within, workloadFixture, type Exit } from './helpers.ts'

/** The bound: a wait that has not resolved within this is counted as a lost wakeup. */
export const LOST_WAKEUP_MS = 1000

const randomInt = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1))

/** The value below which `fraction` of `values` lie. */
export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]
}

export interface BurstOptions {
  /** Guest processes, each with its own doorbell to this process. */
  guests: number
  /** Bursts in all, shared out among the guests. */
  bursts: number
  /** Longest random delay (ms) before one ring of a burst (host) or an ack (guest), one time in ten. */
  maxDelayMs: number
  /** How long an ack may take before the run fails as hung. */
  hangAfterMs?: number
}

export interface BurstStats {
  bursts: number
  rings: number
  /** Waits for an ack that took longer than {@link LOST_WAKEUP_MS}: lost wakeups by the bound. */
  late: { ms: number; pendingBytes: number }[]
  /** The slowest ack, in ms. */
  maxAckMs: number
}

/**
 * The burst protocol: per burst the host rings k times (k random in 1..50, with random delays),
 * then waits for the guest's ack; the guest waits, drains and acks. A lost wakeup on either side
 * leaves the host's wait pending: it is timed, and the run fails if one hangs.
 */
export async function runBursts(options: BurstOptions): Promise<BurstStats> {
  const { guests, bursts, maxDelayMs, hangAfterMs = GENEROUS_MS } = options
  const stats: BurstStats = { bursts: 0, rings: 0, late: [], maxAckMs: 0 }
  const started = Array.from({ length: guests }, () =>
    spawn(process.execPath, [workloadFixture('burst-guest.cjs'), String(maxDelayMs)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  )
  const exits = started.map(({ child }) => exitOf(child))
  try {
    // Start-up is not a wakeup: each guest rings once when its doorbell is open.
    await within(Promise.all(started.map(({ doorbell }) => doorbell.wait())), 'every guest ready', 60_000)
    const perGuest = Math.ceil(bursts / guests)
    await Promise.all(
      started.map(async ({ doorbell }) => {
        for (let burst = 0; burst < perGuest; burst++) {
          const rings = randomInt(1, 50)
          const pauseBefore = maxDelayMs > 0 && Math.random() < 0.1 ? randomInt(0, rings - 1) : -1
          for (let ring = 0; ring < rings; ring++) {
            if (ring === pauseBefore) await delay(Math.random() * maxDelayMs)
            const result = doorbell.signalNow()
            if (result === 'PeerDead') throw new Error(`a guest died during burst ${burst}`)
          }
          stats.rings += rings
          await awaitAck(doorbell, hangAfterMs, stats)
          stats.bursts++
        }
      }),
    )
  } finally {
    for (const { doorbell } of started) doorbell.close()
  }
  const ends = await within(Promise.all(exits), 'every guest exit')
  const failed = ends.find((end) => end.code !== 0)
  if (failed) throw new Error(`a guest ended with ${failed.code ?? failed.signal}: ${failed.stderr}`)
  return stats
}

async function awaitAck(doorbell: Doorbell, hangAfterMs: number, stats: BurstStats): Promise<void> {
  const start = performance.now()
  const ack = doorbell.wait()
  const late = setTimeout(() => {
    stats.late.push({ ms: LOST_WAKEUP_MS, pendingBytes: doorbell.pendingBytes() })
  }, LOST_WAKEUP_MS)
  try {
    await within(ack, 'the ack of a burst (a lost wakeup)', hangAfterMs)
  } finally {
    clearTimeout(late)
  }
  const ms = performance.now() - start
  stats.maxAckMs = Math.max(stats.maxAckMs, ms)
  if (ms >= LOST_WAKEUP_MS && stats.late.length > 0) stats.late[stats.late.length - 1].ms = ms
}

/** When a peer-death cycle kills its guest. */
export type DeathPhase = 'before-open' | 'while-waiting' | 'while-signalling'
export const DEATH_PHASES: readonly DeathPhase[] = ['before-open', 'while-waiting', 'while-signalling']

export interface DeathResult {
  phase: DeathPhase
  /** How many host waits were pending when the guest was killed. */
  pendingWaits: number
  /** From kill() to the last pending wait's rejection, in ms. */
  latencyMs: number
  /** The error codes the pending waits rejected with. */
  codes: string[]
  /** What signalNow() returned once the waits had rejected. */
  signalAfter: SignalResult
  isPeerDead: boolean
  exit: Exit
}

/**
 * Spawns a guest, kills it with SIGKILL at a random moment of `phase` while 1-3 host waits are
 * pending (and, while signalling, the host rings on every turn of its loop), and reports how the
 * host saw the death. Before the guest opens, the guest is one that never opens its end.
 */
export async function peerDeathCycle(phase: DeathPhase): Promise<DeathResult> {
  // Before it opens, the guest never rings, so the waits can only reject, however late the kill
  // comes under load: a guest that rang once opened would resolve them.
  const mode = phase === 'before-open' ? 'holding' : 'ready'
  const { child, doorbell } = spawn(process.execPath, [workloadFixture('guest.cjs'), mode], { stdio: 'ignore' })
  const exit = exitOf(child)
  try {
    if (phase !== 'before-open') await within(doorbell.wait(), 'the guest rang')
    let ringing = phase === 'while-signalling'
    const ring = (): void => {
      if (ringing && doorbell.signalNow() !== 'PeerDead') setImmediate(ring)
    }
    ring()
    await delay(randomInt(0, phase === 'before-open' ? 5 : 20))
    const settledAt: number[] = []
    const waits = Array.from({ length: randomInt(1, 3) }, () =>
      doorbell.wait().then(
        () => 'resolved',
        (err: NodeJS.ErrnoException) => {
          settledAt.push(performance.now())
          return err.code ?? 'no code'
        },
      ),
    )
    const killedAt = performance.now()
    child.kill('SIGKILL')
    const codes = await within(Promise.all(waits), 'the pending waits after SIGKILL')
    ringing = false
    return {
      phase,
      pendingWaits: waits.length,
      latencyMs: Math.max(...settledAt) - killedAt,
      codes,
      signalAfter: doorbell.signalNow(),
      isPeerDead: doorbell.isPeerDead(),
      exit: await within(exit, 'the killed guest exit'),
    }
  } finally {
    doorbell.close()
    child.kill('SIGKILL')
    await exit.catch(() => {})
  }
}

/**
 * Starts a host process whose guest answers rings in `for await`, kills the host with SIGKILL once
 * they have ping-ponged, and resolves once the guest has exited too, with the wakes it counted.
 */
export async function killHostOfGuest(): Promise<{ hostSignal: NodeJS.Signals | null; wakes: number }> {
  const host = spawnChild(process.execPath, [workloadFixture('dying-host.cjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exit = exitOf(host)
  await within(
    new Promise<void>((resolve) => {
      host.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve())
    }),
    'the host and its guest ready',
  )
  host.kill('SIGKILL')
  // The guest writes to the host's stdout: the pipe closes only once the guest has exited too.
  const { signal, stdout } = await within(exit, 'the host and its guest gone')
  return { hostSignal: signal, wakes: JSON.parse(stdout.slice(stdout.indexOf('{'))).wakes }
}

/**
 * Drops `count` pairs without close() in a worker thread, rings half of them, and resolves once
 * the worker has ended: its environment closes what it dropped, as the garbage collector never does.
 */
export async function dropPairsInWorker(count: number): Promise<void> {
  const worker = new Worker(workloadFixture('drop-worker.cjs'), { workerData: count })
  const [exitCode] = await within(once(worker, 'exit'), 'the dropping worker ends')
  if (exitCode !== 0) throw new Error(`drop-worker.cjs exited with ${exitCode}`)
}

export interface LeakReport {
  kind: string
  count: number
  before: { fds: number; list: string[]; rss: number }
  after: { fds: number; list: string[]; rss: number }
}

/**
 * V8 flags that fix the young generation at 2 x 8 MiB from the start. V8 starts it smaller and
 * doubles it as the bytes that survive its scavenges add up, so when it grows depends on how much each
 * cycle allocates and keeps until the loop turns, not on a leak: on the tokio engine (`new_space` of
 * 8, then 16 MiB) it added 4-8 MiB of RSS somewhere between 100,000 and 500,000 cycles, inside or
 * outside the measured run by chance. Fixed, its size can neither hide nor fake a leak; at 2 x 16 MiB
 * (V8's largest here) RSS still settled by 3-4 MiB in the measured run, at 2 x 8 MiB by 2.4 at most.
 */
const FIXED_YOUNG_GENERATION = ['--min-semi-space-size=8', '--max-semi-space-size=8']

/**
 * Runs `count` cycles of a leak kind ('pairs', 'waits', 'dropped') in a child started with
 * --expose-gc and a young generation of a fixed size.
 */
export async function leakCycles(kind: 'pairs' | 'waits' | 'dropped', count: number): Promise<LeakReport> {
  const { code, stdout, stderr } = await within(
    runNode(['--expose-gc', ...FIXED_YOUNG_GENERATION, workloadFixture('leaks.cjs'), kind, String(count)]),
    `${count} ${kind} cycles`,
    300_000,
  )
  if (code !== 0) throw new Error(`leaks.cjs ${kind} exited with ${code}: ${stderr}`)
  return JSON.parse(stdout)
}

export interface ExhaustReport {
  before: number
  atLimit: number
  held: number
  failure?: { isError: boolean; code: string; syscall: string }
  again: string[]
  freed: number
  after: number
}

/** Runs the exhaustion fixture in a child under `ulimit -n 64`. */
export async function exhaustFds(mode: 'pairs' | 'files'): Promise<ExhaustReport> {
  // bash lowers the limit (soft and hard, so that Node cannot raise it again), then becomes node.
  const shell = spawnChild(
    'bash',
    ['-c', 'ulimit -n 64 && exec "$@"', 'bash', process.execPath, workloadFixture('exhaust.cjs'), mode],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const exit = await within(exitOf(shell), `exhaustion (${mode})`)
  if (exit.code !== 0) throw new Error(`exhaust.cjs ${mode} exited with ${exit.code ?? exit.signal}: ${exit.stderr}`)
  return JSON.parse(exit.stdout)
}

const { receiveStream, sendStream } = createRequire(import.meta.url)('./fixtures/channel-stream.cjs') as {
  sendStream(channel: Channel, count: number, seed: number): Promise<number>
  receiveStream(channel: Channel, count: number, seed: number): Promise<{ received: number; checksum: number }>
}

export interface StreamOptions {
  /** The guest: a command whose args end with `stream COUNT SEED` (channel-guest.cjs, rust-channel-peer). */
  command: string
  args?: readonly string[]
  /** Messages each way. */
  count: number
  seed: number
  /** Bytes of ring per direction; messages are 0 to maxMessageSize bytes. */
  capacity: number
}

export interface StreamReport {
  /** Messages this side received, and the guest's report: what it sent and received, with checksums. */
  received: number
  guest: { sent: number; sentChecksum: number; received: number; receivedChecksum: number }
  /** The checksums the guest's must match: of what this side sent, and of what it received. */
  sentChecksum: number
  receivedChecksum: number
  exit: Exit
  seconds: number
}

/**
 * The stream workload of fixtures/channel-stream.cjs both ways at once between this process and a
 * guest started with spawnChannel: every byte of every message is checked on arrival.
 */
export async function streamBothWays(options: StreamOptions): Promise<StreamReport> {
  const { command, args = [], count, seed, capacity } = options
  const { child, channel } = spawnChannel(command, [...args, 'stream', String(count), String(seed)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    capacity,
  })
  const exited = exitOf(child)
  const startedAt = performance.now()
  try {
    const [sentChecksum, got] = await within(
      Promise.all([sendStream(channel, count, seed), receiveStream(channel, count, seed)]),
      'the stream',
      Math.max(100_000, count / 2),
    )
    const seconds = (performance.now() - startedAt) / 1000
    const exit = await within(exited, 'guest exit')
    const guest =
      exit.code === 0 ? JSON.parse(exit.stdout) : { sent: 0, sentChecksum: 0, received: 0, receivedChecksum: 0 }
    return { received: got.received, guest, sentChecksum, receivedChecksum: got.checksum, exit, seconds }
  } finally {
    channel.close()
  }
}
