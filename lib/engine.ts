// The wait engine: what watches a doorbell's fd while a wait is pending. Chosen once, as the module
// loads, for every doorbell of this thread.
import * as binding from './native'
import { type CodedError, codedError } from './errors'

/**
 * `'uv'`: a libuv poll handle on Node's own event loop, the fastest; only in Node itself.
 * `'tokio'`: the Rust core's tokio `AsyncFd` on the addon's tokio runtime, each wake delivered
 * through a Node-API threadsafe function; everywhere else (Deno, Bun).
 */
export type Engine = 'uv' | 'tokio'

/** The environment variable that forces an engine: `SHM_DOORBELL_ENGINE=uv` or `=tokio`. */
export const ENGINE_VARIABLE = 'SHM_DOORBELL_ENGINE'

/** The runtime's name when it is not Node itself but loads Node-API addons (Bun, Deno). */
function otherRuntime(): string | undefined {
  if (process.versions.bun) return `Bun ${process.versions.bun}`
  if (process.versions.deno || 'Deno' in globalThis) return `Deno ${process.versions.deno ?? ''}`.trimEnd()
  return undefined
}

function forcedEngine(): string | undefined {
  try {
    return process.env[ENGINE_VARIABLE] || undefined
  } catch {
    // Deno without --allow-env: nothing is forced.
    return undefined
  }
}

function chooseEngine(): Engine {
  const forced = forcedEngine()
  const other = otherRuntime()
  if (forced !== undefined && forced !== 'uv' && forced !== 'tokio') {
    throw codedError(
      new Error(`${ENGINE_VARIABLE}=${forced} names no engine: use 'uv' or 'tokio', or leave it unset`),
      'ERR_DOORBELL_ENGINE_UNKNOWN',
    )
  }
  // libuv is not even looked up outside Node: Bun exports libuv's names as stubs that abort.
  if (forced === 'uv' && other) {
    throw codedError(
      new Error(
        `${ENGINE_VARIABLE}=uv: the uv engine runs on Node.js's own libuv, and this is ${other}: use 'tokio', or leave it unset`,
      ),
      'ERR_DOORBELL_ENGINE_UNAVAILABLE',
    )
  }
  const engine: Engine = forced ?? (other ? 'tokio' : 'uv')
  try {
    binding.useEngine(engine)
  } catch (err) {
    // A Node embedder that does not export libuv still gets a working engine, unless uv was forced.
    if (forced || (err as Partial<CodedError>).code !== 'ERR_DOORBELL_ENGINE_UNAVAILABLE') throw err
    binding.useEngine('tokio')
    return 'tokio'
  }
  return engine
}

/** The engine that watches this thread's doorbells (see {@link Engine}). */
export const engine: Engine = chooseEngine()
