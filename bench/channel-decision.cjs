// Where the channel's ring runs: what a message costs in the JS ring, against what one native call
// costs, in one process (README, Channel: "Where the ring runs"). Needs the built package.
//
//   node bench/channel-decision.cjs [count]
const { SharedRegion } = require('..')
const { createLocalPair } = require('../lib/channel.js')

const count = Number(process.argv[2] ?? 2_000_000)

/** The median of 5 runs of `body`, in ns per call. */
function time(name, body) {
  const runs = []
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint()
    body()
    runs.push(Number(process.hrtime.bigint() - start) / count)
  }
  runs.sort((a, b) => a - b)
  console.log(`| ${name} | ${runs[2].toFixed(0)} |`)
}

const region = SharedRegion.create(4096)
const [host, guest] = createLocalPair({ capacity: 1 << 20 })
const message = Buffer.alloc(64, 1)
console.log(`| what (median of 5 runs of ${count}) | ns per call |\n| --- | ---: |`)
time('`trySend` of 64 B then `tryRecv`, in batches of 1,000 (ns per message)', () => {
  for (let index = 0; index < count; index++) {
    host.trySend(message)
    if (index % 1000 === 999) while (guest.tryRecv());
  }
})
time('`trySend` of 64 B then `tryRecv`, one by one (ns per message)', () => {
  for (let index = 0; index < count; index++) {
    host.trySend(message)
    guest.tryRecv()
  }
})
time('`Buffer.allocUnsafe(64)`', () => {
  for (let index = 0; index < count; index++) Buffer.allocUnsafe(64)
})
let sum = 0
time('one napi-rs class call (`SharedRegion.size`)', () => {
  for (let index = 0; index < count; index++) sum += region.size
})
region.close()
host.close()
guest.close()
