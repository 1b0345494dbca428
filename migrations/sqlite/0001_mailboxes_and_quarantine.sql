-- Subscribers, their POP3 mailboxes, approved senders and the quarantine (SPEC 2.1).
-- Times are Unix seconds (UTC) in both databases. AUTOINCREMENT: ids are never reused,
-- since they appear in tokens (release markers) that must not match a later row.

CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    approved_days BIGINT  NOT NULL DEFAULT 90,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE mailboxes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id     BIGINT  NOT NULL UNIQUE REFERENCES subscribers(id),
    host              TEXT    NOT NULL,
    port              INTEGER NOT NULL,
    security          TEXT    NOT NULL,
    auth              TEXT    NOT NULL,
    username          TEXT    NOT NULL,
    -- AES-256-GCM: nonce || ciphertext || tag; never the password itself.
    password_enc      BLOB    NOT NULL,
    enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    next_poll_at      BIGINT  NOT NULL,
    lease_owner       TEXT,
    lease_until       BIGINT,
    last_poll_at      BIGINT,
    last_success_at   BIGINT,
    last_status       TEXT,
    last_error        TEXT,
    polls             BIGINT  NOT NULL DEFAULT 0,
    quarantined_count BIGINT  NOT NULL DEFAULT 0,
    kept_count        BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX mailboxes_due ON mailboxes (next_poll_at) WHERE enabled;

CREATE TABLE approved_senders (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id),
    address       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, address)
);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_id     BIGINT  NOT NULL REFERENCES mailboxes(id),
    uidl           TEXT    NOT NULL,
    content_hash   BLOB    NOT NULL,
    raw            BLOB    NOT NULL,
    size           BIGINT  NOT NULL,
    from_address   TEXT,
    from_name      TEXT,
    subject        TEXT,
    status         TEXT    NOT NULL DEFAULT 'held',
    quarantined_at BIGINT  NOT NULL,
    UNIQUE (mailbox_id, content_hash)
);

-- Every UIDL the worker has dealt with: 'quarantined' (bytes committed in messages, DELE
-- may still be pending) or 'kept' (left in the Inbox). Rows go when the UIDL leaves the server.
CREATE TABLE mailbox_uidls (
    mailbox_id  BIGINT NOT NULL REFERENCES mailboxes(id),
    uidl        TEXT   NOT NULL,
    disposition TEXT   NOT NULL,
    message_id  BIGINT REFERENCES messages(id),
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, uidl)
);
