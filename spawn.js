"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.spawnArguments = spawnArguments;
exports.spawnWithFds = spawnWithFds;
exports.spawn = spawn;
exports.spawnChannel = spawnChannel;
const node_child_process_1 = require("node:child_process");
const channel_1 = require("./channel");
const doorbell_1 = require("./doorbell");
const errors_1 = require("./errors");
const region_1 = require("./region");
/** The fd of the region option, checked: an open SharedRegion, or undefined. */
function regionFd(region) {
    if (region === undefined)
        return undefined;
    if (!(region instanceof region_1.SharedRegion))
        throw (0, errors_1.invalidArgType)('options.region', 'an instance of SharedRegion', region);
    return (0, region_1.fdOfOpenRegion)(region);
}
const STDIO_STRINGS = ['pipe', 'overlapped', 'ignore', 'inherit'];
/** `stdio` as an array of at least fds 0-2, as child_process.spawn reads it, so that fds can follow. */
function stdioArray(stdio) {
    if (stdio === undefined || stdio === null)
        return ['pipe', 'pipe', 'pipe'];
    if (typeof stdio === 'string') {
        if (!STDIO_STRINGS.includes(stdio))
            throw (0, errors_1.invalidArgValue)('options.stdio', stdio, 'is invalid');
        return [stdio, stdio, stdio];
    }
    if (!Array.isArray(stdio))
        throw (0, errors_1.invalidArgType)('options.stdio', 'a string or an array', stdio);
    // Entries left out of fds 0-2 are pipes, as child_process.spawn makes them.
    return Array.from({ length: Math.max(3, stdio.length) }, (_, fd) => stdio[fd]);
}
/** `-e`, `-p` and their long forms: with one of them, Node reads a flag after the script as its own. */
const INLINE_SCRIPT = /^(-e|-p|-pe|--eval|--print)(=|$)/;
/**
 * The args that name the child's fds: `flag N` for each, after `args`. A Node child running an
 * inline script (`-e`) gets `'--'` before them, unless `args` has one, so that Node leaves them to
 * the script.
 */
function argsWithFds(command, args, flags) {
    const named = flags.flatMap(([flag, fd]) => [flag, String(fd)]);
    const inlineScript = command === process.execPath && args.some((arg) => INLINE_SCRIPT.test(arg));
    const separator = inlineScript && !args.includes('--') ? ['--'] : [];
    return [...args, ...separator, ...named];
}
/** `[args, options]` from the forms child_process.spawn takes: `(args?, options?)` or `(options)`. */
function spawnArguments(argsOrOptions, maybeOptions) {
    let args = [];
    let options = maybeOptions;
    if (Array.isArray(argsOrOptions))
        args = argsOrOptions;
    else if (argsOrOptions !== undefined && argsOrOptions !== null) {
        if (typeof argsOrOptions !== 'object')
            throw (0, errors_1.invalidArgType)('args', 'of type object', argsOrOptions);
        options = argsOrOptions;
    }
    if (options === undefined)
        return [args, {}];
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
        throw (0, errors_1.invalidArgType)('options', 'of type object', options);
    }
    return [args, options];
}
/**
 * Starts `command` with `fds` of this process as the child's fds right after `stdio` (the entries
 * given, from {@link stdioArray}: fd 3 and on when only 0-2 are named), each named by its flag after
 * `args`. Returns the child as child_process.spawn does. The caller keeps and closes its own copies
 * of `fds`.
 */
function spawnWithFds(command, args, options, stdio, fds) {
    const flags = fds.map(({ flag }, index) => [flag, stdio.length + index]);
    return (0, node_child_process_1.spawn)(command, argsWithFds(command, args, flags), {
        ...options,
        stdio: [...stdio, ...fds.map(({ fd }) => fd)],
    });
}
function spawn(command, argsOrOptions, maybeOptions) {
    // Checked before the pair is made, so that bad input leaves nothing behind.
    const [args, { region: regionArg, ...options }] = spawnArguments(argsOrOptions, maybeOptions);
    const stdio = stdioArray(options.stdio);
    const region = regionFd(regionArg);
    const [doorbell, guest] = doorbell_1.Doorbell.createPair();
    try {
        const fds = [
            { fd: guest.fd, flag: doorbell_1.ARG_NAME },
            ...(region === undefined ? [] : [{ fd: region, flag: region_1.REGION_ARG_NAME }]),
        ];
        const child = spawnWithFds(command, args, options, stdio, fds);
        return { child, doorbell };
    }
    catch (err) {
        doorbell.close();
        throw err;
    }
    finally {
        guest.close();
    }
}
function spawnChannel(command, argsOrOptions, maybeOptions) {
    // Checked before the channel is made, so that bad input leaves nothing behind.
    const [args, { capacity, spin, ...options }] = spawnArguments(argsOrOptions, maybeOptions);
    const stdio = stdioArray(options.stdio);
    const [channel, handle] = channel_1.Channel.createPair({ capacity, spin });
    try {
        const fds = [
            { fd: handle.doorbellFd, flag: doorbell_1.ARG_NAME },
            { fd: handle.regionFd, flag: region_1.REGION_ARG_NAME },
        ];
        const child = spawnWithFds(command, args, options, stdio, fds);
        return { child, channel };
    }
    catch (err) {
        channel.close();
        throw err;
    }
    finally {
        handle.close();
    }
}
