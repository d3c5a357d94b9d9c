#!/usr/bin/env bash
# Runs the Rust unit tests (`cargo test --lib`) under valgrind's leak checker; fails on any
# memory error or leak.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(cargo test --lib --no-run --message-format=json 2>/dev/null |
  node -e 'let out = ""; process.stdin.on("data", (c) => (out += c)).on("end", () => {
    for (const line of out.split("\n")) {
      const m = line && JSON.parse(line)
      if (m.reason === "compiler-artifact" && m.profile?.test && m.executable) console.log(m.executable)
    }
  })' | tail -n 1)
[ -n "$binary" ] || { echo "no test binary built" >&2; exit 1; }
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 \
  --suppressions=scripts/valgrind.supp "$binary" --test-threads=1 "$@"
