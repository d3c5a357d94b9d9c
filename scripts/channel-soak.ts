// The channel's long run: the stream workload (scripts/workloads/fixtures/channel-stream.cjs) both ways at once
// between this process and a Node guest, through a ring of 4096 bytes (messages of 0 to 2040 bytes):
//
//   npm run soak:channel -- [--messages N]   (default 10,000,000 each way)
//
// Every byte of every message is checked on arrival; the run fails on a lost, reordered, duplicated or
// torn message, or a checksum that differs between the two sides.
import { parseArgs } from 'node:util'

import { workloadFixture } from './workloads/helpers.ts'
import { streamBothWays } from './workloads/reliability.ts'

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '10000000' } } })
  const count = Number(values.messages)
  if (!(Number.isInteger(count) && count > 0)) throw new RangeError(`--messages must be a positive integer`)
  const seed = Date.now() >>> 0
  const guest = workloadFixture('channel-guest.cjs')
  const report = await streamBothWays({ command: process.execPath, args: [guest], count, seed, capacity: 4096 })
  const ok =
    report.exit.code === 0 &&
    report.received === count &&
    report.guest.received === count &&
    report.guest.receivedChecksum === report.sentChecksum &&
    report.guest.sentChecksum === report.receivedChecksum
  console.log(
    `channel soak: ${count} messages each way (seed ${seed}) in ${report.seconds.toFixed(1)} s, ` +
      `${((2 * count) / report.seconds / 1000).toFixed(0)} k messages/s in all; ` +
      `checksums host sent ${report.sentChecksum} / guest received ${report.guest.receivedChecksum}, ` +
      `guest sent ${report.guest.sentChecksum} / host received ${report.receivedChecksum}: ${ok ? 'ok' : 'FAILED'}`,
  )
  if (!ok) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
