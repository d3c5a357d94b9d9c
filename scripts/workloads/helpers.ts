// What the workloads, the soaks and the tests share: bounds, waiting with a deadline, child
// processes, fd and mapping counts. __test__/helpers.ts re-exports these beside the tests' own.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

/** A bound for things that should take milliseconds; generous so that a busy machine never flakes. */
export const GENEROUS_MS = 10_000

/**
 * The emulator the suite runs under, if any: `npm run test:targets` sets SHM_DOORBELL_TEST_EMULATOR
 * to `qemu-user` for the arm64 suite, where a process runs 10-30 times slower than natively.
 */
export const emulator = process.env.SHM_DOORBELL_TEST_EMULATOR

/** How many times longer {@link within}'s bounds are under an {@link emulator}. */
const EMULATED_SLOWDOWN = emulator === undefined ? 1 : 5

/** The path of a child script of the workloads (scripts/workloads/fixtures/). */
export const workloadFixture = (name: string): string => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url))

/** Open fds, from /dev/fd, which Linux and macOS both have. */
export const openFdCount = (): number => readdirSync('/dev/fd').length

/** Lines of /proc/self/maps (Linux only) that map a region made by SharedRegion.create, which names its memfd so. */
export const regionMappings = (): number =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.includes('shm-doorbell-region')).length

/**
 * The fd count once it is down to `expected`, or after `ms`: a child's stdio pipes may close a
 * turn of the loop after its 'close' event.
 */
export async function fdCountBackTo(expected: number, ms = 1000): Promise<number> {
  const deadline = Date.now() + ms
  let count = openFdCount()
  while (count > expected && Date.now() < deadline) {
    await delay(5)
    count = openFdCount()
  }
  return count
}

/** Rejects if `promise` has not settled within `bound` ms (times EMULATED_SLOWDOWN), naming what was awaited. */
export async function within<T>(promise: Promise<T>, what: string, bound = GENEROUS_MS): Promise<T> {
  const ms = bound * EMULATED_SLOWDOWN
  const timeout = new AbortController()
  try {
    return await Promise.race([
      promise,
      delay(ms, undefined, { signal: timeout.signal }).then(() => {
        throw new Error(`${what}: not settled within ${ms} ms`)
      }),
    ])
  } finally {
    timeout.abort()
  }
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Collects a child's output and resolves when it exits. */
export function exitOf(child: ChildProcess): Promise<Exit> {
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }))
  })
}

/** Runs a Node script to completion. */
export function runNode(args: string[], options: SpawnOptions = {}): Promise<Exit> {
  return exitOf(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options }))
}
