// Renders results.json as Markdown tables (printed, and pasted into docs/benchmarks.md) and as an SVG chart.
import { quantile } from './common.mjs'

const number = (value, digits = 1) =>
  value === null || value === undefined || Number.isNaN(value)
    ? 'n/a'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** Microseconds: one decimal, or two under 1 µs. */
const micros = (value) => number(value, value < 1 ? 2 : 1)

function table(header, rows, align) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(header), line(align ?? header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n')
}

export function machineLine({ date, machine }) {
  const { cpu, cores, os, kernel, node, commit } = machine
  return `${date.slice(0, 10)}, ${cpu} (${cores} cores), ${os ?? 'Linux'}, kernel ${kernel}, Node ${node}, commit ${commit ?? 'unknown'}`
}

export function renderTables(results) {
  const { settings, roundTrip, syscallsPerRoundTrip: calls, streaming, signal, fanIn, idle, goals } = results
  const callsOf = (id) => (calls ? number(calls[id].total) : 'no strace')
  const { loadAverageAtStart: start, loadAverageAtEnd: end } = results.machine
  const out = [
    `Measured ${machineLine(results)}; load average ${number(start, 2)} at the start, ${number(end, 2)} at the end.`,
    '',
  ]
  if (start > results.machine.cores / 4) {
    out.push(
      `The machine was busy when the suite started: latencies are noisy; for figures to quote, rerun it on a quiet one.`,
      '',
    )
  }

  out.push(
    `Round trips (${number(settings.rounds, 0)} after ${number(settings.warmUp, 0)} warm-up rounds; median of ${settings.runs} runs):`,
    '',
    table(
      ['scenario', 'p50 µs', 'p99 µs', 'round trips/s', 'syscalls per round trip', 'p50 of each run, µs'],
      roundTrip.map(({ id, label, p50, p99, rate, runs }) => [
        label,
        micros(p50),
        micros(p99),
        number(rate, 0),
        callsOf(id),
        `${micros(Math.min(...runs.map((run) => run.p50)))}–${micros(Math.max(...runs.map((run) => run.p50)))}`,
      ]),
    ),
    '',
  )

  out.push(
    table(
      ['ratio (median of the runs’ own ratios)', 'p50', 'p99', 'syscalls'],
      results.ratios.map(({ name, p50, p99, syscalls }) => [
        name,
        number(p50, 2),
        number(p99, 2),
        syscalls === undefined ? 'no strace' : number(syscalls, 2),
      ]),
    ),
    '',
  )

  out.push(...streamingTables(results))

  if (calls) {
    const ids = roundTrip.map(({ id }) => id)
    const most = (name) => Math.max(...ids.map((id) => calls[id].calls[name]?.calls ?? 0))
    const names = [...new Set(ids.flatMap((id) => Object.keys(calls[id].calls)))].sort(
      (a, b) => most(b) - most(a) || a.localeCompare(b),
    )
    const cell = (id, name) => {
      const count = calls[id].calls[name]
      if (!count) return ''
      return count.errors >= 0.05
        ? `${number(count.calls, 2)} (${number(count.errors, 2)} failed)`
        : number(count.calls, 2)
    }
    out.push(
      `Syscalls per round trip (strace -f -c over both processes, ${number(settings.straceRounds[1], 0)} rounds less ${number(settings.straceRounds[0], 0)}):`,
      '',
      table(
        ['syscall', ...ids],
        [
          ...names.map((name) => [name, ...ids.map((id) => cell(id, name))]),
          ['total', ...ids.map((id) => number(calls[id].total, 2))],
        ],
      ),
      '',
    )
  }

  out.push(
    table(
      [
        'streaming (Rust guest rings flat out)',
        'wakes/s',
        'rings per wake',
        'bytes sent per wake',
        'host CPU µs per wake',
      ],
      [
        [
          `median of ${streaming.runs.length} runs`,
          number(streaming.wakesPerSecond, 0),
          number(streaming.ringsPerWake),
          number(streaming.sentPerWake),
          number(streaming.cpuMicrosPerWake, 2),
        ],
      ],
    ),
    '',
    table(
      [`ring cost (batches of ${settings.ringBatch}, the peer end drained between them)`, 'ns per call', 'ratio'],
      [
        ['signalNow() (tinybench p50)', number(signal.signalNowNs, 0), number(signal.ratio, 2)],
        ['raw send() in C (p50)', number(signal.sendNs, 0), '1.00'],
      ],
    ),
    '',
    table(
      [
        'fan-in',
        'all woken, ms',
        'B per idle doorbell: RSS',
        'V8 heap',
        'native (malloc heap)',
        'CPU µs/s, idle',
        'CPU µs/s, a wait pending on each',
      ],
      [
        [
          `${number(fanIn.doorbells, 0)} doorbells`,
          number(fanIn.allWokenMs, 2),
          number(fanIn.rssBytesPerDoorbell, 0),
          number(fanIn.heapBytesPerDoorbell, 0),
          number(fanIn.nativeBytesPerDoorbell, 0),
          number(fanIn.idleCpuMicrosPerSecond, 0),
          number(fanIn.pendingCpuMicrosPerSecond, 0),
        ],
      ],
    ),
    '',
    table(
      ['idle', 'CPU ms (all threads)'],
      [[`one pending wait for ${idle.seconds} s`, number(idle.cpuMicros / 1000, 2)]],
    ),
    '',
    table(
      ['goal (issue)', 'measured', 'target', 'met'],
      goals.map(({ goal, measured, target, pass }) => [
        goal,
        number(measured, Math.abs(measured) >= 100 ? 0 : 2),
        target,
        pass === null ? 'not measured' : pass ? 'yes' : 'no',
      ]),
      ['---', '---:', '---', '---'],
    ),
    '',
  )
  if (results.channelGoals) {
    out.push(
      table(
        ['goal (issue 12, the Channel)', 'measured', 'target', 'met'],
        results.channelGoals.map(({ goal, measured, target, pass }) => [
          goal,
          number(measured, Math.abs(measured) >= 100 ? 0 : Math.abs(measured) >= 0.1 ? 2 : 4),
          target,
          pass === null ? 'not measured' : pass ? 'yes' : 'no',
        ]),
        ['---', '---:', '---', '---'],
      ),
      '',
    )
    if (results.rendezvous) {
      const { rounds, channel, net } = results.rendezvous
      out.push(
        `Rendezvous (${number(rounds, 0)} of each, in turn): Channel.connect() to the first message p50 ${number(channel.p50, 0)} µs (p90 ${number(channel.p90, 0)}); net.connect() + write + read p50 ${number(net.p50, 0)} µs (p90 ${number(net.p90, 0)}).`,
        '',
      )
    }
    if (!results.settings.channel) out.push('This build has no Channel: its scenarios did not run.', '')
  }
  if (results.zeroCopyGoals) {
    out.push(
      table(
        ['goal (issue 17, zero-copy and values)', 'measured', 'goal', 'passes at', 'met'],
        results.zeroCopyGoals.map(({ goal, measured, target, passesAt, pass, passes }) => [
          goal,
          number(measured, 2),
          target,
          passesAt,
          pass === null ? 'not measured' : pass ? 'yes' : passes ? 'passes' : 'no',
        ]),
        ['---', '---:', '---', '---', '---'],
      ),
      '',
    )
  }
  return out.join('\n')
}

// Size 0 marks the scenarios that send a small object (bench/common.mjs OBJECT_SIZE), not bytes.
const sizeName = (size) => (size === 0 ? 'object' : size >= 1024 ? `${size / 1024} KiB` : `${size} B`)

/** The one-way streaming tables: throughput per scenario and size, and syscalls per message. */
function streamingTables({ throughput, syscallsPerMessage: calls, syscallsPerMessageByPerf: perfCalls, settings }) {
  if (!throughput) return []
  const countOf = (list, missing) => (id, size) => {
    if (!list) return missing
    const count = list.find((entry) => entry.id === id && entry.size === size)
    if (!count) return ''
    return count.error ? 'failed' : number(count.total, 4)
  }
  const callsOf = countOf(calls, 'no strace')
  const perfCallsOf = countOf(perfCalls, 'no perf')
  const out = [
    `One-way streaming (each run ${number(settings.streamMs, 0)} ms after the receiver's 200 ms warm-up; median of ${settings.streamRuns} runs; MB/s of payload):`,
    '',
    table(
      [
        'scenario',
        'message',
        'msgs/s',
        'MB/s',
        'syscalls per message (strace)',
        'syscalls per message (perf)',
        'msgs/s of each run',
      ],
      throughput.map(({ id, label, size, msgsPerSecond, mbPerSecond, runs }) => [
        label,
        sizeName(size),
        number(msgsPerSecond, 0),
        number(mbPerSecond, 0),
        callsOf(id, size),
        perfCallsOf(id, size),
        `${number(Math.min(...runs.map((run) => run.msgsPerSecond)), 0)}–${number(Math.max(...runs.map((run) => run.msgsPerSecond)), 0)}`,
      ]),
    ),
    '',
  ]
  if (calls) {
    const columns = calls.map(({ id, size }) => `${id} ${sizeName(size)}`)
    const names = [...new Set(calls.flatMap((entry) => Object.keys(entry.calls ?? {})))].sort(
      (a, b) =>
        Math.max(...calls.map((entry) => entry.calls?.[b]?.calls ?? 0)) -
          Math.max(...calls.map((entry) => entry.calls?.[a]?.calls ?? 0)) || a.localeCompare(b),
    )
    out.push(
      `Syscalls per message while streaming (strace -f -c over both processes, a ${number(settings.straceStreamMs[1], 0)} ms run less a ${number(settings.straceStreamMs[0], 0)} ms one, over the messages between them; calls under 0.0001 per message are counted in the total only; the perf rows count the same runs' length by \`perf stat -e raw_syscalls:sys_enter\`, which does not stop the processes at each syscall as strace does):`,
      '',
      table(
        ['syscall (strace)', ...columns],
        [
          ...names.map((name) => [
            name,
            ...calls.map((entry) => (entry.calls?.[name] ? number(entry.calls[name].calls, 4) : '')),
          ]),
          ['total', ...calls.map(({ id, size }) => callsOf(id, size))],
          ['messages counted', ...calls.map((entry) => number(entry.messages, 0))],
          ...(perfCalls
            ? [
                ['total by perf', ...calls.map(({ id, size }) => perfCallsOf(id, size))],
                [
                  'messages counted by perf',
                  ...calls.map(({ id, size }) =>
                    number(perfCalls.find((entry) => entry.id === id && entry.size === size)?.messages, 0),
                  ),
                ],
              ]
            : []),
        ],
      ),
      '',
    )
  }
  return out
}

const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A step for axis ticks: 1, 2 or 5 times a power of ten, giving about five ticks up to `max`. */
function tickStep(max) {
  const rough = max / 5
  const power = 10 ** Math.floor(Math.log10(rough))
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough)
}

/**
 * Horizontal bars: one group per row, one bar per series; returns the SVG elements and height.
 * With `clipOutliers`, a value over ten times the median of the panel's values (a p99 of seconds
 * among microseconds) does not set the axis: its bar is cut at the edge, its label marked `»`.
 */
function barPanel({ top, title, rows, series, unit, clipOutliers = false }) {
  const left = 330
  const width = 400
  const barHeight = 13
  const groupGap = 10
  const values = rows.flatMap((row) => series.map(({ key }) => row.values[key] ?? 0))
  const typical = 10 * quantile([...values], 0.5)
  const max = Math.max(...values.filter((value) => !clipOutliers || value <= typical || typical === 0))
  const step = tickStep(max)
  const axisMax = Math.ceil(max / step) * step
  const x = (value) => left + (Math.min(value, axisMax) / axisMax) * width
  const parts = [`<text x="20" y="${top + 16}" class="title">${escape(title)}</text>`]
  const bars = []
  let y = top + 34
  const plotTop = y
  for (const row of rows) {
    bars.push(
      `<text x="${left - 8}" y="${y + (series.length * barHeight) / 2 + 4}" class="label" text-anchor="end">${escape(row.label)}</text>`,
    )
    for (const { key, color } of series) {
      const value = row.values[key]
      if (value !== undefined) {
        bars.push(
          `<rect x="${left}" y="${y}" width="${Math.max(1, x(value) - left).toFixed(1)}" height="${barHeight - 2}" fill="${color}"/>`,
          `<text x="${(x(value) + 4).toFixed(1)}" y="${y + barHeight - 3}" class="value">${escape(`${value > axisMax ? '» ' : ''}${number(value, value >= 100 ? 0 : value < 1 ? 2 : 1)}`)}</text>`,
        )
      }
      y += barHeight
    }
    y += groupGap
  }
  for (let tick = 0; tick <= axisMax; tick += step) {
    parts.push(
      `<line x1="${x(tick)}" y1="${plotTop - 4}" x2="${x(tick)}" y2="${y - groupGap + 2}" class="grid"/>`,
      `<text x="${x(tick)}" y="${y + 8}" class="tick" text-anchor="middle">${escape(number(tick, step < 1 ? 1 : 0))}</text>`,
    )
  }
  parts.push(...bars)
  parts.push(`<text x="${left + width}" y="${y + 22}" class="tick" text-anchor="end">${escape(unit)}</text>`)
  let legendX = left + width
  for (const { name, color } of [...series].reverse()) {
    legendX -= name.length * 7 + 14
    parts.push(
      `<rect x="${legendX}" y="${top + 6}" width="10" height="10" fill="${color}"/>`,
      `<text x="${legendX + 14}" y="${top + 15}" class="tick">${escape(name)}</text>`,
    )
    legendX -= 12
  }
  return { parts, height: y + 30 - top }
}

export function renderChart(results) {
  const { roundTrip, syscallsPerRoundTrip: calls, machine } = results
  const latency = barPanel({
    top: 44,
    title: 'Round trip between two processes',
    rows: roundTrip.map(({ label, p50, p99 }) => ({ label, values: { p50, p99 } })),
    series: [
      { key: 'p50', name: 'p50', color: '#3b6ea8' },
      { key: 'p99', name: 'p99', color: '#a9c4e4' },
    ],
    unit: 'µs (shorter is better)',
    clipOutliers: true,
  })
  const panels = [latency]
  let top = 44 + latency.height
  if (calls) {
    panels.push(
      barPanel({
        top,
        title: 'Syscalls per round trip (strace -f -c, both processes)',
        rows: roundTrip.map(({ id, label }) => ({ label, values: { total: calls[id].total } })),
        series: [{ key: 'total', name: 'syscalls', color: '#c0793a' }],
        unit: 'calls (fewer is better)',
      }),
    )
    top += panels.at(-1).height
  }
  for (const [size, key, scale, unit] of [
    [64, 'msgsPerSecond', 1e6, 'million messages/s (longer is better)'],
    [65536, 'mbPerSecond', 1e3, 'GB/s (longer is better)'],
  ]) {
    const rows = (results.throughput ?? []).filter((stream) => stream.size === size)
    if (rows.length === 0) continue
    panels.push(
      barPanel({
        top,
        title: `One-way streaming, ${sizeName(size)} messages`,
        rows: rows.map((stream) => ({ label: stream.label, values: { rate: stream[key] / scale } })),
        series: [{ key: 'rate', name: size < 1024 ? 'msgs/s' : 'GB/s', color: '#4f8f5a' }],
        unit,
      }),
    )
    top += panels.at(-1).height
  }
  const height = 44 + panels.reduce((sum, panel) => sum + panel.height, 0) + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="820" height="${height}" viewBox="0 0 820 ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
.title { font-size: 14px; font-weight: bold; fill: #222; }
.label { font-size: 12px; fill: #222; }
.value { font-size: 11px; fill: #444; }
.tick { font-size: 11px; fill: #666; }
.grid { stroke: #ddd; stroke-width: 1; }
.caption { font-size: 11px; fill: #666; }
</style>
<rect width="820" height="${height}" fill="#fff"/>
<text x="20" y="18" class="caption">${escape(`shm-doorbell, npm run bench, ${results.date.slice(0, 10)}, commit ${machine.commit ?? 'unknown'}`)}</text>
<text x="20" y="33" class="caption">${escape(`${machine.cpu} (${machine.cores} cores), ${machine.os ?? 'Linux'}, kernel ${machine.kernel}, Node ${machine.node}`)}</text>
${panels.flatMap((panel) => panel.parts).join('\n')}
</svg>
`
}
