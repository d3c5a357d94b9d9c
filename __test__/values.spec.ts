// JS values through the Channel (sendValue, recvValue, values(), in the v8.serialize format), and
// fork(), child_process.fork's drop-in with a channel.
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { realpathSync } from 'node:fs'
import v8 from 'node:v8'

import test from 'ava'
import { Channel, fork } from 'shm-doorbell'

import { exitOf, within, workloadFixture } from './helpers.ts'

const { valueOf } = createRequire(import.meta.url)('../scripts/workloads/fixtures/values.cjs') as {
  valueOf(seq: number): unknown
}
const guestScript = workloadFixture('channel-guest.cjs')

function connectedPair(options?: Parameters<typeof Channel.createPair>[0]): [Channel, Channel] {
  const [host, handle] = Channel.createPair(options)
  return [host, Channel.fromHandle(handle)]
}

test('values of every kind arrive deep-equal, and their bytes are what v8.serialize writes for v8.deserialize', (t) => {
  const [host, guest] = connectedPair()
  for (let seq = 0; seq < 64; seq++) {
    const value = valueOf(seq)
    t.true(host.trySendValue(value))
    let bytes: Buffer | undefined
    guest.drain((view) => (bytes = Buffer.from(view)), 1)
    t.deepEqual(v8.deserialize(bytes!), value, `value ${seq}, read by v8.deserialize`)
    host.trySend(v8.serialize(value))
    t.deepEqual(guest.tryRecvValue(), { value }, `value ${seq}, written by v8.serialize`)
  }
  host.close()
  guest.close()
})

test('shared and cyclic references, past the 16 objects kept in a list, keep their identity, as v8.serialize writes them', (t) => {
  const [host, guest] = connectedPair()
  for (const count of [1, 15, 16, 17, 40]) {
    const items = Array.from({ length: count }, (_, index) => ({ index, at: new Date(index) }))
    const value: Record<string, unknown> = {
      items,
      first: items[0],
      last: items.at(-1),
      dates: items.map((item) => item.at),
    }
    value.self = value
    t.true(host.trySendValue(value))
    let bytes: Buffer | undefined
    guest.drain((view) => (bytes = Buffer.from(view)), 1)
    t.deepEqual(bytes, v8.serialize(value), `${count} objects: the bytes of v8.serialize`)
    t.true(host.trySendValue(value))
    const got = guest.tryRecvValue()!.value as typeof value & { items: typeof items }
    t.deepEqual(got, v8.deserialize(v8.serialize(value)), `${count} objects`)
    t.is(got.self, got)
    t.is(got.first, got.items[0])
    t.is(got.last, got.items.at(-1))
    t.is((got.dates as Date[])[count - 1], got.items[count - 1]!.at)
  }
  host.close()
  guest.close()
})

test('a value that cannot be serialized is ERR_INVALID_ARG_VALUE and sends nothing', async (t) => {
  const [host, guest] = connectedPair()
  for (const value of [() => 1, Symbol('s'), { f() {} }, new Proxy({}, {}), [1, () => 2]]) {
    t.throws(() => host.trySendValue(value), { code: 'ERR_INVALID_ARG_VALUE' })
    await t.throwsAsync(host.sendValue(value), { code: 'ERR_INVALID_ARG_VALUE' })
  }
  t.is(guest.tryRecvValue(), undefined)
  t.is(guest.tryRecv(), undefined)
  host.close()
  guest.close()
})

test('a value larger than maxMessageSize is ERR_OUT_OF_RANGE and sends nothing', (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  t.throws(() => host.trySendValue('x'.repeat(3000)), { code: 'ERR_OUT_OF_RANGE' })
  t.is(guest.tryRecv(), undefined)
  host.close()
  guest.close()
})

test('a message that is not a value is taken and gives ERR_CHANNEL_BAD_VALUE; the next value arrives', async (t) => {
  const [host, guest] = connectedPair()
  host.trySend('plain bytes')
  host.trySendValue({ after: true })
  t.throws(() => guest.tryRecvValue(), { code: 'ERR_CHANNEL_BAD_VALUE' })
  t.deepEqual(guest.tryRecvValue(), { value: { after: true } })
  host.trySend(Buffer.from([0xff, 0x0f, 0x6f])) // a value cut short
  await t.throwsAsync(guest.recvValue(), { code: 'ERR_CHANNEL_BAD_VALUE' })
  host.close()
  guest.close()
})

test('tryRecvValue gives { value } (undefined too) or undefined; recvValue waits; values() ends when the peer goes', async (t) => {
  const [host, guest] = connectedPair()
  t.is(guest.tryRecvValue(), undefined)
  host.trySendValue(undefined)
  t.deepEqual(guest.tryRecvValue(), { value: undefined })
  const waiting = guest.recvValue()
  await host.sendValue({ late: 1 })
  t.deepEqual(await within(waiting, 'recvValue'), { late: 1 })
  for (let i = 0; i < 3; i++) host.trySendValue(i)
  host.close()
  const got: unknown[] = []
  for await (const value of guest.values()) got.push(value)
  t.deepEqual(got, [0, 1, 2])
  guest.close()
})

test('sendValue waits for room, and sends the value as it was at the call', async (t) => {
  const [host, guest] = connectedPair({ capacity: 4096 })
  while (host.trySendValue('x'.repeat(1000)));
  while (host.trySendValue(0));
  const value = { n: 1 }
  const sending = host.sendValue(value)
  value.n = 2
  let fillers = 0
  while (guest.tryRecvValue() !== undefined) fillers++
  await within(sending, 'sendValue')
  t.true(fillers > 3)
  t.deepEqual(guest.tryRecvValue(), { value: { n: 1 } })
  host.close()
  guest.close()
})

test('a million values each way between two processes arrive deep-equal, in order', async (t) => {
  const count = 1_000_000
  const { child, channel } = fork(guestScript, ['values', String(count)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exit = exitOf(child)
  const { isDeepStrictEqual } = await import('node:util')
  let mismatches = 0
  const send = async (): Promise<void> => {
    for (let seq = 0; seq < count; seq++) {
      const value = valueOf(seq)
      if (!channel.trySendValue(value)) await channel.sendValue(value)
    }
  }
  const receive = async (): Promise<number> => {
    let received = 0
    for (; received < count; received++) {
      const got = channel.tryRecvValue()
      const value = got ? got.value : await channel.recvValue()
      if (!isDeepStrictEqual(value, valueOf(received))) mismatches++
    }
    return received
  }
  const [, received] = await within(Promise.all([send(), receive()]), 'a million values each way', 110_000)
  t.is(received, count)
  t.is(mismatches, 0)
  const result = await within(exit, 'guest exit')
  t.is(result.code, 0)
  t.deepEqual(JSON.parse(result.stdout), { sent: count, received: count, mismatches: 0 })
  channel.close()
})

test('fork() honours execArgv, cwd, env and args, gives no IPC pipe, and inherits stdio unless silent', async (t) => {
  const cwd = realpathSync(tmpdir())
  const { child, channel } = fork(guestScript, ['report', 'one', 'two'], {
    execArgv: ['--no-warnings', '--max-old-space-size=64'],
    cwd,
    env: { ...process.env, SHM_DOORBELL_FORK_TEST: 'from the host' },
    silent: true,
  })
  const exit = exitOf(child)
  const report = (await within(channel.recvValue(), 'the report')) as Record<string, unknown>
  t.deepEqual((report.args as string[]).slice(0, 2), ['one', 'two'])
  t.deepEqual(report.execArgv, ['--no-warnings', '--max-old-space-size=64'])
  t.is(report.cwd, cwd)
  t.is(report.env, 'from the host')
  t.false(report.connected)
  await channel.sendValue({ echo: [1, 'two'] })
  t.deepEqual(await within(channel.recvValue(), 'the echo'), { echo: [1, 'two'] })
  channel.close()
  const result = await within(exit, 'guest exit')
  t.is(result.code, 0)
  t.is(result.stdout, 'the guest writes to stdout\n', 'silent: true pipes the child stdout')
})

test("fork() defaults: process.execArgv, stdio inherited (no child.stdout), and stdio wins over silent, 'ipc' included", async (t) => {
  const inherited = fork(guestScript, ['report'])
  const report = (await within(inherited.channel.recvValue(), 'the report')) as Record<string, unknown>
  t.deepEqual(report.execArgv, process.execArgv)
  t.is(inherited.child.stdout, null)
  inherited.channel.close()
  await within(exitOf(inherited.child), 'guest exit')

  const withIpc = fork(guestScript, ['report'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], silent: false })
  const ipcReport = (await within(withIpc.channel.recvValue(), 'the report')) as Record<string, unknown>
  t.true(ipcReport.connected)
  t.not(withIpc.child.stdout, null)
  // 'exit', not 'close': a child whose IPC pipe the parent disconnects never emits 'close'.
  const exited = once(withIpc.child, 'exit')
  withIpc.channel.close()
  withIpc.child.disconnect()
  t.deepEqual(await within(exited, 'guest exit'), [0, null])
})

test('fork() checks its arguments before it makes anything: ERR_INVALID_ARG_TYPE', (t) => {
  t.throws(() => fork(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => fork(guestScript, ['x'], { execArgv: '--x' as unknown as string[] }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => fork(guestScript, ['x'], 'options' as unknown as object), { code: 'ERR_INVALID_ARG_TYPE' })
})
