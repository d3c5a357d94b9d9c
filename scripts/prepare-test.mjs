// Runs before `npm test`: installs the npm dependencies if this is a fresh clone, then builds
// the release addon and index.js, and the Rust guest that the interop test starts
// (cargo and tsc only redo what changed).
import { execSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const run = (command) => execSync(command, { stdio: 'inherit' })

if (!existsSync('node_modules/.package-lock.json')) run('npm ci')
run('npm run build')
run('cargo build --example rust-guest --example rust-channel-peer')
