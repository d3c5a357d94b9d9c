// Bad input fails with its code, and leaves what the caller owns as it was.
import { closeSync, fstatSync, openSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { Doorbell, DoorbellHandle, closePeerFd } from 'shm-doorbell'

import { assert, failsWith } from '../lib.mjs'

export async function host() {
  const [doorbell, handle] = Doorbell.createPair()
  const file = openSync(fileURLToPath(import.meta.url), 'r')
  const cases = [
    [() => Doorbell.fromRawFd(-1), 'ERR_OUT_OF_RANGE'],
    [() => Doorbell.fromRawFd(1.5), 'ERR_OUT_OF_RANGE'],
    [() => Doorbell.fromRawFd('3'), 'ERR_INVALID_ARG_TYPE'],
    [() => Doorbell.fromRawFd(1_000_000), 'EBADF'],
    [() => Doorbell.fromRawFd(file), 'ENOTSOCK'],
    [() => DoorbellHandle.fromArg('+3'), 'ERR_INVALID_ARG_VALUE'],
    [() => Doorbell.fromArgv([]), 'ERR_MISSING_ARGS'],
    [() => Doorbell.fromHandle({}), 'ERR_INVALID_ARG_TYPE'],
    [() => doorbell.wait({ signal: 5 }), 'ERR_INVALID_ARG_TYPE'],
    [() => Doorbell.fromRawFd(doorbell.fd), 'ERR_DOORBELL_FD_IN_USE'],
    [() => closePeerFd(handle.fd), 'ERR_DOORBELL_FD_IN_USE'],
    [() => new Doorbell(), 'ERR_ILLEGAL_CONSTRUCTOR'],
  ]
  for (const [call, code] of cases) await failsWith(call, code)
  assert.ok(fstatSync(file).isFile(), 'a refused fd stays open')
  closeSync(file)
  doorbell.close()
  await failsWith(() => doorbell.signalNow(), 'ERR_DOORBELL_CLOSED')
  handle.close()
  await failsWith(() => handle.asRawFd(), 'ERR_DOORBELL_CLOSED')
  return `${cases.length + 2} codes`
}
