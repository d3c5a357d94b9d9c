// Renders results.json as Markdown tables (printed, and pasted into the README) and as an SVG chart.

const number = (value, digits = 1) =>
  value === null || value === undefined || Number.isNaN(value)
    ? 'n/a'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

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
        number(p50),
        number(p99),
        number(rate, 0),
        callsOf(id),
        `${number(Math.min(...runs.map((run) => run.p50)))}–${number(Math.max(...runs.map((run) => run.p50)))}`,
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
        syscalls === null ? 'no strace' : number(syscalls, 2),
      ]),
    ),
    '',
  )

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
  return out.join('\n')
}

const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A step for axis ticks: 1, 2 or 5 times a power of ten, giving about five ticks up to `max`. */
function tickStep(max) {
  const rough = max / 5
  const power = 10 ** Math.floor(Math.log10(rough))
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough)
}

/** Horizontal bars: one group per row, one bar per series; returns the SVG elements and height. */
function barPanel({ top, title, rows, series, unit }) {
  const left = 230
  const width = 420
  const barHeight = 13
  const groupGap = 10
  const max = Math.max(...rows.flatMap((row) => series.map(({ key }) => row.values[key] ?? 0)))
  const step = tickStep(max)
  const axisMax = Math.ceil(max / step) * step
  const x = (value) => left + (value / axisMax) * width
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
          `<text x="${(x(value) + 4).toFixed(1)}" y="${y + barHeight - 3}" class="value">${escape(number(value, value >= 100 ? 0 : 1))}</text>`,
        )
      }
      y += barHeight
    }
    y += groupGap
  }
  for (let tick = 0; tick <= axisMax; tick += step) {
    parts.push(
      `<line x1="${x(tick)}" y1="${plotTop - 4}" x2="${x(tick)}" y2="${y - groupGap + 2}" class="grid"/>`,
      `<text x="${x(tick)}" y="${y + 8}" class="tick" text-anchor="middle">${escape(number(tick, 0))}</text>`,
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
  })
  const panels = [latency]
  if (calls) {
    panels.push(
      barPanel({
        top: 44 + latency.height,
        title: 'Syscalls per round trip (strace -f -c, both processes)',
        rows: roundTrip.map(({ id, label }) => ({ label, values: { total: calls[id].total } })),
        series: [{ key: 'total', name: 'syscalls', color: '#c0793a' }],
        unit: 'calls (fewer is better)',
      }),
    )
  }
  const height = 44 + panels.reduce((sum, panel) => sum + panel.height, 0) + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="${height}" viewBox="0 0 720 ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
.title { font-size: 14px; font-weight: bold; fill: #222; }
.label { font-size: 12px; fill: #222; }
.value { font-size: 11px; fill: #444; }
.tick { font-size: 11px; fill: #666; }
.grid { stroke: #ddd; stroke-width: 1; }
.caption { font-size: 11px; fill: #666; }
</style>
<rect width="720" height="${height}" fill="#fff"/>
<text x="20" y="18" class="caption">${escape(`shm-doorbell, npm run bench, ${results.date.slice(0, 10)}, commit ${machine.commit ?? 'unknown'}`)}</text>
<text x="20" y="33" class="caption">${escape(`${machine.cpu} (${machine.cores} cores), ${machine.os ?? 'Linux'}, kernel ${machine.kernel}, Node ${machine.node}`)}</text>
${panels.flatMap((panel) => panel.parts).join('\n')}
</svg>
`
}
