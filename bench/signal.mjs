// signalNow() cost: tinybench times batches of signalNow() to the other end of the pair, which
// this process drains between batches (untimed) with plain read()s, so that no peer is woken;
// `floor send` does the same with raw send(). Prints {"nsPerCall"}: median batch time / batch.
import { readSync } from 'node:fs'

import { Bench } from 'tinybench'

import { Doorbell } from 'shm-doorbell'

import { countArg, report } from './common.mjs'

// Fewer than a pair's send buffer holds (six rings on Linux), so that every call sends.
const BATCH = countArg(2, 4)

const [doorbell, peer] = Doorbell.createPair()
const buffer = Buffer.alloc(4096)

/** Reads the batch's bytes back: exactly as many as were sent, so the read never waits. */
function drainPeer() {
  for (let left = BATCH; left > 0;) left -= readSync(peer.fd, buffer, 0, left, null)
}

const bench = new Bench({ time: 2000, warmupTime: 500 })
bench.add(
  `signalNow() x${BATCH}`,
  () => {
    for (let call = 0; call < BATCH; call++) doorbell.signalNow()
  },
  { afterEach: drainPeer },
)
await bench.run()
const { latency } = bench.tasks[0].result
doorbell.close()
peer.close()
report({ calls: latency.samplesCount * BATCH, nsPerCall: (latency.p50 * 1e6) / BATCH })
