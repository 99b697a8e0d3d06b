#!/usr/bin/env bash
# The district server as district IT builds it (`cargo build -p
# fieldgrid-server`, nothing else in the build): it must link plain SQLite,
# not SQLCipher, and serve a sign-in from a fresh data folder (its migrations
# run on plain SQLite). The end-to-end suite runs the server inside the
# workspace's build, where SQLite is SQLCipher for every crate.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p fieldgrid-server
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
server="$target_dir/debug/fieldgrid-server"
# Captured first (a missing nm fails here): `grep -q` on a pipe would end
# nm early, and pipefail would read that as "not found".
symbols=$(nm "$server")
if grep -qi sqlcipher <<<"$symbols"; then
    echo "server-alone: fieldgrid-server links SQLCipher" >&2
    exit 1
fi

# Its own SQLite database in a fresh folder, whatever the environment says.
unset FIELDGRID_DATABASE_URL
data=$(mktemp -d)
pid=""
trap 'if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$data"' EXIT
"$server" --data "$data" add-grid --id g1 --code 370502001 --name 一网格 --community 汇泉社区 --sub-district 黄河路街道 >"$data/setup.log" 2>&1 ||
    { cat "$data/setup.log" >&2; exit 1; }
"$server" --data "$data" add-worker --username zhang --password 'a long password 1' --grids g1 >>"$data/setup.log" 2>&1 ||
    { cat "$data/setup.log" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" --data "$data" --listen "127.0.0.1:$port" >"$data/log" 2>&1 &
pid=$!
python3 - "$port" <<'PY'
import json, sys, time, urllib.request
port = sys.argv[1]
body = json.dumps({"username": "zhang", "password": "a long password 1", "device_id": "d1"}).encode()
for _ in range(100):
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/session", body,
                                     {"content-type": "application/json", "fieldgrid-protocol": "1"})
        session = json.load(urllib.request.urlopen(req, timeout=5))
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("server-alone: the server did not answer")
assert [g["id"] for g in session["grids"]] == ["g1"], session
PY
echo "server-alone: plain SQLite, signed in"
