// `npm run test:runtimes`: the package as a user installs it, on every runtime that loads Node-API
// addons. Installs Node 22 and 24, Deno 2 and Bun 1 from npm into .runtimes/ (gitignored, kept
// between runs), packs this package (`npm run pack`, after `npm run build`), installs the tarballs
// into an empty project, and runs every scenario of __test__/runtimes/scenarios/ there, host and
// guests on the same runtime; Node 20 is the Node running this script. A scenario is one file whose
// `host` function the runner calls (see __test__/runtimes/role.mjs); add a file to add a scenario.
// The last line is `N passed, M failed`.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { installPackage, runScenarios } from './scenarios.mjs'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const cache = join(root, '.runtimes')

/** The runtimes from npm: alias, package@range, and the binary's path in the cache. */
const nodeBinary = `node-${process.platform}-${process.arch}`
const fromNpm = [
  { alias: 'node22', spec: `npm:${nodeBinary}@22`, bin: 'node_modules/node22/bin/node' },
  { alias: 'node24', spec: `npm:${nodeBinary}@24`, bin: 'node_modules/node24/bin/node' },
  { alias: 'deno', spec: '2', bin: 'node_modules/.bin/deno' },
  { alias: 'bun', spec: '1', bin: 'node_modules/.bin/bun' },
]

const log = (line) => process.stdout.write(`${line}\n`)

/** Installs the runtimes into .runtimes/ unless they are there already. */
function installRuntimes() {
  if (fromNpm.every(({ bin }) => existsSync(join(cache, bin)))) return
  log(`installing ${fromNpm.map(({ alias, spec }) => `${alias}@${spec}`).join(', ')} into .runtimes/`)
  mkdirSync(cache, { recursive: true })
  const manifest = {
    name: 'shm-doorbell-runtimes',
    private: true,
    dependencies: Object.fromEntries(fromNpm.map(({ alias, spec }) => [alias, spec])),
    // Deno's and Bun's packages put their binary in place with an install script.
    allowScripts: { deno: true, bun: true },
  }
  writeFileSync(join(cache, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: cache, stdio: 'inherit' })
}

/** The runtimes to test: how to start a script on each, and the engine it must choose. */
function runtimes() {
  const bin = (alias) => join(cache, fromNpm.find((runtime) => runtime.alias === alias).bin)
  return [
    { name: 'node', command: [process.execPath], engine: 'uv' },
    { name: 'node', command: [bin('node22')], engine: 'uv' },
    { name: 'node', command: [bin('node24')], engine: 'uv' },
    { name: 'deno', command: [bin('deno'), 'run', '-A'], engine: 'tokio' },
    { name: 'bun', command: [bin('bun')], engine: 'tokio' },
  ]
}

installRuntimes()
const project = installPackage()
let passed = 0
let failed = 0
const started = performance.now()
try {
  for (const runtime of runtimes()) {
    const result = await runScenarios(project, runtime)
    passed += result.passed
    failed += result.failed
  }
} finally {
  rmSync(project, { recursive: true, force: true })
}
log(`runtimes: ${Math.round((performance.now() - started) / 1000)} s`)
log(`${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
