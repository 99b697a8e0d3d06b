//! SQLCipher is built with a custom crypto provider (src/cipher.rs), but
//! `libsqlite3-sys` still asks the linker for `-lcrypto` (OpenSSL) on Linux and
//! Android. Nothing references it: an empty archive satisfies the request, so
//! no OpenSSL is needed to build and none is linked (Android's NDK has none).

#![allow(clippy::print_stdout)] // a build script talks to cargo on stdout

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let archive = out.join("libcrypto.a");
    if std::fs::write(&archive, b"!<arch>\n").is_ok() {
        println!("cargo:rustc-link-search=native={}", out.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
