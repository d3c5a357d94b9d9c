import { spawn as spawnChild } from 'node:child_process'
import type {
  ChildProcess,
  ChildProcessByStdio,
  ChildProcessWithoutNullStreams,
  SpawnOptions,
  StdioOptions,
} from 'node:child_process'
import type { Readable, Writable } from 'node:stream'

import { Channel, type ChannelOptions } from './channel'
import { ARG_NAME, Doorbell } from './doorbell'
import { invalidArgType, invalidArgValue } from './errors'
import { REGION_ARG_NAME, SharedRegion, fdOfOpenRegion } from './region'

/** A `stdio` entry for which the parent gets a stream: `child.stdin`, `child.stdout`, `child.stderr`. */
type PipedEntry = 'pipe' | 'overlapped' | null | undefined
type StdinFor<Entry> = Entry extends PipedEntry ? Writable : null
type OutputFor<Entry> = Entry extends PipedEntry ? Readable : null

/**
 * The child's type for a `stdio` option, as `@types/node` types `child_process.spawn`: its
 * `stdin`, `stdout` and `stderr` are streams, not `null`, where the option pipes them.
 */
export type ChildProcessFor<Stdio> = [Stdio] extends [never]
  ? ChildProcess
  : Stdio extends PipedEntry
    ? ChildProcessWithoutNullStreams
    : Stdio extends 'inherit' | 'ignore'
      ? ChildProcessByStdio<null, null, null>
      : Stdio extends readonly [infer In, infer Out, infer Err, ...unknown[]]
        ? ChildProcessByStdio<StdinFor<In>, OutputFor<Out>, OutputFor<Err>>
        : Stdio extends readonly [infer In, infer Out]
          ? ChildProcessByStdio<StdinFor<In>, OutputFor<Out>, Readable>
          : Stdio extends readonly [infer In]
            ? ChildProcessByStdio<StdinFor<In>, Readable, Readable>
            : Stdio extends readonly []
              ? ChildProcessWithoutNullStreams
              : ChildProcess

/** The `stdio` option of `Options`, `undefined` if it has none. */
type StdioOf<Options> = 'stdio' extends keyof Options ? Options['stdio' & keyof Options] : undefined

/** What {@link spawn} returns. */
export interface SpawnedGuest<Child extends ChildProcess = ChildProcess> {
  /** The child process, as `child_process.spawn` returns it. */
  child: Child
  /** The host's end of the pair; the child holds the other end, as the fd that `--doorbell-fd` names. */
  doorbell: Doorbell
}

/** Options of {@link spawn}: child_process.spawn's, and a region to share with the child. */
export interface SpawnGuestOptions extends SpawnOptions {
  /**
   * A region to share: the child gets its fd right after the doorbell's (fd 4 when only fds 0-2
   * are named) and `--region-fd N` after `--doorbell-fd`, and maps it with
   * `SharedRegion.fromArgv()`. The host's region stays open. Default: none.
   */
  region?: SharedRegion
}

/** The fd of the region option, checked: an open SharedRegion, or undefined. */
function regionFd(region: unknown): number | undefined {
  if (region === undefined) return undefined
  if (!(region instanceof SharedRegion)) throw invalidArgType('options.region', 'an instance of SharedRegion', region)
  return fdOfOpenRegion(region)
}

/** An fd of this process to hand to a child, and the flag that tells the child its number there. */
export interface ChildFd {
  fd: number
  flag: string
}

type StdioEntry = Extract<StdioOptions, readonly unknown[]>[number]

const STDIO_STRINGS: readonly string[] = ['pipe', 'overlapped', 'ignore', 'inherit']

/** `stdio` as an array of at least fds 0-2, as child_process.spawn reads it, so that fds can follow. */
function stdioArray(stdio: unknown): StdioEntry[] {
  if (stdio === undefined || stdio === null) return ['pipe', 'pipe', 'pipe']
  if (typeof stdio === 'string') {
    if (!STDIO_STRINGS.includes(stdio)) throw invalidArgValue('options.stdio', stdio, 'is invalid')
    return [stdio, stdio, stdio] as StdioEntry[]
  }
  if (!Array.isArray(stdio)) throw invalidArgType('options.stdio', 'a string or an array', stdio)
  // Entries left out of fds 0-2 are pipes, as child_process.spawn makes them.
  return Array.from({ length: Math.max(3, stdio.length) }, (_, fd) => stdio[fd]) as StdioEntry[]
}

/** `-e`, `-p` and their long forms: with one of them, Node reads a flag after the script as its own. */
const INLINE_SCRIPT = /^(-e|-p|-pe|--eval|--print)(=|$)/

/**
 * The args that name the child's fds: `flag N` for each, after `args`. A Node child running an
 * inline script (`-e`) gets `'--'` before them, unless `args` has one, so that Node leaves them to
 * the script.
 */
function argsWithFds(command: string, args: readonly string[], flags: ReadonlyArray<[string, number]>): string[] {
  const named = flags.flatMap(([flag, fd]) => [flag, String(fd)])
  const inlineScript = command === process.execPath && args.some((arg) => INLINE_SCRIPT.test(arg))
  const separator = inlineScript && !args.includes('--') ? ['--'] : []
  return [...args, ...separator, ...named]
}

/** `[args, options]` from the forms child_process.spawn takes: `(args?, options?)` or `(options)`. */
export function spawnArguments(argsOrOptions: unknown, maybeOptions: unknown): [readonly string[], SpawnOptions] {
  let args: readonly string[] = []
  let options = maybeOptions
  if (Array.isArray(argsOrOptions)) args = argsOrOptions
  else if (argsOrOptions !== undefined && argsOrOptions !== null) {
    if (typeof argsOrOptions !== 'object') throw invalidArgType('args', 'of type object', argsOrOptions)
    options = argsOrOptions
  }
  if (options === undefined) return [args, {}]
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalidArgType('options', 'of type object', options)
  }
  return [args, options as SpawnOptions]
}

/**
 * Starts `command` with `fds` of this process as the child's fds right after `stdio` (the entries
 * given, from {@link stdioArray}: fd 3 and on when only 0-2 are named), each named by its flag after
 * `args`. Returns the child as child_process.spawn does. The caller keeps and closes its own copies
 * of `fds`.
 */
export function spawnWithFds(
  command: string,
  args: readonly string[],
  options: SpawnOptions,
  stdio: readonly StdioEntry[],
  fds: readonly ChildFd[],
): ChildProcess {
  const flags = fds.map(({ flag }, index): [string, number] => [flag, stdio.length + index])
  return spawnChild(command, argsWithFds(command, args, flags), {
    ...options,
    stdio: [...stdio, ...fds.map(({ fd }) => fd)],
  })
}

/**
 * Starts `command` with a doorbell, taking every form of arguments that `child_process.spawn`
 * takes. The child gets the guest end as the first fd after the `stdio` entries given (fd 3 when
 * only 0-2 are named, or `stdio` is a string or left out), and `--doorbell-fd N` naming it after
 * `args` (after `'--'` for a Node child running `-e` or `-p`); it opens its side with
 * `Doorbell.fromArgv()`. The guest end is a blocking socket, so a plain blocking peer can read it.
 * The parent's copy of it is closed. With `options.region`, the child also gets the region's fd
 * right after the doorbell's, named by `--region-fd N`.
 */
export function spawn<const Options extends SpawnGuestOptions = Record<never, never>>(
  command: string,
  options?: Options,
): SpawnedGuest<ChildProcessFor<StdioOf<Options>>>
export function spawn<const Options extends SpawnGuestOptions = Record<never, never>>(
  command: string,
  args?: readonly string[] | null,
  options?: Options,
): SpawnedGuest<ChildProcessFor<StdioOf<Options>>>
export function spawn(command: string, argsOrOptions?: unknown, maybeOptions?: unknown): SpawnedGuest {
  // Checked before the pair is made, so that bad input leaves nothing behind.
  const [args, { region: regionArg, ...options }] = spawnArguments(argsOrOptions, maybeOptions) as [
    readonly string[],
    SpawnGuestOptions,
  ]
  const stdio = stdioArray(options.stdio)
  const region = regionFd(regionArg)
  const [doorbell, guest] = Doorbell.createPair()
  try {
    const fds = [
      { fd: guest.fd, flag: ARG_NAME },
      ...(region === undefined ? [] : [{ fd: region, flag: REGION_ARG_NAME }]),
    ]
    const child = spawnWithFds(command, args, options, stdio, fds)
    return { child, doorbell }
  } catch (err) {
    doorbell.close()
    throw err
  } finally {
    guest.close()
  }
}

/** What {@link spawnChannel} returns. */
export interface SpawnedChannel<Child extends ChildProcess = ChildProcess> {
  /** The child process, as `child_process.spawn` returns it. */
  child: Child
  /** The host's side of the channel; the child opens its side with `Channel.fromArgv()`. */
  channel: Channel
}

/** Options of {@link spawnChannel}: child_process.spawn's, and the channel's. */
export interface SpawnChannelOptions extends SpawnOptions, ChannelOptions {}

/**
 * Starts `command` with a channel, taking every form of arguments that `child_process.spawn`
 * takes. The child gets the doorbell end and the region as the first two fds after the `stdio`
 * entries given (fds 3 and 4 when only 0-2 are named, or `stdio` is a string or left out), named by
 * `--doorbell-fd N --region-fd M` after `args`, and opens its side with `Channel.fromArgv()`.
 * `options` are child_process.spawn's and {@link ChannelOptions}. The parent's copies of the
 * child's fds are closed.
 */
export function spawnChannel<const Options extends SpawnChannelOptions = Record<never, never>>(
  command: string,
  options?: Options,
): SpawnedChannel<ChildProcessFor<StdioOf<Options>>>
export function spawnChannel<const Options extends SpawnChannelOptions = Record<never, never>>(
  command: string,
  args?: readonly string[] | null,
  options?: Options,
): SpawnedChannel<ChildProcessFor<StdioOf<Options>>>
export function spawnChannel(command: string, argsOrOptions?: unknown, maybeOptions?: unknown): SpawnedChannel {
  // Checked before the channel is made, so that bad input leaves nothing behind.
  const [args, { capacity, spin, ...options }] = spawnArguments(argsOrOptions, maybeOptions) as [
    readonly string[],
    SpawnChannelOptions,
  ]
  const stdio = stdioArray(options.stdio)
  const [channel, handle] = Channel.createPair({ capacity, spin })
  try {
    const fds = [
      { fd: handle.doorbellFd, flag: ARG_NAME },
      { fd: handle.regionFd, flag: REGION_ARG_NAME },
    ]
    const child = spawnWithFds(command, args, options, stdio, fds)
    return { child, channel }
  } catch (err) {
    channel.close()
    throw err
  } finally {
    handle.close()
  }
}
