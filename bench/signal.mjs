// signalNow() cost: tinybench times batches of signalNow() to a peer process (`floor drain`)
// that reads with blocking reads, as `floor send` does with raw send().
// Prints {"nsPerCall"}: the median batch time divided by the batch size.
import { Bench } from 'tinybench'

import { spawn } from 'shm-doorbell'

import { exited, floorBinary, report } from './common.mjs'

const BATCH = 64

const { child, doorbell } = spawn(floorBinary, ['drain'], { stdio: 'inherit' })
const exit = exited(child)
const bench = new Bench({ time: 2000, warmupTime: 500 })
bench.add(`signalNow() x${BATCH}`, () => {
  for (let call = 0; call < BATCH; call++) doorbell.signalNow()
})
await bench.run()
const { latency } = bench.tasks[0].result
doorbell.close()
await exit
report({ calls: latency.samplesCount * BATCH, nsPerCall: (latency.p50 * 1e6) / BATCH })
