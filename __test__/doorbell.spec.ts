import { setTimeout as delay } from 'node:timers/promises'
import { inspect } from 'node:util'

import test, { type ExecutionContext } from 'ava'
import { Doorbell, DoorbellHandle, closePeerFd, engine, validateFd } from 'shm-doorbell'

import { openFdCount, stateAfter, within } from './helpers.ts'

function connectedPair(): [Doorbell, Doorbell] {
  const [host, guest] = Doorbell.createPair()
  return [host, Doorbell.fromHandle(guest)]
}

test('a ring wakes a pending wait', async (t) => {
  const [host, guest] = connectedPair()
  const waiting = guest.wait()
  t.is(host.signalNow(), 'Sent')
  await t.notThrowsAsync(within(waiting, 'wait'))
  host.close()
  guest.close()
})

test('rings coalesce: many signals wake one wait, and the next wait sleeps until a new ring', async (t) => {
  const [host, guest] = connectedPair()
  // Rings queue until the small send buffer of a pair is full (six on Linux), then coalesce there.
  let sent = 0
  while ((await host.signal()) === 'Sent') sent++
  t.true(sent >= 5, `${sent} rings queued`)
  t.is(guest.pendingBytes(), sent)
  await within(guest.wait(), 'first wait')
  t.is(guest.pendingBytes(), 0)
  const second = guest.wait()
  t.is(await stateAfter(second, 200), 'pending')
  host.signalNow()
  await within(second, 'second wait')
  host.close()
  guest.close()
})

test('every wait pending at the moment of a ring resolves', async (t) => {
  const [host, guest] = connectedPair()
  const waits = Array.from({ length: 5 }, () => guest.wait())
  t.is(await stateAfter(Promise.race(waits), 50), 'pending')
  host.signalNow()
  await within(Promise.all(waits), 'all waits')
  t.pass()
  host.close()
  guest.close()
})

test('wait resolves at once when a ring is already pending', async (t) => {
  const [host, guest] = connectedPair()
  host.signalNow()
  t.is(await stateAfter(guest.wait(), 1000), 'settled')
  host.close()
  guest.close()
})

test('drain consumes pending rings and reports whether there were any', (t) => {
  const [host, guest] = connectedPair()
  t.false(guest.drain())
  host.signalNow()
  host.signalNow()
  t.true(guest.drain())
  t.is(guest.pendingBytes(), 0)
  t.false(guest.drain())
  host.close()
  guest.close()
})

test("signal gives 'BufferFull' once the peer stops draining, while the peer is still alive", async (t) => {
  const [host, guest] = connectedPair()
  let result = host.signalNow()
  for (let i = 0; i < 10_000_000 && result === 'Sent'; i++) result = host.signalNow()
  t.is(result, 'BufferFull')
  t.is(await host.signal(), 'BufferFull')
  t.false(host.isPeerDead())
  await within(guest.wait(), 'wait after a full buffer')
  t.is(guest.pendingBytes(), 0)
  t.is(host.signalNow(), 'Sent')
  host.close()
  guest.close()
})

test("signal gives 'PeerDead' once the peer end is closed, and isPeerDead() turns true", async (t) => {
  const [host, guest] = connectedPair()
  t.false(host.isPeerDead())
  guest.close()
  t.is(host.signalNow(), 'PeerDead')
  t.is(await host.signal(), 'PeerDead')
  t.true(host.isPeerDead())
  host.close()
})

test('a pending wait rejects with ERR_DOORBELL_PEER_DEAD when the peer closes its end', async (t) => {
  const [host, guest] = connectedPair()
  const waiting = host.wait()
  t.is(await stateAfter(waiting, 50), 'pending')
  guest.close()
  await t.throwsAsync(within(waiting, 'wait'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.true(host.isPeerDead())
  await t.throwsAsync(host.wait(), { code: 'ERR_DOORBELL_PEER_DEAD' })
  host.close()
})

test('a closed guest handle counts as a gone peer', async (t) => {
  const [host, guest] = Doorbell.createPair()
  guest.close()
  await t.throwsAsync(within(host.wait(), 'wait'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  host.close()
})

test('rings sent before the peer closed are delivered first; only the next wait rejects', async (t) => {
  const [host, guest] = connectedPair()
  guest.signalNow()
  guest.signalNow()
  guest.close()
  await t.notThrowsAsync(within(host.wait(), 'first wait'))
  t.false(host.isPeerDead())
  await t.throwsAsync(within(host.wait(), 'second wait'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.true(host.isPeerDead())
  host.close()
})

test('close is idempotent, rejects pending waits, and makes every later call fail with ERR_DOORBELL_CLOSED', async (t) => {
  const [host, guest] = connectedPair()
  const fd = host.fd
  t.true(fd >= 0)
  t.false(host.closed)
  const pending = [host.wait(), host.wait()]
  host.close()
  host.close()
  t.true(host.closed)
  t.is(host.fd, -1)
  for (const waiting of pending) await t.throwsAsync(waiting, { code: 'ERR_DOORBELL_CLOSED' })
  await t.throwsAsync(host.wait(), { code: 'ERR_DOORBELL_CLOSED' })
  await t.throwsAsync(host.signal(), { code: 'ERR_DOORBELL_CLOSED' })
  await t.throwsAsync(host.accept(), { code: 'ERR_DOORBELL_CLOSED' })
  for (const call of [
    () => host.signalNow(),
    () => host.drain(),
    () => host.pendingBytes(),
    () => host.isPeerDead(),
    () => host.ref(),
    () => host.unref(),
  ]) {
    t.throws(call, { code: 'ERR_DOORBELL_CLOSED' })
  }
  t.is(guest.signalNow(), 'PeerDead')
  guest.close()
})

test('close releases the fd', async (t) => {
  const before = openFdCount()
  const doorbells = Array.from({ length: 50 }, () => connectedPair()).flat()
  t.is(openFdCount(), before + 100)
  for (const doorbell of doorbells) doorbell.close()
  t.is(openFdCount(), before)
})

test('a consumed or closed DoorbellHandle fails with ERR_DOORBELL_CLOSED', (t) => {
  const [host, guest] = Doorbell.createPair()
  t.true(guest.fd >= 0)
  t.is(guest.toArg(), String(guest.fd))
  t.is(guest.asRawFd(), guest.fd)
  const opened = Doorbell.fromHandle(guest)
  t.is(guest.fd, -1)
  t.throws(() => guest.asRawFd(), { code: 'ERR_DOORBELL_CLOSED' })
  t.throws(() => guest.toArg(), { code: 'ERR_DOORBELL_CLOSED' })
  t.throws(() => Doorbell.fromHandle(guest), { code: 'ERR_DOORBELL_CLOSED' })

  const [other, otherGuest] = Doorbell.createPair()
  otherGuest.close()
  otherGuest.close()
  t.is(otherGuest.fd, -1)
  t.throws(() => Doorbell.fromHandle(otherGuest), { code: 'ERR_DOORBELL_CLOSED' })
  for (const doorbell of [host, opened, other]) doorbell.close()
})

test('wait with an aborted signal rejects with an AbortError and the doorbell stays usable', async (t) => {
  const [host, guest] = connectedPair()
  const controller = new AbortController()
  const waiting = guest.wait({ signal: controller.signal })
  const reason = new Error('no longer needed')
  controller.abort(reason)
  const err = await t.throwsAsync(waiting, { name: 'AbortError', code: 'ABORT_ERR' })
  t.is(err?.cause, reason)
  host.signalNow()
  await t.notThrowsAsync(within(guest.wait(), 'wait after abort'))
  host.close()
  guest.close()
})

test('wait with a signal aborted before the call rejects at once and drains nothing', async (t) => {
  const [host, guest] = connectedPair()
  host.signalNow()
  const signal = AbortSignal.abort('already')
  const err = await t.throwsAsync(guest.wait({ signal }), { name: 'AbortError', code: 'ABORT_ERR' })
  t.is(err?.cause, 'already')
  t.is(guest.pendingBytes(), 1)
  await t.notThrowsAsync(within(guest.wait(), 'wait for the kept ring'))
  host.close()
  guest.close()
})

test('wait with AbortSignal.timeout rejects with an AbortError whose cause is the TimeoutError', async (t) => {
  const [host, guest] = connectedPair()
  const err = await t.throwsAsync(within(guest.wait({ signal: AbortSignal.timeout(20) }), 'timed wait'), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  })
  t.is((err!.cause as Error).name, 'TimeoutError')
  host.signalNow()
  await t.notThrowsAsync(within(guest.wait(), 'wait after timeout'))
  host.close()
  guest.close()
})

test('aborting one of several waits leaves the others pending until the ring', async (t) => {
  const [host, guest] = connectedPair()
  const controller = new AbortController()
  const aborted = guest.wait({ signal: controller.signal })
  const kept = guest.wait()
  controller.abort()
  await t.throwsAsync(aborted, { code: 'ABORT_ERR' })
  t.is(await stateAfter(kept, 50), 'pending')
  host.signalNow()
  await t.notThrowsAsync(within(kept, 'kept wait'))
  host.close()
  guest.close()
})

test('a ring that arrives while every wait is being aborted is kept for the next wait', async (t) => {
  const [host, guest] = connectedPair()
  for (let round = 0; round < 200; round++) {
    const controller = new AbortController()
    const waiting = guest.wait({ signal: controller.signal }).catch(() => 'aborted')
    host.signalNow()
    controller.abort()
    if ((await waiting) === 'aborted') await within(guest.wait(), `round ${round}: the next wait`)
  }
  t.is(guest.pendingBytes(), 0)
  host.close()
  guest.close()
})

test('for await yields once per wake and ends when the doorbell is closed', async (t) => {
  const [host, guest] = connectedPair()
  let wakes = 0
  const loop = (async () => {
    for await (const _ of guest) {
      wakes++
      guest.signalNow()
    }
  })()
  for (let i = 0; i < 10; i++) {
    host.signalNow()
    await within(host.wait(), `ack ${i}`)
  }
  guest.close()
  await within(loop, 'loop end')
  t.is(wakes, 10)
  host.close()
})

test('for await ends normally when the peer is gone', async (t) => {
  const [host, guest] = connectedPair()
  host.signalNow()
  host.close()
  let wakes = 0
  for await (const _ of guest) wakes++
  t.is(wakes, 1)
  guest.close()
})

test('Symbol.dispose closes the doorbell and the handle', (t) => {
  const [host, guest] = Doorbell.createPair()
  host[Symbol.dispose]()
  guest[Symbol.dispose]()
  t.true(host.closed)
  t.is(guest.fd, -1)
})

test('ref and unref return the doorbell; accept resolves at once', async (t) => {
  const [host, guest] = connectedPair()
  t.is(host.unref(), host)
  t.is(host.ref(), host)
  await t.notThrowsAsync(host.accept())
  host.close()
  guest.close()
})

test('the constructors cannot be called directly', (t) => {
  const AnyDoorbell = Doorbell as unknown as new () => Doorbell
  const AnyHandle = DoorbellHandle as unknown as new () => DoorbellHandle
  t.throws(() => new AnyDoorbell(), { instanceOf: TypeError, code: 'ERR_ILLEGAL_CONSTRUCTOR' })
  t.throws(() => new AnyHandle(), { instanceOf: TypeError, code: 'ERR_ILLEGAL_CONSTRUCTOR' })
})

test('waits that always find a ring already there still let the event loop turn', async (t) => {
  const [host, guest] = connectedPair()
  let turned = false
  setImmediate(() => (turned = true))
  let waits = 0
  while (!turned && waits < 100_000) {
    guest.signalNow()
    await within(host.wait(), `wait ${waits}`)
    waits++
  }
  t.true(turned, `the event loop did not turn in ${waits} waits`)
  host.close()
  guest.close()
})

test("intoRawFd lets go of a handle's fd without closing it; the handle reads closed, and the fd can be adopted again", async (t) => {
  const [host, handle] = Doorbell.createPair()
  const fd = handle.fd
  t.is(handle.intoRawFd(), fd)
  t.is(handle.fd, -1)
  t.true(handle.closed)
  t.notThrows(() => validateFd(fd), 'the fd is still open')
  t.is(host.signalNow(), 'Sent', 'the peer is still alive')
  t.false(host.isPeerDead())
  const guest = Doorbell.fromRawFd(fd)
  await within(guest.wait(), 'a wait on the adopted fd')
  guest.close()
  host.close()
})

test("intoRawFd lets go of a doorbell's fd: pending waits reject with ERR_DOORBELL_CLOSED, undrained rings stay, and the fd can be adopted or closed", async (t) => {
  const [host, handle] = Doorbell.createPair()
  const guest = Doorbell.fromHandle(handle)
  const waiting = guest.wait()
  const fd = guest.fd
  t.is(guest.intoRawFd(), fd)
  await t.throwsAsync(waiting, { code: 'ERR_DOORBELL_CLOSED' })
  t.is(guest.fd, -1)
  t.true(guest.closed)
  t.is(host.signalNow(), 'Sent')
  t.false(host.isPeerDead(), 'letting go is not closing: the peer does not see a death')
  const adopted = Doorbell.fromRawFd(fd)
  t.is(adopted.pendingBytes(), 1, 'the ring sent after the hand-over waits in the socket')
  await within(adopted.wait(), 'a wait on the adopted fd')
  t.is(adopted.intoRawFd(), fd)
  closePeerFd(fd)
  await t.throwsAsync(within(host.wait(), 'the host sees the death'), { code: 'ERR_DOORBELL_PEER_DEAD' })
  host.close()
})

test('intoRawFd on a closed or consumed end throws ERR_DOORBELL_CLOSED', (t) => {
  const [host, handle] = Doorbell.createPair()
  const guest = Doorbell.fromHandle(handle)
  t.throws(() => handle.intoRawFd(), { code: 'ERR_DOORBELL_CLOSED' }, 'a consumed handle')
  const fd = guest.intoRawFd()
  t.throws(() => guest.intoRawFd(), { code: 'ERR_DOORBELL_CLOSED' }, 'a doorbell let go of')
  closePeerFd(fd)
  host.close()
  t.throws(() => host.intoRawFd(), { code: 'ERR_DOORBELL_CLOSED' }, 'a closed doorbell')
  const [other, otherHandle] = Doorbell.createPair()
  otherHandle.close()
  t.throws(() => otherHandle.intoRawFd(), { code: 'ERR_DOORBELL_CLOSED' }, 'a closed handle')
  other.close()
})

/** Three waits made in one run of JS after `host` rang all resolve; a later wait sleeps until the next ring. */
async function threeWaitsWokenByOneRing(t: ExecutionContext, host: Doorbell, guest: Doorbell): Promise<void> {
  const waits = [guest.wait(), guest.wait(), guest.wait()]
  await within(Promise.all(waits), 'the three waits')
  t.is(guest.pendingBytes(), 0)
  const next = guest.wait()
  t.is(await stateAfter(next, 100), 'pending', 'a wait made later sleeps until a new ring')
  host.signalNow()
  await within(next, 'the next wait')
  host.close()
  guest.close()
}

test('a ring already in the socket wakes every wait made in the same run of JS, on a fresh doorbell', async (t) => {
  const [host, guest] = connectedPair()
  host.signalNow()
  await threeWaitsWokenByOneRing(t, host, guest)
})

test('a ring already in the socket wakes every wait made in the same run of JS, on a doorbell that has waited before', async (t) => {
  const [host, guest] = connectedPair()
  for (let round = 0; round < 3; round++) {
    const woken = guest.wait()
    host.signalNow()
    await within(woken, `earlier wait ${round}`)
  }
  host.signalNow()
  await delay(20) // the ring sits in the socket while the doorbell's watch is started
  await threeWaitsWokenByOneRing(t, host, guest)
})

test('many waits on one AbortSignal add one abort listener per doorbell, and no MaxListenersExceededWarning', async (t) => {
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => void warnings.push(warning)
  process.on('warning', onWarning)
  const [host, guest] = connectedPair()
  const abort = new AbortController()
  const waits = Array.from({ length: 50 }, () => guest.wait({ signal: abort.signal }))
  abort.abort()
  for (const wait of waits) await t.throwsAsync(wait, { code: 'ABORT_ERR' })
  // Waits resolved by a ring take their listener with them: the signal can be used again.
  const kept = new AbortController()
  for (let round = 0; round < 20; round++) {
    const woken = Promise.all(Array.from({ length: 20 }, () => guest.wait({ signal: kept.signal })))
    host.signalNow()
    await within(woken, `round ${round}`)
  }
  await delay(10) // warnings are emitted on the next tick
  process.off('warning', onWarning)
  t.deepEqual(
    warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning'),
    [],
  )
  host.close()
  guest.close()
})

test("util.inspect shows a doorbell's fd, closed, peer dead, ref, pending waits and engine, and a handle's fd and closed", async (t) => {
  const [host, handle] = Doorbell.createPair()
  const fd = host.fd
  const handleFd = handle.fd
  // On one line, as inspect prints it where it fits (a doorbell's state takes two lines at Node's 80).
  const oneLine = (value: unknown) => inspect(value, { breakLength: Infinity })
  t.is(inspect(handle), `DoorbellHandle { fd: ${handleFd}, closed: false }`)
  t.is(
    oneLine(host),
    `Doorbell { fd: ${fd}, closed: false, peerDead: false, ref: true, pendingWaits: 0, engine: '${engine}' }`,
  )
  const waits = [host.wait(), host.wait()]
  host.unref()
  t.is(
    oneLine(host),
    `Doorbell { fd: ${fd}, closed: false, peerDead: false, ref: false, pendingWaits: 2, engine: '${engine}' }`,
  )
  handle.close()
  for (const wait of waits) await t.throwsAsync(wait, { code: 'ERR_DOORBELL_PEER_DEAD' })
  t.is(inspect(handle), 'DoorbellHandle { fd: -1, closed: true }')
  t.is(
    oneLine(host),
    `Doorbell { fd: ${fd}, closed: false, peerDead: true, ref: false, pendingWaits: 0, engine: '${engine}' }`,
  )
  host.close()
  t.is(
    oneLine(host),
    `Doorbell { fd: -1, closed: true, peerDead: true, ref: false, pendingWaits: 0, engine: '${engine}' }`,
  )
  t.is(inspect({ nested: { host } }, { depth: 0 }), '{ nested: [Object] }')
  t.is(inspect([host], { depth: 0 }), '[ [Doorbell] ]')
})

test('errors name the fd of the doorbell or handle', async (t) => {
  const [host, handle] = Doorbell.createPair()
  const fd = host.fd
  const handleFd = handle.fd
  handle.close()
  t.throws(() => handle.asRawFd(), {
    code: 'ERR_DOORBELL_CLOSED',
    message: `The doorbell handle on fd ${handleFd} is closed`,
  })
  await t.throwsAsync(host.wait(), {
    code: 'ERR_DOORBELL_PEER_DEAD',
    message: `The peer of the doorbell on fd ${fd} is gone`,
  })
  const waiting = host.wait()
  await t.throwsAsync(waiting, { code: 'ERR_DOORBELL_PEER_DEAD', message: new RegExp(`fd ${fd}\\b`) })
  host.close()
  t.throws(() => host.signalNow(), { code: 'ERR_DOORBELL_CLOSED', message: `The doorbell on fd ${fd} is closed` })
  await t.throwsAsync(host.wait(), { code: 'ERR_DOORBELL_CLOSED', message: `The doorbell on fd ${fd} is closed` })
})
