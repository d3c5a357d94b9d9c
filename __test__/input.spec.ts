import { closeSync, fstatSync, openSync } from 'node:fs'

import test from 'ava'
import { ARG_NAME, Doorbell, DoorbellHandle, closePeerFd, spawn, validateFd } from 'shm-doorbell'

import { takesFd } from '../scripts/workloads/hostile.ts'
import { openFdCount } from './helpers.ts'

const MAX_FD = 2 ** 31 - 1

for (const [name, call] of Object.entries(takesFd)) {
  test(`${name} rejects a non-number fd with ERR_INVALID_ARG_TYPE`, (t) => {
    for (const fd of ['3', null, undefined, {}, [], 3n, true, Symbol('fd')]) {
      t.throws(() => call(fd as unknown as number), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
    }
  })

  test(`${name} rejects a negative, fractional, NaN or too large fd with ERR_OUT_OF_RANGE`, (t) => {
    for (const fd of [-1, -0.5, 1.5, NaN, Infinity, -Infinity, MAX_FD + 1, 2 ** 53]) {
      t.throws(() => call(fd), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    }
  })

  test(`${name} rejects an fd that is not open with EBADF`, (t) => {
    const err = t.throws(() => call(MAX_FD), { code: 'EBADF' })
    t.is((err as NodeJS.ErrnoException).errno, -9)
    t.is(typeof (err as NodeJS.ErrnoException).syscall, 'string')
  })
}

for (const [name, call] of Object.entries({
  'Doorbell.fromRawFd': (fd: number) => Doorbell.fromRawFd(fd),
  'DoorbellHandle.fromRawFd': (fd: number) => DoorbellHandle.fromRawFd(fd),
})) {
  test(`${name} rejects an open fd that is not a socket with ENOTSOCK and leaves it open`, (t) => {
    const fd = openSync('/dev/null', 'r')
    const before = fstatSync(fd)
    t.throws(() => call(fd), { code: 'ENOTSOCK' })
    t.is(fstatSync(fd).ino, before.ino)
    closeSync(fd)
  })
}

test('DoorbellHandle.fromArg rejects a non-string with ERR_INVALID_ARG_TYPE', (t) => {
  for (const arg of [3, null, undefined, {}, ['3']]) {
    t.throws(() => DoorbellHandle.fromArg(arg as unknown as string), {
      instanceOf: TypeError,
      code: 'ERR_INVALID_ARG_TYPE',
    })
  }
})

test('DoorbellHandle.fromArg rejects anything but a plain non-negative decimal with ERR_INVALID_ARG_VALUE', (t) => {
  for (const arg of [
    '',
    ' 3',
    '3 ',
    '+3',
    '-1',
    '0x3',
    '3.0',
    '1e3',
    'three',
    '3\n',
    String(MAX_FD + 1),
    '99999999999',
  ]) {
    t.throws(() => DoorbellHandle.fromArg(arg), { code: 'ERR_INVALID_ARG_VALUE' }, JSON.stringify(arg))
  }
})

test('DoorbellHandle.fromArg of a closed fd number gives EBADF', (t) => {
  t.throws(() => DoorbellHandle.fromArg(String(MAX_FD)), { code: 'EBADF' })
})

test('Doorbell.fromArgv without the flag gives ERR_MISSING_ARGS naming --doorbell-fd', (t) => {
  for (const argv of [[], ['node', 'script.js'], ['node', 'script.js', ARG_NAME]]) {
    const err = t.throws(() => Doorbell.fromArgv(argv), { code: 'ERR_MISSING_ARGS' })
    t.regex(err!.message, /--doorbell-fd/)
  }
})

test('Doorbell.fromArgv rejects a bad value of the flag', (t) => {
  t.throws(() => Doorbell.fromArgv(['node', ARG_NAME, 'x']), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => Doorbell.fromArgv([`${ARG_NAME}=-3`]), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => Doorbell.fromArgv('--doorbell-fd 3' as unknown as string[]), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('Doorbell.fromHandle rejects what is not a DoorbellHandle', (t) => {
  for (const handle of [3, null, undefined, { fd: 3 }]) {
    t.throws(() => Doorbell.fromHandle(handle as unknown as DoorbellHandle), { code: 'ERR_INVALID_ARG_TYPE' })
  }
})

test('wait rejects bad options and keeps the doorbell usable', async (t) => {
  const [host, guestHandle] = Doorbell.createPair()
  const guest = Doorbell.fromHandle(guestHandle)
  host.signalNow()
  for (const options of [null, 3, 'signal']) {
    await t.throwsAsync(guest.wait(options as never), { code: 'ERR_INVALID_ARG_TYPE' })
  }
  await t.throwsAsync(guest.wait({ signal: {} as AbortSignal }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(guest.pendingBytes(), 1)
  await t.notThrowsAsync(guest.wait({}))
  host.close()
  guest.close()
})

test('spawn rejects stdio, args and options that child_process.spawn rejects, with its codes, without leaking an fd', (t) => {
  const before = openFdCount()
  t.throws(() => spawn(process.execPath, [], { stdio: 42 as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => spawn(process.execPath, [], { stdio: 'ipc' as never }), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => spawn(process.execPath, 'guest.js' as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => spawn(process.execPath, [], null as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => spawn(process.execPath, [], 3 as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(openFdCount(), before)
})

test('spawn passes on child_process errors for a bad command, without leaking an fd', (t) => {
  const before = openFdCount()
  t.throws(() => spawn(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(openFdCount(), before)
})

test('closePeerFd closes an fd, validateFd then reports EBADF', (t) => {
  const fd = openSync('/dev/null', 'r')
  t.notThrows(() => validateFd(fd))
  closePeerFd(fd)
  t.throws(() => validateFd(fd), { code: 'EBADF' })
})

test('an fd that a Doorbell or DoorbellHandle owns cannot be taken or closed again, and stays usable', async (t) => {
  const [host, guest] = Doorbell.createPair()
  for (const fd of [host.fd, guest.fd]) {
    t.throws(() => Doorbell.fromRawFd(fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
    t.throws(() => DoorbellHandle.fromRawFd(fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
    t.throws(() => DoorbellHandle.fromArg(String(fd)), { code: 'ERR_DOORBELL_FD_IN_USE' })
    t.throws(() => closePeerFd(fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
    t.notThrows(() => validateFd(fd))
  }
  const opened = Doorbell.fromHandle(guest)
  t.throws(() => Doorbell.fromRawFd(opened.fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
  opened.signalNow()
  await t.notThrowsAsync(host.wait())
  host.close()
  opened.close()
})
