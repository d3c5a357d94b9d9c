// Idle: the CPU this process uses over a few seconds with one wait pending and nothing ringing.
//   node bench/idle.mjs [MILLISECONDS]
// Prints {"seconds","cpuMicros"} (all threads: user + system).
import { setTimeout as delay } from 'node:timers/promises'

import { Doorbell } from 'shm-doorbell'

import { countArg, report } from './common.mjs'

const ms = countArg(2, 5000)
const [host, handle] = Doorbell.createPair()
const waiting = host.wait().catch(() => {})
await delay(100)
const before = process.cpuUsage()
await delay(ms)
const used = process.cpuUsage(before)
host.close()
handle.close()
await waiting
report({ seconds: ms / 1000, cpuMicros: used.user + used.system })
