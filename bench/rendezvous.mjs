// Rendezvous: the time from Channel.connect() to the first message received, against net.connect()
// to a Unix socket plus one write and its answer, measured side by side, one of each in turn.
//   node bench/rendezvous.mjs [ROUNDS] [WARM_UP]
//   node bench/rendezvous.mjs serve CHANNEL_PATH NET_PATH   (the listening process, started by the first)
// The listener runs in a process of its own, started with plain child_process.spawn (no fds): on each
// channel it accepts it sends one 64-byte message; on each net connection it answers the first
// write with 64 bytes. Prints {"rounds","channel":{p50,p90},"net":{p50,p90},"ratio"} in µs; ratio is
// the median of the rounds' channel/net ratios.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { Channel } from 'shm-doorbell'

import { countArg, median, quantile, report } from './common.mjs'

const MESSAGE = Buffer.alloc(64, 7)

if (process.argv[2] === 'serve') {
  const [channelPath, netPath] = process.argv.slice(3)
  const listener = Channel.listen(channelPath)
  const server = createServer((socket) => {
    socket.once('data', () => socket.end(MESSAGE))
    socket.on('error', () => {})
  }).listen(netPath, () => console.log('ready'))
  process.stdin.on('end', () => {
    listener.close()
    server.close()
  })
  process.stdin.resume()
  for await (const { channel } of listener) {
    channel.trySend(MESSAGE)
    channel.recv().catch(() => channel.close()) // closed once the client is gone
  }
} else {
  const rounds = countArg(2, 500)
  const warmUp = countArg(3, 50)
  const dir = mkdtempSync(join(tmpdir(), 'shm-doorbell-bench-'))
  const [channelPath, netPath] = [join(dir, 'channel'), join(dir, 'net')]
  const server = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve', channelPath, netPath], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  await new Promise((resolve) => server.stdout.once('data', resolve))

  const viaChannel = async () => {
    const start = performance.now()
    const channel = await Channel.connect(channelPath)
    const message = await channel.recv()
    const micros = (performance.now() - start) * 1000
    if (message.length !== MESSAGE.length) throw new Error('wrong message')
    channel.close()
    return micros
  }
  const viaNet = () =>
    new Promise((resolve, reject) => {
      const start = performance.now()
      const socket = connect(netPath, () => socket.write('x'))
      socket.once('data', (data) => {
        const micros = (performance.now() - start) * 1000
        socket.destroy()
        if (data.length === 0) reject(new Error('no answer'))
        else resolve(micros)
      })
      socket.once('error', reject)
    })

  const channel = []
  const net = []
  for (let round = 0; round < warmUp + rounds; round++) {
    const [c, n] = round % 2 ? [await viaChannel(), await viaNet()] : [await viaNet(), await viaChannel()].reverse()
    if (round >= warmUp) {
      channel.push(c)
      net.push(n)
    }
  }
  server.stdin.end()
  await new Promise((resolve) => server.once('exit', resolve))
  rmSync(dir, { recursive: true, force: true })
  const ratio = median(channel.map((micros, index) => micros / net[index]))
  const summary = (values) => ({ p50: quantile([...values], 0.5), p90: quantile([...values], 0.9) })
  report({ rounds, channel: summary(channel), net: summary(net), ratio })
}
