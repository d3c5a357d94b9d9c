// `npm run test:runtimes`: the package as a user installs it, on every runtime that loads Node-API
// addons. Installs Node 22 and 24, Deno 2 and Bun 1 from npm into .runtimes/ (gitignored, kept
// between runs), packs this package (`npm run pack`, after `npm run build`), installs the tarballs
// into an empty project, and runs every scenario of __test__/runtimes/scenarios/ there, host and
// guests on the same runtime; Node 20 is the Node running this script. A scenario is one file whose
// `host` function the runner calls (see __test__/runtimes/role.mjs); add a file to add a scenario.
// The last line is `N passed, M failed`.
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const cache = join(root, '.runtimes')
const scenarioDir = join(root, '__test__', 'runtimes')
const SCENARIO_TIMEOUT_MS = 120_000

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
  ].map((runtime) => ({
    ...runtime,
    version: /\d+\.\d+\.\d+/.exec(execFileSync(runtime.command[0], ['--version'], { encoding: 'utf8' }))[0],
  }))
}

/** Packs the package and installs its tarballs into an empty project with the scenarios. */
function installPackage() {
  execFileSync('npm', ['run', '--silent', 'pack'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  const tarballs = readdirSync(join(root, 'dist'))
    .filter((file) => file.endsWith('.tgz'))
    .map((file) => join(root, 'dist', file))
  const project = mkdtempSync(join(tmpdir(), 'shm-doorbell-runtimes-'))
  writeFileSync(join(project, 'package.json'), '{ "name": "runtimes-user", "private": true, "type": "module" }\n')
  // The main package lists every platform's package, unpublished here: the one built here is a tarball.
  execFileSync('npm', ['install', '--offline', '--omit=optional', '--no-audit', '--no-fund', ...tarballs], {
    cwd: project,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  cpSync(scenarioDir, join(project, 'runtimes'), { recursive: true })
  return project
}

/** Runs the host role of `scenario` on `runtime`: `{ ok, note, output }`. */
function runScenario(project, runtime, scenario) {
  const [file, ...args] = runtime.command
  const env = { ...process.env, SHM_RUNTIME: JSON.stringify(runtime), NO_COLOR: '1' }
  delete env.SHM_DOORBELL_ENGINE
  const child = spawn(file, [...args, join(project, 'runtimes', 'role.mjs'), scenario, 'host'], {
    cwd: project,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const timer = setTimeout(() => {
    output += `\ntimed out after ${SCENARIO_TIMEOUT_MS} ms`
    child.kill('SIGKILL')
  }, SCENARIO_TIMEOUT_MS)
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const result = output.split('\n').findLast((line) => line.startsWith('\u2713'))
      resolve({ ok: code === 0 && result !== undefined, note: result?.slice(1).trim(), output, code, signal })
    })
  })
}

installRuntimes()
const project = installPackage()
const scenarios = readdirSync(join(scenarioDir, 'scenarios'))
  .filter((file) => file.endsWith('.mjs'))
  .map((file) => file.slice(0, -'.mjs'.length))
  .sort()
let passed = 0
let failed = 0
const started = performance.now()
try {
  for (const runtime of runtimes()) {
    log(
      `${runtime.name} ${runtime.version} (${runtime.command.map((part) => part.split('/').at(-1)).join(' ')}, engine ${runtime.engine})`,
    )
    for (const scenario of scenarios) {
      const start = performance.now()
      const { ok, note, output, code, signal } = await runScenario(project, runtime, scenario)
      const took = `${Math.round(performance.now() - start)} ms`
      if (ok) {
        passed++
        log(`  \u2714 ${scenario}: ${note} (${took})`)
      } else {
        failed++
        log(`  \u2718 ${scenario}: exit ${signal ?? code} (${took})`)
        log(output.trimEnd().replace(/^/gm, '      '))
      }
    }
  }
} finally {
  rmSync(project, { recursive: true, force: true })
}
log(`runtimes: ${Math.round((performance.now() - started) / 1000)} s`)
log(`${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
