// `npm run bench`: runs every scenario, prints the tables, and writes bench/results.json and
// bench/results.svg. Needs the built package (`npm test` or `npm run build`), cargo and a C
// compiler; strace is optional (without it the syscall columns say so).
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { join } from 'node:path'

import { benchDir, buildDir, floorBinary, median, rootDir } from './common.mjs'
import { renderChart, renderTables } from './report.mjs'
import { straceAvailable, syscallsPerRoundTrip } from './syscalls.mjs'

const ROUNDS = 20_000
const WARM_UP = 2_000
const RUNS = 7
const SIDE_RUNS = 3
const STRACE_ROUNDS = [200, 2_200]
const FAN_IN_DOORBELLS = 1000
// Rings per timed batch in the ring-cost scenario: fewer than a pair's send buffer holds.
const RING_BATCH = 4
const IDLE_MS = 5000

const roundTripScenarios = [
  { id: 'doorbell-node', label: 'shm-doorbell, Node ↔ Node, uv engine' },
  { id: 'doorbell-node-tokio', label: 'shm-doorbell, Node ↔ Node, tokio engine' },
  { id: 'doorbell-rust', label: 'shm-doorbell, Node ↔ Rust' },
  { id: 'pipe', label: "Node stdio 'pipe'" },
  { id: 'ipc', label: 'Node child_process IPC' },
  { id: 'floor', label: 'C blocking socketpair (floor)' },
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
  return id === 'floor'
    ? [floorBinary, 'pingpong', String(rounds), String(warmUp)]
    : [process.execPath, join(benchDir, 'roundtrip.mjs'), id, String(rounds), String(warmUp)]
}

function build() {
  if (!existsSync(join(rootDir, 'index.js')) || !existsSync(join(rootDir, 'binding.js'))) {
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
]

/**
 * Round-trip ratios, each the median of the runs' own ratios: the scenarios of one run go back
 * to back, so a change in the machine's load between runs cancels out rather than skewing one side.
 */
function ratios({ roundTrip, syscallsPerRoundTrip: calls }) {
  const byId = Object.fromEntries(roundTrip.map((scenario) => [scenario.id, scenario]))
  const paired = (a, b, key) => median(byId[a].runs.map((run, index) => run[key] / byId[b].runs[index][key]))
  return RATIOS.map(([name, a, b]) => ({
    name,
    p50: paired(a, b, 'p50'),
    p99: paired(a, b, 'p99'),
    syscalls: calls ? calls[a].total / calls[b].total : null,
  }))
}

/** Each goal of issues 3 and 10 with what this run measured; `pass` is null when it could not be measured. */
function goals({ ratios: [vsPipe, vsFloor, , , tokioVsUv], signal, streaming: stream, fanIn: fan, idle: still }) {
  const list = [
    ['round trip p50, Node↔Node / stdio pipe', vsPipe.p50, '≤ 1.0', (v) => v <= 1],
    ['round trip p99, Node↔Node / stdio pipe', vsPipe.p99, '≤ 1.0', (v) => v <= 1],
    ['round trip p50, Node↔Node / C floor', vsFloor.p50, '≤ 1.3', (v) => v <= 1.3],
    ['round trip p99, Node↔Node / C floor', vsFloor.p99, '≤ 1.3', (v) => v <= 1.3],
    ['syscalls per round trip, Node↔Node / stdio pipe', vsPipe.syscalls, '≤ 1.0', (v) => v <= 1],
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

build()
const started = Date.now()
const results = { date: new Date().toISOString(), machine: machine() }
results.settings = { rounds: ROUNDS, warmUp: WARM_UP, runs: RUNS, straceRounds: STRACE_ROUNDS, ringBatch: RING_BATCH }
results.roundTrip = roundTrips()
results.syscallsPerRoundTrip = syscalls()
results.streaming = streaming()
results.signal = signalCost()
results.fanIn = fanIn()
results.idle = idle()
results.ratios = ratios(results)
results.goals = goals(results)
results.seconds = Math.round((Date.now() - started) / 1000)
results.machine.loadAverageAtEnd = loadavg()[0]

process.stdout.write(renderTables(results))
writeFileSync(join(benchDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(join(benchDir, 'results.svg'), renderChart(results))
progress(`wrote bench/results.json and bench/results.svg (${results.seconds} s)`)
