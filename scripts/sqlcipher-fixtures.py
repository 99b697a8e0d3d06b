"""Writes the SQLCipher fixture databases in sqlite/tests/fixtures/ with stock
SQLCipher (the `sqlcipher3-binary` wheel: SQLCipher 4 over OpenSSL), so the
core's tests prove that its Rust crypto provider reads what the reference
implementation writes, byte for byte.

Not run by the test suite: the fixtures are committed. To regenerate:

    python3 -m venv /tmp/sqlc && /tmp/sqlc/bin/pip install sqlcipher3-binary
    /tmp/sqlc/bin/python scripts/sqlcipher-fixtures.py

Each file holds one table `t(id, name)` with 300 rows (several pages, so
page chaining and multi-block CBC are read, not only page 1).
"""

import os

import sqlcipher3

HERE = os.path.join(os.path.dirname(__file__), "..", "sqlite", "tests", "fixtures")

# The key a FieldGrid store uses: 32 raw bytes (here 0x00, 0x01, ... 0x1f).
RAW_KEY = bytes(range(32)).hex()

FIXTURES = {
    # FieldGrid's own format (core/src/store.rs, StoreKey::pragmas): a raw key
    # (SQLCipher still derives the page HMAC key from it by PBKDF2-HMAC-SHA512,
    # 2 rounds), HMAC-SHA256 pages of 8 KiB.
    "sqlcipher4-fieldgrid.db": [
        f"PRAGMA key = \"x'{RAW_KEY}'\"",
        "PRAGMA cipher_hmac_algorithm = HMAC_SHA256",
        "PRAGMA cipher_page_size = 8192",
    ],
    # SQLCipher 4's defaults with a passphrase: PBKDF2-HMAC-SHA512, 256,000
    # rounds, HMAC-SHA512 pages of 4 KiB.
    "sqlcipher4-default.db": ["PRAGMA key = 'correct horse battery staple'"],
    # SQLCipher 3's format: PBKDF2-HMAC-SHA1, 64,000 rounds, HMAC-SHA1, 1 KiB.
    "sqlcipher3-compat.db": [
        "PRAGMA key = 'correct horse battery staple'",
        "PRAGMA cipher_compatibility = 3",
    ],
}


def main() -> None:
    for name, pragmas in FIXTURES.items():
        path = os.path.join(HERE, name)
        if os.path.exists(path):
            os.remove(path)
        c = sqlcipher3.connect(path)
        for p in pragmas:
            c.execute(p)
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        c.executemany(
            "INSERT INTO t (id, name) VALUES (?, ?)",
            [(i, f"row {i:04} " + "x" * 40) for i in range(1, 301)],
        )
        c.commit()
        (version,) = c.execute("PRAGMA cipher_version").fetchone()
        (provider,) = c.execute("PRAGMA cipher_provider").fetchone()
        c.close()
        print(f"{name}: written by SQLCipher {version} ({provider})")


if __name__ == "__main__":
    main()
