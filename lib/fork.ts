// fork(): child_process.fork's way of starting a Node module, with a Channel instead of the IPC pipe.
import type { ChildProcess, ChildProcessByStdio, ChildProcessWithoutNullStreams, ForkOptions } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import type { ChannelOptions } from './channel'
import { invalidArgType } from './errors'
import { type ChildProcessFor, type SpawnedChannel, spawnArguments, spawnChannel } from './spawn'

/** Options of {@link fork}: child_process.fork's, and the channel's. */
export interface ForkChannelOptions extends ForkOptions, ChannelOptions {}

/** The child's type for fork's options: its `stdio`, else pipes with `silent: true`, else inherited. */
export type ForkedChildFor<Options> = 'stdio' extends keyof Options
  ? ChildProcessFor<Options['stdio' & keyof Options]>
  : Options extends { silent: true }
    ? ChildProcessWithoutNullStreams
    : Options extends { silent: boolean }
      ? ChildProcess
      : ChildProcessByStdio<null, null, null>

/**
 * Starts `modulePath` in a new Node process as `child_process.fork` does, with its options (`execArgv`,
 * default `process.execArgv`; `execPath`; `cwd`; `env`; `stdio`, default inherited, or pipes with
 * `silent: true`; and the rest of `spawn`'s) and the channel's (`capacity`, `spin`). Instead of an
 * IPC pipe the child gets a channel, which it opens with `Channel.fromArgv()`: its fds follow `stdio`
 * (fds 3 and 4 when only 0-2 are named), named by `--doorbell-fd N --region-fd M` after `args`. No
 * IPC pipe is made unless `stdio` names `'ipc'`.
 */
export function fork<const Options extends ForkChannelOptions = Record<never, never>>(
  modulePath: string | URL,
  options?: Options,
): SpawnedChannel<ForkedChildFor<Options>>
export function fork<const Options extends ForkChannelOptions = Record<never, never>>(
  modulePath: string | URL,
  args?: readonly string[] | null,
  options?: Options,
): SpawnedChannel<ForkedChildFor<Options>>
export function fork(modulePath: string | URL, argsOrOptions?: unknown, maybeOptions?: unknown): SpawnedChannel {
  const path = modulePath instanceof URL ? fileURLToPath(modulePath) : modulePath
  if (typeof path !== 'string') throw invalidArgType('modulePath', 'of type string or an instance of URL', modulePath)
  const [args, options] = spawnArguments(argsOrOptions, maybeOptions) as [readonly string[], ForkChannelOptions]
  const { execArgv = process.execArgv, execPath = process.execPath, silent, stdio, ...rest } = options
  if (!Array.isArray(execArgv)) throw invalidArgType('options.execArgv', 'an instance of Array', execArgv)
  return spawnChannel(execPath, [...execArgv, path, ...args], {
    ...rest,
    stdio: stdio ?? (silent ? 'pipe' : 'inherit'),
  })
}
