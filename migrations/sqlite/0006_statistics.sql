-- Collaborative statistics (SPEC 4): spam-probe accounts, and the tables the operator
-- reads (written by the statistics refresh; the votes themselves stay in sender_votes).

-- A honeypot account: every message it receives is a spam vote at once.
ALTER TABLE subscribers ADD COLUMN spam_probe BOOLEAN NOT NULL DEFAULT FALSE;

-- New votes are read in (created_at, subscriber_id, message_id) order.
CREATE INDEX sender_votes_order ON sender_votes (created_at, subscriber_id, message_id);

-- Per-user trust status with its reason.
CREATE TABLE user_trust (
    subscriber_id BIGINT PRIMARY KEY REFERENCES subscribers(id),
    status        TEXT   NOT NULL,
    reason        TEXT   NOT NULL,
    approvals     BIGINT NOT NULL,
    spam          BIGINT NOT NULL,
    computed_at   BIGINT NOT NULL
);

-- The seed's correlation table: user_id is the target, cuser_id the user compared with it.
CREATE TABLE correlation (
    user_id       BIGINT           NOT NULL REFERENCES subscribers(id),
    cuser_id      BIGINT           NOT NULL REFERENCES subscribers(id),
    rms_error     REAL NOT NULL,
    confidence    REAL NOT NULL,
    max_rms_error REAL NOT NULL,
    domains       BIGINT           NOT NULL,
    computed_at   BIGINT           NOT NULL,
    PRIMARY KEY (user_id, cuser_id)
);
CREATE INDEX correlation_by_error ON correlation (max_rms_error);

-- Per-domain probability with every counted user at full weight, and its evidence.
CREATE TABLE domain_stats (
    domain         TEXT             PRIMARY KEY,
    p_spammer      REAL NOT NULL,
    spam_witnesses BIGINT           NOT NULL,
    ham_witnesses  BIGINT           NOT NULL,
    computed_at    BIGINT           NOT NULL
);
