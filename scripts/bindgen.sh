#!/usr/bin/env bash
# Generates the foreign bindings of fieldgrid-ffi from the unstripped debug
# library (a stripped library has no uniffi metadata), with the root uniffi.toml:
#   Kotlin, Android flavour  -> android-shell/fieldgrid/src/main/kotlin/cn/fieldgrid/core/fieldgrid.kt
#   Kotlin, plain JVM        -> bindings/generated/kotlin-jvm/cn/fieldgrid/core/fieldgrid.kt (desktop tests)
#   Swift                    -> ios-shell/Sources/FieldGridCore/FieldGridCore.swift
#                               ios-shell/FFI/{FieldGridCoreFFI.h,module.modulemap} (packed by build-xcframework.sh)
#   Python                   -> bindings/generated/python/fieldgrid.py
#
# scripts/bindgen.sh          write the bindings
# scripts/bindgen.sh --check  fail if the committed bindings differ from what
#                             the current Rust surface generates
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-write}
case "$mode" in write | --check) ;; *)
    echo "usage: scripts/bindgen.sh [--check]" >&2
    exit 2
    ;;
esac

# The whole workspace (not just the two packages): one feature set for every
# build, so this build and the tests' do not undo each other.
cargo build --quiet --workspace
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
lib="$target_dir/debug/libfieldgrid.so"
[[ "$(uname)" == Darwin ]] && lib="$target_dir/debug/libfieldgrid.dylib"
bindgen="$target_dir/debug/uniffi-bindgen"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

gen() { # language out-dir config
    "$bindgen" generate --library "$lib" --language "$1" --out-dir "$2" --config "$3" --no-format >/dev/null
}

# The Android flavour differs by one key; derive its config from the root one.
android_config="$out/uniffi-android.toml"
sed 's/^\[crates.fieldgrid.bindings.kotlin\]$/&\nandroid = true/' uniffi.toml >"$android_config"
grep -q '^android = true$' "$android_config" || { echo "bindgen: no kotlin section in uniffi.toml" >&2; exit 1; }

gen kotlin "$out/kotlin-android" "$android_config"
gen kotlin "$out/kotlin-jvm" uniffi.toml
gen swift "$out/swift" uniffi.toml
gen python "$out/python" uniffi.toml

# generated file -> committed path
pairs=(
    "kotlin-android/cn/fieldgrid/core/fieldgrid.kt" "android-shell/fieldgrid/src/main/kotlin/cn/fieldgrid/core/fieldgrid.kt"
    "kotlin-jvm/cn/fieldgrid/core/fieldgrid.kt" "bindings/generated/kotlin-jvm/cn/fieldgrid/core/fieldgrid.kt"
    "swift/FieldGridCore.swift" "ios-shell/Sources/FieldGridCore/FieldGridCore.swift"
    "swift/FieldGridCoreFFI.h" "ios-shell/FFI/FieldGridCoreFFI.h"
    "swift/FieldGridCoreFFI.modulemap" "ios-shell/FFI/module.modulemap"
    "python/fieldgrid.py" "bindings/generated/python/fieldgrid.py"
)

stale=0
for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    from="$out/${pairs[i]}" to="${pairs[i + 1]}"
    [[ -f "$from" ]] || { echo "bindgen: uniffi-bindgen did not write ${pairs[i]}" >&2; exit 1; }
    if [[ "$mode" == --check ]]; then
        if ! cmp -s "$from" "$to"; then
            echo "bindgen: $to is not what the current Rust surface generates" >&2
            stale=1
        fi
    else
        mkdir -p "$(dirname "$to")"
        cp "$from" "$to"
    fi
done

if [[ "$mode" == --check ]]; then
    if ((stale)); then
        echo "bindgen: run scripts/bindgen.sh and commit the result" >&2
        exit 1
    fi
    echo "bindgen: committed Kotlin, Swift and Python bindings match the Rust surface"
else
    echo "bindgen: bindings written"
fi
