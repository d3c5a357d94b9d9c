// Hostile input for every public function and option, as fast-check arbitraries of operations that
// record what happened. Shared by __test__/hostile.spec.ts and the soak.
//
// Only fds that this process controls are ever named: an fd number picked at random could be the
// test runner's own IPC socket, which a successful fromRawFd would take over.
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { inspect } from 'node:util'

import fc from 'fast-check'
import {
  ARG_NAME,
  Channel,
  ChannelHandle,
  ChannelListener,
  Doorbell,
  DoorbellHandle,
  DoorbellListener,
  SharedRegion,
  clearCloexec,
  closePeerFd,
  setNonblocking,
  spawn,
  validateFd,
} from 'shm-doorbell'

import { within } from './helpers.ts'

/** Counts what hostile calls did by error code ('ok' when they returned), and keeps errors without a code. */
export class Outcomes {
  readonly counts = new Map<string, number>()
  readonly uncoded: unknown[] = []

  record(outcome: string): void {
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1)
  }

  /** Runs `call`; a throw must be an Error with a string code. */
  call<T>(call: () => T): T | undefined {
    try {
      const value = call()
      this.record('ok')
      return value
    } catch (err) {
      this.fail(err)
      return undefined
    }
  }

  /** How a promise settles: resolved, or rejected with an Error that has a code. */
  settle(promise: Promise<unknown>): Promise<void> {
    return promise.then(
      () => this.record('ok'),
      (err) => this.fail(err),
    )
  }

  fail(err: unknown): void {
    const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined
    if (typeof code === 'string') this.record(code)
    else {
      this.uncoded.push(err)
      this.record('no code')
    }
  }
}

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd)
    return true
  } catch {
    return false
  }
}

/**
 * What a hostile run may touch: a foreign non-socket fd the caller owns, a live pair's ends, a
 * consumed handle's and a closed doorbell's old numbers, and numbers that are not open.
 */
export class World {
  readonly foreign = openSync('/dev/null', 'r')
  readonly foreignIno = fstatSync(this.foreign).ino
  /** False once closePeerFd closed the foreign fd, as the caller asked. */
  foreignOwned = true
  readonly host: Doorbell
  readonly guest: Doorbell
  /** A handle whose peer `spareHost` is alive; consumed or closed by some runs. */
  readonly spare: DoorbellHandle
  readonly spareHost: Doorbell
  readonly consumedFd: number
  readonly closedFd: number
  readonly controllers = Array.from({ length: 3 }, () => new AbortController())
  /** Doorbells the run made (fromHandle, fromRawFd...): closed at the end. */
  readonly made: { readonly fd: number; close(): void }[] = []
  readonly pending: Promise<void>[] = []
  /** Fds that intoRawFd() let go of: the caller's, closed at the end. */
  readonly released: number[] = []

  constructor(readonly outcomes: Outcomes) {
    const [host, guest] = Doorbell.createPair()
    this.host = host
    this.consumedFd = guest.fd
    this.guest = Doorbell.fromHandle(guest)
    const [spareHost, spare] = Doorbell.createPair()
    this.spareHost = spareHost
    this.spare = spare
    for (const end of [this.host, this.guest, this.spareHost, this.spare]) this.inodes.set(end, fstatSync(end.fd).ino)
    const [closed, closedGuest] = Doorbell.createPair()
    this.closedFd = closed.fd
    closed.close()
    closedGuest.close()
  }

  named(name: FdName): number {
    switch (name) {
      case 'foreign':
        return this.foreign
      case 'host':
        return this.host.fd
      case 'guest':
        return this.guest.fd
      case 'spare':
        return this.spare.fd
      case 'consumed':
        return this.consumedFd
      case 'closed':
        return this.closedFd
    }
  }

  keep(owner: unknown): void {
    if (owner instanceof Doorbell || owner instanceof DoorbellHandle) this.made.push(owner)
  }

  /** The inode behind each of the world's ends while they are open, to tell if one was closed or replaced. */
  readonly inodes = new Map<{ fd: number }, number>()

  /** Throws if an fd that the caller still owns, or an end it has not closed, was closed or replaced. */
  checkOwned(): void {
    if (this.foreignOwned && (!isOpen(this.foreign) || fstatSync(this.foreign).ino !== this.foreignIno)) {
      throw new Error(`the caller's fd ${this.foreign} was closed or replaced`)
    }
    for (const [end, ino] of this.inodes) {
      const open = end instanceof Doorbell ? !end.closed : end.fd >= 0
      if (open && (!isOpen(end.fd) || fstatSync(end.fd).ino !== ino)) {
        throw new Error(`the fd ${end.fd} of an end that is still open was closed or replaced`)
      }
    }
  }

  /** Closes everything, then waits for every promise the run started to settle. */
  async close(): Promise<void> {
    // A released fd may have been adopted again (the consumed handle's number names it): its new
    // owner closes it.
    for (const fd of this.released.splice(0)) {
      if (!this.made.some((owner) => owner.fd === fd)) closePeerFd(fd)
    }
    for (const owner of [this.host, this.guest, this.spare, this.spareHost, ...this.made]) owner.close()
    await within(Promise.all(this.pending), 'every promise of a hostile run')
    this.checkOwned()
    if (this.foreignOwned) closeSync(this.foreign)
  }
}

type FdName = 'foreign' | 'host' | 'guest' | 'spare' | 'consumed' | 'closed'
const FD_NAMES: FdName[] = ['foreign', 'host', 'guest', 'spare', 'consumed', 'closed']

/** An operation of a hostile run; `toString` names it in fast-check's counterexamples. */
export interface Op {
  run(world: World): void
  toString(): string
}

const op = (name: string, run: (world: World) => void): Op => ({ run, toString: () => name })

/**
 * Whether a value could name an fd this process holds outside the world (fd 0, -0 and '1' all
 * do): closing or adopting those would break the test runner, not test the library.
 */
const namesOtherFd = (value: unknown): boolean =>
  (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 1_000_000) ||
  (typeof value === 'string' && /^\d{1,6}$/.test(value))

/** fc.anything(), without values that name an fd outside the world. */
const hostile = (constraints: fc.ObjectConstraints = {}): fc.Arbitrary<unknown> =>
  fc.anything(constraints).filter((value) => !namesOtherFd(value))

/** An fd value: a hostile type or number, or one of the world's fds, named. */
type FdValue = { value: unknown } | { name: FdName }
const fdValue: fc.Arbitrary<FdValue> = fc.oneof(
  hostile({ withBigInt: true, withBoxedValues: true, withNullPrototype: true }).map((value) => ({ value })),
  fc
    .constantFrom(NaN, -1, 0.5, 1.5, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 31), Number.MAX_VALUE)
    .map((value) => ({ value })),
  // Not open: far above the process's fd limit.
  fc.integer({ min: 1_000_000, max: 2 ** 31 - 1 }).map((value) => ({ value })),
  fc.constantFrom(...FD_NAMES).map((name) => ({ name })),
)
const resolveFd = (world: World, fd: FdValue): unknown => ('name' in fd ? world.named(fd.name) : fd.value)
const showFd = (fd: FdValue): string => ('name' in fd ? `<${fd.name} fd>` : fc.stringify(fd.value))

/** A `--doorbell-fd` value: a hostile string, or one of the world's fds as a string. */
type ArgValue = { value: unknown } | { name: FdName }
const argValue: fc.Arbitrary<ArgValue> = fc.oneof(
  hostile().map((value) => ({ value })),
  fc
    .string()
    .filter((s) => !/^\d+$/.test(s))
    .map((value) => ({ value })),
  fc
    .constantFrom('', ' 3', '+3', '-1', '0x3', '1e3', '3.0', '٣', '3\n', '99999999999', String(2 ** 31))
    .map((value) => ({ value })),
  fc.integer({ min: 1_000_000, max: 2 ** 31 - 1 }).map((value) => ({ value: String(value) })),
  fc.constantFrom(...FD_NAMES).map((name) => ({ name })),
)
const resolveArg = (world: World, arg: ArgValue): unknown => ('name' in arg ? String(world.named(arg.name)) : arg.value)

/** Every export that takes an fd, by name: the input tests and the hostile ops call each one. */
export const takesFd: Record<string, (fd: number) => unknown> = {
  'Doorbell.fromRawFd': (fd) => Doorbell.fromRawFd(fd),
  'DoorbellHandle.fromRawFd': (fd) => DoorbellHandle.fromRawFd(fd),
  setNonblocking,
  closePeerFd,
  validateFd,
  clearCloexec,
}

const fdOps: fc.Arbitrary<Op>[] = [
  fc.tuple(fc.constantFrom(...Object.keys(takesFd)), fdValue).map(([name, fd]) =>
    op(`${name}(${showFd(fd)})`, (world) => {
      const value = resolveFd(world, fd)
      world.keep(world.outcomes.call(() => takesFd[name](value as number)))
      // Closing its own fd is what the caller asked closePeerFd for: it is the caller's no more.
      if (name === 'closePeerFd' && value === world.foreign && !isOpen(world.foreign)) world.foreignOwned = false
      const released = world.released.indexOf(value as number)
      if (name === 'closePeerFd' && released >= 0 && !isOpen(value as number)) world.released.splice(released, 1)
    }),
  ),
  argValue.map((arg) =>
    op(`DoorbellHandle.fromArg(${'name' in arg ? `<${arg.name} fd>` : fc.stringify(arg.value)})`, (world) =>
      world.keep(world.outcomes.call(() => DoorbellHandle.fromArg(resolveArg(world, arg) as string))),
    ),
  ),
  fc
    .oneof(
      hostile().map((value) => () => value),
      fc
        .array(fc.oneof(fc.constant<ArgValue>({ value: ARG_NAME }), argValue), { maxLength: 4 })
        .map((args) => (world: World) => args.map((arg) => resolveArg(world, arg))),
      argValue.map((arg) => (world: World) => [ARG_NAME, resolveArg(world, arg)]),
      // The string is built here, not by the library: a value that cannot be made a string (an array
      // holding a null-prototype object) would throw in this test's own template literal.
      argValue.map((arg) => (world: World) => {
        const value = resolveArg(world, arg)
        return [`${ARG_NAME}=${typeof value === 'string' ? value : fc.stringify(value)}`]
      }),
    )
    .map((argv) =>
      op('Doorbell.fromArgv(...)', (world) =>
        world.keep(world.outcomes.call(() => Doorbell.fromArgv(argv(world) as string[]))),
      ),
    ),
  fc
    .oneof(
      fc.anything().map((value) => ({ value })),
      fc.constant({ spare: true }),
    )
    .map((handle) =>
      op(`Doorbell.fromHandle(${'spare' in handle ? '<spare handle>' : fc.stringify(handle.value)})`, (world) =>
        world.keep(
          world.outcomes.call(() =>
            Doorbell.fromHandle(('spare' in handle ? world.spare : handle.value) as DoorbellHandle),
          ),
        ),
      ),
    ),
]

/** `wait` options: none, hostile values, and signals in every state. */
const waitOptions: fc.Arbitrary<{ show: string; make(world: World): unknown }> = fc.oneof(
  fc.constant({ show: 'none', make: () => undefined }),
  fc.anything().map((value) => ({ show: fc.stringify(value), make: () => value })),
  fc.anything().map((signal) => ({ show: `{ signal: ${fc.stringify(signal)} }`, make: () => ({ signal }) })),
  fc.nat(2).map((i) => ({
    show: `{ signal: controller ${i} }`,
    make: (world: World) => ({ signal: world.controllers[i].signal }),
  })),
  fc.anything().map((reason) => ({
    show: `{ signal: AbortSignal.abort(${fc.stringify(reason)}) }`,
    make: () => ({ signal: AbortSignal.abort(reason) }),
  })),
  fc.nat(3).map((ms) => ({
    show: `{ signal: AbortSignal.timeout(${ms}) }`,
    make: () => ({ signal: AbortSignal.timeout(ms) }),
  })),
)

const doorbellMethods = [
  'signalNow',
  'drain',
  'pendingBytes',
  'isPeerDead',
  'ref',
  'unref',
  'close',
  'fd',
  'closed',
  'dispose',
  'intoRawFd',
] as const
const handleMethods = ['close', 'asRawFd', 'toArg', 'fd', 'closed', 'dispose', 'intoRawFd'] as const

const sessionOps: fc.Arbitrary<Op>[] = [
  fc
    .tuple(
      fc.constantFrom('host', 'guest', 'spareHost') as fc.Arbitrary<'host' | 'guest' | 'spareHost'>,
      fc.constantFrom(...doorbellMethods),
    )
    .map(([who, method]) =>
      op(`${who}.${method}()`, (world) => {
        const doorbell = world[who]
        world.outcomes.call(() => {
          if (method === 'fd' || method === 'closed') return doorbell[method]
          if (method === 'dispose') return doorbell[Symbol.dispose]()
          if (method === 'intoRawFd') return world.released.push(doorbell.intoRawFd())
          return doorbell[method]()
        })
      }),
    ),
  fc.constantFrom(...handleMethods).map((method) =>
    op(`spare.${method}()`, (world) =>
      world.outcomes.call(() => {
        if (method === 'fd' || method === 'closed') return world.spare[method]
        if (method === 'dispose') return world.spare[Symbol.dispose]()
        if (method === 'intoRawFd') return world.released.push(world.spare.intoRawFd())
        return world.spare[method]()
      }),
    ),
  ),
  fc.tuple(fc.constantFrom('host', 'guest') as fc.Arbitrary<'host' | 'guest'>, waitOptions).map(([who, options]) =>
    op(`${who}.wait(${options.show})`, (world) => {
      let waiting: Promise<void> | undefined
      world.outcomes.call(() => (waiting = world[who].wait(options.make(world) as never)))
      if (waiting) world.pending.push(world.outcomes.settle(waiting))
    }),
  ),
  fc
    .tuple(
      fc.constantFrom('host', 'guest') as fc.Arbitrary<'host' | 'guest'>,
      fc.constantFrom('signal', 'accept', 'iterate'),
    )
    .map(([who, method]) =>
      op(`${who}.${method}()`, (world) => {
        const doorbell = world[who]
        let promise: Promise<unknown> | undefined
        world.outcomes.call(() => {
          if (method === 'iterate') {
            const iterator = doorbell[Symbol.asyncIterator]()
            promise = iterator.next().finally(() => iterator.return())
          } else promise = doorbell[method]()
        })
        if (promise) world.pending.push(world.outcomes.settle(promise))
      }),
    ),
  fc
    .tuple(fc.nat(2), fc.anything())
    .map(([i, reason]) =>
      op(`controller ${i}.abort(${fc.stringify(reason)})`, (world) => world.controllers[i].abort(reason)),
    ),
]

/** Any one hostile operation: on an fd, an argv, a handle, or the world's doorbells. */
export const anyOp: fc.Arbitrary<Op> = fc.oneof(...fdOps, ...sessionOps)

/** Runs `ops` against a fresh world, closes it and reports what the calls did. */
export async function runOps(ops: readonly Op[], outcomes = new Outcomes()): Promise<Outcomes> {
  const world = new World(outcomes)
  try {
    for (const each of ops) {
      each.run(world)
      world.checkOwned()
    }
  } finally {
    await world.close()
  }
  return outcomes
}

/** `spawn` with a hostile command, args and options; never a real command. */
export const spawnCall = fc
  .tuple(
    fc.oneof(
      fc.anything().filter((value) => typeof value !== 'string'),
      fc.constantFrom('/nonexistent/shm-doorbell-guest', ''),
    ),
    fc.oneof(fc.anything(), fc.array(fc.string(), { maxLength: 3 })),
    fc.oneof(
      fc.anything(),
      fc.record(
        {
          stdio: fc.oneof(
            fc.anything(),
            fc.constantFrom('pipe', 'ignore', 'inherit', 'overlapped'),
            fc.array(fc.oneof(fc.constantFrom('pipe', 'ignore', 'inherit', 'ipc', null, undefined), fc.anything()), {
              maxLength: 5,
            }),
          ),
          cwd: fc.anything(),
          env: fc.anything(),
          argv0: fc.anything(),
        },
        { requiredKeys: [] },
      ),
    ),
  )
  .map(([command, args, options]) => ({
    toString: () => `spawn(${fc.stringify(command)}, ${fc.stringify(args)}, ${fc.stringify(options)})`,
    async run(outcomes: Outcomes): Promise<void> {
      const started = outcomes.call(() => spawn(command as string, args as string[], options as never))
      if (!started) return
      // A command that cannot start reports 'error' on the child, as child_process does; 'close'
      // comes once its stdio is closed too.
      const closed = new Promise((resolve) => started.child.on('close', resolve))
      started.child.on('error', (err) => outcomes.fail(err))
      await within(closed, 'the child of a hostile spawn')
      // Node closes a failed child's stdin only when the stream is destroyed.
      await Promise.all(
        started.child.stdio.map(
          (stream) => stream && !stream.closed && new Promise((resolve) => stream.destroy().once('close', resolve)),
        ),
      )
      await outcomes.settle(started.doorbell.wait())
      started.doorbell.close()
    },
  }))

/** A seeded generator (mulberry32): the same seed, the same calls. */
function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** What a hostile getter, trap or function throws: coded, so that passing it on is told from a defect. */
const hostileError = (): Error => codedError(new Error('thrown by a hostile argument'), 'HOSTILE')
const codedError = (error: Error, code: string): Error => Object.assign(error, { code })

const detachedBuffer = (): ArrayBuffer => {
  const buffer = new ArrayBuffer(8)
  structuredClone(buffer, { transfer: [buffer] })
  return buffer
}
const detachedView = (): Uint8Array => {
  const buffer = new ArrayBuffer(8)
  const view = new Uint8Array(buffer)
  structuredClone(buffer, { transfer: [buffer] })
  return view
}

/** Hostile arguments for any parameter; none names an fd outside the world (see namesOtherFd). */
const HOSTILE_ARGUMENTS: (() => unknown)[] = [
  () => () => 0,
  () => () => {
    throw hostileError()
  },
  () => Symbol('hostile'),
  () => 10n,
  () => -1,
  () => NaN,
  () => 2 ** 53,
  () => -(2 ** 31),
  () => Infinity,
  () => 1_000_007,
  () => '',
  () => 'hostile',
  () => null,
  () => undefined,
  () => ({}),
  () => [],
  detachedBuffer,
  detachedView,
  () => new Uint8Array(4),
  () => new DataView(new ArrayBuffer(2)),
  () => ({
    get signal() {
      throw hostileError()
    },
  }),
  () =>
    new Proxy(
      {},
      {
        get: () => {
          throw hostileError()
        },
      },
    ),
  () => ({ signal: AbortSignal.abort() }),
  () => ({ signal: AbortSignal.abort('a reason') }),
  () => ({ capacity: -1, spin: NaN }),
  () => ({ allow: () => false }),
  () => ({
    allow: () => {
      throw hostileError()
    },
  }),
  () => ({ allow: async () => Promise.reject(hostileError()), mode: 0o7777, backlog: 2 ** 40 }),
  () => ({ region: 'not a region', mode: -1 }),
]

/** The hostile arguments that can stand for a socket path: not a relative name, which would make a socket in the cwd. */
const NOT_RELATIVE = HOSTILE_ARGUMENTS.filter((make) => make() !== 'hostile')

/**
 * Socket paths for listen and connect, all inside `dir`: fresh names, the path of a listener of the
 * run, a regular file, a name in a missing folder, a name too long for sun_path, the folder
 * itself, and fresh abstract names (Linux only; elsewhere a coded refusal).
 */
class HostilePaths {
  readonly dir = mkdtempSync(join(tmpdir(), 'shm-doorbell-hostile-'))
  /** What the run itself puts in `dir`; everything else there at the end was left by a listener. */
  readonly own = ['file', 'folder']
  readonly listening: string[] = []
  #made = 0

  constructor() {
    writeFileSync(join(this.dir, 'file'), 'not a socket')
    mkdirSync(join(this.dir, 'folder'))
  }

  /** A name that nothing has taken yet. */
  fresh(): string {
    return join(this.dir, `socket-${this.#made++}`)
  }

  pick(random: () => number): unknown {
    const choices = [
      () => this.fresh(),
      () => this.listening[Math.floor(random() * this.listening.length)] ?? this.dir,
      () => join(this.dir, 'file'),
      () => join(this.dir, 'missing', 'socket'),
      () => join(this.dir, 'x'.repeat(120)),
      () => join(this.dir, 'folder'),
      () => `\0shm-doorbell-hostile-${process.pid}-${this.#made++}`,
      () => NOT_RELATIVE[Math.floor(random() * NOT_RELATIVE.length)](),
    ]
    return choices[Math.floor(random() * choices.length)]()
  }

  /** What listeners left in `dir` (a closed listener unlinks its socket file), then removes `dir`. */
  remove(): string[] {
    const left = readdirSync(this.dir).filter((name) => !this.own.includes(name))
    rmSync(this.dir, { recursive: true, force: true })
    return left
  }
}

/** Names a call never reaches: the spawners emit 'error' on the child, as child_process does. */
const NOT_CALLED = new Set<PropertyKey>(['spawn', 'spawnChannel', 'fork', 'prototype', 'length', 'name'])

type Closable = { close(): void }

/** Every method, getter and symbol-keyed member of `object`'s prototypes, found by reflection. */
function membersOf(object: object): PropertyKey[] {
  const names = new Set<PropertyKey>()
  for (
    let proto = Object.getPrototypeOf(object);
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const key of Reflect.ownKeys(proto)) if (key !== 'constructor') names.add(key)
  }
  return [...names]
}

/**
 * The objects that `value` holds and that can be closed: itself, what an array holds, and the
 * values of a plain result such as `{ channel, peer }`, `{ doorbell, region }` or an iterator's
 * `{ value, done }`.
 */
function closablesIn(value: unknown, depth = 2): Closable[] {
  if (!value || typeof value !== 'object' || depth < 0) return []
  if (typeof (value as Closable).close === 'function') return [value as Closable]
  const held = Array.isArray(value)
    ? value
    : Object.getPrototypeOf(value) === Object.prototype
      ? Object.values(value)
      : []
  return held.flatMap((each) => closablesIn(each, depth - 1))
}

/**
 * `calls` calls, by reflection, of every static, method and getter of the exported classes and of
 * every kind of instance (open, closed, consumed), with hostile arguments; listen and connect get
 * socket paths in a temporary folder as their first argument. Whatever a call returns or resolves
 * to that can be closed joins the instances (or is closed, if the run has ended), so that accepted
 * and connected channels are the run's to close. `util.inspect.custom` is reached through
 * `util.inspect`, its one caller. Returns once every promise made has settled, every instance is
 * closed and the folder is removed, with the number of calls made and the socket files that no
 * listener unlinked.
 */
export async function reflectiveCalls(
  seed: number,
  calls: number,
  outcomes: Outcomes,
): Promise<{ made: number; socketFiles: string[] }> {
  const random = seeded(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
  const classes = [Doorbell, DoorbellHandle, SharedRegion, Channel, ChannelHandle, DoorbellListener, ChannelListener]
  const instances: Closable[] = []
  const pending: Promise<void>[] = []
  const paths = new HostilePaths()
  let ended = false
  const adopt = (value: unknown): void => {
    for (const each of closablesIn(value)) {
      if (ended) outcomes.call(() => each.close())
      else instances.push(each)
      if (each instanceof DoorbellListener || each instanceof ChannelListener) paths.listening.push(each.path)
    }
  }
  const make = (): void => {
    const [doorbell, handle] = Doorbell.createPair()
    const [channel, channelHandle] = Channel.createPair({ capacity: 4096 })
    instances.push(doorbell, handle, SharedRegion.create(4096), channel, channelHandle)
  }
  make()
  make()
  adopt(Channel.listen(paths.fresh()))
  let made = 0
  let socketFiles: string[] = []
  try {
    try {
      for (let i = 0; i < calls; i++) {
        if (random() < 0.02) make()
        // Turns of the event loop now and then, so that connections get accepted and promises settle mid-run.
        if (random() < 0.02) await delay(1)
        const onClass = random() < 0.3
        const target: object = onClass ? pick(classes) : pick(instances)
        const names = onClass ? Reflect.ownKeys(target).filter((key) => !NOT_CALLED.has(key)) : membersOf(target)
        const name = pick(names)
        const args = Array.from({ length: Math.floor(random() * 3) }, () => pick(HOSTILE_ARGUMENTS)())
        if (onClass && (name === 'listen' || name === 'connect')) args[0] = paths.pick(random)
        made++
        const result = outcomes.call(() => {
          if (name === inspect.custom) return inspect(target, { depth: pick([-1, 0, 2, Infinity, null]) })
          const member = (target as Record<PropertyKey, unknown>)[name]
          return typeof member === 'function' ? (member as (...a: unknown[]) => unknown).apply(target, args) : member
        })
        if (result instanceof Promise) pending.push(outcomes.settle(result.then(adopt)))
        else if (result && typeof (result as AsyncGenerator).return === 'function') {
          const iterator = result as AsyncGenerator
          const next = Promise.race([iterator.next().then(adopt), delay(5)])
          pending.push(outcomes.settle(next.finally(() => iterator.return(undefined))))
        }
        // What intoRawFd() and intoRawFds() let go of is the caller's to close.
        if (name === 'intoRawFd' && typeof result === 'number') closePeerFd(result)
        if (name === 'intoRawFds' && result) for (const fd of Object.values(result)) closePeerFd(fd as number)
        adopt(result)
      }
    } finally {
      ended = true
      for (const instance of instances) outcomes.call(() => instance.close())
    }
    // A connect to a listener of the run that no accept() took settles once that listener closed.
    await within(Promise.all(pending), 'every promise of the reflective calls')
  } finally {
    socketFiles = paths.remove()
  }
  return { made, socketFiles }
}
