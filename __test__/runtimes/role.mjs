// Runs one role of a scenario: `<runtime> role.mjs SCENARIO ROLE [ARGS...]`. The runner starts the
// `host` role; a host starts the others (guests, a host that gets killed) with lib.mjs.
const [scenario, role, ...args] = process.argv.slice(2)
const module = await import(`./scenarios/${scenario}.mjs`)
if (typeof module[role] !== 'function') throw new Error(`scenario ${scenario} has no role ${role}`)
const note = await module[role](args)
// The host's last line says how it went, for the runner.
if (role === 'host') console.log(`\u2713 ${note ?? ''}`)
