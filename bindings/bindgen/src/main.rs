//! `uniffi-bindgen`, built from the same uniffi version as `fieldgrid-ffi`
//! (a generator of another version would read the library's metadata wrong).

fn main() {
    uniffi::uniffi_bindgen_main()
}
