// The channel's long run: the stream workload (__test__/fixtures/channel-stream.cjs) both ways at once
// between this process and a Node guest, through a ring of 4096 bytes (messages of 0 to 2040 bytes):
//
//   npm run soak:channel -- [--messages N]   (default 10,000,000 each way)
//
// Every byte of every message is checked on arrival; the run fails on a lost, reordered, duplicated or
// torn message, or a checksum that differs between the two sides.
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

import { type Channel, spawnChannel } from 'shm-doorbell'

const { sendStream, receiveStream } = createRequire(import.meta.url)('../__test__/fixtures/channel-stream.cjs') as {
  sendStream(channel: Channel, count: number, seed: number): Promise<number>
  receiveStream(channel: Channel, count: number, seed: number): Promise<{ received: number; checksum: number }>
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '10000000' } } })
  const count = Number(values.messages)
  if (!(Number.isInteger(count) && count > 0)) throw new RangeError(`--messages must be a positive integer`)
  const seed = Date.now() >>> 0
  const guest = resolve('__test__/fixtures/channel-guest.cjs')
  const { child, channel } = spawnChannel(process.execPath, [guest, 'stream', String(count), String(seed)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    capacity: 4096,
  })
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)))
  const startedAt = performance.now()
  const [sent, got] = await Promise.all([sendStream(channel, count, seed), receiveStream(channel, count, seed)])
  const seconds = (performance.now() - startedAt) / 1000
  const code = await exited
  channel.close()
  const guestResult = JSON.parse(output)
  const ok =
    code === 0 &&
    got.received === count &&
    guestResult.received === count &&
    guestResult.receivedChecksum === sent &&
    guestResult.sentChecksum === got.checksum
  console.log(
    `channel soak: ${count} messages each way (seed ${seed}) in ${seconds.toFixed(1)} s, ` +
      `${((2 * count) / seconds / 1000).toFixed(0)} k messages/s in all; ` +
      `checksums host sent ${sent} / guest received ${guestResult.receivedChecksum}, ` +
      `guest sent ${guestResult.sentChecksum} / host received ${got.checksum}: ${ok ? 'ok' : 'FAILED'}`,
  )
  if (!ok) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
