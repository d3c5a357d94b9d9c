// The engine chosen at load: uv on Node, tokio elsewhere; SHM_DOORBELL_ENGINE forces one, and a
// forced engine that cannot work here is a coded error at load.
import { engine } from 'shm-doorbell'

import { assert, nextLine, runtime, startRole, within } from '../lib.mjs'

/** What loading the package with `SHM_DOORBELL_ENGINE=forced` gives. */
async function loadWith(forced) {
  const { exit, lines } = startRole('engine', 'load', [], { env: { ...process.env, SHM_DOORBELL_ENGINE: forced } })
  const line = await nextLine(lines)
  assert.equal((await within(exit, 'the loader exit')).code, 0)
  return line
}

export async function host() {
  const onNode = runtime.engine === 'uv'
  assert.equal(engine, runtime.engine)
  assert.equal(await loadWith('tokio'), 'engine tokio')
  assert.equal(await loadWith('uv'), onNode ? 'engine uv' : 'error ERR_DOORBELL_ENGINE_UNAVAILABLE')
  assert.equal(await loadWith('libuv'), 'error ERR_DOORBELL_ENGINE_UNKNOWN')
  return `${engine}; forced uv ${onNode ? 'works' : 'is ERR_DOORBELL_ENGINE_UNAVAILABLE'}`
}

/** Loads the package and says which engine it chose, or the code of the error. */
export async function load() {
  try {
    const { Doorbell, engine } = await import('shm-doorbell')
    const [doorbell, handle] = Doorbell.createPair()
    doorbell.close()
    handle.close()
    console.log(`engine ${engine}`)
  } catch (err) {
    console.log(`error ${err.code}`)
  }
}
