#!/usr/bin/env bash
# Makes sure a PostgreSQL server the tests can use is running on
# 127.0.0.1:5432 and prints its URL (without a database name), e.g.
# `postgres://root@127.0.0.1:5432`. Uses the one already running (these
# machines run PostgreSQL 15 with trust authentication for `root`); starts
# an installed cluster that is down; installs Debian's package on a machine
# without one. FIELDGRID_TEST_POSTGRES, when set, is used as it is.
# Everything but the URL goes to stderr.
set -euo pipefail

if [[ -n ${FIELDGRID_TEST_POSTGRES:-} ]]; then
    echo "$FIELDGRID_TEST_POSTGRES"
    exit 0
fi
sudo_() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

works() { psql "$1/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1; }

if ! command -v psql >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
    echo "installing PostgreSQL" >&2
    sudo_ apt-get update -qq >&2 && sudo_ apt-get install -y -qq postgresql >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    version=$(ls /etc/postgresql | sort -n | tail -1)
    echo "starting PostgreSQL $version" >&2
    sudo_ pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
for url in "postgres://$(id -un)@127.0.0.1:5432" postgres://root@127.0.0.1:5432 postgres://postgres@127.0.0.1:5432; do
    if works "$url"; then
        echo "$url"
        exit 0
    fi
done
# A fresh install authenticates TCP clients by password: a role for the tests.
echo "creating the role fieldgrid_test" >&2
sudo_ su postgres -c "psql -qc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fieldgrid_test') THEN CREATE ROLE fieldgrid_test LOGIN CREATEDB PASSWORD 'fieldgrid_test'; END IF; END \\\$\\\$\"" >&2
url=postgres://fieldgrid_test:fieldgrid_test@127.0.0.1:5432
if works "$url"; then
    echo "$url"
    exit 0
fi
echo "no usable PostgreSQL on 127.0.0.1:5432" >&2
exit 1
