// A quick two-process stream through a Channel: this process sends COUNT messages of SIZE bytes to a
// Node guest that receives them, and prints messages/s and MB/s, the guest's start-up included.
// README, Channel: "Where the ring runs". The benchmark suite (npm run bench) measures streaming properly.
//
//   node bench/channel-quick-stream.mjs [count] [size]
import { Channel, spawnChannel } from 'shm-doorbell'

const [first, second] = process.argv.slice(2)
if (first === 'guest') {
  const channel = Channel.fromArgv()
  const count = Number(second)
  for (let received = 0; received < count; received++) {
    if (channel.tryRecv() === undefined) await channel.recv()
  }
  channel.trySend('done')
  await channel.recv().catch(() => {}) // until the host closes
  channel.close()
} else {
  const count = Number(first ?? 3_000_000)
  const size = Number(second ?? 64)
  const script = new URL(import.meta.url).pathname
  const { channel } = spawnChannel(process.execPath, [script, 'guest', String(count)], { stdio: 'inherit' })
  const message = Buffer.alloc(size, 1)
  const start = performance.now()
  for (let sent = 0; sent < count; sent++) if (!channel.trySend(message)) await channel.send(message)
  await channel.recv()
  const seconds = (performance.now() - start) / 1000
  console.log(
    `${size} B: ${(count / seconds / 1e6).toFixed(2)} M messages/s, ${((count * size) / seconds / 1e6).toFixed(0)} MB/s`,
  )
  channel.close()
}
