// `npm run bench`: runs every scenario, prints the tables, and writes bench/results.json and
// bench/results.svg. Needs the built package (`npm test` or `npm run build`), cargo and a C
// compiler; strace is optional (without it the syscall columns say so), and so is the Channel
// (a build without it runs the rest, and its goals read "not measured").
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { join } from 'node:path'

import { CHANNEL_SPIN_MICROS, OBJECT_SIZE, benchDir, buildDir, floorBinary, median, rootDir } from './common.mjs'
import { renderChart, renderTables } from './report.mjs'
import {
  perfAvailable,
  straceAvailable,
  syscallsPerMessage,
  syscallsPerMessageByPerf,
  syscallsPerRoundTrip,
} from './syscalls.mjs'

const ROUNDS = 20_000
const WARM_UP = 2_000
const RUNS = 7
const SIDE_RUNS = 3
const STRACE_ROUNDS = [200, 2_200]
const FAN_IN_DOORBELLS = 1000
// Rings per timed batch in the ring-cost scenario: fewer than a pair's send buffer holds.
const RING_BATCH = 4
const IDLE_MS = 5000
// One-way streaming: each run streams for STREAM_MS after the receiver's 200 ms warm-up.
const STREAM_MS = 1000
const STREAM_RUNS = 3
const STRACE_STREAM_MS = [300, 1300]
const SMALL = 64
const LARGE = 65536

// `channel: true` marks the scenarios that need the Channel (issue 12), skipped without it.
const allRoundTripScenarios = [
  { id: 'doorbell-node', label: 'shm-doorbell, Node ↔ Node, uv engine' },
  { id: 'doorbell-node-tokio', label: 'shm-doorbell, Node ↔ Node, tokio engine' },
  { id: 'doorbell-rust', label: 'shm-doorbell, Node ↔ Rust' },
  { id: 'pipe', label: "Node stdio 'pipe'" },
  { id: 'ipc', label: 'Node child_process IPC' },
  { id: 'floor', label: 'C blocking socketpair (floor)' },
  { id: 'channel', label: 'Channel, Node ↔ Node, 64 B, asleep', channel: true },
  { id: 'channel-spin', label: `Channel, Node ↔ Node, 64 B, spin ${CHANNEL_SPIN_MICROS} µs`, channel: true },
  { id: 'spin', label: 'C spin ping-pong in shared memory (floor)' },
  { id: 'ipc-value', label: "child_process IPC, a small object (child.send and reply, 'json')" },
  { id: 'ipc-value-advanced', label: "child_process IPC, a small object ('advanced')" },
  {
    id: 'channel-value-spin',
    label: `Channel, a small object (sendValue and reply), spin ${CHANNEL_SPIN_MICROS} µs`,
    channel: true,
  },
]

const allThroughputScenarios = [
  { id: 'channel', label: 'Channel, Node → Node', sizes: [SMALL, LARGE], channel: true },
  {
    id: 'channel-paced',
    label: 'Channel, paced (1 M/s of 64 B, 10,000/s of 64 KiB)',
    sizes: [SMALL, LARGE],
    channel: true,
  },
  {
    id: 'channel-paced-spin',
    label: 'Channel, paced, receiver with spin 100 µs',
    sizes: [SMALL, LARGE],
    channel: true,
  },
  { id: 'pipe', label: "Node stdio 'pipe', framed, a write() per message", sizes: [SMALL, LARGE] },
  { id: 'pipe-batched', label: "Node stdio 'pipe', framed, corked: a writev() per 64", sizes: [SMALL, LARGE] },
  { id: 'ipc', label: "Node child_process IPC, serialization 'advanced'", sizes: [SMALL] },
  { id: 'ring', label: 'C SPSC ring in a memfd, sleep-only doorbell (floor)', sizes: [SMALL, LARGE] },
  {
    id: 'channel-zero-copy',
    label: 'Channel in place: tryReserve + commit → drain views',
    sizes: [SMALL, LARGE],
    channel: true,
  },
  {
    id: 'channel-values',
    label: 'Channel, small objects: trySendValue → tryRecvValue',
    sizes: [OBJECT_SIZE],
    channel: true,
  },
  { id: 'ipc-values', label: "child_process IPC 'advanced', small objects", sizes: [OBJECT_SIZE] },
  { id: 'ipc-values-json', label: "child_process IPC 'json', small objects", sizes: [OBJECT_SIZE] },
]
// Streaming scenarios counted under strace, as [id, size].
const STRACED_STREAMS = [
  ['channel', SMALL],
  ['channel', LARGE],
  ['channel-paced', SMALL],
  ['channel-paced', LARGE],
  ['channel-paced-spin', SMALL],
  ['channel-paced-spin', LARGE],
  ['pipe', SMALL],
  ['pipe-batched', SMALL],
  ['ipc', SMALL],
  ['ring', SMALL],
  ['ring', LARGE],
]

const progress = (message) => process.stderr.write(`${message}\n`)

/** Runs a scenario and returns the JSON it printed last. */
function runJson(command, args) {
  const stdout = execFileSync(command, args, {
    cwd: rootDir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 180_000,
  })
  return JSON.parse(stdout.trim().split('\n').at(-1))
}

const runNode = (script, ...args) => runJson(process.execPath, [join(benchDir, script), ...args.map(String)])

function roundTripCommand(id, rounds, warmUp) {
  if (id === 'floor') return [floorBinary, 'pingpong', String(rounds), String(warmUp)]
  if (id === 'spin') return [floorBinary, 'spin', String(rounds), String(warmUp)]
  return [process.execPath, join(benchDir, 'roundtrip.mjs'), id, String(rounds), String(warmUp)]
}

function throughputCommand(id, size, milliseconds) {
  return id === 'ring'
    ? [floorBinary, 'ring', String(size), String(milliseconds)]
    : [process.execPath, join(benchDir, 'throughput.mjs'), id, String(size), String(milliseconds)]
}

function build() {
  if (!existsSync(join(rootDir, 'index.js')) || !existsSync(join(rootDir, 'lib', 'binding.js'))) {
    throw new Error('shm-doorbell is not built: run `npm test` (or `npm run build`) first')
  }
  mkdirSync(buildDir, { recursive: true })
  progress('building the C floor and the Rust guest')
  execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', floorBinary, join(benchDir, 'floor.c')], {
    stdio: 'inherit',
  })
  execFileSync('cargo', ['build', '--quiet', '--release', '--example', 'rust-guest'], {
    cwd: rootDir,
    stdio: 'inherit',
  })
}

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : ''
  let commit
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: rootDir, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: rootDir,
      encoding: 'utf8',
    })
    commit = dirty ? `${head}-dirty` : head
  } catch {
    commit = undefined
  }
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model,
    cores: cpus().length,
    os: /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osRelease)?.[1],
    kernel: release(),
    node: process.version,
    commit,
    loadAverageAtStart: loadavg()[0],
  }
}

/** Whether the built package has the Channel; without it, its scenarios are left out. */
async function channelBuilt() {
  const shm = await import('shm-doorbell')
  const built = typeof shm.Channel === 'function' && typeof shm.spawnChannel === 'function'
  if (!built) progress('this build has no Channel: its scenarios are left out (the anchors still run)')
  return built
}

function roundTrips() {
  const runs = Object.fromEntries(roundTripScenarios.map(({ id }) => [id, []]))
  // Scenarios take turns, so that a noisy moment on the machine does not fall on one of them only.
  for (let run = 1; run <= RUNS; run++) {
    for (const { id } of roundTripScenarios) {
      const [command, ...args] = roundTripCommand(id, ROUNDS, WARM_UP)
      const result = runJson(command, args)
      progress(`round trip ${id}, run ${run}/${RUNS}: p50 ${result.p50.toFixed(1)} µs, p99 ${result.p99.toFixed(1)} µs`)
      runs[id].push(result)
    }
  }
  return roundTripScenarios.map(({ id, label }) => ({
    id,
    label,
    p50: median(runs[id].map((run) => run.p50)),
    p99: median(runs[id].map((run) => run.p99)),
    rate: median(runs[id].map((run) => run.rate)),
    runs: runs[id],
  }))
}

function syscalls() {
  if (!straceAvailable()) {
    progress('strace is not available: syscalls per round trip are not counted (apt-get install strace)')
    return undefined
  }
  const [shortRounds, longRounds] = STRACE_ROUNDS
  return Object.fromEntries(
    roundTripScenarios.map(({ id }) => {
      progress(`syscalls per round trip: ${id} under strace -f -c`)
      return [id, syscallsPerRoundTrip((rounds) => roundTripCommand(id, rounds, 0), shortRounds, longRounds)]
    }),
  )
}

function throughput() {
  const runs = Object.fromEntries(
    throughputScenarios.flatMap(({ id, sizes }) => sizes.map((size) => [`${id}/${size}`, []])),
  )
  // As for round trips, the scenarios take turns within each run.
  for (let run = 1; run <= STREAM_RUNS; run++) {
    for (const { id, sizes } of throughputScenarios) {
      for (const size of sizes) {
        const [command, ...args] = throughputCommand(id, size, STREAM_MS)
        const result = runJson(command, args)
        progress(
          `streaming ${id}, ${size} B, run ${run}/${STREAM_RUNS}: ${Math.round(result.msgsPerSecond).toLocaleString('en-US')} msgs/s, ${Math.round(result.mbPerSecond).toLocaleString('en-US')} MB/s`,
        )
        runs[`${id}/${size}`].push(result)
      }
    }
  }
  return throughputScenarios.flatMap(({ id, label, sizes }) =>
    sizes.map((size) => {
      const scenarioRuns = runs[`${id}/${size}`]
      return {
        id,
        label,
        size,
        msgsPerSecond: median(scenarioRuns.map((run) => run.msgsPerSecond)),
        mbPerSecond: median(scenarioRuns.map((run) => run.mbPerSecond)),
        runs: scenarioRuns,
      }
    }),
  )
}

/** A count, or `{ total: null, error }` when its runs failed: one scenario does not stop the suite. */
function countOrError(count) {
  try {
    return count()
  } catch (err) {
    progress(`  failed: ${err.message}`)
    return { total: null, error: err.message }
  }
}

function syscallsWhileStreaming() {
  if (!straceAvailable()) {
    progress('strace is not available: syscalls per message are not counted (apt-get install strace)')
    return undefined
  }
  const measured = new Set(throughputScenarios.map(({ id }) => id))
  return STRACED_STREAMS.filter(([id]) => measured.has(id)).map(([id, size]) => {
    progress(`syscalls per message: ${id}, ${size} B, under strace -f -c`)
    const [shortMs, longMs] = STRACE_STREAM_MS
    return {
      id,
      size,
      ...countOrError(() => syscallsPerMessage((ms) => throughputCommand(id, size, ms), shortMs, longMs)),
    }
  })
}

/** The same count by `perf stat` (the syscall tracepoint): no ptrace stop, so nobody is slowed. */
function syscallsWhileStreamingByPerf() {
  if (!perfAvailable()) {
    progress('perf cannot count syscall tracepoints here: the perf column is left out')
    return undefined
  }
  const measured = new Set(throughputScenarios.map(({ id }) => id))
  return STRACED_STREAMS.filter(([id]) => measured.has(id)).map(([id, size]) => {
    progress(`syscalls per message: ${id}, ${size} B, under perf stat -e raw_syscalls:sys_enter`)
    const [shortMs, longMs] = STRACE_STREAM_MS
    return {
      id,
      size,
      ...countOrError(() => syscallsPerMessageByPerf((ms) => throughputCommand(id, size, ms), shortMs, longMs)),
    }
  })
}

function medianOfRuns(runs) {
  return Object.fromEntries(Object.keys(runs[0]).map((key) => [key, median(runs.map((run) => run[key]))]))
}

function streaming() {
  const runs = []
  for (let run = 1; run <= SIDE_RUNS; run++) {
    runs.push(runNode('streaming.mjs'))
    progress(`streaming, run ${run}/${SIDE_RUNS}: ${Math.round(runs.at(-1).wakesPerSecond)} wakes/s`)
  }
  return { ...medianOfRuns(runs), runs }
}

function signalCost() {
  const runs = []
  for (let run = 1; run <= SIDE_RUNS; run++) {
    const signalNowNs = runNode('signal.mjs', RING_BATCH).nsPerCall
    const sendNs = runJson(floorBinary, ['send', '1280000', String(RING_BATCH)]).nsPerCall
    runs.push({ signalNowNs, sendNs, ratio: signalNowNs / sendNs })
    progress(`signalNow(), run ${run}/${SIDE_RUNS}: ${signalNowNs.toFixed(0)} ns; send(): ${sendNs.toFixed(0)} ns`)
  }
  // Each run pairs the two, back to back; the ratio is the median of the runs' ratios.
  return { ...medianOfRuns(runs), runs }
}

function fanIn() {
  progress(`fan-in: ${FAN_IN_DOORBELLS} doorbells`)
  return runJson(process.execPath, ['--expose-gc', join(benchDir, 'fan-in.mjs'), String(FAN_IN_DOORBELLS)])
}

const RENDEZVOUS_ROUNDS = 500

function rendezvous() {
  progress(`rendezvous: ${RENDEZVOUS_ROUNDS} Channel.connect() and net.connect(), in turn`)
  return runNode('rendezvous.mjs', RENDEZVOUS_ROUNDS, 50)
}

function idle() {
  progress(`idle: one pending wait for ${IDLE_MS / 1000} s`)
  return runNode('idle.mjs', IDLE_MS)
}

const RATIOS = [
  ['Node↔Node / stdio pipe', 'doorbell-node', 'pipe'],
  ['Node↔Node / C floor', 'doorbell-node', 'floor'],
  ['Node↔Rust / C floor', 'doorbell-rust', 'floor'],
  ['stdio pipe / C floor', 'pipe', 'floor'],
  ['Node↔Node, tokio / uv engine', 'doorbell-node-tokio', 'doorbell-node'],
  ['Node↔Node, tokio engine / stdio pipe', 'doorbell-node-tokio', 'pipe'],
  ['Channel asleep / doorbell Node↔Node', 'channel', 'doorbell-node'],
  ['Channel asleep / stdio pipe', 'channel', 'pipe'],
  ['Channel with spin / C spin ping-pong', 'channel-spin', 'spin'],
  ["IPC small-object round trip ('json') / Channel values with spin", 'ipc-value', 'channel-value-spin'],
  ["IPC small-object round trip ('advanced') / Channel values with spin", 'ipc-value-advanced', 'channel-value-spin'],
]

/**
 * Round-trip ratios, each the median of the runs' own ratios: the scenarios of one run go back
 * to back, so a change in the machine's load between runs cancels out rather than skewing one side.
 */
function ratios({ roundTrip, syscallsPerRoundTrip: calls }) {
  const byId = Object.fromEntries(roundTrip.map((scenario) => [scenario.id, scenario]))
  const paired = (a, b, key) => median(byId[a].runs.map((run, index) => run[key] / byId[b].runs[index][key]))
  return RATIOS.filter(([, a, b]) => byId[a] && byId[b]).map(([name, a, b]) => ({
    name,
    p50: paired(a, b, 'p50'),
    p99: paired(a, b, 'p99'),
    // undefined without strace; null when the second makes no syscall (the C spin ping-pong).
    syscalls: calls ? (calls[b].total > 0 ? calls[a].total / calls[b].total : null) : undefined,
  }))
}

/** Each goal of issues 3 and 10 with what this run measured; `pass` is null when it could not be measured. */
function doorbellGoals({
  ratios: [vsPipe, vsFloor, , , tokioVsUv],
  signal,
  streaming: stream,
  fanIn: fan,
  idle: still,
}) {
  const list = [
    ['round trip p50, Node↔Node / stdio pipe', vsPipe.p50, '≤ 1.0', (v) => v <= 1],
    ['round trip p99, Node↔Node / stdio pipe', vsPipe.p99, '≤ 1.0', (v) => v <= 1],
    ['round trip p50, Node↔Node / C floor', vsFloor.p50, '≤ 1.3', (v) => v <= 1.3],
    ['round trip p99, Node↔Node / C floor', vsFloor.p99, '≤ 1.3', (v) => v <= 1.3],
    ['syscalls per round trip, Node↔Node / stdio pipe', vsPipe.syscalls ?? null, '≤ 1.0', (v) => v <= 1],
    ['signalNow() / raw send()', signal.ratio, '≤ 1.3', (v) => v <= 1.3],
    ['streaming wakes/s', stream.wakesPerSecond, '≥ 200,000', (v) => v >= 200_000],
    ['streaming rings per wake (coalesced)', stream.ringsPerWake, '> 1', (v) => v > 1],
    ['native bytes per idle doorbell (malloc heap)', fan.nativeBytesPerDoorbell, '< 1,024', (v) => v < 1024],
    ['CPU of 1,000 idle doorbells (µs per s)', fan.idleCpuMicrosPerSecond, '< 1,000 (0.1%)', (v) => v < 1000],
    ['CPU of a pending wait (µs per s)', still.cpuMicros / still.seconds, '< 1,000 (0.1%)', (v) => v < 1000],
    ['round trip p50, Node↔Node, tokio / uv engine (issue 10)', tokioVsUv.p50, '≤ 1.5', (v) => v <= 1.5],
  ]
  return list.map(([goal, measured, target, check]) => ({
    goal,
    measured,
    target,
    pass: measured === null ? null : check(measured),
  }))
}

/**
 * Ratios of streaming figures, each the median of the runs' own ratios (the scenarios of a run go
 * back to back); null when a side was not measured.
 */
function streamingRatio(streams, [a, b], size, key) {
  const find = (id) => streams.find((stream) => stream.id === id && stream.size === size)
  const [first, second] = [find(a), find(b)]
  if (!first || !second) return null
  return median(first.runs.map((run, index) => run[key] / second.runs[index][key]))
}

/** Each goal of issue 12 (the Channel) with what this run measured; `pass` is null when not measured. */
function channelGoals({
  throughput: streams,
  roundTrip,
  ratios: roundTripRatios,
  syscallsPerMessage: calls,
  syscallsPerMessageByPerf: perfCalls,
  rendezvous: meeting,
}) {
  const p50 = roundTrip.find(({ id }) => id === 'channel-spin')?.p50 ?? null
  const asleep = roundTripRatios.find(({ name }) => name === 'Channel asleep / doorbell Node↔Node')?.p50 ?? null
  const entry = (list, id, size) => list?.find((count) => count.id === id && count.size === size)?.total ?? null
  const perMessage = (size, id = 'channel') => entry(calls, id, size)
  const perMessageByPerf = (size, id = 'channel') => entry(perfCalls, id, size)
  const list = [
    [
      '64 B msgs/s, Channel / framed pipe, a write() per message',
      streamingRatio(streams, ['channel', 'pipe'], SMALL, 'msgsPerSecond'),
      '≥ 10',
      (v) => v >= 10,
    ],
    [
      '64 B msgs/s, Channel / framed pipe, corked',
      streamingRatio(streams, ['channel', 'pipe-batched'], SMALL, 'msgsPerSecond'),
      '≥ 10',
      (v) => v >= 10,
    ],
    [
      '64 KiB MB/s, Channel / framed pipe, a write() per message',
      streamingRatio(streams, ['channel', 'pipe'], LARGE, 'mbPerSecond'),
      '≥ 2',
      (v) => v >= 2,
    ],
    [
      '64 KiB MB/s, Channel / framed pipe, corked',
      streamingRatio(streams, ['channel', 'pipe-batched'], LARGE, 'mbPerSecond'),
      '≥ 2',
      (v) => v >= 2,
    ],
    [
      '64 KiB MB/s, Channel / C ring',
      streamingRatio(streams, ['channel', 'ring'], LARGE, 'mbPerSecond'),
      '≥ 0.5',
      (v) => v >= 0.5,
    ],
    ['syscalls per message, Channel streaming 64 B (strace)', perMessage(SMALL), '≤ 0.01', (v) => v <= 0.01],
    ['syscalls per message, Channel streaming 64 KiB (strace)', perMessage(LARGE), '≤ 0.01', (v) => v <= 0.01],
    ['syscalls per message, Channel streaming 64 B (perf)', perMessageByPerf(SMALL), '≤ 0.01', (v) => v <= 0.01],
    ['syscalls per message, Channel streaming 64 KiB (perf)', perMessageByPerf(LARGE), '≤ 0.01', (v) => v <= 0.01],
    ...['channel-paced', 'channel-paced-spin'].flatMap((id) =>
      [SMALL, LARGE].map((size) => [
        `syscalls per message, ${id === 'channel-paced' ? 'paced' : 'paced, receiver with spin'}, ${size === SMALL ? '64 B' : '64 KiB'} (perf)`,
        perMessageByPerf(size, id),
        '≤ 0.01',
        (v) => v <= 0.01,
      ]),
    ),
    [`round trip p50 with spin (${CHANNEL_SPIN_MICROS} µs), µs`, p50, '≤ 5', (v) => v <= 5],
    ['round trip p50 asleep, Channel / doorbell Node↔Node', asleep, '≤ 1.1', (v) => v <= 1.1],
    [
      'connect() to first message, Channel.connect / net.connect + write + read (issue 16)',
      meeting?.ratio ?? null,
      '≤ 2',
      (v) => v <= 2,
    ],
  ]
  return list.map(([goal, measured, target, check]) => ({
    goal,
    measured,
    target,
    pass: measured === null ? null : check(measured),
  }))
}

/**
 * Each goal of issue 17 (zero-copy and values), with what this run measured: `pass` when it meets
 * the goal, `passes` when it reaches the "passes at" figure; null when not measured.
 */
function zeroCopyGoals({ throughput: streams, ratios: roundTripRatios }) {
  const rtt = (name) => roundTripRatios.find((ratio) => ratio.name === name)?.p50 ?? null
  const list = [
    [
      '64 B msgs/s, drain views / C ring',
      streamingRatio(streams, ['channel-zero-copy', 'ring'], SMALL, 'msgsPerSecond'),
      1,
      0.6,
    ],
    [
      '64 KiB MB/s, tryReserve + drain / C ring',
      streamingRatio(streams, ['channel-zero-copy', 'ring'], LARGE, 'mbPerSecond'),
      1,
      0.8,
    ],
    [
      "small objects/s, sendValue → recvValue / IPC 'advanced'",
      streamingRatio(streams, ['channel-values', 'ipc-values'], OBJECT_SIZE, 'msgsPerSecond'),
      10,
      5,
    ],
    [
      "small objects/s, sendValue → recvValue / IPC 'json'",
      streamingRatio(streams, ['channel-values', 'ipc-values-json'], OBJECT_SIZE, 'msgsPerSecond'),
      10,
      5,
    ],
    [
      "small-object round trip p50, IPC child.send and reply ('json') / Channel with spin",
      rtt("IPC small-object round trip ('json') / Channel values with spin"),
      20,
      10,
    ],
    [
      "small-object round trip p50, IPC ('advanced') / Channel with spin",
      rtt("IPC small-object round trip ('advanced') / Channel values with spin"),
      20,
      10,
    ],
  ]
  return list.map(([goal, measured, target, passesAt]) => ({
    goal,
    measured,
    target: `≥ ${target}`,
    passesAt: `≥ ${passesAt}`,
    pass: measured === null ? null : measured >= target,
    passes: measured === null ? null : measured >= passesAt,
  }))
}

build()
const withChannel = await channelBuilt()
const roundTripScenarios = allRoundTripScenarios.filter((scenario) => withChannel || !scenario.channel)
const throughputScenarios = allThroughputScenarios.filter((scenario) => withChannel || !scenario.channel)
const started = Date.now()
const results = { date: new Date().toISOString(), machine: machine() }
results.settings = {
  rounds: ROUNDS,
  warmUp: WARM_UP,
  runs: RUNS,
  straceRounds: STRACE_ROUNDS,
  ringBatch: RING_BATCH,
  streamMs: STREAM_MS,
  streamRuns: STREAM_RUNS,
  straceStreamMs: STRACE_STREAM_MS,
  channelSpinMicros: CHANNEL_SPIN_MICROS,
  channel: withChannel,
}
results.roundTrip = roundTrips()
results.syscallsPerRoundTrip = syscalls()
results.throughput = throughput()
results.syscallsPerMessage = syscallsWhileStreaming()
results.syscallsPerMessageByPerf = syscallsWhileStreamingByPerf()
results.streaming = streaming()
results.signal = signalCost()
results.fanIn = fanIn()
results.idle = idle()
results.rendezvous = withChannel ? rendezvous() : null
results.ratios = ratios(results)
results.goals = doorbellGoals(results)
results.channelGoals = channelGoals(results)
results.zeroCopyGoals = zeroCopyGoals(results)
results.seconds = Math.round((Date.now() - started) / 1000)
results.machine.loadAverageAtEnd = loadavg()[0]

process.stdout.write(renderTables(results))
writeFileSync(join(benchDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(join(benchDir, 'results.svg'), renderChart(results))
progress(`wrote bench/results.json and bench/results.svg (${results.seconds} s)`)
