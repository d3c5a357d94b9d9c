// Rendezvous (docs/channel-layout.md, section Rendezvous): processes that did not spawn each other
// meet by a socket path. Every process here is started with plain child_process.spawn, with no fd
// but stdio inherited, and finds the other by the path alone.
import { spawn as spawnChild } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

import test, { type ExecutionContext } from 'ava'
import { Channel, Doorbell, HELLO_TIMEOUT_MS, SharedRegion } from 'shm-doorbell'

import { type Exit, exitOf, fixture, runNode, within } from './helpers.ts'

const peerScript = fixture('rendezvous.cjs')
const root = mkdtempSync(join(tmpdir(), 'shm-doorbell-rendezvous-'))
// Other users may pass through it (the test of another uid); each socket keeps its own mode.
chmodSync(root, 0o755)
test.after.always(() => rmSync(root, { recursive: true, force: true }))

let next = 0
/** A fresh socket path. */
const socketPath = (): string => join(root, `s${next++}`)

/** A peer process, its stdout read line by line. */
function startPeer(args: string[], options: { uid?: number; gid?: number } = {}) {
  const child = spawnChild(process.execPath, [peerScript, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...options,
  })
  const exit = exitOf(child)
  const lines: string[] = []
  let waiting: (() => void) | undefined
  child.stdout.on('data', (chunk: Buffer) => {
    lines.push(...String(chunk).split('\n').filter(Boolean))
    waiting?.()
  })
  /** Resolves once the peer has printed `line`. */
  const printed = (line: string): Promise<void> =>
    within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (lines.includes(line)) resolve()
        }
        waiting = check
        check()
      }),
      `the peer printing ${line}`,
    )
  return { child, exit, printed, lines }
}

interface StreamReport {
  sent: number
  sentChecksum: number
  received: number
  receivedChecksum: number
}

/** Both peers of a two-way stream exited well, each got `count` messages, and the checksums match. */
async function assertStreamed(t: ExecutionContext, host: Promise<Exit>, guest: Promise<Exit>, count: number) {
  const exits = await within(Promise.all([host, guest]), 'the stream', 110_000)
  const [fromHost, fromGuest] = exits.map((exit) => {
    t.is(exit.code, 0, exit.stderr)
    return JSON.parse(exit.stdout.trim().split('\n').at(-1)!) as StreamReport
  })
  t.deepEqual(fromHost, {
    sent: count,
    sentChecksum: fromGuest.receivedChecksum,
    received: count,
    receivedChecksum: fromGuest.sentChecksum,
  })
  t.is(fromGuest.received, count)
}

test('two processes started separately meet by a path and stream 1,000,000 messages each way', async (t) => {
  const path = socketPath()
  const count = 1_000_000
  const host = startPeer(['listen-stream', path, String(count), '7'])
  await host.printed('listening')
  const guest = startPeer(['connect-stream', path, String(count), '7'])
  await assertStreamed(t, host.exit, guest.exit, count)
})

// Built from examples/rust-channel-peer.rs by scripts/prepare-test.mjs: shm_doorbell::rendezvous.
const rustPeer = resolve('target/debug/examples/rust-channel-peer')

/** A process that is not Node: the Rust peer, its stdout read line by line. */
function startRustPeer(args: string[]) {
  const child = spawnChild(rustPeer, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  return { child, exit: exitOf(child) }
}

test('a Node listener streams 100,000 messages each way with a Rust client', async (t) => {
  const path = socketPath()
  const count = 100_000
  const host = startPeer(['listen-stream', path, String(count), '3'])
  await host.printed('listening')
  const guest = startRustPeer(['connect', path, String(count), '3'])
  await assertStreamed(t, host.exit, guest.exit, count)
})

test('a Rust listener streams 100,000 messages each way with a Node client', async (t) => {
  const path = socketPath()
  const count = 100_000
  const host = startRustPeer(['listen', path, String(count), '4'])
  await within(
    new Promise<void>((resolvePromise) => host.child.stdout.once('data', () => resolvePromise())),
    'the Rust listener',
  )
  const guest = startPeer(['connect-stream', path, String(count), '4'])
  await assertStreamed(t, host.exit, guest.exit, count)
  t.throws(() => statSync(path), { code: 'ENOENT' }, 'the Rust listener unlinked its socket file')
})

test('100 clients connected to one listener at once, each with its own channel', async (t) => {
  const path = socketPath()
  const listener = Channel.listen(path, { capacity: 4096 })
  const clients = Array.from({ length: 100 }, () => Channel.connect(path))
  const accepted = []
  for (let n = 0; n < 100; n++) accepted.push(await within(listener.accept(), `client ${n}`))
  const channels = await within(Promise.all(clients), 'the clients')
  for (const [index, channel] of channels.entries()) await channel.send(`client ${index}`)
  const got = await Promise.all(accepted.map(async ({ channel }) => String(await within(channel.recv(), 'a message'))))
  t.deepEqual(got.sort(), Array.from({ length: 100 }, (_, index) => `client ${index}`).sort())
  t.is(new Set(accepted.map(({ peer }) => peer.pid)).size, 1)
  t.is(accepted[0].peer.pid, process.pid)
  for (const { channel } of accepted) channel.close()
  for (const channel of channels) channel.close()
  listener.close()
})

test('100 clients in four other processes at once each get a channel', async (t) => {
  const path = socketPath()
  const listener = Channel.listen(path, { capacity: 4096 })
  const peers = Array.from({ length: 4 }, () => startPeer(['hold-clients', path, '25']))
  const accepted = []
  for (let n = 0; n < 100; n++) accepted.push(await within(listener.accept(), `client ${n}`))
  const messages = await Promise.all(accepted.map(async ({ channel }) => String(await within(channel.recv(), 'hi'))))
  t.is(new Set(messages).size, 100)
  const pids = (list: number[]): number[] => [...new Set(list)].sort()
  t.deepEqual(pids(accepted.map(({ peer }) => peer.pid)), pids(peers.map(({ child }) => child.pid!)))
  for (const { channel } of accepted) channel.close()
  for (const { exit } of peers) t.is((await within(exit, 'the clients exit')).code, 0)
  listener.close()
})

test('allow returning false refuses with ERR_DOORBELL_REFUSED, and the listener serves the next', async (t) => {
  const path = socketPath()
  let calls = 0
  const listener = Channel.listen(path, { allow: () => calls++ > 0 })
  const accepted = listener.accept()
  await t.throwsAsync(Channel.connect(path), { code: 'ERR_DOORBELL_REFUSED' })
  const channel = await Channel.connect(path)
  t.is((await accepted).peer.pid, process.pid)
  t.is(calls, 2)
  channel.close()
  ;(await accepted).channel.close()
  listener.close()
})

test('an async allow gets the peer credentials from the kernel and may take its time', async (t) => {
  const path = socketPath()
  const seen: { pid: number; uid: number; gid: number }[] = []
  const listener = Channel.listen(path, {
    allow: async (peer) => {
      seen.push(peer)
      await delay(50)
      return peer.uid === process.getuid!()
    },
  })
  const host = startPeer(['connect-or-fail', path])
  const { channel, peer } = await within(listener.accept(), 'accept')
  t.is(String(await channel.recv()), `uid ${process.getuid!()}`)
  t.deepEqual(seen, [peer])
  t.is(peer.pid, host.child.pid!)
  t.is(peer.gid, process.getgid!())
  t.is((await host.exit).code, 0)
  channel.close()
  listener.close()
})

test('an allow that throws refuses the peer and rejects accept() with its error; the listener goes on', async (t) => {
  const path = socketPath()
  let calls = 0
  const listener = Doorbell.listen(path, {
    allow: () => {
      if (calls++ === 0) throw new Error('allow failed')
      return true
    },
  })
  const first = listener.accept()
  await t.throwsAsync(Doorbell.connect(path), { code: 'ERR_DOORBELL_REFUSED' })
  await t.throwsAsync(first, { message: 'allow failed' })
  const [connected, accepted] = await Promise.all([Doorbell.connect(path), listener.accept()])
  t.is(connected.region, undefined)
  accepted.doorbell.signalNow()
  await within(connected.doorbell.wait(), 'the ring')
  connected.doorbell.close()
  accepted.doorbell.close()
  listener.close()
})

test('clients SIGKILLed mid-handshake (half a hello sent, or waiting on allow) are dropped and the listener serves the next', async (t) => {
  const path = socketPath()
  let inAllow: (() => void) | undefined
  const victimInAllow = new Promise<void>((resolve) => (inAllow = resolve))
  let release: (() => void) | undefined
  const victimDead = new Promise<void>((resolve) => (release = resolve))
  let first = true
  const listener = Channel.listen(path, {
    allow: async () => {
      if (!first) return true
      first = false
      inAllow!()
      await victimDead
      return true
    },
  })
  t.teardown(() => listener.close())
  const accepted = listener.accept()
  const halfHello = spawnChild(
    process.execPath,
    [
      '-e',
      `const s = require('net').connect(${JSON.stringify(path)}, () => s.write('SDR', () => console.log('sent')))
       s.on('error', () => {}); setInterval(() => {}, 1000)`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const halfExit = exitOf(halfHello)
  await within(new Promise((resolvePromise) => halfHello.stdout.once('data', resolvePromise)), 'half a hello')
  halfHello.kill('SIGKILL')
  t.is((await halfExit).signal, 'SIGKILL')
  const victim = startPeer(['wait', path])
  await within(victimInAllow, 'the victim in allow')
  victim.child.kill('SIGKILL')
  t.is((await victim.exit).signal, 'SIGKILL')
  release!() // the reply now finds the victim gone: nothing is delivered for it
  const survivor = startPeer(['wait', path])
  await survivor.printed('connected')
  const { channel, peer } = await within(accepted, 'accept')
  t.is(peer.pid, survivor.child.pid!)
  await channel.send('hello')
  t.is((await within(survivor.exit, 'the survivor exit')).stdout, 'connected\ngot hello\n')
  channel.close()
  listener.close()
})

test('garbage from a raw Unix socket is dropped without a reply, and the listener serves the next', async (t) => {
  const path = socketPath()
  const listener = Channel.listen(path)
  const accepted = listener.accept()
  const raw = netConnect(path)
  raw.on('error', () => {}) // the listener may reset the connection: it left bytes unread
  let replied = 0
  raw.on('data', (chunk) => (replied += chunk.length))
  const closed = new Promise((resolve) => raw.on('close', resolve))
  raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await within(closed, 'the raw socket closed by the listener')
  t.is(replied, 0)
  const [channel, { peer }] = await Promise.all([Channel.connect(path), accepted])
  t.is(peer.pid, process.pid)
  channel.close()
  ;(await accepted).channel.close()
  listener.close()
})

test('a silent client never holds up others, and is dropped after HELLO_TIMEOUT_MS', async (t) => {
  const path = socketPath()
  const listener = Channel.listen(path)
  const accepted = listener.accept()
  const started = performance.now()
  const silent = netConnect(path)
  silent.on('error', () => {})
  const closed = new Promise<number>((resolve) => silent.on('close', () => resolve(performance.now() - started)))
  await new Promise((resolve) => silent.on('connect', resolve))
  const [channel] = await Promise.all([Channel.connect(path), accepted])
  t.false(silent.closed, 'the silent client is still connected while the other is served')
  const after = await within(closed, 'the silent client dropped', HELLO_TIMEOUT_MS + 20_000)
  t.true(after >= HELLO_TIMEOUT_MS - 50, `dropped after ${after} ms`)
  t.is(HELLO_TIMEOUT_MS, 5000)
  channel.close()
  ;(await accepted).channel.close()
  listener.close()
})

test('clients of a listener SIGKILLed while they are connected get ERR_DOORBELL_PEER_DEAD, and the path is replaced', async (t) => {
  const path = socketPath()
  const host = startPeer(['hold', path, '2'])
  await host.printed('listening')
  const clients = [startPeer(['wait', path]), startPeer(['wait', path])]
  await host.printed('accepted 2')
  for (const client of clients) await client.printed('connected')
  // A third one is mid-connect (the listener takes no more): it must not hang either.
  const third = Channel.connect(path)
  await delay(100)
  host.child.kill('SIGKILL')
  for (const client of clients) {
    t.is((await within(client.exit, 'a client exit')).stdout, 'connected\nERR_DOORBELL_PEER_DEAD\n')
  }
  await t.throwsAsync(within(third, 'the third client'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.true(statSync(path).isSocket(), 'the killed listener left its socket file')
  await t.throwsAsync(Channel.connect(path), { code: 'ECONNREFUSED' })
  const listener = Channel.listen(path)
  const [channel, accepted] = await Promise.all([Channel.connect(path), listener.accept()])
  channel.close()
  accepted.channel.close()
  listener.close()
})

test('a path with a live listener fails with EADDRINUSE and a stale socket file is replaced', async (t) => {
  const path = socketPath()
  const listener = Channel.listen(path)
  const error = t.throws(() => Doorbell.listen(path), { code: 'EADDRINUSE' }) as Error & { syscall: string }
  t.is(error.syscall, 'bind')
  t.true(error.message.includes(path))
  listener.close()
  t.throws(() => statSync(path), { code: 'ENOENT' }, 'close unlinks the socket file')
  // A process that dies listening leaves its socket file behind.
  const stale = await runNode([
    '-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ])
  t.is(stale.signal, 'SIGKILL')
  t.true(statSync(path).isSocket())
  const replaced = Channel.listen(path)
  const [channel, accepted] = await Promise.all([Channel.connect(path), replaced.accept()])
  channel.close()
  accepted.channel.close()
  replaced.close()
})

test('a regular file or a directory at the path is refused and left alone', (t) => {
  const file = socketPath()
  writeFileSync(file, 'keep me')
  t.throws(() => Channel.listen(file), { code: 'ERR_DOORBELL_NOT_A_SOCKET' })
  t.is(readFileSync(file, 'utf8'), 'keep me')
  const dir = socketPath()
  mkdirSync(dir)
  t.throws(() => Doorbell.listen(dir), { code: 'ERR_DOORBELL_NOT_A_SOCKET' })
  t.true(statSync(dir).isDirectory())
})

test('close() unlinks only the socket file this listener made', (t) => {
  const path = socketPath()
  const listener = Channel.listen(path)
  rmSync(path)
  writeFileSync(path, 'someone else')
  listener.close()
  t.is(readFileSync(path, 'utf8'), 'someone else')
})

test('the socket file gets mode 0o600 by default, or the mode asked for', (t) => {
  for (const [mode, expected] of [[undefined, 0o600] as const, [0o660, 0o660], [0o666, 0o666]]) {
    const path = socketPath()
    const listener = Channel.listen(path, { mode })
    t.is(statSync(path).mode & 0o777, expected)
    listener.close()
  }
})

test('a client running as another uid is seen by allow with that uid, and needs the mode to let it in', async (t) => {
  const uid = 65534 // nobody
  const gid = 65534
  const open = socketPath()
  const seen: number[] = []
  const listener = Channel.listen(open, { mode: 0o666, allow: (peer) => (seen.push(peer.uid), true) })
  const accepted = listener.accept()
  const client = startPeer(['connect-or-fail', open], { uid, gid })
  const { channel, peer } = await within(accepted, 'accept')
  t.is(String(await channel.recv()), `uid ${uid}`)
  t.deepEqual(seen, [uid])
  t.deepEqual(peer, { pid: client.child.pid!, uid, gid })
  t.is((await client.exit).stdout, `connected as ${uid}\n`)
  channel.close()
  listener.close()
  const closed = socketPath()
  const private_ = Channel.listen(closed)
  const refused = startPeer(['connect-or-fail', closed], { uid, gid })
  t.is((await within(refused.exit, 'the client exit')).stdout, 'EACCES\n')
  private_.close()
})

test('bad paths and options get coded errors and leave nothing behind', (t) => {
  t.throws(() => Channel.listen(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.listen(''), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => Channel.listen(join(root, 'a\0b')), { code: 'ERR_INVALID_ARG_VALUE' })
  const long = join(root, 'x'.repeat(120))
  t.throws(() => Channel.listen(long), { code: 'ENAMETOOLONG' })
  t.throws(() => statSync(long), { code: 'ENOENT' })
  const path = socketPath()
  t.throws(() => Channel.listen(path, { mode: 0o1777 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.listen(path, { backlog: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Channel.listen(path, { allow: true as unknown as () => boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => Channel.listen(path, { capacity: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => Doorbell.listen(path, { region: {} as SharedRegion }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => statSync(path), { code: 'ENOENT' })
})

test('connecting fails with a coded error: no listener, a bad path, the wrong kind, an abort', async (t) => {
  const path = socketPath()
  const missing = await t.throwsAsync(Channel.connect(path), { code: 'ENOENT' })
  t.is((missing as Error & { syscall: string }).syscall, 'connect')
  await t.throwsAsync(Channel.connect(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(Doorbell.connect(join(root, 'x'.repeat(120))), { code: 'ENAMETOOLONG' })
  const listener = Doorbell.listen(path)
  const pending = listener.accept()
  await t.throwsAsync(Channel.connect(path), { code: 'ERR_DOORBELL_WRONG_KIND' })
  const controller = new AbortController()
  // No accept() pending after this one: the kernel holds the connection, and the abort ends the wait.
  const [connected, accepted] = await Promise.all([Doorbell.connect(path), pending])
  const waiting = Doorbell.connect(path, { signal: controller.signal })
  await delay(50)
  controller.abort()
  await t.throwsAsync(waiting, { code: 'ABORT_ERR' })
  connected.doorbell.close()
  accepted.doorbell.close()
  listener.close()
})

test('a client waiting on a listener that closes gets ERR_DOORBELL_PEER_DEAD, and pending accept() ERR_DOORBELL_CLOSED', async (t) => {
  const path = socketPath()
  const listener = Channel.listen(path)
  const waiting = Channel.connect(path)
  await delay(50)
  listener.close()
  await t.throwsAsync(within(waiting, 'the client'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  await t.throwsAsync(listener.accept(), { code: 'ERR_DOORBELL_CLOSED' })
  const other = Channel.listen(socketPath())
  const accepting = other.accept()
  const iterated = (async () => {
    for await (const _ of other) t.fail('nothing connects')
  })()
  other.close()
  await t.throwsAsync(accepting, { code: 'ERR_DOORBELL_CLOSED' })
  await within(iterated, 'the loop ends on close')
  t.throws(() => other.ref(), { code: 'ERR_DOORBELL_CLOSED' })
  t.notThrows(() => other.close())
})

test("a doorbell listener's region reaches every connecting process, and the doorbells ring both ways", async (t) => {
  const path = socketPath()
  const region = SharedRegion.create(4096)
  const words = new Int32Array(region.buffer)
  const listener = Doorbell.listen(path, { region })
  for (let round = 0; round < 3; round++) {
    const [{ doorbell, region: theirs }, accepted] = await Promise.all([Doorbell.connect(path), listener.accept()])
    Atomics.store(words, 0, round + 1)
    accepted.doorbell.signalNow()
    await within(doorbell.wait(), 'the ring')
    t.is(Atomics.load(new Int32Array(theirs!.buffer), 0), round + 1)
    doorbell.signalNow()
    await within(accepted.doorbell.wait(), 'the ring back')
    doorbell.close()
    theirs!.close()
    accepted.doorbell.close()
  }
  listener.close()
  t.false(region.closed, 'the listener never closes the region it shares')
  region.close()
})

test('an abstract name (Linux) works and has no file', async (t) => {
  if (process.platform !== 'linux') return t.pass('abstract names exist on Linux only')
  const name = `\0shm-doorbell-test-${process.pid}`
  const listener = Channel.listen(name)
  t.throws(() => Channel.listen(name), { code: 'EADDRINUSE' })
  const [channel, accepted] = await Promise.all([Channel.connect(name), listener.accept()])
  await channel.send('abstract')
  t.is(String(await accepted.channel.recv()), 'abstract')
  channel.close()
  accepted.channel.close()
  listener.close()
})

test('a pending accept() keeps the process alive unless the listener is unref()ed', async (t) => {
  const script = (unref: boolean): string =>
    `const { Channel } = require('shm-doorbell'); const l = Channel.listen(${JSON.stringify(socketPath())});` +
    `${unref ? 'l.unref();' : ''} l.accept().catch(() => {}); setTimeout(() => { console.log('still alive'); l.close() }, 300).unref()`
  t.is((await runNode(['-e', script(true)])).stdout, '')
  t.is((await runNode(['-e', script(false)])).stdout, 'still alive\n')
})
