// What the scenario scripts share: paths, statistics, and how a scenario reports.
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const benchDir = dirname(fileURLToPath(import.meta.url))
export const rootDir = dirname(benchDir)
export const buildDir = join(benchDir, 'build')
export const guestScript = join(benchDir, 'guest.mjs')
export const floorBinary = join(buildDir, 'floor')
export const rustGuestBinary = join(rootDir, 'target', 'release', 'examples', 'rust-guest')

/** The value at quantile `q` of `values`, which this sorts. */
export function quantile(values, q) {
  values.sort((a, b) => a - b)
  return values[Math.min(values.length - 1, Math.floor(q * values.length))]
}

export const median = (values) => quantile([...values], 0.5)

/** Reads a count (a non-negative integer) from argv[index], or `fallback` when it is absent. */
export function countArg(index, fallback) {
  const value = process.argv[index] === undefined ? fallback : Number(process.argv[index])
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`argument ${index} must be a count`)
  return value
}

/** A scenario's result: one JSON line on stdout, which bench/run.mjs reads. */
export function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

/** Resolves when `child` has exited, with its whole stdout. */
export async function exited(child) {
  let stdout = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  // Not 'close': a parent's disconnect() from an IPC child keeps 'close' from ever firing.
  const [[code, signal]] = await Promise.all([once(child, 'exit'), child.stdout && once(child.stdout, 'end')])
  if (code !== 0) throw new Error(`${child.spawnfile} exited with ${code ?? signal}`)
  return stdout
}
