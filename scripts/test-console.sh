#!/usr/bin/env bash
# The console in a real browser: Debian's Chromium (and a CJK font, so the
# screenshots show the Chinese), Playwright from npm (tests/console, locked
# by its package-lock.json), the `fieldgrid` binary as server and phone. Runs
# once on SQLite and once on PostgreSQL. Screenshots: target/console-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

if [[ ! -x /usr/bin/chromium ]] || ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then
    echo "installing Chromium and a CJK font" >&2
    sudo_ apt-get update -qq >&2 && sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
if ! command -v npm >/dev/null; then
    echo "installing Node.js" >&2
    sudo_ apt-get update -qq >&2 && sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
cargo build -p fieldgrid-cli --quiet
(cd tests/console && npm ci --no-audit --no-fund --silent)

passed=0
failed=0
run() {
    if (cd tests/console && FIELDGRID_CONSOLE_DATABASE="${1:-}" npx playwright test); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}
echo "-- SQLite"
run ""
echo "-- PostgreSQL"
pg=$(scripts/postgres.sh)
db="fieldgrid_console_$$"
psql "$pg/postgres" -qc "CREATE DATABASE $db" >/dev/null
run "$pg/$db"
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null || true
echo "console: $passed passed, $failed failed"
((failed == 0))
