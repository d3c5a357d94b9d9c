// Streaming wakeups: the Rust guest rings as fast as it can while this host loops on `await wait()`.
//   node bench/streaming.mjs [MILLISECONDS]
// Prints {"wakesPerSecond","ringsPerWake","sentPerWake","cpuMicrosPerWake"}; rings per wake count
// every ring the guest made (sent, or coalesced into a full buffer) over the whole run.
import { spawn } from 'shm-doorbell'

import { countArg, exited, report, rustGuestBinary } from './common.mjs'

const measureMs = countArg(2, 2000)
const warmUpMs = 300

const { child, doorbell } = spawn(rustGuestBinary, ['flood'], { stdio: ['ignore', 'pipe', 'inherit'] })
const exit = exited(child)

async function wakeFor(ms) {
  let wakes = 0
  const end = performance.now() + ms
  while (performance.now() < end) {
    await doorbell.wait()
    wakes++
  }
  return wakes
}

const warmUpWakes = await wakeFor(warmUpMs)
const cpuBefore = process.cpuUsage()
const start = performance.now()
const wakes = await wakeFor(measureMs)
const seconds = (performance.now() - start) / 1000
const cpu = process.cpuUsage(cpuBefore)
doorbell.close()
const { sent, full } = JSON.parse(await exit)

const allWakes = warmUpWakes + wakes
report({
  wakesPerSecond: wakes / seconds,
  ringsPerWake: (sent + full) / allWakes,
  sentPerWake: sent / allWakes,
  cpuMicrosPerWake: (cpu.user + cpu.system) / wakes,
})
