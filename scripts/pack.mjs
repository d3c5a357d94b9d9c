// `npm run pack`, after `npm run build`: writes into dist/ the tarballs that a release publishes,
// for the main package and for the platform package of each binary built here.
//
// The main package gets the optionalDependencies that `napi prepublish` writes at publish time
// (one per napi target, at this exact version); the committed package.json leaves them out
// because npm ci fails in a clone while those versions are not on the registry.
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { readNapiConfig } from '@napi-rs/cli'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const dist = join(root, 'dist')
const stage = join(dist, 'stage')

/** Runs npm pack in `dir` and returns what it reports about the tarball. */
function pack(dir, options = []) {
  const output = execFileSync('npm', ['pack', '--json', '--ignore-scripts', ...options], { cwd: dir, encoding: 'utf8' })
  return JSON.parse(output)[0]
}

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const lib = join(root, 'lib')
if (!existsSync(join(root, 'index.js')) || !existsSync(join(lib, 'binding.js'))) {
  throw new Error('index.js or lib/binding.js missing: run npm run build first')
}

const { binaryName, packageName, targets } = await readNapiConfig(join(root, 'package.json'))
const built = readdirSync(lib).flatMap((file) => {
  const match = new RegExp(`^${binaryName}\\.(.+)\\.node$`).exec(file)
  return match ? [{ file, platform: match[1] }] : []
})
if (built.length === 0) throw new Error(`no ${binaryName}.*.node in ${lib}: run npm run build first`)

rmSync(dist, { recursive: true, force: true })
mkdirSync(stage, { recursive: true })

// The main package: the files npm would publish from here, and the published manifest.
const mainStage = join(stage, packageName)
for (const { path } of pack(root, ['--dry-run']).files) {
  cpSync(join(root, path), join(mainStage, path), { recursive: true })
}
const optionalDependencies = Object.fromEntries(
  targets.map((target) => [`${packageName}-${target.platformArchABI}`, manifest.version]),
)
writeFileSync(join(mainStage, 'package.json'), `${JSON.stringify({ ...manifest, optionalDependencies }, null, 2)}\n`)
const tarballs = [pack(mainStage, ['--pack-destination', dist])]

// The platform packages: npm/<platform>/ with the binary built here, as `napi artifacts` fills them in CI.
for (const { file, platform } of built) {
  const platformStage = join(stage, platform)
  cpSync(join(root, 'npm', platform), platformStage, { recursive: true })
  cpSync(join(lib, file), join(platformStage, file))
  tarballs.push(pack(platformStage, ['--pack-destination', dist]))
}

rmSync(stage, { recursive: true, force: true })
for (const { filename, size, unpackedSize, entryCount } of tarballs) {
  console.log(`dist/${filename}: ${size} bytes (${unpackedSize} unpacked, ${entryCount} files)`)
}
