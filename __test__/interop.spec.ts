import { existsSync } from 'node:fs'
import { resolve } from 'node:path'

import test from 'ava'
import { spawn } from 'shm-doorbell'

import { exitOf, pingPong, stateAfter, within } from './helpers.ts'

// Built from examples/rust-guest.rs by scripts/prepare-test.mjs: a guest on the crate's own
// `shm_doorbell::doorbell::Doorbell` (tokio AsyncFd), so a peer that is not Node.
const rustGuest = resolve('target/debug/examples/rust-guest')

test.before(() => {
  if (!existsSync(rustGuest)) throw new Error(`${rustGuest} is missing: run \`npm test\`, which builds it`)
})

test('a Rust guest on the crate doorbell ping-pongs 1000 times and exits once the host closes', async (t) => {
  const guest = spawn(rustGuest, ['echo'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const { code, stdout } = await pingPong(t, guest, 1000)
  t.is(code, 0)
  t.deepEqual(JSON.parse(stdout), { wakes: 1000 })
})

test('a pending wait sees a Rust guest killed with SIGKILL as dead at once', async (t) => {
  const { child, doorbell } = spawn(rustGuest, ['echo'], { stdio: 'ignore' })
  const exit = exitOf(child)
  doorbell.signalNow()
  await within(doorbell.wait(), 'the guest answered')
  const waiting = doorbell.wait()
  t.is(await stateAfter(waiting, 100), 'pending')
  child.kill('SIGKILL')
  await t.throwsAsync(within(waiting, 'wait after SIGKILL'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.is(doorbell.signalNow(), 'PeerDead')
  t.is((await exit).signal, 'SIGKILL')
  doorbell.close()
})

test('a ring from a Rust guest that then exits is delivered before its death', async (t) => {
  const { child, doorbell } = spawn(rustGuest, ['once'], { stdio: 'ignore' })
  t.is((await within(exitOf(child), 'child exit')).code, 0)
  await within(doorbell.wait(), 'the ring')
  await t.throwsAsync(within(doorbell.wait(), 'wait'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  doorbell.close()
})

test('rings from a Rust guest that rings flat out coalesce into fewer wakes', async (t) => {
  const { child, doorbell } = spawn(rustGuest, ['flood'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exit = exitOf(child)
  for (let wake = 0; wake < 100; wake++) await within(doorbell.wait(), `wake ${wake}`)
  doorbell.close()
  const { code, stdout } = await within(exit, 'child exit')
  t.is(code, 0)
  const { sent, full } = JSON.parse(stdout) as { sent: number; full: number }
  t.true(sent + full > 100, `${sent + full} rings for 100 wakes`)
})
