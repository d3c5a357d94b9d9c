// What the runtime scenarios share. Runs on Node, Deno and Bun alike: only node: modules and the
// package as a user installs it.
import assert from 'node:assert/strict'
import { spawn as spawnChild } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { Doorbell, spawn } from 'shm-doorbell'

const here = dirname(fileURLToPath(import.meta.url))
const roleScript = join(here, 'role.mjs')

/** The runtime this scenario runs on, as the runner describes it. */
export const runtime = JSON.parse(process.env.SHM_RUNTIME ?? '{}')

/** The command that starts a script on this runtime: `[node]`, `[deno, run, -A]`, `[bun]`. */
export const command = runtime.command ?? [process.execPath]

/** How long a scenario may wait for anything: generous, as machines are shared. */
export const GENEROUS_MS = 20_000

/** The argv that runs `role` of `scenario` on this runtime. */
export function roleArgv(scenario, role, args = []) {
  return [...command, roleScript, scenario, role, ...args.map(String)]
}

/** Starts `role` of `scenario` on this runtime with a doorbell (`spawn()`); resolves `exit` when it ends. */
export function spawnRole(scenario, role, args = [], options = {}) {
  const [file, ...argv] = roleArgv(scenario, role, args)
  const { child, doorbell } = spawn(file, argv, { stdio: ['ignore', 'inherit', 'inherit'], ...options })
  return { child, doorbell, exit: exited(child) }
}

/** Starts `role` of `scenario` on this runtime without a doorbell, its stdout piped. */
export function startRole(scenario, role, args = [], options = {}) {
  const [file, ...argv] = roleArgv(scenario, role, args)
  const child = spawnChild(file, argv, { stdio: ['ignore', 'pipe', 'inherit'], ...options })
  return { child, exit: exited(child), lines: lines(child.stdout) }
}

/** The guest's doorbell, from `--doorbell-fd`. */
export function openDoorbell() {
  return Doorbell.fromArgv()
}

/** `{ code, signal }` once the child has exited. */
export function exited(child) {
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

/** An async iterator over the lines of a stream. */
async function* lines(stream) {
  stream.setEncoding('utf8')
  let rest = ''
  for await (const chunk of stream) {
    const parts = (rest + chunk).split('\n')
    rest = parts.pop()
    yield* parts
  }
  if (rest) yield rest
}

/** The next line of `lines`, or a failure after GENEROUS_MS. */
export async function nextLine(lines) {
  const { value, done } = await within(lines.next(), 'a line from the child')
  assert.ok(!done, 'the child closed its stdout')
  return value
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** `promise`, or a failure naming `what` after GENEROUS_MS. */
export function within(promise, what, ms = GENEROUS_MS) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Resolves once `condition()` holds, polling every 5 ms. */
export async function until(condition, what) {
  const deadline = Date.now() + GENEROUS_MS
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${GENEROUS_MS} ms`)
    await sleep(5)
  }
}

/** Asserts that `promise` settles as pending-then-still-pending after `ms`. */
export async function staysPending(promise, ms) {
  const state = await Promise.race([
    promise.then(
      () => 'resolved',
      () => 'rejected',
    ),
    sleep(ms).then(() => 'pending'),
  ])
  assert.equal(state, 'pending')
}

/** Asserts that `call` throws (or its promise rejects) with `code`; returns the error. */
export async function failsWith(call, code) {
  let error
  try {
    await (typeof call === 'function' ? call() : call)
  } catch (err) {
    error = err
  }
  assert.ok(error, `expected an error with code ${code}, got none`)
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`)
  return error
}

export { assert }
