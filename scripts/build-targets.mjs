// `npm run build:targets [-- TARGET...]`: builds the addon for every napi target of package.json (or
// the targets named, by triple or platform: `aarch64-unknown-linux-gnu`, `darwin-arm64`) into
// npm/<platform>/, where a release's `napi artifacts` puts the binaries it publishes. Installs the
// toolchains first (scripts/toolchains.mjs). The host's binary builds with the rustup toolchain, as
// `npm run build` does; every other target builds with Debian's Rust and its own std (`-Zbuild-std`)
// in target/cross/, linked by aarch64-linux-gnu-gcc (arm64 glibc) or by zig (musl and macOS, as the
// release workflow links them). A binary newer than every Rust source is kept as it is.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'

import { readNapiConfig } from '@napi-rs/cli'

import { ensureToolchains, root } from './toolchains.mjs'

const HOST_TRIPLE = 'x86_64-unknown-linux-gnu'
const log = (line) => process.stdout.write(`${line}\n`)

/** The napi targets named on the command line, or all of them. */
export async function selectTargets(names) {
  const { binaryName, targets } = await readNapiConfig(join(root, 'package.json'))
  const unknown = names.filter(
    (name) => !targets.some((target) => [target.triple, target.platformArchABI].includes(name)),
  )
  if (unknown.length > 0) {
    throw new Error(
      `not a napi target of package.json: ${unknown.join(', ')} (${targets.map((t) => t.triple).join(', ')})`,
    )
  }
  return targets
    .filter((target) => names.length === 0 || names.includes(target.triple) || names.includes(target.platformArchABI))
    .map((target) => ({
      ...target,
      binary: join(root, 'npm', target.platformArchABI, `${binaryName}.${target.platformArchABI}.node`),
    }))
}

/** The newest modification time among the files the binary is built from. */
function newestSource() {
  const files = ['Cargo.toml', 'Cargo.lock', 'build.rs'].map((file) => join(root, file))
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else files.push(path)
    }
  }
  walk(join(root, 'src'))
  return Math.max(...files.map((file) => statSync(file).mtimeMs))
}

/** The environment that builds for `target` with Debian's Rust (`crossEnv`, from ensureToolchains) and its linker. */
export function targetEnv(target, crossEnv) {
  const env = { ...crossEnv }
  if (target.abi === 'gnu') {
    const gcc = `${target.triple.split('-')[0]}-linux-gnu-gcc`
    env[`CARGO_TARGET_${target.triple.toUpperCase().replaceAll('-', '_')}_LINKER`] = gcc
    env[`CC_${target.triple.replaceAll('-', '_')}`] = gcc
  }
  // The oldest macOS the release workflow builds for, 10.13, which arm64 Macs never ran: zig
  // finds no libSystem for arm64 before 11.0 (rustc raises it to 11.0 on its own).
  if (target.platform === 'darwin') env.MACOSX_DEPLOYMENT_TARGET = target.arch === 'arm64' ? '11.0' : '10.13'
  return env
}

/** The `napi build` arguments and environment for `target`. */
function buildCommand(target, crossEnv) {
  const args = ['build', '--platform', '--release', '--no-js', '--output-dir', join('npm', target.platformArchABI)]
  if (target.triple === HOST_TRIPLE) return { args, env: process.env }
  args.push('--target', target.triple, '--target-dir', join('target', 'cross'))
  if (target.abi !== 'gnu') args.push('--cross-compile')
  args.push('--', '-Zbuild-std=std,panic_abort')
  return { args, env: targetEnv(target, crossEnv) }
}

/** Builds `targets` unless their binary is newer than the sources; returns each one's seconds (0: kept). */
export function buildTargets(targets) {
  const crossEnv = ensureToolchains()
  const sources = newestSource()
  const napi = join(root, 'node_modules', '.bin', 'napi')
  const seconds = {}
  for (const target of targets) {
    if (existsSync(target.binary) && statSync(target.binary).mtimeMs > sources) {
      log(`${target.triple}: npm/${target.platformArchABI}/ is up to date`)
      seconds[target.triple] = 0
      continue
    }
    log(`${target.triple}: building into npm/${target.platformArchABI}/`)
    const { args, env } = buildCommand(target, crossEnv)
    const start = performance.now()
    execFileSync(napi, args, { cwd: root, env, stdio: 'inherit' })
    // The package's type definitions come from `npm run build`; napi writes a copy beside each binary.
    rmSync(join(dirname(target.binary), 'index.d.ts'), { force: true })
    seconds[target.triple] = Math.round((performance.now() - start) / 1000)
    const kind = execFileSync('file', ['-b', target.binary], { encoding: 'utf8' }).trim()
    log(`${target.triple}: built in ${seconds[target.triple]} s: ${kind}`)
  }
  return seconds
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildTargets(await selectTargets(process.argv.slice(2)))
}
