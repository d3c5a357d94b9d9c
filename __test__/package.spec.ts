// The package as users get it: the tarballs `npm run pack` writes, installed into an empty
// project with no Rust toolchain on PATH, used from CommonJS, ESM and TypeScript.
import { execFile } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { promisify } from 'node:util'

import { readNapiConfig } from '@napi-rs/cli'
import test from 'ava'

import { fixture } from './helpers.ts'

const run = promisify(execFile)
/** npm install and tsc take seconds; a busy machine may take many more. */
const SLOW_MS = 120_000

const root = resolve('.')
const manifest = JSON.parse(readFileSync('package.json', 'utf8'))
const platformDirs = readdirSync('npm').sort()

/** Names of the Rust toolchain's commands, which a user's shell does not have. */
const RUST_COMMAND = /^(cargo|rustc|rustdoc|rustup|rust-gdb|rust-lldb)(-|$)/

/**
 * The environment of a user's shell: no Rust toolchain on PATH, no npm settings from `npm test`.
 * A folder on PATH that holds a Rust command is replaced by a folder in `tmp` of links to its other
 * commands (Debian's cargo sits in /usr/bin beside node and npm).
 */
function userEnv(tmp: string): NodeJS.ProcessEnv {
  const path = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir && existsSync(dir))
    .map((dir, index) => {
      const commands = readdirSync(dir)
      if (!commands.some((name) => RUST_COMMAND.test(name))) return dir
      const shadow = join(tmp, 'path', String(index))
      mkdirSync(shadow, { recursive: true })
      for (const name of commands) if (!RUST_COMMAND.test(name)) symlinkSync(join(dir, name), join(shadow, name))
      return shadow
    })
    .join(delimiter)
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))
  return { ...env, PATH: path, npm_config_cache: join(tmp, 'npm-cache') }
}

interface Packed {
  dist: string
  main: string
  host: { platform: string; tarball: string }
  project: string
  env: NodeJS.ProcessEnv
  /** The platforms of package.json's napi targets, in their order. */
  supported: string[]
  tmp: string
}

let packed: Packed

test.before(async () => {
  const { stdout } = await run('npm', ['run', '--silent', 'pack'], { timeout: SLOW_MS })
  const dist = resolve('dist')
  const tarballs = readdirSync(dist).filter((file) => file.endsWith('.tgz'))
  const main = `${manifest.name}-${manifest.version}.tgz`
  const hostTarball = tarballs.find((file) => file !== main)
  if (!tarballs.includes(main) || !hostTarball) throw new Error(`npm run pack wrote ${tarballs}: ${stdout}`)
  const platform = hostTarball.slice(manifest.name.length + 1, -`-${manifest.version}.tgz`.length)

  const tmp = mkdtempSync(join(tmpdir(), 'shm-doorbell-package-'))
  const project = join(tmp, 'project')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  cpSync(fixture('consumer'), project, { recursive: true })
  const env = userEnv(tmp)
  // --offline with an empty cache: the two tarballs are all it needs; the other platforms'
  // optional dependencies are left out, as --omit=optional asks.
  await run(
    'npm',
    ['install', '--offline', '--omit=optional', '--no-audit', '--no-fund', join(dist, main), join(dist, hostTarball)],
    { cwd: project, env, timeout: SLOW_MS },
  )
  packed = {
    dist,
    main: join(dist, main),
    host: { platform, tarball: join(dist, hostTarball) },
    project,
    env,
    supported: (await readNapiConfig(join(root, 'package.json'))).targets.map((target) => target.platformArchABI),
    tmp,
  }
})

test.after.always(() => {
  if (packed) rmSync(packed.tmp, { recursive: true, force: true })
})

const tarList = async (tarball: string): Promise<string[]> =>
  (await run('tar', ['-tzf', tarball])).stdout
    .split('\n')
    .filter(Boolean)
    .map((path) => path.replace(/^package\//, ''))
    .sort()

const tarManifest = async (tarball: string): Promise<Record<string, unknown>> =>
  JSON.parse((await run('tar', ['-xzOf', tarball, 'package/package.json'])).stdout)

/** Runs `node script` in the installed project, as its user would. */
const nodeIn = (dir: string, args: string[]) =>
  run(process.execPath, args, { cwd: dir, env: packed.env, timeout: SLOW_MS })

test('npm run pack writes the main tarball and the host platform tarball into dist/', (t) => {
  t.true(platformDirs.includes(packed.host.platform), packed.host.platform)
  t.deepEqual(readdirSync(packed.dist).sort(), [
    `${manifest.name}-${manifest.version}.tgz`,
    `${manifest.name}-${packed.host.platform}-${manifest.version}.tgz`,
  ])
})

test('the main tarball holds only compiled JS, .d.ts, README, LICENSE and package.json', async (t) => {
  const files = await tarList(packed.main)
  const built = readdirSync('lib', { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.(js|d\.ts)$/.test(file))
    .map((file) => `lib/${file}`)
  t.deepEqual(
    files,
    ['LICENSE', 'README.md', 'package.json', 'index.js', 'index.d.ts', ...built].sort(),
    'the root index, every compiled module of lib/, and what npm always adds',
  )
  for (const file of files) t.regex(file, /^(LICENSE|README\.md|package\.json|(lib\/([\w-]+\/)*)?[\w-]+\.(js|d\.ts))$/)
})

test('the main tarball lists every platform package as an optional dependency at its exact version', async (t) => {
  const published = await tarManifest(packed.main)
  t.deepEqual(
    published.optionalDependencies,
    Object.fromEntries(platformDirs.map((dir) => [`${manifest.name}-${dir}`, manifest.version])),
  )
  t.is(manifest.optionalDependencies, undefined, 'the committed package.json leaves them to publish time')
})

test('the host platform tarball holds its .node binary, and a manifest for its os, cpu and libc', async (t) => {
  const { platform, tarball } = packed.host
  const binary = `${manifest.napi.binaryName}.${platform}.node`
  t.deepEqual(await tarList(tarball), ['README.md', binary, 'package.json'].sort())
  const published = await tarManifest(tarball)
  t.like(published, { name: `${manifest.name}-${platform}`, version: manifest.version, main: binary })
})

test('each napi target has a platform package in npm/ with os, cpu, libc, main, files, the version and a README', async (t) => {
  const { targets, binaryName } = await readNapiConfig(join(root, 'package.json'))
  t.deepEqual(targets.map((target) => target.platformArchABI).sort(), platformDirs)
  for (const target of targets) {
    const dir = join('npm', target.platformArchABI)
    const platformManifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const binary = `${binaryName}.${target.platformArchABI}.node`
    t.like(platformManifest, {
      name: `${manifest.name}-${target.platformArchABI}`,
      version: manifest.version,
      os: [target.platform],
      cpu: [target.arch],
      main: binary,
      files: [binary],
    })
    t.deepEqual(platformManifest.libc, target.abi === 'gnu' ? ['glibc'] : target.abi === 'musl' ? ['musl'] : undefined)
    t.true(existsSync(join(dir, 'README.md')), `${dir}/README.md`)
  }
})

test('the tarballs install with no Rust toolchain on PATH, with only the host platform package', async (t) => {
  await t.throwsAsync(run('sh', ['-c', 'command -v cargo || command -v rustc'], { env: packed.env }))
  t.deepEqual(
    readdirSync(join(packed.project, 'node_modules'))
      .filter((name) => !name.startsWith('.'))
      .sort(),
    [manifest.name, `${manifest.name}-${packed.host.platform}`],
  )
  t.false(
    readdirSync(join(packed.project, 'node_modules', manifest.name)).some((file) => file.endsWith('.node')),
    'the binary comes from the platform package only',
  )
})

/** The JSON lines that a host and its guest print, host first: both write to one pipe, in either order. */
function reportsOf(stdout: string): Record<string, unknown>[] {
  const reports = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
  return reports.sort((a, b) => Number('guest' in a) - Number('guest' in b))
}

test('a CommonJS consumer requires the package and rings an ESM consumer in another process', async (t) => {
  const { stdout } = await nodeIn(packed.project, ['host.cjs'])
  t.deepEqual(reportsOf(stdout), [
    { host: 'cjs', resolved: join(packed.project, 'node_modules', manifest.name, 'index.js'), rounds: 3 },
    { guest: 'esm', wakes: 3 },
  ])
})

test('an ESM consumer imports the package and rings a CommonJS consumer in another process', async (t) => {
  const { stdout } = await nodeIn(packed.project, ['host.mjs'])
  t.deepEqual(reportsOf(stdout), [
    { host: 'esm', resolved: join(packed.project, 'node_modules', manifest.name, 'index.js'), rounds: 3 },
    { guest: 'cjs', wakes: 3 },
  ])
})

// Node's flag for Deno's default (a .js file whose package.json has no "type" is ESM) is gone from
// Node 23 on: there the test is skipped, and says why in its name; Node 20 and 22 run it.
const defaultTypeFlag = process.allowedNodeEnvironmentFlags.has('--experimental-default-type')
;(defaultTypeFlag ? test : test.skip)(
  `the package imported by path where .js defaults to ESM (as Deno does) loads as CommonJS: package.json says so${
    defaultTypeFlag ? '' : ` (skipped: Node ${process.versions.node} has no --experimental-default-type)`
  }`,
  async (t) => {
    t.is(manifest.type, 'commonjs')
    // The package outside any node_modules, with its platform package where the loader finds it.
    const dir = join(packed.tmp, 'by-path')
    const platformPackage = `${manifest.name}-${packed.host.platform}`
    cpSync(join(packed.project, 'node_modules', manifest.name), join(dir, manifest.name), { recursive: true })
    cpSync(join(packed.project, 'node_modules', platformPackage), join(dir, 'node_modules', platformPackage), {
      recursive: true,
    })
    const script = join(dir, 'import-by-path.mjs')
    writeFileSync(
      script,
      `const { Doorbell } = await import(${JSON.stringify(join(dir, manifest.name, 'index.js'))})
    const [host, guest] = Doorbell.createPair()
    const peer = Doorbell.fromHandle(guest)
    peer.signalNow()
    await host.wait()
    host.close()
    peer.close()
    console.log('rang')`,
    )
    const { stdout } = await nodeIn(dir, ['--experimental-default-type=module', script])
    t.is(stdout.trim(), 'rang')
  },
)

// The libs a consumer may compile with: es2022 (what target es2022 brings), an older one than Node 20's
// runtime supports, and @tsconfig/node20's es2023.
for (const lib of [undefined, ['es2020'], ['es2023']]) {
  test(`a TypeScript consumer type-checks with tsc --strict and skipLibCheck false, as CommonJS and as ESM, with lib ${lib ?? 'of target es2022'}`, async (t) => {
    const config = {
      compilerOptions: {
        module: 'nodenext',
        target: 'es2022',
        ...(lib && { lib }),
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['types.cts', 'types.mts'],
    }
    const tsconfig = `tsconfig.${lib ?? 'target'}.json`
    writeFileSync(join(packed.project, tsconfig), JSON.stringify(config))
    const tsc = join(root, 'node_modules', '.bin', 'tsc')
    const { stdout } = await run(tsc, ['-p', tsconfig], {
      cwd: packed.project,
      env: packed.env,
      timeout: SLOW_MS,
    }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? String(err) }))
    t.is(stdout, '')
  })
}

/** What requiring and importing the package throw in `dir`; `preload` runs first. */
async function loadErrors(dir: string, preload: string[] = []) {
  const script = `
    const report = (err) => ({ code: err.code, message: err.message })
    const results = []
    try { require('shm-doorbell'); results.push('loaded') } catch (err) { results.push(report(err)) }
    import('shm-doorbell').then(() => 'loaded', report).then((imported) => {
      results.push(imported)
      console.log(JSON.stringify(results))
    })`
  const { stdout } = await nodeIn(dir, [...preload, '-e', script])
  return JSON.parse(stdout) as Array<{ code: string; message: string } | 'loaded'>
}

test('without its platform package, require and import throw one error naming the platform, the package and the supported list', async (t) => {
  // A project where npm left the optional platform package out.
  const project = join(packed.tmp, 'missing')
  cpSync(join(packed.project, 'node_modules', manifest.name), join(project, 'node_modules', manifest.name), {
    recursive: true,
  })
  const { platform } = packed.host
  const [required, imported] = await loadErrors(project)
  t.deepEqual(required, imported)
  if (typeof required === 'string') return t.fail('the package loaded without its binary')
  t.is(required.code, 'ERR_DOORBELL_NO_BINARY')
  t.true(required.message.startsWith(`shm-doorbell has no binary for ${platform}: `), required.message)
  t.true(required.message.includes(`${manifest.name}-${platform}, is not installed`), required.message)
  t.true(required.message.includes('--omit=optional'), required.message)
  t.true(required.message.endsWith(`Supported platforms: ${packed.supported.join(', ')}.`), required.message)
})

test('with a platform package whose binary is broken, the error says it is installed but fails to load', async (t) => {
  const project = join(packed.tmp, 'broken')
  const { platform } = packed.host
  const platformPackage = `${manifest.name}-${platform}`
  for (const name of [manifest.name, platformPackage]) {
    cpSync(join(packed.project, 'node_modules', name), join(project, 'node_modules', name), { recursive: true })
  }
  writeFileSync(
    join(project, 'node_modules', platformPackage, `${manifest.napi.binaryName}.${platform}.node`),
    'not ELF',
  )
  const [required] = await loadErrors(project)
  if (typeof required === 'string') return t.fail('the package loaded a broken binary')
  t.is(required.code, 'ERR_DOORBELL_NO_BINARY')
  t.true(required.message.startsWith(`shm-doorbell has no binary for ${platform}: `), required.message)
  t.true(required.message.includes(`${platformPackage}, is installed but fails to load: `), required.message)
  t.true(required.message.endsWith(`Supported platforms: ${packed.supported.join(', ')}.`), required.message)
})

test('on Windows, require throws the same error: win32 is detected and has no package', async (t) => {
  const preload = join(packed.tmp, 'windows.cjs')
  // Only the platform is simulated: the generated loader and the package are the installed ones.
  writeFileSync(preload, "Object.defineProperty(process, 'platform', { value: 'win32' })\n")
  const [required] = await loadErrors(packed.project, ['--require', preload])
  if (typeof required === 'string') return t.fail('the package loaded on win32')
  t.is(required.code, 'ERR_DOORBELL_NO_BINARY')
  const windows = `win32-${process.arch}-msvc`
  t.true(required.message.startsWith(`shm-doorbell has no binary for ${windows}: `), required.message)
  t.true(required.message.includes(`${manifest.name}-${windows}, which does not exist`), required.message)
  t.true(required.message.endsWith(`Supported platforms: ${packed.supported.join(', ')}.`), required.message)
})
