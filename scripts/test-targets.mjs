// `npm run test:targets [-- TARGET...]`: builds (`npm run build:targets`, which keeps what is up to
// date) and tests the binary of every napi target (or of the targets named) on this Linux x64
// machine, each as far as it can run here:
// - linux-arm64-gnu: the whole ava suite, child processes included, on arm64 Node 20, 22 and 24
//   under qemu-user (binfmt_misc runs every arm64 child under qemu too), in a copy of this checkout
//   as an arm64 machine has it: its npm dependencies installed for arm64, the Rust example peers
//   built for arm64, and the arm64 binary where `npm run build` puts the host's. Then the runtimes
//   scenarios (scripts/scenarios.mjs) on Bun's arm64 build, from the packed package.
// - linux-x64-musl and linux-arm64-musl: the runtimes scenarios on Bun's musl builds (the only musl
//   JavaScript runtimes on npm), from the packed package, with the musl userland of
//   scripts/toolchains.mjs.
// - darwin-x64 and darwin-arm64: nothing here can run a Mach-O binary. `file` checks that each is a
//   Mach-O dylib of its architecture, and `cargo check --all-targets` for the target compiles the
//   macOS code paths of the library, its unit tests and the examples, with no warning allowed.
// - linux-x64-gnu: the host, tested by `npm test` and `npm run test:runtimes`; here only `file`.
// `--nodes=20,22` runs the ava suite on some of the arm64 Nodes only, `--nodes=none` on none;
// `--ava-match=PATTERN` (repeatable) is ava's `--match` for that suite, as `!TITLE*` to leave a test
// out. The last line is `N passed, M failed`, counting each ava test, scenario and check.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

import { buildTargets, selectTargets, targetEnv } from './build-targets.mjs'
import { installPackage, runScenarios } from './scenarios.mjs'
import { QEMU_AARCH64_PREFIX, cache, ensureToolchains, muslBun, root, runtimeBinary } from './toolchains.mjs'

/** The Rust peers that the ava suite starts (as scripts/prepare-test.mjs builds them). */
const EXAMPLES = ['rust-guest', 'rust-channel-peer']
/** What a checkout holds that the copy for another architecture must not: builds, caches, installs. */
const NOT_COPIED = new Set(['.git', 'node_modules', 'target', 'dist', '.targets', '.runtimes'])

const log = (line) => process.stdout.write(`${line}\n`)
const seconds = (start) => Math.round((performance.now() - start) / 1000)

/** What `file` says the binary is, and the words it must say for `target`. */
function checkFileKind(target) {
  const kind = execFileSync('file', ['-b', target.binary], { encoding: 'utf8' }).trim()
  const expected =
    target.platform === 'darwin'
      ? ['Mach-O 64-bit', 'dynamically linked shared library', target.arch === 'x64' ? 'x86_64' : 'arm64']
      : ['ELF 64-bit LSB shared object', target.arch === 'x64' ? 'x86-64' : 'ARM aarch64']
  const ok = expected.every((word) => kind.includes(word))
  log(`  ${ok ? '\u2714' : '\u2718'} file: ${kind}`)
  return ok
}

/** A musl binary must need no glibc library (libc.so.6, libm.so.6...). */
function checkMuslNeeds(target) {
  const needed = [
    ...execFileSync('readelf', ['-d', target.binary], { encoding: 'utf8' }).matchAll(/\(NEEDED\).*\[(.+)\]/g),
  ]
  const names = needed.map((match) => match[1])
  const ok = !names.some((name) => name.endsWith('.so.6'))
  log(`  ${ok ? '\u2714' : '\u2718'} needs only musl's libraries: ${names.join(', ')}`)
  return ok
}

/** `cargo check --all-targets` for `target` with Debian's Rust: no error, and no warning in this crate. */
function checkCompiles(target, env) {
  const start = performance.now()
  const args = ['check', '--all-targets', '--target', target.triple, '--target-dir', join('target', 'cross')]
  const { status, stdout, stderr } = spawnSync(
    'cargo',
    [...args, '--message-format=short', '-Zbuild-std=std,panic_abort'],
    {
      cwd: root,
      env: targetEnv(target, env),
      encoding: 'utf8',
    },
  )
  const output = `${stdout}${stderr}`
  let ok = status === 0
  const ours = output.split('\n').filter((line) => /^(src|examples|build\.rs)\b.*: (warning|error)/.test(line))
  ok &&= ours.length === 0
  log(`  ${ok ? '\u2714' : '\u2718'} cargo check --all-targets --target ${target.triple} (${seconds(start)} s)`)
  for (const line of ok ? [] : ours.length > 0 ? ours : output.trim().split('\n').slice(-20)) log(`      ${line}`)
  return ok
}

/** A copy of this checkout as an arm64 machine would have it after `npm ci && npm run build` (see the header). */
function prepareArm64Checkout(target, crossEnv) {
  const stage = join(cache, 'checkout', target.platformArchABI)
  const lockStamp = join(stage, 'node_modules', '.installed-from')
  const lock = readFileSync(join(root, 'package-lock.json'), 'utf8')
  const keepModules = existsSync(lockStamp) && readFileSync(lockStamp, 'utf8') === lock
  for (const entry of existsSync(stage) ? readdirSync(stage) : []) {
    if (!(keepModules && entry === 'node_modules')) rmSync(join(stage, entry), { recursive: true, force: true })
  }
  const hostBinaries = []
  const copied = (source) => {
    const path = relative(root, source)
    if (path.endsWith('.linux-x64-gnu.node') && !path.startsWith('npm/')) hostBinaries.push(path)
    return !path.endsWith('.node')
  }
  for (const entry of readdirSync(root).filter((name) => !NOT_COPIED.has(name))) {
    cpSync(join(root, entry), join(stage, entry), { recursive: true, filter: copied })
  }
  if (hostBinaries.length === 0) throw new Error('no linux-x64-gnu binary in this checkout: run npm run build first')
  for (const path of hostBinaries) {
    cpSync(target.binary, join(stage, path.replace('linux-x64-gnu', target.platformArchABI)))
  }

  const start = performance.now()
  execFileSync(
    'cargo',
    ['build', '--release', '--target', target.triple, '--target-dir', join('target', 'cross')]
      .concat(EXAMPLES.flatMap((example) => ['--example', example]))
      .concat('-Zbuild-std=std,panic_abort'),
    { cwd: root, env: targetEnv(target, crossEnv), stdio: 'inherit' },
  )
  // The tests start target/debug/examples/*; the release build reuses the std and dependencies
  // that the addon's build compiled for this target.
  mkdirSync(join(stage, 'target', 'debug', 'examples'), { recursive: true })
  for (const example of EXAMPLES) {
    cpSync(
      join(root, 'target', 'cross', target.triple, 'release', 'examples', example),
      join(stage, 'target', 'debug', 'examples', example),
    )
  }
  log(`  arm64 Rust example peers built in ${seconds(start)} s`)

  if (!keepModules) {
    const installStart = performance.now()
    execFileSync(
      'npm',
      ['ci', '--no-audit', '--no-fund', '--loglevel=error', '--os=linux', '--cpu=arm64', '--libc=glibc'],
      {
        cwd: stage,
        stdio: 'inherit',
      },
    )
    writeFileSync(lockStamp, lock)
    log(`  npm ci for arm64 in ${seconds(installStart)} s`)
  }
  return stage
}

/**
 * ava's timeout under qemu: the longest time without a test result. The 500 SIGKILL cycles of
 * reliability.spec start 500 emulated Node guests, and take 8 minutes alone here (2 cores).
 */
const EMULATED_AVA_TIMEOUT = '20m'

/**
 * Runs ava (its TAP reporter, to count) in `checkout` on an arm64 Node under qemu, with ava's
 * `--match` for each of `matches`; resolves its counts. Each file's tests run one at a time
 * (--serial): emulated 10-30 times slower, a CPU-heavy test starves the timers of the tests beside it
 * in its process, which then miss their bounds.
 */
function runAva(checkout, node, matches) {
  const env = {
    ...process.env,
    // `node`, and through their shebang `npm` and `npx`, are the arm64 Node for the suite's children.
    PATH: `${dirname(node)}:${process.env.PATH}`,
    QEMU_LD_PREFIX: QEMU_AARCH64_PREFIX,
    // Tells the suite it runs emulated (`emulator` in scripts/workloads/helpers.ts): longer bounds, and
    // no count of the mappings the emulated process gains of its own.
    SHM_DOORBELL_TEST_EMULATOR: 'qemu-user',
  }
  delete env.SHM_DOORBELL_ENGINE
  for (const name of Object.keys(env)) if (/^npm_/i.test(name)) delete env[name]
  const args = ['--tap', '--serial', `--timeout=${EMULATED_AVA_TIMEOUT}`, ...matches.map((match) => `--match=${match}`)]
  const child = spawn(node, [join('node_modules', 'ava', 'entrypoints', 'cli.mjs'), ...args], {
    cwd: checkout,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      output += chunk
      process.stdout.write(chunk.toString().replace(/^(?=.)/gm, '    '))
    })
  }
  return new Promise((resolve) => {
    child.on('close', (code) => {
      const lines = output.split('\n')
      const passed = lines.filter((line) => line.startsWith('ok ') && !line.includes('# SKIP')).length
      const notOk = lines.filter((line) => line.startsWith('not ok ')).length
      // A run that ends early (a crash, ava's timeout) counts as a failure even if no test says so.
      resolve({ passed, failed: notOk + (code !== 0 && notOk === 0 ? 1 : 0) })
    })
  })
}

/** The runtimes scenarios on Bun, from the packed main package and `target`'s package. */
async function runBunScenarios(target, runtime, env = {}) {
  const project = installPackage({ platforms: [target.platformArchABI], foreign: true })
  try {
    return await runScenarios(project, { name: 'bun', engine: 'tokio', ...runtime }, env)
  } finally {
    rmSync(project, { recursive: true, force: true })
  }
}

const argv = process.argv.slice(2)
const nodes = (argv.find((arg) => arg.startsWith('--nodes='))?.slice('--nodes='.length) ?? '20,22,24')
  .split(',')
  .filter((version) => version !== 'none')
const avaMatches = argv.filter((arg) => arg.startsWith('--ava-match=')).map((arg) => arg.slice('--ava-match='.length))
const targets = await selectTargets(argv.filter((arg) => !arg.startsWith('--')))
const crossEnv = ensureToolchains()
const buildSeconds = buildTargets(targets)
const summary = []
let passed = 0
let failed = 0
const tally = (ok) => (ok ? passed++ : failed++)
const add = (result) => {
  passed += result.passed
  failed += result.failed
}

for (const target of targets) {
  const start = performance.now()
  const before = { passed, failed }
  log(`${target.triple} (npm/${target.platformArchABI}/)`)
  tally(checkFileKind(target))
  if (target.platform === 'darwin') {
    tally(checkCompiles(target, crossEnv))
  } else if (target.triple === 'aarch64-unknown-linux-gnu') {
    const checkout = nodes.length > 0 ? prepareArm64Checkout(target, crossEnv) : undefined
    for (const version of nodes) {
      const node = runtimeBinary(`node${version}-arm64`)
      const nodeStart = performance.now()
      const qemuEnv = { ...process.env, QEMU_LD_PREFIX: QEMU_AARCH64_PREFIX }
      log(
        `  ava on arm64 Node ${execFileSync(node, ['--version'], { encoding: 'utf8', env: qemuEnv }).trim()} under qemu`,
      )
      const result = await runAva(checkout, node, avaMatches)
      add(result)
      log(`  ava on arm64 Node ${version}: ${result.passed} passed, ${result.failed} failed (${seconds(nodeStart)} s)`)
    }
    add(
      await runBunScenarios(target, { command: [runtimeBinary('bun-arm64')] }, { QEMU_LD_PREFIX: QEMU_AARCH64_PREFIX }),
    )
  } else if (target.abi === 'musl') {
    tally(checkMuslNeeds(target))
    add(await runBunScenarios(target, muslBun(target.arch === 'x64' ? 'x86_64' : 'aarch64')))
  }
  const took = seconds(start)
  const built = buildSeconds[target.triple] ? `built in ${buildSeconds[target.triple]} s` : 'binary up to date'
  summary.push(
    `${target.triple}: ${built}; ${passed - before.passed} passed, ${failed - before.failed} failed in ${took} s`,
  )
}
for (const line of summary) log(line)
log(`${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
