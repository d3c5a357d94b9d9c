// A Channel between a host and a guest on the same runtime: 1,000 round trips of messages from 0 to
// 2,040 bytes (a 4 KiB ring, so frames wrap and pad), then the guest's end after the host closes.
import { Channel, spawnChannel } from 'shm-doorbell'

import { assert, exited, roleArgv, within } from '../lib.mjs'

const ROUNDS = 1000

export async function host() {
  const [file, ...argv] = roleArgv('channel', 'guest')
  const { child, channel } = spawnChannel(file, argv, { stdio: ['ignore', 'inherit', 'inherit'], capacity: 4096 })
  const exit = exited(child)
  const micros = []
  for (let round = 0; round < ROUNDS; round++) {
    const message = new Uint8Array((round * 37) % (channel.maxMessageSize + 1)).fill(round & 255)
    const start = performance.now()
    await channel.send(message)
    const answer = await within(channel.recv(), `answer ${round}`)
    micros.push((performance.now() - start) * 1000)
    assert.deepEqual(
      new Uint8Array(answer),
      message.map((byte) => byte ^ 0xff),
      `round ${round}`,
    )
  }
  channel.close()
  assert.deepEqual(await within(exit, 'guest exit'), { code: 0, signal: null })
  micros.sort((a, b) => a - b)
  return `${ROUNDS} round trips of 0-2040 B, p50 ${micros[ROUNDS / 2].toFixed(1)} µs`
}

/** Sends every message back with its bits flipped until the host closes its end. */
export async function guest() {
  const channel = Channel.fromArgv()
  for await (const message of channel) await channel.send(message.map((byte) => byte ^ 0xff))
  channel.close()
}
