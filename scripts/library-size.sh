#!/usr/bin/env bash
# Size of the shipped library on this host (x86_64): the size-tuned `mobile`
# profile (opt-level z, LTO, one codegen unit, stripped, panic=unwind), the
# same-run baseline of the default release profile, and where the bytes go
# (symbol sizes of the unstripped release build, by origin).
# Figures: docs/PERFORMANCE.md. Takes a few minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release -p fieldgrid-ffi
cargo build --quiet --profile mobile -p fieldgrid-ffi
release=target/release/libfieldgrid.so
mobile=target/mobile/libfieldgrid.so
mib() { python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1]) / 1048576:.2f} MiB ({os.path.getsize(sys.argv[1]):,} bytes)')" "$1"; }
echo "release profile, unstripped:           $(mib "$release")"
echo "mobile profile (z, LTO, 1 CGU, strip): $(mib "$mobile")   target <= 6 MB"
echo
echo "where the bytes go (release build, sized symbols by origin):"
nm -S --size-sort "$release" | python3 -c '
import collections, re, sys
sizes = collections.Counter()
for line in sys.stdin:
    parts = line.split()
    if len(parts) < 4:
        continue
    size, name = int(parts[1], 16), parts[3]
    if name.startswith(("_ZN", "_R")):
        m = re.search(r"(fieldgrid_core|fieldgrid_domain|fieldgrid_sqlite|fieldgrid|uniffi|tokio|rustls|webpki|ring|reqwest|hyper_util|hyper|ureq|serde_json|rusqlite|tracing|chrono)", name)
        origin = "Rust: " + (m.group(1) if m else "std, core, alloc, other")
    elif name.startswith(("sqlite3", "sqlcipher")):
        origin = "C: SQLite + SQLCipher (sqlite3*, sqlcipher*)"
    elif "ring_core" in name:
        origin = "C: ring (TLS)"
    else:
        origin = "C: SQLite static functions, ring tables, other"
    sizes[origin] += size
for origin, size in sizes.most_common():
    print(f"  {origin:52s} {size / 1048576:6.2f} MiB")
'
