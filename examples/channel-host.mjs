// node examples/channel-host.mjs: starts channel-guest.mjs with a channel, sends three messages and
// prints the answers.
import { spawnChannel } from 'shm-doorbell'

const guest = new URL('channel-guest.mjs', import.meta.url).pathname
const { channel } = spawnChannel(process.execPath, [guest], { stdio: 'inherit' })
for (const word of ['ping', 'shared', 'memory']) {
  await channel.send(word)
  console.log(String(await channel.recv()))
}
channel.close() // the guest's loop ends, and it exits
