import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import test from 'ava'
import { engine } from 'shm-doorbell'

import { fixture } from './helpers.ts'

const run = promisify(execFile)

/** What loading the package prints when `SHM_DOORBELL_ENGINE` is `forced` (unset if undefined). */
async function load(
  forced: string | undefined,
  pretend = 'node',
): Promise<{ engine?: string; code?: string; message?: string }> {
  const env = { ...process.env }
  delete env.SHM_DOORBELL_ENGINE
  if (forced !== undefined) env.SHM_DOORBELL_ENGINE = forced
  const { stdout } = await run(process.execPath, [fixture('engine.cjs'), pretend], { env, timeout: 60_000 })
  return JSON.parse(stdout)
}

test('engine is uv on Node unless SHM_DOORBELL_ENGINE forces tokio', async (t) => {
  t.is(engine, process.env.SHM_DOORBELL_ENGINE === 'tokio' ? 'tokio' : 'uv')
  t.deepEqual(await load(undefined), { engine: 'uv' })
  t.deepEqual(await load(''), { engine: 'uv' })
  t.deepEqual(await load('uv'), { engine: 'uv' })
  t.deepEqual(await load('tokio'), { engine: 'tokio' })
})

test('an unknown SHM_DOORBELL_ENGINE is an error at load, with its code', async (t) => {
  const { code, message } = await load('libuv')
  t.is(code, 'ERR_DOORBELL_ENGINE_UNKNOWN')
  t.regex(message!, /SHM_DOORBELL_ENGINE=libuv names no engine/)
})

test('Bun and Deno get tokio, and forcing uv there is an error at load instead of a libuv call', async (t) => {
  for (const runtime of ['bun', 'deno']) {
    t.deepEqual(await load(undefined, runtime), { engine: 'tokio' })
    t.deepEqual(await load('tokio', runtime), { engine: 'tokio' })
    const { code, message } = await load('uv', runtime)
    t.is(code, 'ERR_DOORBELL_ENGINE_UNAVAILABLE')
    t.regex(message!, runtime === 'bun' ? /this is Bun 1\.4\.5/ : /this is Deno/)
  }
})
