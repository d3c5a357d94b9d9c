// Runs before the generated loader (./binding) is used: loads it once, and turns its failure on a
// platform with no binary into one error that names the platform, its package and the supported list.

/** The platforms with a binary package, in napi's naming (`shm-doorbell-<platform>`): package.json's napi targets. */
const SUPPORTED_PLATFORMS = [
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-x64-musl',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
]

const PACKAGE_NAME = 'shm-doorbell'

/** This process's platform as napi names binary packages: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`. */
function detectPlatform(): string {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function isMusl(): boolean {
  // The report's header names the glibc it runs on; musl builds of Node have none.
  const report = process.report as NodeJS.ProcessReport & { excludeNetwork?: boolean }
  const excludeNetwork = report.excludeNetwork
  report.excludeNetwork = true // no DNS lookups for a report we only read the header of
  try {
    const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
    return !header?.glibcVersionRuntime
  } finally {
    report.excludeNetwork = excludeNetwork
  }
}

function isInstalled(packageName: string): boolean {
  try {
    require.resolve(`${packageName}/package.json`)
    return true
  } catch {
    return false
  }
}

/** Why an installed package fails to load (a corrupt file, a glibc older than the one it was built for). */
function loadFailure(packageName: string): unknown {
  try {
    require(packageName)
    return new Error('it loads when required again')
  } catch (err) {
    return err
  }
}

/** The error for a platform whose binary cannot be loaded. */
function noBinaryError(): Error {
  const platform = detectPlatform()
  const packageName = `${PACKAGE_NAME}-${platform}`
  let problem: string
  let cause: unknown
  if (!SUPPORTED_PLATFORMS.includes(platform)) {
    problem = `its package would be ${packageName}, which does not exist: this platform is not supported`
  } else if (!isInstalled(packageName)) {
    problem =
      `the package that holds it, ${packageName}, is not installed. It is an optional dependency: ` +
      `install without --omit=optional, and if a package-lock.json made on another platform left it out, ` +
      `delete it and node_modules and install again (in a clone of the repository: npm run build)`
  } else {
    cause = loadFailure(packageName)
    problem = `the package that holds it, ${packageName}, is installed but fails to load: ${(cause as Error).message}`
  }
  const message = `${PACKAGE_NAME} has no binary for ${platform}: ${problem}. Supported platforms: ${SUPPORTED_PLATFORMS.join(', ')}.`
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), {
    code: 'ERR_DOORBELL_NO_BINARY',
  })
}

try {
  require('./binding')
} catch {
  throw noBinaryError()
}
