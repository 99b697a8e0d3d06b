#!/usr/bin/env bash
# Runs every check and test of the project. This is the command the README
# names and CI runs (.ci/run). It installs what it needs that a fresh machine
# of this kind lacks; the Rust toolchain itself comes with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install the Rust toolchain (rustup) first" >&2
    exit 1
fi
# SQLite/SQLCipher is C, built from source: it needs a C compiler.
if ! command -v cc >/dev/null; then
    echo "installing a C compiler"
    apt-get update -qq && apt-get install -y -qq gcc >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The layering (ARCHITECTURE.md): the server builds on the domain and the
# protocol, never on the phone's core or an HTTP client.
echo "== layering: what the server links"
# (Each listing is captured first: `grep -q` on a pipe would end the
# listing early, and pipefail would read that as "not found".)
tree=$(cargo tree -p fieldgrid-server -e normal --prefix none --quiet)
forbidden=$(awk '{print $1}' <<<"$tree" | grep -E '^(fieldgrid-core|fieldgrid-ffi|reqwest|ureq|uniffi)$' | sort -u || true)
if [[ -n "$forbidden" ]]; then
    echo "fieldgrid-server depends on: $forbidden" >&2
    exit 1
fi
# Built alone (as district IT builds it), the server links plain SQLite.
features=$(cargo tree -p fieldgrid-server -e features --prefix none --quiet)
if grep -q 'libsqlite3-sys feature "bundled-sqlcipher"' <<<"$features"; then
    echo "fieldgrid-server built alone links SQLCipher" >&2
    exit 1
fi
scripts/server-alone.sh
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
rust_status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the
# last of which is usually an empty doc-test run).
awk '/^test result:/ { p += $4; f += $6 } END { printf "rust: %d passed, %d failed\n", p, f }' "$log"

# The core's suite again on encrypted stores (every fixture keyed).
echo "== cargo test (core, keyed stores)"
set +e
FIELDGRID_TEST_KEYED=1 cargo test -p fieldgrid-core --test it 2>&1 | tee "$log"
keyed_status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { p += $4; f += $6 } END { printf "rust (core, keyed): %d passed, %d failed\n", p, f }' "$log"
if ((keyed_status != 0)); then rust_status=$keyed_status; fi

# The end-to-end suite again, with the server on PostgreSQL (a database per
# test district on the machine's PostgreSQL; scripts/postgres.sh starts or
# installs one).
echo "== cargo test (end-to-end, PostgreSQL)"
pg_url=$(scripts/postgres.sh)
set +e
FIELDGRID_TEST_POSTGRES="$pg_url" cargo test -p fieldgrid-tests --test e2e 2>&1 | tee "$log"
pg_status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { p += $4; f += $6 } END { printf "rust (postgres): %d passed, %d failed\n", p, f }' "$log"
if ((pg_status != 0)); then rust_status=$pg_status; fi

echo "== schemathesis: docs/openapi.yaml against the real server"
schema_status=0
scripts/schemathesis.sh || schema_status=$?

echo "== bindings: generated code current, Python and Kotlin tests"
bindings_status=0
scripts/test-bindings.sh || bindings_status=$?

echo "== console: Chromium (Playwright) against the real server, SQLite and PostgreSQL"
console_status=0
scripts/test-console.sh || console_status=$?

if ((rust_status != 0 || schema_status != 0 || bindings_status != 0 || console_status != 0)); then
    echo "FAILED (rust exit $rust_status, schemathesis exit $schema_status, bindings exit $bindings_status, console exit $console_status)" >&2
    exit 1
fi
