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

function countSyscalls(command, dir) {
  const output = join(dir, 'strace.txt')
  execFileSync('strace', ['-f', '-c', '-o', output, ...command], { stdio: ['ignore', 'ignore', 'inherit'] })
  return parseSummary(readFileSync(output, 'utf8'))
}

/**
 * Syscalls per round trip of `commandFor(rounds)`: the counts of a long run less those of a
 * short one, over the rounds between them, so that start-up and exit do not count.
 * Returns `{ total, calls: { name: { calls, errors } } }`, per round trip.
 */
export function syscallsPerRoundTrip(commandFor, shortRounds, longRounds) {
  const dir = mkdtempSync(join(tmpdir(), 'shm-doorbell-bench-'))
  try {
    const short = countSyscalls(commandFor(shortRounds), dir)
    const long = countSyscalls(commandFor(longRounds), dir)
    const rounds = longRounds - shortRounds
    const calls = {}
    let total = 0
    for (const name of Object.keys(long)) {
      const perRound = (long[name].calls - (short[name]?.calls ?? 0)) / rounds
      if (perRound < 0.05) continue
      calls[name] = { calls: perRound, errors: Math.max(0, long[name].errors - (short[name]?.errors ?? 0)) / rounds }
      total += perRound
    }
    return { total, calls }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
