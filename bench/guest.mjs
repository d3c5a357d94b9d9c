// The suite's Node guests: `node bench/guest.mjs MODE ...`, started by the scenario scripts.
// A namespace import: a build without the Channel still runs the other modes.
import * as shm from 'shm-doorbell'

import { PIPE_END, Tally, report } from './common.mjs'

const { Doorbell } = shm

const modes = {
  /** Answers each wake with one ring until the host is gone (started with `spawn()`). */
  async doorbell() {
    const doorbell = Doorbell.fromArgv()
    for (;;) {
      try {
        await doorbell.wait()
      } catch (err) {
        if (err.code === 'ERR_DOORBELL_PEER_DEAD') break
        throw err
      }
      doorbell.signalNow()
    }
    doorbell.close()
  },
  /** Echoes stdin to stdout: the stdio 'pipe' round trip. */
  pipe() {
    process.stdin.on('data', (chunk) => process.stdout.write(chunk))
  },
  /** Answers each IPC message with the same message. */
  ipc() {
    process.on('message', (message) => process.send(message))
  },
  /** Owns doorbells on fds 3 .. 3+N-1 and rings every one of them for each byte on stdin. */
  fanIn() {
    const count = Number(process.argv[3])
    const doorbells = Array.from({ length: count }, (_, index) => Doorbell.fromRawFd(3 + index))
    process.stdin.on('data', (chunk) => {
      for (let byte = 0; byte < chunk.length; byte++) for (const doorbell of doorbells) doorbell.signalNow()
    })
  },
  /** Receives length-framed messages on stdin until the end frame; prints the tally. */
  pipeSink() {
    const tally = new Tally()
    // A frame split across chunks: its parts so far (only a split frame's bytes are ever copied).
    let parts = []
    let partsLength = 0
    /** Handles the frame at `offset` of `bytes`; returns its end, or -1 when it is incomplete. */
    const frameAt = (bytes, offset) => {
      if (bytes.length - offset < 4) return -1
      const length = bytes.readUInt32LE(offset)
      if (length === PIPE_END) {
        report(tally.result())
        process.stdin.destroy()
        return bytes.length
      }
      if (bytes.length - offset - 4 < length) return -1
      tally.add(bytes.subarray(offset + 4, offset + 4 + length))
      return offset + 4 + length
    }
    process.stdin.on('data', (chunk) => {
      let offset = 0
      if (partsLength > 0) {
        const header = parts[0].length >= 4 ? parts[0] : Buffer.concat([...parts, chunk.subarray(0, 4)])
        if (header.length < 4) return void (parts.push(chunk), (partsLength += chunk.length))
        const length = header.readUInt32LE(0)
        const needed = length === PIPE_END ? 4 - partsLength : 4 + length - partsLength
        if (chunk.length < needed) return void (parts.push(chunk), (partsLength += chunk.length))
        frameAt(Buffer.concat([...parts, chunk.subarray(0, needed)]), 0)
        offset = needed
        parts = []
        partsLength = 0
      }
      for (let next; (next = frameAt(chunk, offset)) >= 0;) offset = next
      if (offset < chunk.length) {
        parts = [chunk.subarray(offset)]
        partsLength = chunk.length - offset
      }
    })
    listening()
  },
  /** Receives IPC messages until 'end'; prints the tally. */
  ipcSink() {
    const tally = new Tally()
    process.on('message', (message) => {
      if (message !== 'end') return tally.add(message)
      report(tally.result())
      process.disconnect()
    })
    listening()
  },
  /** Receives IPC values ({@link smallObject}) until 'end'; prints the tally. */
  ipcValueSink() {
    const tally = new Tally()
    process.on('message', (value) => {
      if (value !== 'end') return tally.addValue(value)
      report(tally.result())
      process.disconnect()
    })
    listening()
  },
  /** Receives channel values until a null; prints the tally. */
  async channelValueSink() {
    const channel = shm.Channel.fromArgv()
    const tally = new Tally()
    listening()
    for (;;) {
      const got = channel.tryRecvValue()
      const value = got ? got.value : await channel.recvValue()
      if (value === null) break
      tally.addValue(value)
    }
    channel.close()
    report(tally.result())
  },
  /** Takes channel messages in place with drain() until a zero-length one; prints the tally. */
  async channelDrainSink() {
    const channel = shm.Channel.fromArgv()
    const tally = new Tally()
    let done = false
    const take = (view) => {
      if (view.length === 0) done = true
      else tally.add(view)
    }
    listening()
    while (!done) if (channel.drain(take) === 0) await channel.readable()
    channel.close()
    report(tally.result())
  },
  /** Answers each channel value with the same value until the host is gone; argv[3]: spin, µs. */
  async channelValueEcho() {
    const channel = shm.Channel.fromArgv(process.argv, { spin: Number(process.argv[3] ?? 0) })
    for (;;) {
      let value
      try {
        const got = channel.tryRecvValue()
        value = got ? got.value : await channel.recvValue()
      } catch (err) {
        if (err.code === 'ERR_DOORBELL_PEER_DEAD') break
        throw err
      }
      if (!channel.trySendValue(value)) await channel.sendValue(value)
    }
    channel.close()
  },
  /** Answers each channel message with the same message until the host is gone; argv[3]: spin, µs. */
  async channelEcho() {
    const channel = shm.Channel.fromArgv(process.argv, { spin: Number(process.argv[3] ?? 0) })
    for (;;) {
      let message
      try {
        message = channel.tryRecv() ?? (await channel.recv())
      } catch (err) {
        if (err.code === 'ERR_DOORBELL_PEER_DEAD') break
        throw err
      }
      if (!channel.trySend(message)) await channel.send(message)
    }
    channel.close()
  },
  /** Receives channel messages until a zero-length one; prints the tally. argv[3]: spin, µs. */
  async channelSink() {
    const channel = shm.Channel.fromArgv(process.argv, { spin: Number(process.argv[3] ?? 0) })
    const tally = new Tally()
    listening()
    for (;;) {
      const message = channel.tryRecv() ?? (await channel.recv())
      if (message.length === 0) break
      tally.add(message)
    }
    channel.close()
    report(tally.result())
  },
}

/** Tells the sender of bench/throughput.mjs that this guest listens: a line before its result. */
const listening = () => process.stdout.write('listening\n')

const mode = modes[process.argv[2]]
if (!mode) throw new Error(`unknown mode ${process.argv[2]}`)
await mode()
