import { createRequire } from 'node:module'
import { spawn as spawnChild } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'

import test from 'ava'
import { ARG_NAME, Doorbell, spawn } from 'shm-doorbell'

import { exitOf, fixture, openSocketCount, pingPong, runNode, stateAfter, within, workloadFixture } from './helpers.ts'

test('a Node child started with spawn() ping-pongs 1000 times', async (t) => {
  const guest = spawn(process.execPath, [workloadFixture('guest.cjs'), 'echo'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const { code, stdout } = await pingPong(t, guest, 1000)
  t.is(code, 0)
  t.deepEqual(JSON.parse(stdout), { wakes: 1000 })
})

test('a pending wait sees a child killed with SIGKILL as dead at once', async (t) => {
  const { child, doorbell } = spawn(process.execPath, [workloadFixture('guest.cjs'), 'ready'], { stdio: 'ignore' })
  const exit = exitOf(child)
  await within(doorbell.wait(), 'the child rang')
  const waiting = doorbell.wait()
  t.is(await stateAfter(waiting, 100), 'pending')
  child.kill('SIGKILL')
  await t.throwsAsync(within(waiting, 'wait after SIGKILL'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.true(doorbell.isPeerDead())
  t.is(doorbell.signalNow(), 'PeerDead')
  t.is((await exit).signal, 'SIGKILL')
  doorbell.close()
})

test('spawn gives the child fd 3 with --doorbell-fd 3 after its args, and stdio as given', async (t) => {
  for (const stdio of [undefined, 'pipe', ['ignore', 'pipe', 'pipe']] as const) {
    const { child, doorbell } = spawn(process.execPath, [workloadFixture('guest.cjs'), 'describe', 'spaced'], {
      stdio: stdio as never,
    })
    t.is(child.stdin === null, Array.isArray(stdio), 'stdin is piped unless ignored')
    const exit = exitOf(child)
    await within(doorbell.wait(), 'ring')
    doorbell.close()
    const { code, stdout } = await within(exit, 'child exit')
    t.is(code, 0)
    t.deepEqual(JSON.parse(stdout), { args: ['describe', 'spaced', ARG_NAME, '3'], fd: 3 })
  }
})

test('the child can read --doorbell-fd=N as well', async (t) => {
  const { child, doorbell } = spawn(process.execPath, [workloadFixture('guest.cjs'), 'describe', 'equals'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exit = exitOf(child)
  await within(doorbell.wait(), 'ring')
  doorbell.close()
  const { code, stdout } = await within(exit, 'child exit')
  t.is(code, 0)
  t.is(JSON.parse(stdout).fd, 3)
})

test('spawn closes the parent copy of the guest end: the host sees the child exit as peer death', async (t) => {
  const { child, doorbell } = spawn(process.execPath, ['-e', 'process.exit(0)'], { stdio: 'ignore' })
  await exitOf(child)
  await t.throwsAsync(within(doorbell.wait(), 'wait'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  doorbell.close()
})

test('spawn of a missing command reports the error on the child and the doorbell sees no peer', async (t) => {
  const { child, doorbell } = spawn('/nonexistent/shm-doorbell-guest', { stdio: 'ignore' })
  await t.throwsAsync(exitOf(child), { code: 'ENOENT' })
  await t.throwsAsync(within(doorbell.wait(), 'wait'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  doorbell.close()
})

test('a pending wait keeps the process alive', async (t) => {
  const child = spawnChild(process.execPath, [fixture('keep-alive.cjs'), 'pending'], { stdio: 'pipe' })
  const exit = exitOf(child)
  t.is(await stateAfter(exit, 1500), 'pending')
  child.kill()
  t.is((await exit).signal, 'SIGTERM')
})

test('unref() lets the process exit while a wait is pending', async (t) => {
  const { code, stdout } = await within(runNode([fixture('keep-alive.cjs'), 'unref']), 'exit')
  t.is(code, 0)
  t.is(stdout.trim(), 'started')
})

test('ref() undoes unref(), before or during a pending wait', async (t) => {
  for (const mode of ['unref-then-ref', 'unref-before-wait-then-ref']) {
    const child = spawnChild(process.execPath, [fixture('keep-alive.cjs'), mode], { stdio: 'pipe' })
    const exit = exitOf(child)
    t.is(await stateAfter(exit, 1500), 'pending', mode)
    child.kill()
    await exit
  }
})

test('a doorbell with no pending wait does not keep the process alive, nor does an idle one dropped without close() and collected', async (t) => {
  for (const [mode, output] of [
    ['idle', 'started'],
    ['waited', 'started\nwoken'],
    ['aborted', 'started\nABORT_ERR'],
    ['collected', 'started\nwoken'],
  ]) {
    const { code, stdout } = await within(runNode(['--expose-gc', fixture('keep-alive.cjs'), mode]), `${mode}: exit`)
    t.is(code, 0, mode)
    t.is(stdout.trim(), output, mode)
  }
})

test('waiting costs no CPU, nor does a ring that no wait wants, which stays for the next wait', async (t) => {
  const { code, stdout, stderr } = await within(runNode([fixture('idle-cpu.cjs')]), 'exit')
  t.is(code, 0, stderr)
  const { waitingCpuMicros, unwantedRingCpuMicros, pendingAfterIdle } = JSON.parse(stdout)
  t.true(waitingCpuMicros < 100_000, `${waitingCpuMicros} µs of CPU during a 1 s wait`)
  t.true(unwantedRingCpuMicros < 100_000, `${unwantedRingCpuMicros} µs of CPU while an unwanted ring sat for 1 s`)
  t.is(pendingAfterIdle, 1)
})

for (const kind of ['doorbell', 'handle'] as const) {
  const what = kind === 'doorbell' ? 'Doorbell' : 'unreferenced DoorbellHandle'
  test(`a guest that calls gc() every 50 ms, holding its ${what} only in a module-level const, stays alive for its host`, async (t) => {
    const { child, doorbell } = spawn(process.execPath, ['--expose-gc', fixture('gc-guest.cjs'), kind], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exit = exitOf(child)
    try {
      if (kind === 'doorbell') await within(doorbell.wait(), 'the guest rang')
      await within(
        new Promise<void>((resolve) =>
          child.stdout.on('data', (chunk: Buffer) => chunk.includes('collected') && resolve()),
        ),
        'the guest collected',
      )
      const waiting = doorbell.wait()
      t.is(await stateAfter(waiting, 1500), 'pending', 'the pending wait stays pending for 1.5 s')
      t.false(doorbell.isPeerDead())
      t.is(doorbell.signalNow(), 'Sent')
      child.kill('SIGKILL')
      await t.throwsAsync(within(waiting, 'the wait once the guest is killed'), { code: 'ERR_DOORBELL_PEER_DEAD' })
    } finally {
      child.kill('SIGKILL')
      await exit
      doorbell.close()
    }
  })
}

test('doorbells and handles garbage-collected without close() stay open for their peers, until their thread ends', async (t) => {
  const { code, stdout, stderr } = await within(runNode(['--expose-gc', fixture('gc.cjs')]), 'exit', 30_000)
  t.is(code, 0, stderr)
  const { before, afterGc, alive, afterClose, afterWorker } = JSON.parse(stdout)
  t.is(afterGc, before + 400, 'both ends of 200 pairs are open after the collections')
  t.is(alive, 200, 'the peer of every collected end rings it and does not see it dead')
  t.is(afterClose, before + 200, 'the collected ends stay open once their peers are closed')
  t.is(afterWorker, afterClose, 'the ends a worker dropped are closed as it ends')
})

test('the package loads with require and with import, as one module', async (t) => {
  const { code, stdout, stderr } = await within(runNode([fixture('modules.mjs')]), 'exit')
  t.is(code, 0, stderr)
  t.deepEqual(JSON.parse(stdout), { argName: '--doorbell-fd', sameClass: true })
})

// Serial: the other tests here open sockets too, and the count must see only the worker's.
test.serial(
  'the module loads and works in worker_threads, and a worker can end with a wait pending, closing its sockets',
  async (t) => {
    const socketsBefore = openSocketCount()
    const source = `
    const { parentPort } = require('node:worker_threads')
    const { Doorbell } = require(${JSON.stringify(createRequire(import.meta.url).resolve('shm-doorbell'))})
    ;(async () => {
      const [host, guestHandle] = Doorbell.createPair()
      const guest = Doorbell.fromHandle(guestHandle)
      for (let i = 0; i < 100; i++) {
        const woken = guest.wait()
        host.signalNow()
        await woken
      }
      host.wait()
      parentPort.postMessage('rang 100 times')
    })()
  `
    const worker = new Worker(source, { eval: true })
    const message = await within(new Promise((resolve) => worker.once('message', resolve)), 'worker message')
    t.is(message, 'rang 100 times')
    await within(worker.terminate(), 'worker termination')
    t.is(openSocketCount(), socketsBefore)
    const [host, guest] = Doorbell.createPair()
    const opened = Doorbell.fromHandle(guest)
    opened.signalNow()
    await within(host.wait(), 'wait on the main thread after the worker ended')
    host.close()
    opened.close()
    await delay(10)
  },
)
