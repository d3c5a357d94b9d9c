import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { fstatSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

import type { ExecutionContext } from 'ava'
import type { SpawnedGuest } from 'shm-doorbell'

/** A bound for things that should take milliseconds; generous so that a busy machine never flakes. */
export const GENEROUS_MS = 10_000

export const fixture = (name: string): string => resolve('__test__/fixtures', name)

/** Open fds, from /dev/fd, which Linux and macOS both have. */
export const openFdCount = (): number => readdirSync('/dev/fd').length

/** Open sockets only: unlike other fds, nothing but the code under test opens them during a test. */
export const openSocketCount = (): number =>
  readdirSync('/dev/fd').filter((fd) => {
    try {
      return fstatSync(Number(fd)).isSocket()
    } catch {
      return false // closed between the listing and the look
    }
  }).length

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

/** Rejects if `promise` has not settled within `ms`, naming what was awaited. */
export async function within<T>(promise: Promise<T>, what: string, ms = GENEROUS_MS): Promise<T> {
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

/** 'settled' if `promise` settles within `ms`, else 'pending'. */
export async function stateAfter(promise: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  const settled = promise.then(
    () => 'settled' as const,
    () => 'settled' as const,
  )
  return Promise.race([settled, delay(ms).then(() => 'pending' as const)])
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

/** Rings an echoing guest `rounds` times, each time waiting for its answer, then closes and awaits its exit. */
export async function pingPong(t: ExecutionContext, { child, doorbell }: SpawnedGuest, rounds: number): Promise<Exit> {
  const exit = exitOf(child)
  for (let round = 0; round < rounds; round++) {
    t.is(doorbell.signalNow(), 'Sent')
    await within(doorbell.wait(), `round ${round}`)
  }
  doorbell.close()
  return within(exit, 'child exit')
}
