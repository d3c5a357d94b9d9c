// The README's examples run as written: every code block of README.md and docs/api.md whose first
// line names a file (`// host.mjs: ...`, `# guest.py: ...`) is written to that file in a project that
// depends on this package, and the ones a user would start are run with plain node.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { spawn } from 'node:child_process'

import test from 'ava'

import { exitOf, runNode, within } from './helpers.ts'

const blocks = ['README.md', 'docs/api.md'].flatMap((page) => [
  ...readFileSync(page, 'utf8').matchAll(/^```(\w+)\n(?:\/\/|#) ([\w-]+\.\w+): [^\n]*\n([\s\S]*?)^```$/gm),
])
const files = new Map(blocks.map(([, , name, body]) => [name, body]))
let project: string

test.before(() => {
  project = mkdtempSync(join(tmpdir(), 'shm-doorbell-readme-'))
  mkdirSync(join(project, 'node_modules'))
  symlinkSync(resolve('.'), join(project, 'node_modules', 'shm-doorbell'), 'dir')
  for (const [name, body] of files) writeFileSync(join(project, name), body)
})

test.after.always(() => {
  if (project) rmSync(project, { recursive: true, force: true })
})

test('the README and docs/api.md name their examples, and none uses `using`, a SyntaxError in plain JavaScript before Node 24', (t) => {
  t.deepEqual([...files.keys()].sort(), [
    'channel-guest.mjs',
    'channel-host.mjs',
    'guest.mjs',
    'guest.py',
    'host.mjs',
    'python-host.mjs',
    'region-guest.mjs',
    'region-host.mjs',
    'rendezvous-client.mjs',
    'rendezvous-server.mjs',
    'threads.mjs',
  ])
  for (const [name, body] of files) t.notRegex(body, /^\s*(await )?using /m, name)
})

for (const [entry, output] of [
  ['host.mjs', ''],
  ['threads.mjs', 'three rounds with a worker'],
  ['channel-host.mjs', 'PING\nSHARED\nMEMORY'],
  ['python-host.mjs', 'the Python guest exited with 0'],
  ['region-host.mjs', '2000000'],
]) {
  test(`the README's ${entry} runs as written`, async (t) => {
    const { code, stdout, stderr } = await within(runNode([entry], { cwd: project }), `node ${entry}`)
    t.is(code, 0, stderr)
    t.is(stdout.trim(), output)
  })
}

test("the README's rendezvous server and client, started separately, meet by the path", async (t) => {
  const server = spawn(process.execPath, ['rendezvous-server.mjs'], {
    cwd: project,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exit = exitOf(server)
  try {
    await within(new Promise((resolvePromise) => server.stdout.once('data', resolvePromise)), 'the server listening')
    const { code, stdout, stderr } = await within(runNode(['rendezvous-client.mjs'], { cwd: project }), 'the client')
    t.is(code, 0, stderr)
    t.is(stdout, 'MET BY PATH\n')
  } finally {
    server.kill()
    await exit
  }
})
