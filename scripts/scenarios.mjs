// The runtimes scenarios (__test__/runtimes/scenarios/) run against the package as a user installs
// it: shared by `npm run test:runtimes` (every runtime of this machine) and `npm run test:targets`
// (the other targets' binaries, on arm64 and musl runtimes). A scenario is one file whose `host`
// function the runner calls (see __test__/runtimes/role.mjs); add a file to add a scenario.
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const scenarioDir = join(root, '__test__', 'runtimes')
const SCENARIO_TIMEOUT_MS = 120_000

const log = (line) => process.stdout.write(`${line}\n`)

/** The scenarios' names, sorted. */
export function scenarioNames() {
  return readdirSync(join(scenarioDir, 'scenarios'))
    .filter((file) => file.endsWith('.mjs'))
    .map((file) => file.slice(0, -'.mjs'.length))
    .sort()
}

/**
 * Packs the package (`npm run pack -- PLATFORM...`: the host's binary when none is named) and
 * installs its tarballs into an empty project with the scenarios; returns the project's path.
 * `foreign`: the platform packages are for another cpu or libc than this npm's, which npm refuses
 * unless forced (its --cpu and --libc choose optional dependencies only).
 */
export function installPackage({ platforms = [], foreign = false } = {}) {
  execFileSync('npm', ['run', '--silent', 'pack', '--', ...platforms], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const tarballs = readdirSync(join(root, 'dist'))
    .filter((file) => file.endsWith('.tgz'))
    .map((file) => join(root, 'dist', file))
  const project = mkdtempSync(join(tmpdir(), 'shm-doorbell-runtimes-'))
  writeFileSync(join(project, 'package.json'), '{ "name": "runtimes-user", "private": true, "type": "module" }\n')
  // The main package lists every platform's package, unpublished here: the ones built here are tarballs.
  execFileSync(
    'npm',
    [
      'install',
      '--offline',
      '--omit=optional',
      '--no-audit',
      '--no-fund',
      ...(foreign ? ['--force'] : []),
      ...tarballs,
    ],
    { cwd: project, stdio: ['ignore', 'ignore', 'inherit'] },
  )
  cpSync(scenarioDir, join(project, 'runtimes'), { recursive: true })
  return project
}

/**
 * Runs the host role of `scenario` on `runtime` (`{ name, command, engine }`; `prefix`, if any,
 * starts the host only, as `unshare` does): `{ ok, note, output }`.
 */
function runScenario(project, runtime, scenario, env) {
  const { prefix = [], ...described } = runtime
  const [file, ...args] = [...prefix, ...runtime.command]
  const childEnv = { ...process.env, ...env, SHM_RUNTIME: JSON.stringify(described), NO_COLOR: '1' }
  delete childEnv.SHM_DOORBELL_ENGINE
  const child = spawn(file, [...args, join(project, 'runtimes', 'role.mjs'), scenario, 'host'], {
    cwd: project,
    env: childEnv,
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

/** Runs every scenario on `runtime` in `project` with `env` added, logging each: `{ passed, failed }`. */
export async function runScenarios(project, described, env = {}) {
  const version = /\d+\.\d+\.\d+/.exec(
    execFileSync(described.command[0], ['--version'], { encoding: 'utf8', env: { ...process.env, ...env } }),
  )[0]
  const runtime = { ...described, version }
  log(
    `${runtime.name} ${version} (${runtime.command.map((part) => part.split('/').at(-1)).join(' ')}, engine ${runtime.engine})`,
  )
  let passed = 0
  let failed = 0
  for (const scenario of scenarioNames()) {
    const start = performance.now()
    const { ok, note, output, code, signal } = await runScenario(project, runtime, scenario, env)
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
  return { passed, failed }
}
