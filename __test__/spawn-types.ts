// Type-level checks of spawn()'s result, compiled by `npm run lint` (tsc over the tests): the child's
// streams are non-null where `stdio` pipes them, as @types/node types child_process.spawn.
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'

import { spawn } from 'shm-doorbell'

export function typedChildren(options: SpawnOptions): void {
  const piped: Readable = spawn('cmd').child.stdout
  const pipedWithArgs: Writable = spawn('cmd', ['a']).child.stdin
  const pipedString: Readable = spawn('cmd', ['a'], { stdio: 'pipe' }).child.stderr
  const nullArgs: Readable = spawn('cmd', null, { stdio: 'pipe', env: {} }).child.stdout
  const undefinedArgs: Readable = spawn('cmd', undefined, { cwd: '/' }).child.stdout
  const tuple = spawn('cmd', ['a'], { stdio: ['ignore', 'pipe', 'inherit'] }).child
  const stdout: Readable = tuple.stdout
  const stdin: null = tuple.stdin
  const stderr: null = tuple.stderr
  const extra: Readable = spawn('cmd', { stdio: ['pipe', 'pipe', 'pipe', 'ipc'] }).child.stderr
  const inherited: null = spawn('cmd', [], { stdio: 'inherit' }).child.stdout
  const declared: ChildProcess = spawn('cmd', [], options).child
  // @ts-expect-error: stdout is inherited, so the parent has no stream
  const notPiped: Readable = spawn('cmd', [], { stdio: 'inherit' }).child.stdout
  // @ts-expect-error: with options of unknown stdio, stdout may be null
  const maybe: Readable = spawn('cmd', [], options).child.stdout
  void [
    piped,
    pipedWithArgs,
    pipedString,
    nullArgs,
    undefinedArgs,
    stdout,
    stdin,
    stderr,
    extra,
    inherited,
    declared,
    notPiped,
    maybe,
  ]
}
