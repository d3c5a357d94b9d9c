import type { ChildProcess, ChildProcessByStdio, ChildProcessWithoutNullStreams, SpawnOptions, StdioOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { Channel, type ChannelOptions } from './channel';
import { Doorbell } from './doorbell';
import { SharedRegion } from './region';
/** A `stdio` entry for which the parent gets a stream: `child.stdin`, `child.stdout`, `child.stderr`. */
type PipedEntry = 'pipe' | 'overlapped' | null | undefined;
type StdinFor<Entry> = Entry extends PipedEntry ? Writable : null;
type OutputFor<Entry> = Entry extends PipedEntry ? Readable : null;
/**
 * The child's type for a `stdio` option, as `@types/node` types `child_process.spawn`: its
 * `stdin`, `stdout` and `stderr` are streams, not `null`, where the option pipes them.
 */
export type ChildProcessFor<Stdio> = [Stdio] extends [never] ? ChildProcess : Stdio extends PipedEntry ? ChildProcessWithoutNullStreams : Stdio extends 'inherit' | 'ignore' ? ChildProcessByStdio<null, null, null> : Stdio extends readonly [infer In, infer Out, infer Err, ...unknown[]] ? ChildProcessByStdio<StdinFor<In>, OutputFor<Out>, OutputFor<Err>> : Stdio extends readonly [infer In, infer Out] ? ChildProcessByStdio<StdinFor<In>, OutputFor<Out>, Readable> : Stdio extends readonly [infer In] ? ChildProcessByStdio<StdinFor<In>, Readable, Readable> : Stdio extends readonly [] ? ChildProcessWithoutNullStreams : ChildProcess;
/** The `stdio` option of `Options`, `undefined` if it has none. */
type StdioOf<Options> = 'stdio' extends keyof Options ? Options['stdio' & keyof Options] : undefined;
/** What {@link spawn} returns. */
export interface SpawnedGuest<Child extends ChildProcess = ChildProcess> {
    /** The child process, as `child_process.spawn` returns it. */
    child: Child;
    /** The host's end of the pair; the child holds the other end, as the fd that `--doorbell-fd` names. */
    doorbell: Doorbell;
}
/** Options of {@link spawn}: child_process.spawn's, and a region to share with the child. */
export interface SpawnGuestOptions extends SpawnOptions {
    /**
     * A region to share: the child gets its fd right after the doorbell's (fd 4 when only fds 0-2
     * are named) and `--region-fd N` after `--doorbell-fd`, and maps it with
     * `SharedRegion.fromArgv()`. The host's region stays open. Default: none.
     */
    region?: SharedRegion;
}
/** An fd of this process to hand to a child, and the flag that tells the child its number there. */
export interface ChildFd {
    fd: number;
    flag: string;
}
type StdioEntry = Extract<StdioOptions, readonly unknown[]>[number];
/** `[args, options]` from the forms child_process.spawn takes: `(args?, options?)` or `(options)`. */
export declare function spawnArguments(argsOrOptions: unknown, maybeOptions: unknown): [readonly string[], SpawnOptions];
/**
 * Starts `command` with `fds` of this process as the child's fds right after `stdio` (the entries
 * given, from {@link stdioArray}: fd 3 and on when only 0-2 are named), each named by its flag after
 * `args`. Returns the child as child_process.spawn does. The caller keeps and closes its own copies
 * of `fds`.
 */
export declare function spawnWithFds(command: string, args: readonly string[], options: SpawnOptions, stdio: readonly StdioEntry[], fds: readonly ChildFd[]): ChildProcess;
/**
 * Starts `command` with a doorbell, taking every form of arguments that `child_process.spawn`
 * takes. The child gets the guest end as the first fd after the `stdio` entries given (fd 3 when
 * only 0-2 are named, or `stdio` is a string or left out), and `--doorbell-fd N` naming it after
 * `args` (after `'--'` for a Node child running `-e` or `-p`); it opens its side with
 * `Doorbell.fromArgv()`. The guest end is a blocking socket, so a plain blocking peer can read it.
 * The parent's copy of it is closed. With `options.region`, the child also gets the region's fd
 * right after the doorbell's, named by `--region-fd N`.
 */
export declare function spawn<const Options extends SpawnGuestOptions = Record<never, never>>(command: string, options?: Options): SpawnedGuest<ChildProcessFor<StdioOf<Options>>>;
export declare function spawn<const Options extends SpawnGuestOptions = Record<never, never>>(command: string, args?: readonly string[] | null, options?: Options): SpawnedGuest<ChildProcessFor<StdioOf<Options>>>;
/** What {@link spawnChannel} returns. */
export interface SpawnedChannel<Child extends ChildProcess = ChildProcess> {
    /** The child process, as `child_process.spawn` returns it. */
    child: Child;
    /** The host's side of the channel; the child opens its side with `Channel.fromArgv()`. */
    channel: Channel;
}
/** Options of {@link spawnChannel}: child_process.spawn's, and the channel's. */
export interface SpawnChannelOptions extends SpawnOptions, ChannelOptions {
}
/**
 * Starts `command` with a channel, taking every form of arguments that `child_process.spawn`
 * takes. The child gets the doorbell end and the region as the first two fds after the `stdio`
 * entries given (fds 3 and 4 when only 0-2 are named, or `stdio` is a string or left out), named by
 * `--doorbell-fd N --region-fd M` after `args`, and opens its side with `Channel.fromArgv()`.
 * `options` are child_process.spawn's and {@link ChannelOptions}. The parent's copies of the
 * child's fds are closed.
 */
export declare function spawnChannel<const Options extends SpawnChannelOptions = Record<never, never>>(command: string, options?: Options): SpawnedChannel<ChildProcessFor<StdioOf<Options>>>;
export declare function spawnChannel<const Options extends SpawnChannelOptions = Record<never, never>>(command: string, args?: readonly string[] | null, options?: Options): SpawnedChannel<ChildProcessFor<StdioOf<Options>>>;
export {};
