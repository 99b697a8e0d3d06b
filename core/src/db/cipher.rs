//! SQLCipher's crypto provider, in Rust over the RustCrypto crates.
//!
//! SQLCipher needs AES-256-CBC, HMAC (SHA-1/256/512), PBKDF2 and random bytes.
//! Its usual provider, OpenSSL 3, links nearly all of libcrypto (its algorithms
//! are reached through dispatch tables), about 4 MB of the 9 MB library the
//! apps ship. This provider does the same operations with the `aes`, `cbc`,
//! `hmac`, `sha1`, `sha2` and `pbkdf2` crates (AES-NI and ARMv8 AES where the
//! CPU has them). The file format is SQLCipher's, byte for byte: only the code
//! computing the same functions changes.
//!
//! SQLCipher is compiled with `SQLCIPHER_CRYPTO_CUSTOM=fieldgrid_sqlcipher_setup`
//! (`.cargo/config.toml`) and calls [`fieldgrid_sqlcipher_setup`] once, to fill in
//! its table of function pointers. Each function returns `SQLITE_OK` or
//! `SQLITE_ERROR`, and none can unwind into C.
#![allow(unsafe_code)] // the C interface SQLCipher calls; every pointer is checked

use std::ffi::{c_char, c_int, c_void};
use std::panic::catch_unwind;
use std::slice;

use aes::Aes256;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};

const SQLITE_OK: c_int = 0;
const SQLITE_ERROR: c_int = 1;
const ENCRYPT: c_int = 1;
const HMAC_SHA1: c_int = 0;
const HMAC_SHA256: c_int = 1;
const HMAC_SHA512: c_int = 2;

type Ctx = *mut c_void;

/// `struct sqlcipher_provider` of SQLCipher 4 (sqlcipher.h), field for field.
#[repr(C)]
pub struct Provider {
    init: Option<extern "C" fn() -> c_int>,
    shutdown: Option<extern "C" fn()>,
    get_provider_name: Option<extern "C" fn(Ctx) -> *const c_char>,
    add_random: Option<extern "C" fn(Ctx, *const c_void, c_int) -> c_int>,
    random: Option<extern "C" fn(Ctx, *mut c_void, c_int) -> c_int>,
    #[allow(clippy::type_complexity)]
    hmac: Option<extern "C" fn(Ctx, c_int, *const u8, c_int, *const u8, c_int, *const u8, c_int, *mut u8) -> c_int>,
    kdf: Option<extern "C" fn(Ctx, c_int, *const u8, c_int, *const u8, c_int, c_int, c_int, *mut u8) -> c_int>,
    cipher: Option<extern "C" fn(Ctx, c_int, *const u8, c_int, *const u8, *const u8, c_int, *mut u8) -> c_int>,
    get_cipher: Option<extern "C" fn(Ctx) -> *const c_char>,
    get_key_sz: Option<extern "C" fn(Ctx) -> c_int>,
    get_iv_sz: Option<extern "C" fn(Ctx) -> c_int>,
    get_block_sz: Option<extern "C" fn(Ctx) -> c_int>,
    get_hmac_sz: Option<extern "C" fn(Ctx, c_int) -> c_int>,
    ctx_init: Option<extern "C" fn(*mut Ctx) -> c_int>,
    ctx_free: Option<extern "C" fn(*mut Ctx) -> c_int>,
    fips_status: Option<extern "C" fn(Ctx) -> c_int>,
    get_provider_version: Option<extern "C" fn(Ctx) -> *const c_char>,
    next: *mut Provider,
}

/// Called by SQLCipher once per process, before the first keyed database.
#[unsafe(no_mangle)]
pub extern "C" fn fieldgrid_sqlcipher_setup(p: *mut Provider) -> c_int {
    // SAFETY: SQLCipher passes a provider struct it allocated, or null.
    let Some(p) = (unsafe { p.as_mut() }) else {
        return SQLITE_ERROR;
    };
    *p = Provider {
        init: Some(init),
        shutdown: Some(shutdown),
        get_provider_name: Some(name),
        add_random: Some(add_random),
        random: Some(random),
        hmac: Some(hmac),
        kdf: Some(kdf),
        cipher: Some(cipher),
        get_cipher: Some(cipher_name),
        get_key_sz: Some(key_size),
        get_iv_sz: Some(block_size),
        get_block_sz: Some(block_size),
        get_hmac_sz: Some(hmac_size),
        ctx_init: Some(ctx_init),
        ctx_free: Some(ctx_free),
        fips_status: Some(fips_status),
        get_provider_version: Some(version),
        next: std::ptr::null_mut(),
    };
    SQLITE_OK
}

/// The address of the setup function, kept by the store so that the linker
/// always includes this module (SQLCipher's C code is linked after it).
pub(crate) fn linked() -> usize {
    fieldgrid_sqlcipher_setup as *const () as usize
}

extern "C" fn init() -> c_int {
    SQLITE_OK
}
extern "C" fn shutdown() {}
extern "C" fn name(_: Ctx) -> *const c_char {
    c"fieldgrid-rustcrypto".as_ptr()
}
extern "C" fn version(_: Ctx) -> *const c_char {
    c"1".as_ptr()
}
extern "C" fn cipher_name(_: Ctx) -> *const c_char {
    c"aes-256-cbc".as_ptr()
}
extern "C" fn key_size(_: Ctx) -> c_int {
    32
}
extern "C" fn block_size(_: Ctx) -> c_int {
    16
}
extern "C" fn hmac_size(_: Ctx, algorithm: c_int) -> c_int {
    match algorithm {
        HMAC_SHA1 => 20,
        HMAC_SHA256 => 32,
        HMAC_SHA512 => 64,
        _ => 0,
    }
}
extern "C" fn fips_status(_: Ctx) -> c_int {
    0
}
extern "C" fn ctx_init(ctx: *mut Ctx) -> c_int {
    // SAFETY: a pointer to SQLCipher's context slot, or null.
    if let Some(slot) = unsafe { ctx.as_mut() } {
        *slot = std::ptr::null_mut();
    }
    SQLITE_OK
}
extern "C" fn ctx_free(_: *mut Ctx) -> c_int {
    SQLITE_OK
}
extern "C" fn add_random(_: Ctx, _: *const c_void, _: c_int) -> c_int {
    SQLITE_OK // the operating system's generator needs no seeding
}

/// A byte slice from C, or `None` for a null pointer with a non-zero length.
///
/// SAFETY: `ptr` must point to `len` readable bytes when not null.
unsafe fn input<'a>(ptr: *const u8, len: c_int) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(&[]);
    }
    // SAFETY: the caller's promise.
    (!ptr.is_null()).then(|| unsafe { slice::from_raw_parts(ptr, len) })
}

/// SAFETY: as [`input`], for writable bytes.
unsafe fn output<'a>(ptr: *mut u8, len: usize) -> Option<&'a mut [u8]> {
    // SAFETY: the caller's promise.
    (!ptr.is_null()).then(|| unsafe { slice::from_raw_parts_mut(ptr, len) })
}

/// Runs `f`, mapping `None` and panics to `SQLITE_ERROR`.
fn status(f: impl FnOnce() -> Option<()> + std::panic::UnwindSafe) -> c_int {
    match catch_unwind(f) {
        Ok(Some(())) => SQLITE_OK,
        _ => SQLITE_ERROR,
    }
}

extern "C" fn random(_: Ctx, buffer: *mut c_void, length: c_int) -> c_int {
    status(|| {
        // SAFETY: SQLCipher passes a buffer of `length` bytes.
        let out = unsafe { output(buffer.cast(), usize::try_from(length).ok()?) }?;
        getrandom::fill(out).ok()
    })
}

fn mac<M: Mac + KeyInit>(key: &[u8], parts: [&[u8]; 2], out: &mut [u8]) -> Option<()> {
    let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
    for part in parts {
        m.update(part);
    }
    let tag = m.finalize().into_bytes();
    out.get_mut(..tag.len())?.copy_from_slice(&tag);
    Some(())
}

#[allow(clippy::too_many_arguments)]
extern "C" fn hmac(
    _: Ctx,
    algorithm: c_int,
    key: *const u8,
    key_sz: c_int,
    in1: *const u8,
    in1_sz: c_int,
    in2: *const u8,
    in2_sz: c_int,
    out: *mut u8,
) -> c_int {
    status(|| {
        // SAFETY: SQLCipher passes buffers of the sizes it states, and an
        // output of `get_hmac_sz(algorithm)` bytes.
        let (key, in1, in2) = unsafe { (input(key, key_sz)?, input(in1, in1_sz)?, input(in2, in2_sz)?) };
        let size = usize::try_from(hmac_size(std::ptr::null_mut(), algorithm))
            .ok()
            .filter(|&s| s > 0)?;
        // SAFETY: as above.
        let out = unsafe { output(out, size) }?;
        match algorithm {
            HMAC_SHA1 => mac::<Hmac<sha1::Sha1>>(key, [in1, in2], out),
            HMAC_SHA256 => mac::<Hmac<sha2::Sha256>>(key, [in1, in2], out),
            _ => mac::<Hmac<sha2::Sha512>>(key, [in1, in2], out),
        }
    })
}

#[allow(clippy::too_many_arguments)]
extern "C" fn kdf(
    _: Ctx,
    algorithm: c_int,
    pass: *const u8,
    pass_sz: c_int,
    salt: *const u8,
    salt_sz: c_int,
    workfactor: c_int,
    key_sz: c_int,
    key: *mut u8,
) -> c_int {
    status(|| {
        // SAFETY: SQLCipher passes buffers of the sizes it states.
        let (pass, salt) = unsafe { (input(pass, pass_sz)?, input(salt, salt_sz)?) };
        let rounds = u32::try_from(workfactor).ok().filter(|&r| r > 0)?;
        // SAFETY: as above.
        let out = unsafe { output(key, usize::try_from(key_sz).ok()?) }?;
        match algorithm {
            HMAC_SHA1 => pbkdf2::pbkdf2::<Hmac<sha1::Sha1>>(pass, salt, rounds, out).ok(),
            HMAC_SHA256 => pbkdf2::pbkdf2::<Hmac<sha2::Sha256>>(pass, salt, rounds, out).ok(),
            HMAC_SHA512 => pbkdf2::pbkdf2::<Hmac<sha2::Sha512>>(pass, salt, rounds, out).ok(),
            _ => None,
        }
    })
}

#[allow(clippy::too_many_arguments)]
extern "C" fn cipher(
    _: Ctx,
    mode: c_int,
    key: *const u8,
    key_sz: c_int,
    iv: *const u8,
    data: *const u8,
    data_sz: c_int,
    out: *mut u8,
) -> c_int {
    status(|| {
        // SAFETY: a 32-byte key, a 16-byte IV, `data_sz` bytes in and out.
        let (key, iv, data) = unsafe { (input(key, key_sz)?, input(iv, 16)?, input(data, data_sz)?) };
        // SAFETY: as above.
        let out = unsafe { output(out, data.len()) }?;
        if mode == ENCRYPT {
            cbc::Encryptor::<Aes256>::new_from_slices(key, iv)
                .ok()?
                .encrypt_padded_b2b_mut::<NoPadding>(data, out)
                .ok()?;
        } else {
            cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_b2b_mut::<NoPadding>(data, out)
                .ok()?;
        }
        Some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlcipher_uses_this_provider() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA key = \"x'0707070707070707070707070707070707070707070707070707070707070707'\";")
            .unwrap();
        let name: String = c.query_row("PRAGMA cipher_provider", [], |r| r.get(0)).unwrap();
        assert_eq!(name, "fieldgrid-rustcrypto");
    }

    /// Known answers, so the provider computes the standard functions.
    #[test]
    fn the_provider_computes_the_standard_functions() {
        // HMAC-SHA256, RFC 4231 test case 2, split across the two inputs.
        let mut out = [0u8; 32];
        let key = b"Jefe";
        let (a, b) = b"what do ya want for nothing?".split_at(10);
        let rc = hmac(
            std::ptr::null_mut(),
            HMAC_SHA256,
            key.as_ptr(),
            4,
            a.as_ptr(),
            a.len() as c_int,
            b.as_ptr(),
            b.len() as c_int,
            out.as_mut_ptr(),
        );
        assert_eq!(rc, SQLITE_OK);
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // PBKDF2-HMAC-SHA256, RFC 7914 section 11 (1 iteration, 64 bytes).
        let mut key = [0u8; 64];
        let rc = kdf(
            std::ptr::null_mut(),
            HMAC_SHA256,
            b"passwd".as_ptr(),
            6,
            b"salt".as_ptr(),
            4,
            1,
            64,
            key.as_mut_ptr(),
        );
        assert_eq!(rc, SQLITE_OK);
        assert!(hex::encode(key).starts_with("55ac046e56e3089fec1691c22544b605"));
        // AES-256-CBC round trip, and a NIST SP 800-38A F.2.5 block.
        let key = hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4").unwrap();
        let iv = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let mut enc = [0u8; 16];
        let rc = cipher(
            std::ptr::null_mut(),
            ENCRYPT,
            key.as_ptr(),
            32,
            iv.as_ptr(),
            plain.as_ptr(),
            16,
            enc.as_mut_ptr(),
        );
        assert_eq!(rc, SQLITE_OK);
        assert_eq!(hex::encode(enc), "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
        let mut dec = [0u8; 16];
        let rc = cipher(
            std::ptr::null_mut(),
            0,
            key.as_ptr(),
            32,
            iv.as_ptr(),
            enc.as_ptr(),
            16,
            dec.as_mut_ptr(),
        );
        assert_eq!(rc, SQLITE_OK);
        assert_eq!(dec.as_slice(), plain.as_slice());
        // Bad input is an error, not a crash.
        let rc = cipher(
            std::ptr::null_mut(),
            ENCRYPT,
            key.as_ptr(),
            32,
            iv.as_ptr(),
            plain.as_ptr(),
            15,
            enc.as_mut_ptr(),
        );
        assert_eq!(rc, SQLITE_ERROR);
        assert_eq!(random(std::ptr::null_mut(), std::ptr::null_mut(), 16), SQLITE_ERROR);
    }
}
