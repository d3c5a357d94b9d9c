// Rendezvous: a guest started without any fd (plain child_process.spawn) meets the host by a socket
// path, once for a Channel (1,000 round trips) and once for a Doorbell with a shared region; the
// host's allow sees the guest's pid from the kernel.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Channel, Doorbell, SharedRegion } from 'shm-doorbell'

import { assert, nextLine, startRole, within } from '../lib.mjs'

const ROUNDS = 1000

export async function host() {
  const dir = mkdtempSync(join(tmpdir(), 'shm-doorbell-rendezvous-'))
  try {
    const channelPath = join(dir, 'channel')
    const doorbellPath = join(dir, 'doorbell')
    const seen = []
    const listener = Channel.listen(channelPath, { capacity: 4096, allow: async (peer) => (seen.push(peer.pid), true) })
    const region = SharedRegion.create(4096)
    new Int32Array(region.buffer)[0] = 4242
    const doorbells = Doorbell.listen(doorbellPath, { region })
    const { child, exit, lines } = startRole('rendezvous', 'guest', [channelPath, doorbellPath])
    const [{ channel, peer }, { doorbell }] = await within(
      Promise.all([listener.accept(), doorbells.accept()]),
      'the guest, twice',
    )
    assert.equal(peer.pid, child.pid)
    assert.deepEqual(seen, [child.pid])
    doorbell.signalNow()
    assert.equal(await nextLine(lines), 'region 4242')
    for (let round = 0; round < ROUNDS; round++) {
      await channel.send(`ping ${round}`)
      assert.equal(String(await within(channel.recv(), `answer ${round}`)), `pong ${round}`)
    }
    channel.close()
    assert.deepEqual(await within(exit, 'guest exit'), { code: 0, signal: null })
    doorbell.close()
    listener.close()
    doorbells.close()
    region.close()
    return `a guest that was not spawned with fds met the host by path: ${ROUNDS} round trips, a doorbell and a region`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Connects for a channel and a doorbell, reports the region once rung, then answers every ping until the host closes. */
export async function guest([channelPath, doorbellPath]) {
  const channel = await Channel.connect(channelPath)
  const { doorbell, region } = await Doorbell.connect(doorbellPath)
  await doorbell.wait()
  console.log(`region ${new Int32Array(region.buffer)[0]}`)
  for await (const message of channel) await channel.send(String(message).replace('ping', 'pong'))
  channel.close()
  doorbell.close()
  region.close()
}
