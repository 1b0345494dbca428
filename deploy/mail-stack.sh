#!/usr/bin/env bash
# Local mail stack for trying Quorum and for its tests:
#   Dovecot (POP3 + STLS, POP3S, IMAP + STARTTLS, IMAPS, LMTP) and Postfix (SMTP), loopback only.
#
# Usage: deploy/mail-stack.sh start|stop|status|add-user EMAIL PASSWORD [EMAIL PASSWORD]...
#
# Everything lives under $QUORUM_MAILSTACK_DIR (default /tmp/quorum-mailstack):
# configs, maildirs, pid files/sockets, logs, TLS cert. The script runs a
# dedicated Dovecot instance (dovecot -c DIR/dovecot/dovecot.conf) and a
# dedicated Postfix instance (postfix -c DIR/postfix), so any system
# Dovecot/Postfix on the standard ports is left alone. Must run as root.
#
# Ports (127.0.0.1 only):
#   21110 POP3 (plain auth allowed, STLS offered)   21995 POP3S (implicit TLS)
#   21143 IMAP (plain auth allowed, STARTTLS)       21993 IMAPS (implicit TLS)
#   127.0.0.2:21143 IMAP without MOVE, 127.0.0.3:21143 IMAP without MOVE or UIDPLUS
#   21024 Dovecot LMTP                             21025 Postfix SMTP
set -euo pipefail

DIR=${QUORUM_MAILSTACK_DIR:-/tmp/quorum-mailstack}
case $DIR in /*) ;; *) DIR=$(pwd)/$DIR ;; esac   # configs need absolute paths
DIR=${DIR%/}

POP3_PORT=21110
POP3S_PORT=21995
IMAP_PORT=21143
IMAPS_PORT=21993
# Loopback addresses whose IMAP (on IMAP_PORT) advertises no MOVE, or neither MOVE nor UIDPLUS.
IMAP_WITHOUT_MOVE=127.0.0.2
IMAP_WITHOUT_MOVE_OR_UIDPLUS=127.0.0.3
LMTP_PORT=21024
SMTP_PORT=21025
BLOCKLIST_PORT=21026                   # SMTP refusing the clients of $DIR/blocklist.cidr
DOMAIN=quorum.test
VMAIL_USER=quorum-vmail
PACKAGES=(dovecot-core dovecot-pop3d dovecot-imapd dovecot-lmtpd postfix openssl)

DOVECOT_CONF=$DIR/dovecot/dovecot.conf
DOVECOT_BASE=$DIR/run/dovecot          # Dovecot's base_dir: sockets + master.pid
PF_CONF=$DIR/postfix                   # Postfix config_directory
PF_QUEUE=$DIR/postfix-queue            # Postfix queue_directory (pid/master.pid)
PF_DATA=$DIR/postfix-data              # Postfix data_directory
USERS_FILE=$DIR/dovecot/users

log() { echo "mail-stack: $*"; }
die() { echo "mail-stack: ERROR: $*" >&2; exit 1; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (installs packages, runs Dovecot/Postfix masters)"; }

# --- packages ---------------------------------------------------------------

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Postfix would otherwise ask how to configure the *system* instance; we
    # do not want one at all, only our own instance under $DIR.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix postfix/mailname string localhost" | debconf-set-selections
    # Keep the packages' own system services from being started by the
    # install (they would grab ports 25/110/995): a policy-rc.d that says
    # "no" for the duration of the install, unless the machine already has one.
    local own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"/tmp/quorum-mailstack-apt.log" 2>&1 || rc=$?
    [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
    [ $rc -eq 0 ] || { tail -n 30 /tmp/quorum-mailstack-apt.log >&2; die "apt-get install failed (log: /tmp/quorum-mailstack-apt.log)"; }
}

# --- state dir, users, TLS --------------------------------------------------

ensure_vmail_user() {
    # One system user owns all virtual mailboxes.
    if ! id -u "$VMAIL_USER" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$VMAIL_USER"
    fi
    VMAIL_UID=$(id -u "$VMAIL_USER")
    VMAIL_GID=$(id -g "$VMAIL_USER")
}

ensure_dirs() {
    ensure_vmail_user
    # $DIR must be traversable by dovenull/postfix/vmail processes.
    install -d -m 0755 -o root -g root "$DIR" "$DIR/dovecot" "$DIR/run" "$DIR/log" "$PF_CONF"
    install -d -m 0700 -o root -g root "$DIR/tls"
    # Dovecot creates new users' maildirs here as $VMAIL_USER.
    install -d -m 0770 -o "$VMAIL_USER" -g "$VMAIL_USER" "$DIR/mail"
    # passwd-file holds plaintext passwords (needed for APOP): readable only
    # by root and Dovecot's auth process (which runs as user "dovecot").
    [ -e "$USERS_FILE" ] || install -m 0600 -o root -g root /dev/null "$USERS_FILE"
    fix_users_file_perms "$USERS_FILE"
}

fix_users_file_perms() {
    if getent group dovecot >/dev/null; then
        chgrp dovecot "$1" && chmod 0640 "$1"
    else
        chmod 0600 "$1"   # dovecot not installed yet; "start" fixes it
    fi
}

ensure_tls() {
    # Self-signed end-entity cert (CA:FALSE, SAN localhost + 127.0.0.1) so
    # that clients (rustls/webpki, Python ssl) can trust it directly.
    # Generated once and kept across restarts.
    [ -s "$DIR/tls/cert.pem" ] && [ -s "$DIR/tls/key.pem" ] && return 0
    log "generating self-signed TLS certificate"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" \
        -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" 2>/dev/null
    chmod 0600 "$DIR/tls/key.pem"
    chmod 0644 "$DIR/tls/cert.pem"
}

# add_user EMAIL PASSWORD [EMAIL PASSWORD]...: one rewrite of the users file for
# all of them (a test with hundreds of mailboxes waits for one second, not hundreds).
add_user() {
    if [ $# -lt 2 ] || [ $(($# % 2)) -ne 0 ]; then die "usage: $0 add-user EMAIL PASSWORD [EMAIL PASSWORD]..."; fi
    ensure_dirs
    local emails=() lines=() email password home
    while [ $# -gt 0 ]; do
        email=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')  # Dovecot looks up %Lu
        password=$2
        shift 2
        [[ $email =~ ^[^@:/[:space:]]+@[^@:/[:space:]]+$ ]] || die "bad email address: $email"
        [[ -n $password && $password != *:* && $password != *$'\n'* ]] || die "password must be non-empty, without ':' or newlines"
        home=$DIR/mail/$email
        # Create the Maildir now so tests can also drop files into it directly.
        install -d -m 0700 -o "$VMAIL_USER" -g "$VMAIL_USER" "$home" "$home/cur" "$home/new" "$home/tmp"
        emails+=("$email")
        lines+=("$(printf '%s:{PLAIN}%s:%s:%s::%s::' "$email" "$password" "$VMAIL_UID" "$VMAIL_GID" "$home")")
    done
    # Tests add users in parallel: serialise the read-modify-rename below, or
    # two concurrent adds would each drop the other's line.
    exec 9>"$USERS_FILE.lock"
    flock 9
    # Replace any existing line for these users; rename atomically so Dovecot
    # (which re-reads the file when its mtime changes) never sees half a file.
    local tmp
    tmp=$(mktemp "$USERS_FILE.XXXXXX")
    awk -F: -v list="${emails[*]}" 'BEGIN { n = split(list, e, " "); for (i = 1; i <= n; i++) drop[e[i]] = 1 }
        !($1 in drop)' "$USERS_FILE" >"$tmp"
    printf '%s\n' "${lines[@]}" >>"$tmp"
    fix_users_file_perms "$tmp"
    # Dovecot notices a change only by mtime (1 s resolution) or size: a
    # same-size change within the same second would go unseen, so make sure
    # the new file's mtime is later than the old one's.
    local old_mtime
    old_mtime=$(stat -c %Y "$USERS_FILE")
    [ "$(date +%s)" -gt "$old_mtime" ] || touch -d "@$((old_mtime + 1))" "$tmp"
    mv -f "$tmp" "$USERS_FILE"
    # Dovecot's auth process stats the file at most once per wall-clock
    # second: a lookup in the same second as an earlier one still sees the
    # old contents. Return only once the next second has begun, so any login
    # after "add-user" returns sees this change.
    local written
    written=$(date +%s)
    while [ "$(date +%s)" -le "$written" ]; do sleep 0.05; done
    exec 9>&-
    log "${#emails[@]} user(s) ready (maildirs under $DIR/mail): ${emails[0]}${emails[1]:+ ...}"
}

# --- Dovecot ----------------------------------------------------------------

write_dovecot_conf() {
    local dh=
    [ -s /usr/share/dovecot/dh.pem ] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    local tmp=$DOVECOT_CONF.tmp
    cat >"$tmp" <<EOF
# Generated by deploy/mail-stack.sh -- edits are overwritten on start.
# Stand-alone config: does not include /etc/dovecot/conf.d.
instance_name = quorum-dovecot
base_dir = $DOVECOT_BASE
state_dir = $DIR/dovecot/state
protocols = pop3 imap lmtp
listen = 127.0.0.1
log_path = $DIR/log/dovecot.log
info_log_path = $DIR/log/dovecot.log
auth_verbose = yes

# Tests open many connections at once.
default_process_limit = 1000
default_client_limit = 10000

ssl = yes
ssl_cert = <$DIR/tls/cert.pem
ssl_key = <$DIR/tls/key.pem
$dh

# Plaintext USER/PASS and AUTH PLAIN/LOGIN on the non-TLS port too; APOP
# works because the passwd-file stores plaintext passwords.
disable_plaintext_auth = no
auth_mechanisms = plain login apop

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $USERS_FILE
}
userdb {
  driver = passwd-file
  args = username_format=%u $USERS_FILE
  default_fields = uid=$VMAIL_UID gid=$VMAIL_GID
}

# The user's home (\$DIR/mail/<email>) is the Maildir itself.
mail_location = maildir:~
mail_uid = $VMAIL_UID
mail_gid = $VMAIL_GID
first_valid_uid = $VMAIL_UID
last_valid_uid = $VMAIL_UID
first_valid_gid = $VMAIL_GID
last_valid_gid = $VMAIL_GID

# "High-performance" login mode: a few long-lived login processes instead
# of a fork per connection, so tests can open hundreds of connections fast.
service pop3-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POP3_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $POP3S_PORT
    ssl = yes
  }
}

service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
  # The same IMAP on other loopback addresses, as servers without extensions Quorum uses
  # when they are there (the capabilities below): a client must not need them.
  inet_listener imap_without_move {
    address = $IMAP_WITHOUT_MOVE
    port = $IMAP_PORT
  }
  inet_listener imap_without_move_or_uidplus {
    address = $IMAP_WITHOUT_MOVE_OR_UIDPLUS
    port = $IMAP_PORT
  }
}

local $IMAP_WITHOUT_MOVE {
  protocol imap {
    imap_capability = $(imap_capabilities MOVE)
  }
}
local $IMAP_WITHOUT_MOVE_OR_UIDPLUS {
  protocol imap {
    imap_capability = $(imap_capabilities MOVE UIDPLUS)
  }
}

# One IMAP process per session: a worker's IDLE watchers (one per mailbox, up to 1000 by
# default) and its polls at once, and the tests' own sessions.
service imap {
  process_limit = 2500
}

protocol imap {
  # IDLE, MOVE, UIDPLUS and CONDSTORE are Dovecot's defaults; many idle sessions per user
  # and address, as one worker keeps for many mailboxes.
  mail_max_userip_connections = 1000
}

service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}

protocol pop3 {
  pop3_uidl_format = %08Xu%08Xv
  # Like real providers: only one POP3 session per maildrop at a time.
  pop3_lock_session = yes
  mail_max_userip_connections = 1000
}

protocol lmtp {
  postmaster_address = postmaster@$DOMAIN
}
EOF
    mv -f "$tmp" "$DOVECOT_CONF"
}

# Dovecot 2.3's capabilities after login (IDLE, MOVE, UIDPLUS, CONDSTORE among them), less
# the names given.
imap_capabilities() {
    local cap out=
    for cap in IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES \
        THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE \
        UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH \
        LIST-STATUS BINARY MOVE LITERAL+; do
        [[ " $* " == *" $cap "* ]] || out+="$cap "
    done
    echo "${out% }"
}

dovecot_pid() {
    local pid
    pid=$(cat "$DOVECOT_BASE/master.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = dovecot ] && echo "$pid"
}

dovecot_ports() { echo $POP3_PORT $POP3S_PORT $IMAP_PORT $IMAPS_PORT $LMTP_PORT; }

start_dovecot() {
    local p all=1
    for p in $(dovecot_ports); do port_open "$p" || all=; done
    if [ -n "$all" ]; then
        dovecot_pid >/dev/null || log "warning: Dovecot ports answer but not from $DOVECOT_BASE"
        return 0
    fi
    # Our own instance with an older configuration (fewer listeners): start it anew.
    if dovecot_pid >/dev/null; then
        log "Dovecot from $DIR runs without all of its ports; restarting it with the current configuration"
        stop_dovecot
    fi
    for p in $(dovecot_ports); do
        port_open "$p" && die "port $p is taken by another process"
    done
    write_dovecot_conf
    # Room for default_client_limit connections (Dovecot warns otherwise).
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    dovecot -c "$DOVECOT_CONF" || die "dovecot failed to start; see $DIR/log/dovecot.log"
}

stop_dovecot() {
    local pid
    pid=$(dovecot_pid) || return 0
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    die "Dovecot (pid $pid) did not stop"
}

# --- Postfix ----------------------------------------------------------------

write_postfix_conf() {
    local domains=$DOMAIN
    # The blocklist listener's table: empty until a test writes an export into it.
    [ -f "$DIR/blocklist.cidr" ] || install -m 0644 /dev/null "$DIR/blocklist.cidr"
    # Optional extra domains, one per line in $PF_CONF/domains (read at start).
    [ -s "$PF_CONF/domains" ] && domains="$DOMAIN, $PF_CONF/domains"
    cat >"$PF_CONF/main.cf.tmp" <<EOF
# Generated by deploy/mail-stack.sh -- edits are overwritten on start.
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
multi_instance_name = postfix-quorum
syslog_name = postfix-quorum
# No syslogd here: log through postlogd to a file.
maillog_file = $DIR/log/postfix.log
maillog_file_prefixes = /var, /dev/stdout, $DIR/log

myhostname = mailstack.$DOMAIN
mydomain = $DOMAIN
myorigin = \$myhostname
# Loopback only, IPv4 only.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mynetworks_style = host
# Pass messages through as submitted: no Date, Message-ID or From added for loopback
# clients, so tests can compare what arrives with what was sent, byte for byte.
local_header_rewrite_clients =

# Nothing is delivered locally; $DOMAIN (and optional extra domains) go to
# Dovecot over LMTP on TCP (avoids chroot / unix socket path issues).
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = $domains
virtual_mailbox_maps =
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
# Never relay or deliver anywhere else.
relay_domains =
default_transport = error:outbound mail disabled in quorum mail stack
relay_transport = error:outbound mail disabled in quorum mail stack
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination

# The lenient reading of line ends that SMTP smuggling exploits (a bare LF ends a line, so
# "\n.\n" may end the data): the release tests must show Quorum never sends one.
smtpd_forbid_bare_newline = no

# Tests send messages of 30 MB and more.
message_size_limit = 104857600
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# No DNS on this machine; keep everything fast and local.
smtp_dns_support_level = disabled
lmtp_host_lookup = native
smtp_host_lookup = native
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
# Deliver at once; do not hold mail around.
in_flow_delay = 0
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
bounce_queue_lifetime = 0
EOF
    mv -f "$PF_CONF/main.cf.tmp" "$PF_CONF/main.cf"
    # chroot column "n" everywhere: queue is under $DIR, no /var/spool jail.
    cat >"$PF_CONF/master.cf.tmp" <<EOF
# Generated by deploy/mail-stack.sh -- edits are overwritten on start.
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
# A listener that applies an exported Quorum blocklist (a Postfix cidr: table) to its
# clients; XCLIENT from loopback lets a test speak as any client address. One session per
# process, so a rewritten table applies to the next session.
127.0.0.1:$BLOCKLIST_PORT inet n - n - - smtpd
  -o syslog_name=postfix-quorum/blocklist
  -o smtpd_authorized_xclient_hosts=127.0.0.0/8
  -o smtpd_client_restrictions=check_client_access,cidr:$DIR/blocklist.cidr
  -o max_use=1
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    mv -f "$PF_CONF/master.cf.tmp" "$PF_CONF/master.cf"
    # Postfix insists on root-owned config/queue dirs; data dir is postfix's.
    install -d -m 0755 -o root -g root "$PF_QUEUE"
    install -d -m 0700 -o postfix -g postfix "$PF_DATA"
    touch "$DIR/log/postfix.log"
}

# Our Postfix master is alive (pid file in our queue dir). Avoids
# "postfix status", which logs a line on every call.
postfix_running() {
    local pid
    pid=$(tr -dc '0-9' <"$PF_QUEUE/pid/master.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = master ]
}

start_postfix() {
    if port_open $SMTP_PORT && port_open $BLOCKLIST_PORT; then
        postfix_running || log "warning: port $SMTP_PORT answers but not from $PF_CONF"
        return 0
    fi
    write_postfix_conf
    if postfix_running; then
        # Master is up but a listener is not (or an older config lacks one): reload
        # picks up the config.
        postfix -c "$PF_CONF" reload >/dev/null 2>&1 || true
    else
        # "postfix start" runs "postfix check" and creates the queue
        # directories with the ownership Postfix needs.
        postfix -c "$PF_CONF" start >>"$DIR/log/postfix-start.log" 2>&1 \
            || { tail -n 20 "$DIR/log/postfix-start.log" >&2; die "postfix failed to start"; }
    fi
}

stop_postfix() {
    [ -f "$PF_CONF/main.cf" ] || return 0
    postfix_running || return 0
    postfix -c "$PF_CONF" stop >>"$DIR/log/postfix-start.log" 2>&1 || true
    for _ in $(seq 50); do postfix_running || return 0; sleep 0.1; done
    die "Postfix ($PF_CONF) did not stop"
}

# --- commands ---------------------------------------------------------------

wait_ports() {
    local p
    for p in "$@"; do
        for _ in $(seq 100); do port_open "$p" && continue 2; sleep 0.1; done
        die "port $p did not come up; see logs in $DIR/log"
    done
}

write_env() {
    # Keep lines other scripts added (e.g. QUORUM_TEST_PG_URL from tests/setup.sh).
    local env=$DIR/env tmp=$DIR/env.tmp
    cat >"$tmp" <<EOF
QUORUM_TEST_POP3_PORT=$POP3_PORT
QUORUM_TEST_POP3S_PORT=$POP3S_PORT
QUORUM_TEST_IMAP_PORT=$IMAP_PORT
QUORUM_TEST_IMAPS_PORT=$IMAPS_PORT
QUORUM_TEST_IMAP_WITHOUT_MOVE=$IMAP_WITHOUT_MOVE
QUORUM_TEST_IMAP_WITHOUT_MOVE_OR_UIDPLUS=$IMAP_WITHOUT_MOVE_OR_UIDPLUS
QUORUM_TEST_SMTP_PORT=$SMTP_PORT
QUORUM_TEST_BLOCKLIST_PORT=$BLOCKLIST_PORT
QUORUM_TEST_BLOCKLIST_MAP=$DIR/blocklist.cidr
QUORUM_TEST_LMTP_PORT=$LMTP_PORT
QUORUM_TEST_TLS_CERT=$DIR/tls/cert.pem
QUORUM_TEST_USERS_FILE=$USERS_FILE
QUORUM_TEST_MAIL_DIR=$DIR/mail
QUORUM_TEST_DOMAIN=$DOMAIN
EOF
    if [ -f "$env" ]; then
        grep -Ev '^QUORUM_TEST_(POP3_PORT|POP3S_PORT|IMAP_PORT|IMAPS_PORT|IMAP_WITHOUT_MOVE|IMAP_WITHOUT_MOVE_OR_UIDPLUS|SMTP_PORT|BLOCKLIST_PORT|BLOCKLIST_MAP|LMTP_PORT|TLS_CERT|USERS_FILE|MAIL_DIR|DOMAIN)=' "$env" >>"$tmp" || true
    fi
    mv -f "$tmp" "$env"
}

# Dovecot's IDLE learns of new mail through inotify, one instance per IMAP process, all under
# the mail user; Linux allows 128 per user by default, beyond which Dovecot falls back to
# looking every 30 s. A worker keeps one IDLE per IMAP mailbox (up to 1000 by default).
raise_inotify_limit() {
    local f=/proc/sys/fs/inotify/max_user_instances
    if [ -r "$f" ] && [ "$(cat "$f")" -lt 4096 ]; then
        { echo 4096 >"$f"; } 2>/dev/null || log "warning: cannot raise $f (IDLE beyond 128 sessions falls back to 30 s checks)"
    fi
}

cmd_start() {
    need_root
    ensure_packages
    ensure_dirs
    ensure_tls
    raise_inotify_limit
    start_dovecot
    start_postfix
    wait_ports $POP3_PORT $POP3S_PORT $IMAP_PORT $IMAPS_PORT $LMTP_PORT $SMTP_PORT $BLOCKLIST_PORT
    write_env
    log "running (state $DIR; env file $DIR/env)"
}

cmd_stop() {
    need_root
    stop_postfix
    stop_dovecot
    log "stopped"
}

cmd_status() {
    local p name rc=0
    for p in "$POP3_PORT:pop3" "$POP3S_PORT:pop3s" "$IMAP_PORT:imap" "$IMAPS_PORT:imaps" "$LMTP_PORT:lmtp" "$SMTP_PORT:smtp"; do
        name=${p#*:}; p=${p%%:*}
        if port_open "$p"; then echo "$name 127.0.0.1:$p up"; else echo "$name 127.0.0.1:$p down"; rc=1; fi
    done
    return $rc
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    add-user) need_root; shift; add_user "$@" ;;
    *) echo "usage: $0 start|stop|status|add-user EMAIL PASSWORD [EMAIL PASSWORD]..." >&2; exit 2 ;;
esac
