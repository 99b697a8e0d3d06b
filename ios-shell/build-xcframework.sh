#!/usr/bin/env bash
# Builds FieldGridCoreFFI.xcframework (static libfieldgrid.a for iOS devices
# and for the simulator on Apple silicon and Intel) with the generated C
# header and module map. Run on a Mac with Xcode and rustup:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
#   ios-shell/build-xcframework.sh
# Uses the size-tuned `mobile` profile of the workspace Cargo.toml.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

# The committed bindings must match the Rust surface being packed.
scripts/bindgen.sh --check

for target in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    cargo build --profile mobile -p fieldgrid-ffi --target "$target"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/headers" "$work/sim"
cp ios-shell/FFI/FieldGridCoreFFI.h "$work/headers/"
cp ios-shell/FFI/module.modulemap "$work/headers/module.modulemap"
lipo -create \
    target/aarch64-apple-ios-sim/mobile/libfieldgrid.a \
    target/x86_64-apple-ios/mobile/libfieldgrid.a \
    -output "$work/sim/libfieldgrid.a"

rm -rf "$here/FieldGridCoreFFI.xcframework"
xcodebuild -create-xcframework \
    -library target/aarch64-apple-ios/mobile/libfieldgrid.a -headers "$work/headers" \
    -library "$work/sim/libfieldgrid.a" -headers "$work/headers" \
    -output "$here/FieldGridCoreFFI.xcframework"
echo "built $here/FieldGridCoreFFI.xcframework"
