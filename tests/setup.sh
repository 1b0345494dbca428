#!/usr/bin/env bash
# Prepares a (possibly brand-new) Debian 12 machine for Quorum's tests:
#   1. the local mail stack (Dovecot POP3/LMTP + Postfix SMTP, loopback only),
#   2. a PostgreSQL server on 127.0.0.1:5432 that the tests can log in to as
#      the superuser "postgres" (tests create a fresh database per test),
#   3. Debian's Chromium and ChromeDriver for the browser tests of the web pages.
# Writes everything the tests need into $QUORUM_MAILSTACK_DIR/env
# (default /tmp/quorum-mailstack/env), outside the repo. Idempotent; quiet on
# success. Needs root (installs packages, starts servers).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export QUORUM_MAILSTACK_DIR=${QUORUM_MAILSTACK_DIR:-/tmp/quorum-mailstack}
ENV_FILE=$QUORUM_MAILSTACK_DIR/env
PG_HOST=127.0.0.1
PG_PORT=${QUORUM_TEST_PG_PORT:-5432}   # override only to test this script
# Used only if the server insists on a password for TCP logins.
PG_FALLBACK_PASSWORD=quorum-test

say() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "must run as root (installs packages, starts servers)"
    exec sudo -E "$0" "$@"
fi

# --- 1. mail stack ----------------------------------------------------------
"$REPO/deploy/mail-stack.sh" start >/dev/null || die "deploy/mail-stack.sh start failed"
[ -f "$ENV_FILE" ] || die "mail stack did not write $ENV_FILE"
say "mail stack up (POP3 21110, POP3S 21995, IMAP 21143, IMAPS 21993, LMTP 21024, SMTP 21025)"

# --- 2. PostgreSQL ----------------------------------------------------------
pg_ready() { command -v pg_isready >/dev/null && pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }

# Start every existing cluster configured for port 5432 that is down.
start_clusters() {
    command -v pg_lsclusters >/dev/null || return 0
    local ver name port status
    while read -r ver name port status _; do
        if [ "$port" != "$PG_PORT" ] || [ "$status" = online ]; then continue; fi
        pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >/dev/null 2>&1 \
            || say "warning: could not start cluster $ver/$name"
    done < <(pg_lsclusters --no-header 2>/dev/null)
}

wait_pg() {
    for _ in $(seq 60); do pg_ready && return 0; sleep 0.5; done
    return 1
}

if ! pg_ready; then
    start_clusters
    if ! wait_pg; then
        if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q 'install ok installed'; then
            say "installing postgresql"
            export DEBIAN_FRONTEND=noninteractive
            { apt-get update -qq && apt-get install -y -qq postgresql; } >/tmp/quorum-setup-apt.log 2>&1 \
                || { tail -n 30 /tmp/quorum-setup-apt.log >&2; die "apt-get install postgresql failed"; }
        fi
        # The package normally creates a "main" cluster; make one if not.
        if [ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
            ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
            pg_createcluster --port "$PG_PORT" "$ver" main >/dev/null
        fi
        start_clusters
        wait_pg || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT (see /var/log/postgresql/)"
    fi
fi

# Can we log in over TCP as postgres without a password (trust)? If not, set
# a known password through the unix socket (peer auth as OS user postgres).
pg_try() { PGCONNECT_TIMEOUT=5 psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
PG_URL="postgres://postgres@$PG_HOST:$PG_PORT/postgres"
if ! (unset PGPASSWORD; pg_try "$PG_URL"); then
    runuser -u postgres -- psql -qX -p "$PG_PORT" -d postgres \
        -c "ALTER ROLE postgres WITH LOGIN PASSWORD '$PG_FALLBACK_PASSWORD'" >/dev/null \
        || die "cannot reach PostgreSQL through its unix socket as user postgres to set a password"
    PG_URL="postgres://postgres:$PG_FALLBACK_PASSWORD@$PG_HOST:$PG_PORT/postgres"
    pg_try "$PG_URL" || die "cannot log in to $PG_HOST:$PG_PORT as postgres, even with a password (check pg_hba.conf)"
fi
# Tests create a database per test: the role must be allowed to.
can_create=$(psql "$PG_URL" -AtXqc "select rolsuper or rolcreatedb from pg_roles where rolname = current_user")
[ "$can_create" = t ] || die "role postgres cannot create databases"

# Record the URL next to the mail stack's settings (replace any old line).
tmp=$ENV_FILE.tmp
grep -v '^QUORUM_TEST_PG_URL=' "$ENV_FILE" >"$tmp" || true
echo "QUORUM_TEST_PG_URL=$PG_URL" >>"$tmp"
mv -f "$tmp" "$ENV_FILE"

say "postgres ready: QUORUM_TEST_PG_URL=$PG_URL"

# --- 3. Chromium and ChromeDriver ---------------------------------------------
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
    say "installing chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } >/tmp/quorum-setup-chromium.log 2>&1 \
        || { tail -n 30 /tmp/quorum-setup-chromium.log >&2; die "apt-get install chromium chromium-driver failed"; }
fi
tmp=$ENV_FILE.tmp
grep -v '^QUORUM_TEST_CHROMEDRIVER=' "$ENV_FILE" >"$tmp" || true
echo "QUORUM_TEST_CHROMEDRIVER=$(command -v chromedriver)" >>"$tmp"
mv -f "$tmp" "$ENV_FILE"
say "browser ready: $(chromium --version 2>/dev/null | head -n 1)"
say "test settings in $ENV_FILE (load with: set -a; . $ENV_FILE; set +a)"
