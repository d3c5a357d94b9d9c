// The suite's Node guests: `node bench/guest.mjs MODE ...`, started by the scenario scripts.
import { Doorbell } from 'shm-doorbell'

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
}

const mode = modes[process.argv[2]]
if (!mode) throw new Error(`unknown mode ${process.argv[2]}`)
await mode()
