// spawn(): every argument form of child_process.spawn, any stdio array, the flag's last occurrence,
// a blocking socket for the child, and inline scripts.
import type { StdioOptions } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

import test from 'ava'
import { ARG_NAME, Doorbell, spawn, type SpawnedGuest } from 'shm-doorbell'

import { exitOf, fixture, within } from './helpers.ts'

const reportGuest = fixture('report-guest.cjs')

interface Report {
  code: number | null
  args: string[]
  fd: number
  env?: string
  cwd: string
}

/** Awaits the guest's ring, closes the host's end and returns what the guest printed. */
async function reportOf({ child, doorbell }: SpawnedGuest): Promise<Report> {
  const exit = exitOf(child)
  await within(doorbell.wait(), 'the guest rang')
  doorbell.close()
  const { code, stdout, stderr } = await within(exit, 'the guest exit')
  if (code !== 0) throw new Error(`the guest exited with ${code}: ${stderr}`)
  return { code, ...JSON.parse(stdout) }
}

test('spawn(command, undefined or null, options) honours the options, as child_process.spawn does', async (t) => {
  const cwd = realpathSync(mkdtempSync(join(tmpdir(), 'shm-doorbell-spawn-')))
  try {
    for (const args of [undefined, null]) {
      const report = await reportOf(
        spawn(reportGuest, args, {
          cwd,
          env: { ...process.env, DOORBELL_TEST: `args ${args}` },
          stdio: ['ignore', 'pipe', 'inherit'],
        }),
      )
      t.deepEqual(report, { code: 0, args: [ARG_NAME, '3'], fd: 3, env: `args ${args}`, cwd }, `args ${args}`)
    }
    const report = await reportOf(spawn(reportGuest, { cwd, stdio: ['ignore', 'pipe', 'inherit'] }))
    t.is(report.cwd, cwd, 'spawn(command, options)')
  } finally {
    rmSync(cwd, { recursive: true, force: true })
  }
})

test('the doorbell is the first fd after any stdio array, and --doorbell-fd names it', async (t) => {
  for (const [stdio, fd] of [
    [['ignore', 'pipe', 'inherit', 'ipc'], 4],
    [['ignore', 'pipe', 'inherit', 'ignore', 'pipe'], 5],
    [['ignore', 'pipe'], 3],
    ['pipe', 3],
  ] as const) {
    const guest = spawn(reportGuest, [], { stdio: stdio as StdioOptions })
    const message = (stdio as readonly string[]).includes('ipc') ? once(guest.child, 'message') : undefined
    const report = await reportOf(guest)
    t.deepEqual([report.fd, report.args], [fd, [ARG_NAME, String(fd)]], JSON.stringify(stdio))
    if (message) t.is((await within(message, 'the IPC message'))[0], 'ipc works')
  }
})

test('a --doorbell-fd in the args is overridden by the one spawn() appends: the last occurrence wins', async (t) => {
  const report = await reportOf(spawn(reportGuest, [ARG_NAME, '7'], { stdio: ['ignore', 'pipe', 'inherit'] }))
  t.deepEqual(report.args, [ARG_NAME, '7', ARG_NAME, '3'])
  t.is(report.fd, 3)
  const [host, handle] = Doorbell.createPair()
  const fd = handle.intoRawFd()
  const guest = Doorbell.fromArgv(['node', 'guest.js', `${ARG_NAME}=${host.fd}`, ARG_NAME, String(fd)])
  t.is(guest.fd, fd)
  guest.close()
  host.close()
})

test('the child gets a blocking socket: a Python guest reads its rings with a plain blocking recv', async (t) => {
  const script = [
    'import socket, sys',
    `fd = int(sys.argv[len(sys.argv) - 1 - sys.argv[::-1].index('${ARG_NAME}') + 1])`,
    'bell = socket.socket(fileno=fd)',
    'for _ in range(3):',
    '    assert len(bell.recv(1)) == 1',
    '    bell.send(b"\\x01")',
    'print("eof" if bell.recv(1) == b"" else "data")',
  ].join('\n')
  const { child, doorbell } = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exit = exitOf(child)
  for (let round = 0; round < 3; round++) {
    await delay(100) // the guest is blocked in recv by now
    t.is(doorbell.signalNow(), 'Sent')
    await within(doorbell.wait(), `round ${round}`)
  }
  doorbell.close()
  const { code, stdout, stderr } = await within(exit, 'the Python guest exit')
  t.is(code, 0, stderr)
  t.is(stdout.trim(), 'eof')
})

test("spawn(process.execPath, ['-e', code]) works: the flags go after '--', which Node leaves to the script", async (t) => {
  const modulePath = JSON.stringify(createRequire(import.meta.url).resolve('shm-doorbell'))
  const code = `
    const doorbell = require(${modulePath}).Doorbell.fromArgv()
    console.log(JSON.stringify({ args: process.argv.slice(1), fd: doorbell.fd, cwd: process.cwd() }))
    doorbell.signalNow()
    doorbell.wait().catch(() => {})`
  for (const args of [['-e', code], ['-e', code, '--'], [`--eval=${code}`]]) {
    const report = await reportOf(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] }))
    t.deepEqual(report.args, [ARG_NAME, '3'], args.join(' ').slice(0, 20))
  }
})

test("a piped child's streams are there, as its type says", async (t) => {
  const guest = spawn(reportGuest, [], { stdio: 'pipe' })
  t.truthy(guest.child.stdin)
  guest.child.stdin.end()
  t.is((await reportOf(guest)).fd, 3)
})
