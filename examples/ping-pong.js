// Two-process ping-pong: this script spawns itself as the guest and times each round trip.
//   node examples/ping-pong.js [rounds]
const { Doorbell, spawn } = require('shm-doorbell')

async function guest() {
  const doorbell = Doorbell.fromArgv()
  for await (const _ of doorbell) doorbell.signalNow()
}

async function host(rounds) {
  const { child, doorbell } = spawn(process.execPath, [__filename, 'guest'], { stdio: 'inherit' })
  const warmUp = Math.min(1000, rounds)
  const micros = []
  for (let round = 0; round < warmUp + rounds; round++) {
    const start = process.hrtime.bigint()
    doorbell.signalNow()
    await doorbell.wait()
    if (round >= warmUp) micros.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  doorbell.close()
  await new Promise((resolve) => child.once('exit', resolve))

  micros.sort((a, b) => a - b)
  const at = (q) => micros[Math.min(micros.length - 1, Math.floor(q * micros.length))]
  const total = micros.reduce((sum, us) => sum + us, 0)
  console.log(`${rounds} round trips between two Node processes (after ${warmUp} warm-up rounds)`)
  console.log(`  p50 ${at(0.5).toFixed(1)} µs   p99 ${at(0.99).toFixed(1)} µs   max ${at(1).toFixed(1)} µs`)
  console.log(`  ${Math.round((rounds / total) * 1e6)} round trips/s`)
}

if (process.argv[2] === 'guest') {
  guest()
} else {
  const rounds = Number(process.argv[2] ?? 20000)
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new RangeError(`rounds must be a positive integer, got ${process.argv[2]}`)
  host(rounds)
}
