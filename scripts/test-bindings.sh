#!/usr/bin/env bash
# Tests of the foreign bindings on this machine, against the host-built
# library and the reference server on loopback:
#   1. the committed Kotlin/Swift/Python bindings match the Rust surface;
#   2. Python (pytest, tests/python);
#   3. Kotlin on the desktop JVM (kotlinc + JUnit 4, tests/kotlin), compiled
#      against the plain-JVM bindings and the shell's platform-free layer.
# Installs what it needs: kotlinc from npm (`kotlin-compiler`), JNA and JUnit 4
# from Debian, pytest in a venv under target/. Prints one `N passed, N failed`
# line per language. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/bindgen.sh --check
# The whole workspace, as scripts/bindgen.sh builds it: the same feature set,
# so neither build undoes the other.
cargo build --quiet --workspace
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
lib_dir="$target_dir/debug"
tools="$target_dir/bindings-tools"
mkdir -p "$tools"
export FIELDGRID_BIN="$lib_dir/fieldgrid"

sudo_() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() { sudo_ apt-get install -y -qq "$@" >/dev/null || { sudo_ apt-get update -qq && sudo_ apt-get install -y -qq "$@" >/dev/null; }; }

status=0

# ---- Python ----
py_dir="$target_dir/bindings-python"
mkdir -p "$py_dir"
cp bindings/generated/python/fieldgrid.py "$lib_dir/libfieldgrid.so" "$py_dir/"
if [[ ! -x "$tools/venv/bin/pytest" ]]; then
    python3 -m venv "$tools/venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$tools/venv"; }
fi
# sqlcipher3-binary: the reference SQLCipher 4 (over OpenSSL), which must
# read the stores the library writes with its own crypto provider.
"$tools/venv/bin/python" -c 'import pytest, sqlcipher3' 2>/dev/null ||
    "$tools/venv/bin/pip" install --quiet 'pytest>=8,<10' 'sqlcipher3-binary==0.6.0'

set +e
FIELDGRID_PY_DIR="$py_dir" "$tools/venv/bin/pytest" -q -p no:cacheprovider tests/python | tee "$tools/pytest.log"
py_status=${PIPESTATUS[0]}
set -e
py_passed=$(grep -Eo '[0-9]+ passed' "$tools/pytest.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
py_failed=$({ grep -Eo '[0-9]+ (failed|errors?)' "$tools/pytest.log" || true; } | awk '{ n += $1 } END { print n + 0 }')
if ((py_status != 0 && py_failed == 0)); then py_failed=1; fi
echo "python: $py_passed passed, $py_failed failed"
((py_status == 0)) || status=1

# ---- Kotlin ----
if [[ ! -f /usr/share/java/jna.jar || ! -f /usr/share/java/junit4.jar ]]; then
    apt_install libjna-java junit4
fi
if ! command -v java >/dev/null; then
    apt_install openjdk-17-jdk-headless
fi
kotlin_home="$tools/npm/node_modules/kotlin-compiler"
if [[ ! -x "$kotlin_home/bin/kotlinc" ]]; then
    command -v npm >/dev/null || apt_install npm
    npm install --silent --prefix "$tools/npm" kotlin-compiler@2.4.20 >/dev/null
fi
kotlinc="$kotlin_home/bin/kotlinc"
klib="$kotlin_home/lib"
cp_libs="/usr/share/java/jna.jar:/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar:$klib/kotlinx-coroutines-core-jvm.jar"
[[ -f "$klib/kotlinx-coroutines-core-jvm.jar" ]] || cp_libs="$cp_libs:$(ls "$klib"/kotlinx-coroutines-core-jvm*.jar | head -1)"

kt_out="$target_dir/bindings-kotlin"
mkdir -p "$kt_out"
# The generated bindings are large and slow to compile: build them once per content.
bindings_kt=bindings/generated/kotlin-jvm/cn/fieldgrid/core/fieldgrid.kt
hash=$(sha256sum "$bindings_kt" | cut -c1-16)
bindings_jar="$kt_out/fieldgrid-bindings-$hash.jar"
if [[ ! -f "$bindings_jar" ]]; then
    rm -f "$kt_out"/fieldgrid-bindings-*.jar
    "$kotlinc" -nowarn -cp "$cp_libs" -d "$bindings_jar" "$bindings_kt"
fi
shell_src=android-shell/fieldgrid/src/main/kotlin/cn/fieldgrid/shell
tests_jar="$kt_out/fieldgrid-tests.jar"
"$kotlinc" -nowarn -cp "$cp_libs:$bindings_jar" -d "$tests_jar" "$shell_src"/*.kt tests/kotlin/*.kt
set +e
java -Djna.library.path="$lib_dir" -cp "$cp_libs:$bindings_jar:$tests_jar:$klib/kotlin-stdlib.jar" \
    cn.fieldgrid.tests.RunKt | tee "$kt_out/junit.log"
kt_status=${PIPESTATUS[0]}
set -e
grep -Eq '^kotlin: [0-9]+ passed, [0-9]+ failed$' "$kt_out/junit.log" || echo "kotlin: 0 passed, 1 failed"
((kt_status == 0)) || status=1

exit $status
