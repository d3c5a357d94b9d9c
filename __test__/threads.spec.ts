// Ends handed to worker threads with intoRawFd(), through workerData, and adopted there.
import { once } from 'node:events'
import { Worker } from 'node:worker_threads'

import test from 'ava'
import { Doorbell, spawn } from 'shm-doorbell'

import { exitOf, fixture, openSocketCount, within, workloadFixture } from './helpers.ts'

interface PeerData {
  mode: 'echo' | 'ping' | 'adopt' | 'handle'
  fd: number
  rounds?: number
}

function threadPeer(workerData: PeerData): { worker: Worker; message: Promise<unknown>; exit: Promise<number> } {
  const worker = new Worker(fixture('thread-peer.cjs'), { workerData })
  const exit = once(worker, 'exit').then(([code]) => code as number)
  const message = Promise.race([
    once(worker, 'message').then(([value]) => value),
    once(worker, 'error').then(([err]) => Promise.reject(err)),
  ])
  return { worker, message, exit }
}

test.serial(
  'the guest end handed to a worker through workerData ping-pongs 1000 times with the main thread',
  async (t) => {
    const socketsBefore = openSocketCount()
    const [host, handle] = Doorbell.createPair()
    const peer = threadPeer({ mode: 'echo', fd: handle.intoRawFd() })
    for (let round = 0; round < 1000; round++) {
      t.is(host.signalNow(), 'Sent')
      await within(host.wait(), `round ${round}`)
    }
    host.close()
    t.deepEqual(await within(peer.message, 'the worker sees the main thread gone'), { wakes: 1000 })
    t.is(await within(peer.exit, 'the worker ends'), 0)
    t.is(openSocketCount(), socketsBefore)
  },
)

test.serial(
  'the host end of a spawned child is handed to a worker, which ping-pongs with the child while the main thread keeps the child',
  async (t) => {
    const { child, doorbell } = spawn(process.execPath, [workloadFixture('guest.cjs'), 'echo'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exit = exitOf(child)
    const peer = threadPeer({ mode: 'ping', fd: doorbell.intoRawFd(), rounds: 1000 })
    t.true(doorbell.closed)
    t.deepEqual(await within(peer.message, 'the worker ping-pongs'), { rounds: 1000 })
    t.is(await within(peer.exit, 'the worker ends'), 0)
    const { code, stdout } = await within(exit, 'the child sees the worker close its end')
    t.is(code, 0)
    t.deepEqual(JSON.parse(stdout), { wakes: 1000 })
  },
)

for (const mode of ['adopt', 'handle'] as const) {
  const what = mode === 'adopt' ? 'Doorbell' : 'DoorbellHandle'
  test.serial(
    `a worker that ends without closing the end it adopted as a ${what} closes it: the peer sees the death`,
    async (t) => {
      const socketsBefore = openSocketCount()
      const [host, handle] = Doorbell.createPair()
      const peer = threadPeer({ mode, fd: handle.intoRawFd() })
      t.is(await within(peer.message, 'the worker adopts the end'), 'adopted')
      t.is(await within(peer.exit, 'the worker ends on its own'), 0)
      await t.throwsAsync(within(host.wait(), 'the wait after the worker ended'), { code: 'ERR_DOORBELL_PEER_DEAD' })
      host.close()
      t.is(openSocketCount(), socketsBefore)
    },
  )
}

test.serial(
  "an end handed to a worker is not the main thread's any more: fromRawFd of it fails there with ERR_DOORBELL_FD_IN_USE while the worker holds it",
  async (t) => {
    const [host, handle] = Doorbell.createPair()
    const fd = handle.intoRawFd()
    const peer = threadPeer({ mode: 'echo', fd })
    host.signalNow()
    await within(host.wait(), 'the worker answers')
    t.throws(() => Doorbell.fromRawFd(fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
    host.close()
    await within(peer.exit, 'the worker ends')
  },
)
