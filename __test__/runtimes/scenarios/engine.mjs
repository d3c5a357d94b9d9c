// The engine chosen at load: uv on Node, tokio elsewhere; SHM_DOORBELL_ENGINE forces one, and a
// forced engine that cannot work here is a coded error at load.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { engine } from 'shm-doorbell'

import { assert, command, exited, runtime, within } from '../lib.mjs'

const loader = join(dirname(dirname(fileURLToPath(import.meta.url))), 'load.mjs')

/** What loading the package with `SHM_DOORBELL_ENGINE=forced` prints. */
async function loadWith(forced) {
  const [file, ...args] = command
  const child = spawn(file, [...args, loader], {
    env: { ...process.env, SHM_DOORBELL_ENGINE: forced },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  assert.deepEqual(await within(exited(child), 'the loader exit'), { code: 0, signal: null })
  return output.trim()
}

export async function host() {
  const onNode = runtime.engine === 'uv'
  assert.equal(engine, runtime.engine)
  assert.equal(await loadWith('tokio'), 'engine tokio')
  assert.equal(await loadWith('uv'), onNode ? 'engine uv' : 'error ERR_DOORBELL_ENGINE_UNAVAILABLE')
  assert.equal(await loadWith('libuv'), 'error ERR_DOORBELL_ENGINE_UNKNOWN')
  return `${engine}; forced uv ${onNode ? 'works' : 'is ERR_DOORBELL_ENGINE_UNAVAILABLE'}`
}
