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
  const total = Object.values(perMessage).reduce((sum, count) => sum + count.calls, 0)
  const calls = Object.fromEntries(Object.entries(perMessage).filter(([, count]) => count.calls >= 0.0001))
  return { total, messages, calls }
}
