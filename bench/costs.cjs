// What one message of issue 17's scenarios costs in one process, step by step, and the V8 operations
// those steps are made of: why the in-place and value figures of `npm run bench` are where they are
// (docs/benchmarks.md, "Zero-copy and values"). Needs the built package.
//
//   node bench/costs.cjs [count]
const { SharedRegion } = require('..')
const { createLocalPair } = require('../lib/channel.js')

const count = Number(process.argv[2] ?? 1_000_000)
const BATCH = 1000

/** The median of 5 runs of `body`, in ns per call; what `body` returns is kept, so that its work is not dropped. */
function time(name, body) {
  const runs = []
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint()
    sum += body()
    runs.push(Number(process.hrtime.bigint() - start) / count)
  }
  runs.sort((a, b) => a - b)
  console.log(`| ${name} | ${runs[2].toFixed(1)} |`)
}

/** The median of 5 runs, in ns per message, of `send` for BATCH messages then `receive` for them, each timed alone. */
function timeSides(name, send, receive) {
  const sends = []
  const receives = []
  for (let run = 0; run < 5; run++) {
    let sending = 0n
    let receiving = 0n
    for (let done = 0; done < count; done += BATCH) {
      const start = process.hrtime.bigint()
      send(done)
      const sent = process.hrtime.bigint()
      receive()
      receiving += process.hrtime.bigint() - sent
      sending += sent - start
    }
    sends.push(Number(sending) / count)
    receives.push(Number(receiving) / count)
  }
  sends.sort((a, b) => a - b)
  receives.sort((a, b) => a - b)
  console.log(`| ${name}: the sender | ${sends[2].toFixed(1)} |`)
  console.log(`| ${name}: the receiver | ${receives[2].toFixed(1)} |`)
}

/** The small object of the value scenarios (bench/common.mjs). */
const smallObject = (sequence) => ({
  id: sequence,
  name: `object ${sequence}`,
  tags: ['alpha', 'beta', 'gamma'],
  at: new Date(1_700_000_000_000 + sequence),
})

let sum = 0
const [host, guest] = createLocalPair({ capacity: 1 << 20 })
const take = (view) => {
  sum += view[0]
}
console.log(`| what (median of 5 runs of ${count}) | ns |\n| --- | ---: |`)
timeSides(
  '64 B in place, `tryReserve` + 4 bytes + `commit`, then `drain`',
  (first) => {
    for (let sequence = first; sequence < first + BATCH; sequence++) {
      const view = host.tryReserve(64)
      view[0] = sequence
      view[1] = sequence >>> 8
      view[2] = sequence >>> 16
      view[3] = sequence >>> 24
      host.commit()
    }
  },
  () => guest.drain(take),
)
const objects = Array.from({ length: BATCH }, (_, index) => smallObject(index))
timeSides(
  'a small object, `trySendValue`, then `tryRecvValue`',
  () => {
    for (const object of objects) host.trySendValue(object)
  },
  () => {
    while (guest.tryRecvValue() !== undefined);
  },
)
time('making the small object', () => {
  let ids = 0
  for (let index = 0; index < count; index++) ids += smallObject(index).id
  return ids
})
const array = ['alpha', 'beta', 'gamma']
time('`Object.keys` of a 3-element array (to find properties that are not indices)', () => {
  let keys = 0
  for (let index = 0; index < count; index++) keys += Object.keys(array).length
  return keys
})
const object = smallObject(0)
time('`Object.keys` of the small object', () => {
  let keys = 0
  for (let index = 0; index < count; index++) keys += Object.keys(object).length
  return keys
})
const region = SharedRegion.create(4096)
const words = new Uint32Array(region.buffer)
time('`Atomics.store` to a region (the store of an index)', () => {
  for (let index = 0; index < count; index++) Atomics.store(words, 16, index)
  return 0
})
time("`Atomics.load` from a region (the look at the peer's flag)", () => {
  let loaded = 0
  for (let index = 0; index < count; index++) loaded += Atomics.load(words, 16 + (index & 1))
  return loaded
})
time('a plain read from a region', () => {
  let read = 0
  for (let index = 0; index < count; index++) read += words[16 + (index & 1)]
  return read
})
region.close()
host.close()
guest.close()
if (sum === 0.5) console.log(sum)
