import { spawn as spawnChild } from 'node:child_process'
import type { ChildProcess, SpawnOptions, StdioOptions } from 'node:child_process'

import { Channel, type ChannelOptions } from './channel'
import { ARG_NAME, Doorbell } from './doorbell'
import { closedError, invalidArgType, invalidArgValue } from './errors'
import { REGION_ARG_NAME, SharedRegion } from './region'

/** What {@link spawn} returns. */
export interface SpawnedGuest {
  /** The child process, as `child_process.spawn` returns it. */
  child: ChildProcess
  /** The host's end of the pair; the child holds the other end as its fd 3. */
  doorbell: Doorbell
}

/** Options of {@link spawn}: child_process.spawn's, and the region to share with the child. */
export interface SpawnGuestOptions extends SpawnOptions {
  /**
   * A region to share: the child gets its fd right after the doorbell's (fd 4) and
   * `--region-fd 4`, and maps it with `SharedRegion.fromArgv()`. The host keeps its region open.
   * Default: none.
   */
  region?: SharedRegion
}

const GUEST_FD = 3

type StdioEntry = Extract<StdioOptions, readonly unknown[]>[number]

/** `stdio` for fds 0-2 as given to child_process.spawn, as an array to which fd 3 is added. */
function stdioForFds0to2(stdio: SpawnOptions['stdio']): StdioEntry[] {
  if (stdio === undefined || stdio === null) return ['pipe', 'pipe', 'pipe']
  if (typeof stdio === 'string') return [stdio, stdio, stdio] as StdioEntry[]
  if (!Array.isArray(stdio)) throw invalidArgType('options.stdio', 'a string or an array', stdio)
  if (stdio.length > GUEST_FD) {
    throw invalidArgValue('options.stdio', stdio, `may name fds 0-2 only: fd ${GUEST_FD} is the doorbell's`)
  }
  return Array.from({ length: GUEST_FD }, (_, fd) => stdio[fd] ?? 'pipe') as StdioEntry[]
}

/** The region option, checked: an open SharedRegion, or undefined. */
function regionOption(region: unknown): SharedRegion | undefined {
  if (region === undefined) return undefined
  if (!(region instanceof SharedRegion)) throw invalidArgType('options.region', 'an instance of SharedRegion', region)
  if (region.closed) throw closedError()
  return region
}

/**
 * Starts `command` with a doorbell: the child gets the guest end as its fd 3 and
 * `--doorbell-fd 3` after `args`, and opens it with `Doorbell.fromArgv()`. With `options.region`,
 * the child also gets the region's fd as its fd 4 and `--region-fd 4`. `options` are otherwise
 * child_process.spawn's; `stdio` may name fds 0-2. The parent's copy of the guest end is closed.
 */
export function spawn(command: string, options?: SpawnGuestOptions): SpawnedGuest
export function spawn(command: string, args?: readonly string[], options?: SpawnGuestOptions): SpawnedGuest
export function spawn(
  command: string,
  argsOrOptions?: readonly string[] | SpawnGuestOptions,
  maybeOptions?: SpawnGuestOptions,
): SpawnedGuest {
  const args = Array.isArray(argsOrOptions) ? (argsOrOptions as readonly string[]) : []
  const options: SpawnGuestOptions =
    (Array.isArray(argsOrOptions) ? maybeOptions : (argsOrOptions as SpawnGuestOptions)) ?? {}
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options)
  const { region: regionArg, ...spawnOptions } = options
  const region = regionOption(regionArg)
  const stdio = stdioForFds0to2(spawnOptions.stdio)
  const regionArgs = region ? [REGION_ARG_NAME, String(GUEST_FD + 1)] : []
  const [doorbell, guest] = Doorbell.createPair()
  try {
    const child = spawnChild(command, [...args, ARG_NAME, String(GUEST_FD), ...regionArgs], {
      ...spawnOptions,
      stdio: [...stdio, guest.fd, ...(region ? [region.fd] : [])],
    })
    return { child, doorbell }
  } catch (err) {
    doorbell.close()
    throw err
  } finally {
    guest.close()
  }
}

/** What {@link spawnChannel} returns. */
export interface SpawnedChannel {
  /** The child process, as `child_process.spawn` returns it. */
  child: ChildProcess
  /** The host's side of the channel; the child opens its side with `Channel.fromArgv()`. */
  channel: Channel
}

/**
 * Starts `command` with a channel: the child gets the doorbell end as its fd 3 and the region as
 * its fd 4, with `--doorbell-fd 3 --region-fd 4` after `args`, and opens its side with
 * `Channel.fromArgv()`. `options` are child_process.spawn's (`stdio` may name fds 0-2) and
 * {@link ChannelOptions}. The parent's copies of the child's fds are closed.
 */
export function spawnChannel(
  command: string,
  args: readonly string[] = [],
  options: SpawnOptions & ChannelOptions = {},
): SpawnedChannel {
  if (!Array.isArray(args)) throw invalidArgType('args', 'an array of strings', args)
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options)
  const { capacity, spin, ...spawnOptions } = options
  const stdio = stdioForFds0to2(spawnOptions.stdio)
  const [channel, handle] = Channel.createPair({ capacity, spin })
  try {
    const child = spawnChild(
      command,
      [...args, ARG_NAME, String(GUEST_FD), REGION_ARG_NAME, String(GUEST_FD + 1)],
      { ...spawnOptions, stdio: [...stdio, handle.doorbellFd, handle.regionFd] },
    )
    return { child, channel }
  } catch (err) {
    channel.close()
    throw err
  } finally {
    handle.close()
  }
}
