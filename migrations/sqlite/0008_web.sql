-- The web pages (SPEC 5): subscribers' and operators' web logins and their sessions.

-- argon2id in PHC string form; NULL: no web login yet (added on the command line).
ALTER TABLE subscribers ADD COLUMN web_password TEXT;

-- Operators are created with `quorum admin create`, never on the web.
CREATE TABLE operators (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT   NOT NULL UNIQUE,
    password   TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- A logged-in browser: the cookie holds a random token, the table only its SHA-256, so a
-- copy of the database opens no session. Exactly one of subscriber_id and operator_id.
CREATE TABLE web_sessions (
    token_hash    BLOB   PRIMARY KEY,
    subscriber_id BIGINT REFERENCES subscribers(id),
    operator_id   BIGINT REFERENCES operators(id),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- The dashboard counts messages by status.
CREATE INDEX messages_status ON messages (status);

-- The dashboard's charts count messages per day they were decided (or arrived, if held).
CREATE INDEX messages_decided_day ON messages ((COALESCE(decided_at, quarantined_at)), status);
