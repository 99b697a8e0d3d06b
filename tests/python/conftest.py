"""Fixtures for the Python tests of the FieldGrid bindings.

Run by scripts/test-bindings.sh, which builds the library and the `fieldgrid`
binary, and puts the generated module next to the library in
$FIELDGRID_PY_DIR. The reference server runs for real on loopback.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, os.environ.get("FIELDGRID_PY_DIR", str(ROOT / "target" / "bindings-python")))

import fieldgrid  # noqa: E402  (the generated module, loading libfieldgrid)

PASSWORD = "correct horse 1"


def id_number(region: str, birth: str, seq: int) -> str:
    """A valid 18-character resident ID number (GB 11643 check character)."""
    body = f"{region}{birth}{seq:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(body, weights))
    return body + "10X98765432"[total % 11]


def resident(name: str, seq: int, **extra) -> "fieldgrid.NewResident":
    """A male resident of grid-a born 1950-01-01 (odd sequence digit = male)."""
    return fieldgrid.NewResident(
        grid_id="grid-a",
        name=name,
        sex=fieldgrid.Sex.MALE,
        id_number=id_number("370502", "19500101", seq * 2 + 1),
        phone=f"1380000{seq:04d}",
        residence=fieldgrid.ResidenceStatus.REGISTERED,
        **extra,
    )


JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


@pytest.fixture
def key():
    return os.urandom(32)


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER = {}


def assign(user, grids):
    """The district assigns `grids` to `user` (the admin command, as district IT runs it)."""
    subprocess.run(SERVER["admin"] + ["add-worker", "--username", user, "--password", PASSWORD,
                                      "--grids", ",".join(grids)], check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def server():
    """The reference server on loopback with grids grid-a and grid-b, and
    workers wa1, wa2 (both grid-a)."""
    binary = os.environ.get("FIELDGRID_BIN", str(ROOT / "target" / "debug" / "fieldgrid"))
    data = tempfile.mkdtemp(prefix="fieldgrid-py-server-")
    admin = [binary, "server", "--data", data]
    SERVER["admin"] = admin
    subprocess.run(admin + ["add-grid", "--id", "grid-a", "--code", "370502001001", "--name", "Grid A"], check=True)
    subprocess.run(admin + ["add-grid", "--id", "grid-b", "--code", "370502001002", "--name", "Grid B"], check=True)
    for user in ("wa1", "wa2"):
        subprocess.run(admin + ["add-worker", "--username", user, "--password", PASSWORD, "--grids", "grid-a"], check=True)
    port = _free_port()
    proc = subprocess.Popen(admin + ["--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/v1/health", timeout=1).read()
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the reference server did not start")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(data, ignore_errors=True)


def sign_in(store, server_url, user="wa1"):
    """Signs `store` in as `user`: the grids assigned arrive with the session."""
    client = fieldgrid.SyncClient(store, fieldgrid.SyncSettings(server_url=server_url))
    asyncio.run(client.login(user, PASSWORD))
    return client


@pytest.fixture
def phone(tmp, key, server):
    """A keyed store on this 'phone', signed in as wa1 (grid-a)."""
    store = fieldgrid.FieldGridStore.open(str(tmp / "phone.db"), key)
    sign_in(store, server)
    return store
