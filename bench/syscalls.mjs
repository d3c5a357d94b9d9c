// Syscalls per round trip, counted by `strace -f -c` over the host and its guest.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Whether strace can run here (it may be missing, or ptrace may be forbidden). */
export function straceAvailable() {
  try {
    execFileSync('strace', ['-f', '-c', '-o', '/dev/null', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Parses the summary of `strace -c`: `{ name: { calls, errors } }`. */
export function parseSummary(text) {
  const counts = {}
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    const name = fields.at(-1)
    if (fields.length < 5 || !/^\d/.test(fields[0]) || name === 'total') continue
    // % time, seconds, usecs/call, calls, [errors], syscall
    counts[name] = { calls: Number(fields[3]), errors: fields.length > 5 ? Number(fields[4]) : 0 }
  }
  return counts
}

/** Runs `command` under strace; returns the counts and the JSON that the command printed last. */
function countSyscalls(command, dir) {
  const output = join(dir, 'strace.txt')
  const stdout = execFileSync('strace', ['-f', '-c', '-o', output, ...command], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return { counts: parseSummary(readFileSync(output, 'utf8')), result: JSON.parse(stdout.trim().split('\n').at(-1)) }
}

/** Counts `commandFor(short)` and `commandFor(long)`, in a scratch directory. */
function countShortAndLong(commandFor, short, long) {
  const dir = mkdtempSync(join(tmpdir(), 'shm-doorbell-bench-'))
  try {
    return [countSyscalls(commandFor(short), dir), countSyscalls(commandFor(long), dir)]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Each syscall's calls and errors in `long` less those in `short`, over `units`. */
function difference(short, long, units) {
  return Object.fromEntries(
    Object.keys(long).map((name) => [
      name,
      {
        calls: (long[name].calls - (short[name]?.calls ?? 0)) / units,
        errors: Math.max(0, long[name].errors - (short[name]?.errors ?? 0)) / units,
      },
    ]),
  )
}

/**
 * Syscalls per round trip of `commandFor(rounds)`: the counts of a long run less those of a
 * short one, over the rounds between them, so that start-up and exit do not count.
 * Returns `{ total, calls: { name: { calls, errors } } }`, per round trip; calls under 0.05 per
 * round trip are left out of both.
 */
export function syscallsPerRoundTrip(commandFor, shortRounds, longRounds) {
  const [short, long] = countShortAndLong(commandFor, shortRounds, longRounds)
  const calls = Object.fromEntries(
    Object.entries(difference(short.counts, long.counts, longRounds - shortRounds)).filter(
      ([, count]) => count.calls >= 0.05,
    ),
  )
  return { total: Object.values(calls).reduce((sum, count) => sum + count.calls, 0), calls }
}

/**
 * Syscalls per message of a streaming scenario, `commandFor(milliseconds)`, which prints the
 * `messages` it counted: a long run less a short one, over the messages between them. Returns
 * `{ total, messages, calls }`; `total` counts every syscall, `calls` lists those at 0.0001 per
 * message or more.
 */
export function syscallsPerMessage(commandFor, shortMs, longMs) {
  const [short, long] = countShortAndLong(commandFor, shortMs, longMs)
  const messages = long.result.messages - short.result.messages
  if (!(messages > 0)) throw new Error(`the long run counted ${messages} more messages than the short one`)
  const perMessage = difference(short.counts, long.counts, messages)
  // A syscall that the short run made more often (start-up noise) counts as none, not as fewer.
  const total = Object.values(perMessage).reduce((sum, count) => sum + Math.max(0, count.calls), 0)
  const calls = Object.fromEntries(Object.entries(perMessage).filter(([, count]) => count.calls >= 0.0001))
  return { total, messages, calls }
}

/** Whether `perf stat` can count syscall tracepoints here (it may be missing, or not allowed). */
export function perfAvailable() {
  try {
    const output = execFileSync('perf', ['stat', '-x,', '-e', 'raw_syscalls:sys_enter', '--', 'true'], {
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    return output !== undefined
  } catch {
    return false
  }
}

/** Runs `command` under `perf stat`; returns its syscall count and the JSON it printed last. */
function perfCount(command, dir) {
  const output = join(dir, 'perf.csv')
  const stdout = execFileSync('perf', ['stat', '-x,', '-o', output, '-e', 'raw_syscalls:sys_enter', '--', ...command], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = readFileSync(output, 'utf8')
    .split('\n')
    .find((row) => row.includes('raw_syscalls:sys_enter'))
  const count = Number(line?.split(',')[0])
  if (!Number.isFinite(count)) throw new Error(`perf stat counted no syscalls: ${line}`)
  return { count, result: JSON.parse(stdout.trim().split('\n').at(-1)) }
}

/**
 * Syscalls per message of a streaming scenario as the kernel's syscall tracepoint counts them
 * (`perf stat -e raw_syscalls:sys_enter`, children included): no ptrace stop per syscall, so the
 * processes run at their own pace, unlike under strace. A long run less a short one, over the
 * messages between them. Returns `{ total, messages }`.
 */
export function syscallsPerMessageByPerf(commandFor, shortMs, longMs) {
  const dir = mkdtempSync(join(tmpdir(), 'shm-doorbell-bench-'))
  try {
    const short = perfCount(commandFor(shortMs), dir)
    const long = perfCount(commandFor(longMs), dir)
    const messages = long.result.messages - short.result.messages
    if (!(messages > 0)) throw new Error(`the long run counted ${messages} more messages than the short one`)
    return { total: Math.max(0, long.count - short.count) / messages, messages }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
