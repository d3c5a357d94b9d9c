// SharedRegion: memory shared with real child processes (Node and Rust guests) and worker threads.
import { spawn as spawnChild } from 'node:child_process'
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readlinkSync, unlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { inspect } from 'node:util'
import { Worker } from 'node:worker_threads'

import test, { type ExecutionContext } from 'ava'
import fc from 'fast-check'
import { Doorbell, SharedRegion, spawn } from 'shm-doorbell'

import { emulator, exitOf, fixture, openFdCount, regionMappings, runNode, within } from './helpers.ts'

interface Layout {
  STEP: number
  COUNTER: number
  LOCK: number
  HOST_STEP: number
  GUEST_STEP: number
  hostByte(i: number): number
  guestByte(i: number): number
  stepped(words: Int32Array, mine: number, theirs: number, count: number, call: () => void): void
}
const { STEP, COUNTER, LOCK, HOST_STEP, GUEST_STEP, hostByte, guestByte, stepped } = createRequire(import.meta.url)(
  './fixtures/region-layout.cjs',
) as Layout

const rustGuest = resolve('target/debug/examples/rust-guest')
const nodeGuest = fixture('region-guest.cjs')
const PAGE = 4096

test.before(() => {
  if (!existsSync(rustGuest)) throw new Error(`${rustGuest} is missing: run \`npm test\`, which builds it`)
})
const MAX_FD = 2 ** 31 - 1

function writePattern(bytes: Uint8Array, from = 0): void {
  for (let i = from; i < bytes.length; i++) bytes[i] = hostByte(i)
}

function mismatches(bytes: Uint8Array, byte: (i: number) => number): number {
  let count = 0
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== byte(i)) count++
  return count
}

/** Starts a guest with a doorbell and `region`, and collects its output. */
function startGuest(command: string, args: string[], region: SharedRegion) {
  const { child, doorbell } = spawn(command, args, { region, stdio: ['ignore', 'pipe', 'inherit'] })
  return { doorbell, exit: exitOf(child) }
}

/** What the path of an open fd is, or undefined once it is closed. */
function fdTarget(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    return undefined
  }
}

/** Tests that need Linux (memfd seals, /proc, ulimit -v), skipped elsewhere and named so. */
const onLinux = process.platform === 'linux'
const linuxTest = onLinux ? test : test.skip
const linuxSerialTest = onLinux ? test.serial : test.serial.skip

const guests = { Node: [process.execPath, nodeGuest], Rust: [rustGuest] } as const

for (const [name, [command, ...script]] of Object.entries(guests)) {
  const mode = name === 'Node' ? 'pattern' : 'region'
  test(`a ${name} guest finds the host's pattern in the region and its writes reach the host`, async (t) => {
    const region = SharedRegion.create(PAGE * 256 + 1)
    t.is(region.size, PAGE * 257)
    const bytes = new Uint8Array(region.buffer)
    writePattern(bytes)
    const { doorbell, exit } = startGuest(command, [...script, mode], region)
    const { code, stdout } = await within(exit, 'guest exit')
    t.is(code, 0)
    t.deepEqual(JSON.parse(stdout), { size: region.size, mismatches: 0 })
    t.is(mismatches(bytes, guestByte), 0)
    doorbell.close()
    region.close()
  })
}

linuxTest(
  'a region made by a Rust peer (sealed by the crate) is mapped here, and each side sees the other pattern (Linux: /proc)',
  async (t) => {
    const { child, doorbell } = spawn(rustGuest, ['region-made', String(PAGE * 16)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exit = exitOf(child)
    const line = await within(
      new Promise<string>((resolveLine) => child.stdout.once('data', (chunk: Buffer) => resolveLine(chunk.toString()))),
      'the Rust peer made its region',
    )
    const { pid, fd, size } = JSON.parse(line)
    t.is(size, PAGE * 16)
    // A second fd for the peer's memfd, with its seals: what the peer would pass over a socket.
    using region = SharedRegion.fromRawFd(openSync(`/proc/${pid}/fd/${fd}`, 'r+'))
    t.is(region.size, PAGE * 16)
    const bytes = new Uint8Array(region.buffer)
    t.is(mismatches(bytes, guestByte), 0)
    t.throws(() => ftruncateSync(region.fd, 0), { code: 'EPERM' })
    writePattern(bytes)
    doorbell.signalNow()
    const { code, stdout } = await within(exit, 'the Rust peer exits')
    t.is(code, 0)
    t.deepEqual(JSON.parse(stdout.split('\n').filter(Boolean).at(-1)!), { mismatches: 0 })
    doorbell.close()
  },
)

/**
 * Runs `count` calls of `call` here, in step with a guest that runs its own in `mode`, on one
 * region: both processes work on the counter at the same time. Returns the counter and the time.
 */
async function inStepWithGuest(
  t: ExecutionContext,
  [command, ...script]: readonly string[],
  mode: string,
  count: number,
  call: (words: Int32Array) => void,
): Promise<{ counter: number; ms: number }> {
  using region = SharedRegion.create(PAGE)
  const words = new Int32Array(region.buffer)
  const { doorbell, exit } = startGuest(command, [...script, mode, String(count)], region)
  using _doorbell = doorbell
  await within(doorbell.wait(), 'the guest mapped the region')
  const started = performance.now()
  stepped(words, HOST_STEP, GUEST_STEP, count, () => call(words))
  const { code, stdout } = await within(exit, 'guest exit')
  const ms = performance.now() - started
  t.is(code, 0)
  t.is(JSON.parse(stdout).added, count)
  return { counter: Atomics.load(words, COUNTER), ms }
}

/** Runs of the Atomics.add count allowed to find that the two processes never ran at the same time. */
const MAX_COUNT_RUNS = 20

for (const [name, guest] of Object.entries(guests)) {
  const mode = name === 'Node' ? 'add' : 'region-add'
  test.serial(
    `Atomics.add from this process and a ${name} guest, a million times each, ends at exactly two million`,
    async (t) => {
      // A run counts only if the guest's adds landed between two of ours within a step: then the two
      // processes added at the same time. On a busy machine they may not have; run again.
      for (let run = 1; run <= MAX_COUNT_RUNS; run++) {
        let calls = 0
        let last = 0
        let interleaved = 0
        const { counter, ms } = await inStepWithGuest(t, guest, mode, 1_000_000, (words) => {
          const old = Atomics.add(words, COUNTER, 1)
          if (calls++ % STEP !== 0 && old !== last + 1) interleaved++
          last = old
        })
        t.is(counter, 2_000_000)
        t.log(
          `run ${run}: 2,000,000 Atomics.add in ${ms.toFixed(0)} ms; the guest's landed between two of ours ${interleaved} times`,
        )
        if (interleaved > 0) return
      }
      t.fail(`in ${MAX_COUNT_RUNS} runs the two processes never added at the same time, so the count proved nothing`)
    },
  )
}

test.serial('a compareExchange spin lock guards a counter that two processes increment non-atomically', async (t) => {
  const count = 250_000
  // As above: a run counts only if the lock was ever found taken, by the other process.
  for (let run = 1; run <= MAX_COUNT_RUNS; run++) {
    let contended = 0
    const { counter, ms } = await inStepWithGuest(t, guests.Node, 'lock', count, (words) => {
      if (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) {
        contended++
        while (Atomics.compareExchange(words, LOCK, 0, 1) !== 0);
      }
      words[COUNTER] = words[COUNTER] + 1
      Atomics.store(words, LOCK, 0)
    })
    t.is(counter, 2 * count)
    t.log(
      `run ${run}: ${2 * count} locked increments in ${ms.toFixed(0)} ms; the lock was found taken ${contended} times`,
    )
    if (contended > 0) return
  }
  t.fail(`in ${MAX_COUNT_RUNS} runs the lock was never contended, so the count proved nothing`)
})

linuxTest(
  "a guest's ftruncate on the region's fd fails with EPERM, and the host keeps reading its whole region (Linux: seals)",
  async (t) => {
    const region = SharedRegion.create(PAGE * 64)
    const bytes = new Uint8Array(region.buffer)
    writePattern(bytes)
    const { doorbell, exit } = startGuest(process.execPath, [nodeGuest, 'truncate'], region)
    const { code, stdout } = await within(exit, 'guest exit')
    t.is(code, 0)
    t.deepEqual(JSON.parse(stdout), { codes: { shrink: 'EPERM', zero: 'EPERM', grow: 'EPERM' }, size: region.size })
    t.throws(() => ftruncateSync(region.fd, 0), { code: 'EPERM' })
    t.is(mismatches(bytes, hostByte), 0)
    t.is(fstatSync(region.fd).size, PAGE * 64)
    doorbell.close()
    region.close()
  },
)

/** A child script that prints its args and, for each fd it was given, the inode behind it. */
const DESCRIBE_FDS = `
  const fs = require('node:fs')
  const args = process.argv.slice(1)
  const fdOf = (flag) => Number(args[args.indexOf(flag) + 1])
  const inode = (fd) => fs.fstatSync(fd).ino
  console.log(JSON.stringify({ args, region: inode(fdOf('--region-fd')), doorbell: inode(fdOf('--doorbell-fd')) }))`

for (const [stdio, doorbellFd] of [
  [['ignore', 'pipe', 'inherit'], 3],
  [['ignore', 'pipe', 'inherit', 'ignore'], 4],
] as const) {
  test(`spawn with stdio ${JSON.stringify(stdio)} gives the child the region as fd ${doorbellFd + 1}, right after the doorbell's`, async (t) => {
    using region = SharedRegion.create(1)
    const { child, doorbell } = spawn(process.execPath, ['-e', DESCRIBE_FDS, 'arg'], { region, stdio: [...stdio] })
    const { code, stdout } = await within(exitOf(child), 'child exit')
    t.is(code, 0)
    const report = JSON.parse(stdout)
    t.deepEqual(report.args, ['arg', '--', '--doorbell-fd', String(doorbellFd), '--region-fd', String(doorbellFd + 1)])
    t.is(report.region, fstatSync(region.fd).ino)
    t.false(region.closed, "the host's region stays open")
    doorbell.close()
  })
}

test('spawn refuses a region option that is not an open SharedRegion, and starts nothing', (t) => {
  const before = openFdCount()
  for (const region of [{}, 4, 'region', new ArrayBuffer(8)]) {
    t.throws(() => spawn(process.execPath, ['-e', ''], { region: region as SharedRegion }), {
      code: 'ERR_INVALID_ARG_TYPE',
    })
  }
  const closed = SharedRegion.create(1)
  closed.close()
  t.throws(() => spawn(process.execPath, ['-e', ''], { region: closed }), { code: 'ERR_DOORBELL_CLOSED' })
  t.is(openFdCount(), before)
})

test('close() detaches the buffer: live views of every kind read as empty, and nothing crashes', (t) => {
  const region = SharedRegion.create(PAGE)
  const { buffer } = region
  const views = [
    new Uint8Array(buffer),
    new Uint8ClampedArray(buffer),
    new Int8Array(buffer),
    new Uint16Array(buffer, 2),
    new Int16Array(buffer),
    new Uint32Array(buffer),
    new Int32Array(buffer, 4, 10),
    new Float32Array(buffer),
    new Float64Array(buffer),
    new BigInt64Array(buffer),
    new BigUint64Array(buffer),
    Buffer.from(buffer),
  ]
  const dataView = new DataView(buffer)
  for (const view of views) view[1] = view instanceof BigInt64Array || view instanceof BigUint64Array ? 1n : 1
  t.is(dataView.getUint8(8), 1)
  region.close()
  t.is(buffer.byteLength, 0)
  t.is(region.buffer, buffer)
  for (const view of views) {
    const kind = view.constructor.name
    t.is(view.length, 0, kind)
    t.is(view.byteLength, 0, kind)
    t.is(view[0] as unknown, undefined, kind)
    t.is(view[1] as unknown, undefined, kind)
    view[1] = view instanceof BigInt64Array || view instanceof BigUint64Array ? 2n : 2
    t.is(view[1] as unknown, undefined, kind)
  }
  t.throws(() => Atomics.load(views[6] as Int32Array, 0), { instanceOf: TypeError })
  t.throws(() => Atomics.add(views[6] as Int32Array, 0, 1), { instanceOf: TypeError })
  t.throws(() => dataView.getUint8(0), { instanceOf: TypeError })
  t.throws(() => new Uint8Array(buffer), { instanceOf: TypeError })
})

linuxTest(
  'close() is idempotent and intoRawFd hands the fd over: detached, closed, fd -1, the fd still open (Linux: /proc)',
  (t) => {
    const region = SharedRegion.create(PAGE)
    new Uint8Array(region.buffer)[0] = 42
    const fd = region.intoRawFd()
    t.true(fdTarget(fd)?.includes('shm-doorbell-region'))
    t.is(region.fd, -1)
    t.true(region.closed)
    t.is(region.buffer.byteLength, 0)
    t.throws(() => region.intoRawFd(), { code: 'ERR_DOORBELL_CLOSED' })
    region.close()
    const adopted = SharedRegion.fromRawFd(fd)
    t.is(adopted.fd, fd)
    t.is(new Uint8Array(adopted.buffer)[0], 42)
    adopted.close()
    adopted.close()
    t.is(fdTarget(fd), undefined)
    t.is(adopted.fd, -1)
    t.throws(() => adopted.intoRawFd(), { code: 'ERR_DOORBELL_CLOSED' })
  },
)

test('using closes the region at the end of the block', (t) => {
  let seen: SharedRegion
  {
    using region = SharedRegion.create(1)
    seen = region
    t.false(region.closed)
  }
  t.true(seen.closed)
})

test('util.inspect shows fd, size and closed', (t) => {
  const region = SharedRegion.create(100)
  t.is(inspect(region), `SharedRegion { fd: ${region.fd}, size: ${PAGE}, closed: false }`)
  region.close()
  t.is(inspect(region), `SharedRegion { fd: -1, size: ${PAGE}, closed: true }`)
  t.is(inspect({ region }, { depth: 0 }), '{ region: [SharedRegion] }')
})

test('a region is zero-filled, sized in whole pages, and its MAX_SIZE is 1 TiB (4 GiB on Node 20)', (t) => {
  using region = SharedRegion.create(PAGE + 1)
  t.is(region.size, 2 * PAGE)
  t.is(region.buffer.byteLength, 2 * PAGE)
  t.true(new Uint8Array(region.buffer).every((byte) => byte === 0))
  // Node 20's external ArrayBuffers are Buffers, limited to 4 GiB.
  t.is(SharedRegion.MAX_SIZE, process.versions.node.startsWith('20.') ? 2 ** 32 : 2 ** 40)
})

linuxTest(
  'a region of MAX_SIZE bytes maps without touching its pages, and its last byte is reachable (Linux: tested there only)',
  (t) => {
    const region = SharedRegion.create(SharedRegion.MAX_SIZE)
    t.is(region.buffer.byteLength, SharedRegion.MAX_SIZE)
    const last = new Uint8Array(region.buffer, SharedRegion.MAX_SIZE - PAGE)
    last[PAGE - 1] = 7
    t.is(last[PAGE - 1], 7)
    region.close()
    t.is(last.length, 0)
  },
)

test('the SharedRegion constructor is not public', (t) => {
  const Constructor = SharedRegion as unknown as new () => SharedRegion
  t.throws(() => new Constructor(), { code: 'ERR_ILLEGAL_CONSTRUCTOR' })
})

test('SharedRegion.create rejects a size that is not a number with ERR_INVALID_ARG_TYPE', (t) => {
  for (const size of ['4096', null, undefined, {}, [], 4096n, true, Symbol('size')]) {
    t.throws(() => SharedRegion.create(size as unknown as number), {
      instanceOf: TypeError,
      code: 'ERR_INVALID_ARG_TYPE',
    })
  }
})

test('SharedRegion.create rejects 0, negative, fractional, NaN, infinite and above-MAX_SIZE sizes with ERR_OUT_OF_RANGE', (t) => {
  for (const size of [0, -0, -1, 0.5, 1.5, NaN, Infinity, -Infinity, SharedRegion.MAX_SIZE + 1, 2 ** 53]) {
    t.throws(() => SharedRegion.create(size), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  }
})

test.serial(
  'SharedRegion.create given any value makes a region of that size rounded up to pages, or throws a coded error, and leaves no fd behind',
  (t) => {
    const before = openFdCount()
    const codes = new Map<string, number>()
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything({ withBigInt: true, withBoxedValues: true, withNullPrototype: true }),
          fc.double(),
          fc.integer({ min: -PAGE, max: 4 * PAGE }),
          fc.constantFrom(SharedRegion.MAX_SIZE + 1, 2 ** 53, -(2 ** 53), Number.MIN_VALUE, -0),
        ),
        (size) => {
          let code = 'ok'
          try {
            const region = SharedRegion.create(size as number)
            t.true(region.size >= (size as number) && region.size % PAGE === 0 && region.size - (size as number) < PAGE)
            region.close()
          } catch (err) {
            code = (err as NodeJS.ErrnoException).code ?? 'no code'
            t.true(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'].includes(code), code)
          }
          codes.set(code, (codes.get(code) ?? 0) + 1)
        },
      ),
      { numRuns: 2000 },
    )
    t.is(openFdCount(), before)
    t.log([...codes].map(([code, count]) => `${code} ${count}`).join(', '))
  },
)

test('SharedRegion.fromRawFd rejects bad fd arguments as the doorbell does', (t) => {
  for (const fd of ['3', null, undefined, {}, 3n]) {
    t.throws(() => SharedRegion.fromRawFd(fd as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' })
  }
  for (const fd of [-1, 1.5, NaN, MAX_FD + 1]) {
    t.throws(() => SharedRegion.fromRawFd(fd), { code: 'ERR_OUT_OF_RANGE' })
  }
  const err = t.throws(() => SharedRegion.fromRawFd(MAX_FD), { code: 'EBADF' })
  t.is((err as NodeJS.ErrnoException).errno, -9)
})

/** Asserts that fromRawFd refuses `fd` with `code` and leaves it open and as it was. */
function refusesAndLeavesAsItWas(t: ExecutionContext, fd: number, code: string): void {
  const before = fstatSync(fd)
  const target = fdTarget(fd)
  t.throws(() => SharedRegion.fromRawFd(fd), { code })
  const after = fstatSync(fd)
  t.is(fdTarget(fd), target)
  t.is(after.ino, before.ino)
  t.is(after.size, before.size)
}

linuxSerialTest(
  'SharedRegion.fromRawFd refuses a file, a directory and a device as not shared memory, and leaves them open (Linux: memfd)',
  (t) => {
    const before = openFdCount()
    for (const [path, flags] of [
      ['package.json', 'r+'],
      ['.', 'r'],
      ['/dev/zero', 'r+'],
    ]) {
      const fd = openSync(path, flags)
      refusesAndLeavesAsItWas(t, fd, 'ERR_DOORBELL_NOT_SHARED_MEMORY')
      closeSync(fd)
    }
    t.is(openFdCount(), before)
  },
)

linuxSerialTest(
  'SharedRegion.fromRawFd refuses shared memory that is not sealed against shrinking, and leaves it as it was (Linux: seals)',
  (t) => {
    const path = `/dev/shm/shm-doorbell-test-${process.pid}`
    const fd = openSync(path, 'w+')
    unlinkSync(path)
    ftruncateSync(fd, PAGE)
    refusesAndLeavesAsItWas(t, fd, 'ERR_DOORBELL_REGION_NOT_SEALED')
    closeSync(fd)
  },
)

/** A memfd made by a Python child with `size` bytes and `seals`, reopened here through /proc. */
async function pythonMemfd(size: number, seals: string): Promise<{ fd: number; done: () => void }> {
  const script = [
    'import fcntl, os, sys',
    "fd = os.memfd_create('peer', os.MFD_ALLOW_SEALING)",
    `os.ftruncate(fd, ${size})`,
    `fcntl.fcntl(fd, fcntl.F_ADD_SEALS, ${seals})`,
    'print(fd, flush=True)',
    'sys.stdin.read()',
  ].join('\n')
  const child = spawnChild('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exit = exitOf(child)
  const line = await within(
    new Promise<string>((resolveLine, reject) => {
      child.stdout!.once('data', (chunk: Buffer) => resolveLine(chunk.toString()))
      exit.then((result) => reject(new Error(`python3 exited: ${JSON.stringify(result)}`)), reject)
    }),
    'python3 made a memfd',
  )
  const fd = openSync(`/proc/${child.pid}/fd/${line.trim()}`, 'r+')
  return { fd, done: () => child.stdin!.end() }
}

linuxSerialTest(
  'SharedRegion.fromRawFd refuses an empty, an unsealed or a too large memfd, and maps a peer memfd sealed only against shrinking (Linux: memfd)',
  async (t) => {
    const empty = await pythonMemfd(0, 'fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW')
    refusesAndLeavesAsItWas(t, empty.fd, 'ERR_DOORBELL_REGION_EMPTY')
    closeSync(empty.fd)
    empty.done()
    const unsealed = await pythonMemfd(PAGE, '0')
    refusesAndLeavesAsItWas(t, unsealed.fd, 'ERR_DOORBELL_REGION_NOT_SEALED')
    closeSync(unsealed.fd)
    unsealed.done()
    const huge = await pythonMemfd(SharedRegion.MAX_SIZE + PAGE, 'fcntl.F_SEAL_SHRINK')
    refusesAndLeavesAsItWas(t, huge.fd, 'ERR_DOORBELL_REGION_TOO_LARGE')
    closeSync(huge.fd)
    huge.done()
    const odd = await pythonMemfd(100, 'fcntl.F_SEAL_SHRINK')
    const region = SharedRegion.fromRawFd(odd.fd)
    t.is(region.size, 100)
    t.is(region.buffer.byteLength, 100)
    region.close()
    t.is(fdTarget(odd.fd), undefined)
    odd.done()
  },
)

test.serial(
  'SharedRegion.fromRawFd refuses an fd that another region or a doorbell owns with ERR_DOORBELL_FD_IN_USE',
  (t) => {
    const region = SharedRegion.create(PAGE)
    t.throws(() => SharedRegion.fromRawFd(region.fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
    t.false(region.closed)
    new Uint8Array(region.buffer)[0] = 1
    const [doorbell, handle] = Doorbell.createPair()
    t.throws(() => SharedRegion.fromRawFd(doorbell.fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
    t.throws(() => Doorbell.fromRawFd(region.fd), { code: 'ERR_DOORBELL_FD_IN_USE' })
    doorbell.close()
    handle.close()
    region.close()
  },
)

linuxSerialTest('SharedRegion.fromRawFd refuses a read-only fd with EACCES and leaves it open (Linux: /proc)', (t) => {
  using region = SharedRegion.create(PAGE)
  const readOnly = openSync(`/proc/self/fd/${region.fd}`, 'r')
  const err = t.throws(() => SharedRegion.fromRawFd(readOnly), { code: 'EACCES' })
  t.is((err as NodeJS.ErrnoException).syscall, 'mmap')
  t.truthy(fdTarget(readOnly))
  closeSync(readOnly)
})

linuxTest('SharedRegion.fromArgv takes --region-fd N or --region-fd=N, the last one wins (Linux: /proc)', (t) => {
  using region = SharedRegion.create(PAGE)
  new Uint8Array(region.buffer)[0] = 9
  for (const argv of [
    ['node', 'guest.js', '--region-fd', 'x', '--region-fd', '{fd}'],
    ['node', 'guest.js', '--region-fd=7', '--region-fd={fd}'],
  ]) {
    const fd = openSync(`/proc/self/fd/${region.fd}`, 'r+')
    const adopted = SharedRegion.fromArgv(argv.map((arg) => arg.replace('{fd}', String(fd))))
    t.is(adopted.fd, fd)
    t.is(new Uint8Array(adopted.buffer)[0], 9)
    adopted.close()
  }
  t.throws(() => SharedRegion.fromArgv(['node', 'guest.js']), { code: 'ERR_MISSING_ARGS' })
  t.throws(() => SharedRegion.fromArgv(['node', '--region-fd', '-1']), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => SharedRegion.fromArgv('--region-fd 3' as unknown as string[]), { code: 'ERR_INVALID_ARG_TYPE' })
})

/** Runs the limits fixture in a child under `ulimit` `limit` (a bash ulimit option and value). */
async function underLimit(limit: string, mode: string) {
  const { code, stdout, stderr } = await within(
    exitOf(
      spawnChild(
        'bash',
        ['-c', `ulimit ${limit} && exec "$@"`, 'bash', process.execPath, fixture('region-limits.cjs'), mode],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      ),
    ),
    `the ${mode} child`,
  )
  if (code !== 0) throw new Error(`the ${mode} child failed (${code}): ${stderr}`)
  return JSON.parse(stdout)
}

linuxTest(
  'under ulimit -n 64, with the fd table full, create throws EMFILE from memfd_create and works again once fds are freed (Linux: memfd_create)',
  async (t) => {
    const report = await underLimit('-n 64', 'fds')
    t.deepEqual(report.failure, { code: 'EMFILE', syscall: 'memfd_create' })
    t.true(report.held > 30, `only ${report.held} fds filled the table`)
    t.is(report.freed, report.before, 'the failed create left no fd behind')
    t.is(report.again, 'created')
  },
)

linuxTest(
  'under ulimit -v, a region larger than the address space left throws ENOMEM from mmap and leaks no fd (Linux: ulimit -v)',
  async (t) => {
    const report = await underLimit('-v 4194304', 'memory')
    t.deepEqual(report.failure, { code: 'ENOMEM', syscall: 'mmap', errno: -12 })
    t.is(report.fdsAfter, report.fdsBefore)
    t.is(report.again, 'created')
  },
)

linuxTest(
  '10,000 create/close cycles of 64 KiB regions, every page touched, keep fds, mappings and RSS flat (Linux: /proc; under qemu-user, the region mappings only)',
  async (t) => {
    const { code, stdout, stderr } = await runNode(['--expose-gc', fixture('region-cycles.cjs'), '10000', '65536'])
    t.is(code, 0, stderr)
    const { before, after, ms } = JSON.parse(stdout)
    t.log(
      `fds ${before.fds} -> ${after.fds}, mappings ${before.maps} -> ${after.maps}, RSS ${(before.rss / 2 ** 20).toFixed(1)} -> ${(after.rss / 2 ** 20).toFixed(1)} MiB, ${ms.toFixed(0)} ms`,
    )
    t.is(after.fds, before.fds)
    t.is(after.regionMaps, 0)
    t.is(before.regionMaps, 0)
    // Leaked mappings would add 10,000 lines; V8 may map a few heap pages of its own. Under qemu-user
    // (npm run test:targets) the emulated process gains anonymous mappings that are not regions as the
    // cycles run, 24 and then 46 more over two runs of 10,000 on arm64 Node 20 (none on x64 Node 20,
    // which this bound checks): there the region mappings above are what is counted.
    if (emulator === undefined) {
      t.true(after.maps - before.maps <= 20, `${before.maps} -> ${after.maps} mappings`)
    }
    // Leaked regions would hold 625 MiB.
    t.true(after.rss - before.rss < 32 * 2 ** 20, `RSS ${before.rss} -> ${after.rss}`)
  },
)

linuxTest(
  'an open region is never unmapped or closed by garbage collection: its views outlive the collected SharedRegion (Linux: /proc)',
  async (t) => {
    const { code, stdout, stderr } = await runNode(['--expose-gc', fixture('region-gc.cjs')])
    t.is(code, 0, stderr)
    t.deepEqual(JSON.parse(stdout), { collected: true, length: 2 ** 18, intact: true, fds: 1, maps: 1 })
  },
)

/** Runs region-worker.cjs on `fd`; resolves with its message once it has exited. */
async function inWorker(fd: number, adds: number, close: boolean) {
  const worker = new Worker(fixture('region-worker.cjs'), { workerData: { fd, adds, close } })
  const message = new Promise<{ size: number; mismatches: number; fd: number }>((resolveMessage, reject) => {
    worker.once('message', resolveMessage)
    worker.once('error', reject)
  })
  const exit = new Promise<number>((resolveExit) => worker.once('exit', resolveExit))
  return { message: await within(message, 'the worker mapped the region'), code: await within(exit, 'worker exit') }
}

linuxSerialTest(
  'a worker adopts a dup of the fd and maps the same memory with its own ArrayBuffer (Linux: /proc)',
  async (t) => {
    using region = SharedRegion.create(PAGE * 4)
    const bytes = new Uint8Array(region.buffer)
    writePattern(bytes, 64)
    const words = new Int32Array(region.buffer)
    const copy = openSync(`/proc/self/fd/${region.fd}`, 'r+')
    const running = inWorker(copy, 100_000, true)
    for (let i = 0; i < 100_000; i++) Atomics.add(words, COUNTER, 1)
    const { message, code } = await running
    t.is(code, 0)
    t.deepEqual(message, { size: region.size, mismatches: 0, fd: copy })
    t.is(Atomics.load(words, COUNTER), 200_000)
    t.is(fdTarget(copy), undefined, 'the worker closed its region')
    t.is(regionMappings(), 1, "only this thread's mapping is left")
    t.false(region.closed)
  },
)

linuxSerialTest(
  'a region handed to a worker with intoRawFd is mapped there, and closed when the worker ends without closing it (Linux: /proc)',
  async (t) => {
    const region = SharedRegion.create(PAGE * 4)
    writePattern(new Uint8Array(region.buffer), 64)
    const fd = region.intoRawFd()
    t.is(region.buffer.byteLength, 0)
    const { message, code } = await inWorker(fd, 1, false)
    t.is(code, 0)
    t.deepEqual(message, { size: PAGE * 4, mismatches: 0, fd })
    t.is(fdTarget(fd), undefined, "the worker's end closed its region")
    t.is(regionMappings(), 0, "the worker's end unmapped its region")
  },
)
