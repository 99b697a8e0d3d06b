#!/usr/bin/env bash
# schemathesis (PyPI) against docs/openapi.yaml and the real server on
# loopback, every check, a bounded number of examples: as a grid worker, a
# centre operator, a department and district IT. Exits non-zero on any failure. Installs
# schemathesis in a venv under target/. Called by scripts/test.sh; settings
# in scripts/schemathesis/schemathesis.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
venv="$target_dir/schemathesis-venv"
sudo_() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
command -v curl >/dev/null || { sudo_ apt-get update -qq && sudo_ apt-get install -y -qq curl >/dev/null; }
if [[ ! -x "$venv/bin/st" ]]; then
    python3 -m venv "$venv" 2>/dev/null || {
        sudo_ apt-get update -qq && sudo_ apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"
    }
    "$venv/bin/pip" install --quiet 'schemathesis==4.32.5'
fi
cargo build --quiet -p fieldgrid-server
server="$target_dir/debug/fieldgrid-server"

data=$(mktemp -d)
log="$data/server.log"
pid=
cleanup() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT

export FIELDGRID_DATA="$data/district" FIELDGRID_PASSWORD="schemathesis password"
"$server" add-grid --id grid-a --code 370502001 --name 一网格 --community 汇泉社区 --sub-district 黄河路街道 2>>"$log"
"$server" add-worker --username worker --grids grid-a 2>>"$log"
"$server" add-operator --username centre 2>>"$log"
"$server" add-department --id dept-gas --name 燃气公司 2>>"$log"
"$server" add-department-account --username gas --department dept-gas 2>>"$log"
"$server" add-admin --username it 2>>"$log"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" --listen "127.0.0.1:$port" 2>>"$log" &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do
    curl -fs "$url/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done

token() {
    curl -fs -H 'content-type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$FIELDGRID_PASSWORD\", \"device_id\": \"schemathesis\"}" \
        "$url/v1/session" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# Real records for the operations that take an id: an incident (reported,
# so the centre can act on it) with a photo record, pushed by the worker.
worker_token=$(token worker)
read -r incident_id photo_sha < <(python3 - "$url" "$worker_token" <<'PY'
import hashlib, json, sys, time, urllib.request, uuid

url, token = sys.argv[1], sys.argv[2]
def uid():
    # A UUIDv7-shaped id, as devices make them.
    ms = int(time.time() * 1000)
    b = bytearray(ms.to_bytes(6, "big") + uuid.uuid4().bytes[6:])
    b[6] = (b[6] & 0x0F) | 0x70
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))
incident, photo = uid(), b"\xff\xd8\xff\xe0 schemathesis"
sha = hashlib.sha256(photo).hexdigest()
now = int(time.time() * 1000)
ops = [
    {"entity": "incident", "entity_id": incident, "patch": {"grid_id": "grid-a", "category": "hornets_nest",
        "description": "", "occurred_at_ms": now - 60000,
        "location": {"latitude": 37.45, "longitude": 118.5, "accuracy_m": 5.0}}},
    {"entity": "incident_event", "entity_id": uid(), "patch": {"incident_id": incident, "kind": "reported", "note": ""}},
    {"entity": "photo", "entity_id": uid(), "patch": {"owner": {"kind": "incident", "id": incident}, "sha256": sha,
        "size": len(photo), "mime": "image/jpeg"}},
]
for op in ops:
    op.update(op_id=uid(), kind="create", base_version=None, created_at_ms=now)
req = urllib.request.Request(url + "/v1/sync/push", method="POST",
    data=json.dumps({"device_id": "schemathesis", "operations": ops}).encode(),
    headers={"content-type": "application/json", "authorization": "Bearer " + token})
receipts = json.load(urllib.request.urlopen(req))["receipts"]
assert all(r["outcome"] == "applied" for r in receipts), receipts
print(incident, sha)
PY
)
export INCIDENT_ID="$incident_id" PHOTO_SHA="$photo_sha"

status=0
for who in worker centre gas it; do
    echo "== schemathesis as $who"
    "$venv/bin/st" --config-file scripts/schemathesis/schemathesis.toml run docs/openapi.yaml \
        --url "$url" --checks all --no-color \
        -H "Authorization: Bearer $(token "$who")" || status=1
done
if ((status != 0)); then
    echo "schemathesis found failures; the server's log:" >&2
    tail -50 "$log" >&2
fi
exit $status
