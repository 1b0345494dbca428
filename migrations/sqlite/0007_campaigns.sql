-- Campaign fingerprints (the fingerprint issue): the copies of one campaign share a
-- fingerprint; votes on any copy are votes on the campaign.

-- One row per campaign: the min-hash signature of its first message (64 little-endian
-- u64s), found through its band keys. Campaigns not seen for
-- [fingerprints] keep_days expire, with their bands and votes.
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    signature  BLOB   NOT NULL,
    words      BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX campaigns_last_seen ON campaigns (last_seen);

-- The lookup index: 16 band keys per campaign (a 64-bit hash, stored signed).
CREATE TABLE campaign_bands (
    band_key    BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    PRIMARY KEY (band_key, campaign_id)
);
CREATE INDEX campaign_bands_campaign ON campaign_bands (campaign_id);

-- The campaign a quarantined message belongs to (NULL: too little text, or forged).
ALTER TABLE messages ADD COLUMN campaign_id BIGINT;

-- Each subscriber's verdicts on a campaign: 'approve' and 'spam' from their votes on its
-- messages, 'inbox' when a copy reached their Inbox from a sender they approved. One row
-- per verdict: one user's many copies are one judgement.
CREATE TABLE campaign_votes (
    subscriber_id BIGINT NOT NULL REFERENCES subscribers(id),
    campaign_id   BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    verdict       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, campaign_id, verdict)
);
CREATE INDEX campaign_votes_order ON campaign_votes (created_at, subscriber_id, campaign_id, verdict);
CREATE INDEX campaign_votes_campaign ON campaign_votes (campaign_id);
