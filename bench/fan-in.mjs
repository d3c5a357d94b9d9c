// Fan-in and idle cost: `node --expose-gc bench/fan-in.mjs [DOORBELLS] [ROUNDS]`.
// One host holds DOORBELLS doorbells whose peers live in one guest process; each round, every
// host doorbell has a wait pending and the guest rings them all: the time from asking the guest
// (one byte on its stdin) until every wait has resolved. Then, in steady state, what an idle
// doorbell costs: RSS and V8 heap per doorbell (both ends of new pairs in this process, each
// woken once), and the CPU the process uses over a second with them idle and with a wait
// pending on each.
import { spawn as spawnChild } from 'node:child_process'
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

function memory() {
  globalThis.gc()
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heapUsed }
}

async function cpuMicrosOver(ms) {
  const before = process.cpuUsage()
  await delay(ms)
  const used = process.cpuUsage(before)
  return used.user + used.system
}

async function idleCost() {
  // One warm-up batch, so that what is measured is steady state rather than first-use setup.
  const warmUpPairs = createPairs()
  for (const doorbell of [...warmUpPairs.hosts, ...warmUpPairs.handles]) doorbell.close()
  await delay(100)
  const before = memory()
  const { hosts, handles } = createPairs()
  const peers = handles.map((handle) => Doorbell.fromHandle(handle))
  const woken = Promise.all(hosts.map((host) => host.wait()))
  for (const peer of peers) peer.signalNow()
  await woken
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
    idleCpuMicrosPerSecond: idleCpuMicros,
    pendingCpuMicrosPerSecond: pendingCpuMicros,
  }
}

const allWokenMs = await fanIn()
report({ doorbells: count, allWokenMs, ...(await idleCost()) })
