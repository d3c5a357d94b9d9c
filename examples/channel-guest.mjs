// The guest of channel-host.mjs: answers every message in upper case until the host is gone.
import { Channel } from 'shm-doorbell'

const channel = Channel.fromArgv() // --doorbell-fd 3 --region-fd 4
for await (const message of channel) {
  await channel.send(String(message).toUpperCase())
}
channel.close()
