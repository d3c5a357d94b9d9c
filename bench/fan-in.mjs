// Fan-in and idle cost: `node --expose-gc bench/fan-in.mjs [DOORBELLS] [ROUNDS]`.
// First, in a process that has made only one doorbell pair before: what DOORBELLS idle pairs
// (both ends here, each woken once) cost per doorbell in RSS, in V8 heap, and in native memory
// (the resident size of the malloc heap, where the addon's and Node's per-doorbell allocations go;
// the kernel's socket buffers are not in it), and the CPU used over a second with the doorbells
// idle, then with a wait pending on each. Then the fan-in: one host holds DOORBELLS doorbells whose
// peers live in one guest process; each round, every host doorbell has a wait pending and the
// guest rings them all: the time from asking the guest (one byte on its stdin) until every wait
// has resolved, median over ROUNDS.
import { spawn as spawnChild } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'

import { Doorbell } from 'shm-doorbell'

import { countArg, exited, guestScript, median, report } from './common.mjs'

const count = countArg(2, 1000)
const rounds = countArg(3, 20)
const warmUp = 3

function createPairs() {
  const hosts = []
  const handles = []
  for (let index = 0; index < count; index++) {
    const [host, handle] = Doorbell.createPair()
    hosts.push(host)
    handles.push(handle)
  }
  return { hosts, handles }
}

/** The resident size of the main malloc arena: the `[heap]` mapping in /proc/self/smaps. */
function mallocHeapBytes() {
  let inHeap = false
  let bytes = 0
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]')
    else if (inHeap && line.startsWith('Rss:')) bytes += Number(/(\d+) kB/.exec(line)[1]) * 1024
  }
  return bytes
}

function memory() {
  globalThis.gc()
  globalThis.gc()
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heapUsed, native: mallocHeapBytes() }
}

async function cpuMicrosOver(ms) {
  const before = process.cpuUsage()
  await delay(ms)
  const used = process.cpuUsage(before)
  return used.user + used.system
}

async function wakeEach(hosts, peers) {
  const woken = Promise.all(hosts.map((host) => host.wait()))
  for (const peer of peers) peer.signalNow()
  await woken
}

async function idleCost() {
  // One pair first, so that the runtime and the module's one-time setup are not counted.
  const [firstHost, firstHandle] = Doorbell.createPair()
  const firstPeer = Doorbell.fromHandle(firstHandle)
  await wakeEach([firstHost], [firstPeer])
  firstHost.close()
  firstPeer.close()
  await delay(100)
  const before = memory()
  const { hosts, handles } = createPairs()
  const peers = handles.map((handle) => Doorbell.fromHandle(handle))
  await wakeEach(hosts, peers)
  await delay(100)
  const after = memory()
  const doorbells = 2 * count
  const idleCpuMicros = await cpuMicrosOver(1000)
  const waits = hosts.map((host) => host.wait().catch(() => {}))
  await delay(100)
  const pendingCpuMicros = await cpuMicrosOver(1000)
  for (const doorbell of [...hosts, ...peers]) doorbell.close()
  await Promise.all(waits)
  return {
    rssBytesPerDoorbell: (after.rss - before.rss) / doorbells,
    heapBytesPerDoorbell: (after.heapUsed - before.heapUsed) / doorbells,
    nativeBytesPerDoorbell: (after.native - before.native) / doorbells,
    idleCpuMicrosPerSecond: idleCpuMicros,
    pendingCpuMicrosPerSecond: pendingCpuMicros,
  }
}

async function fanIn() {
  const { hosts, handles } = createPairs()
  const child = spawnChild(process.execPath, [guestScript, 'fanIn', String(count)], {
    stdio: ['pipe', 'ignore', 'inherit', ...handles.map((handle) => handle.fd)],
  })
  const exit = exited(child)
  for (const handle of handles) handle.close()
  const ring = Buffer.from([1])
  const millis = []
  for (let round = 0; round < warmUp + rounds; round++) {
    const woken = Promise.all(hosts.map((host) => host.wait()))
    const start = performance.now()
    child.stdin.write(ring)
    await woken
    if (round >= warmUp) millis.push(performance.now() - start)
  }
  child.stdin.end()
  await exit
  for (const host of hosts) host.close()
  return median(millis)
}

const idle = await idleCost()
report({ doorbells: count, allWokenMs: await fanIn(), ...idle })
