-- When a subscriber was last told that a reply from their address was refused (expired
-- summary, another address's summary): at most one such notice a day.
ALTER TABLE subscribers ADD COLUMN refusal_notice_at BIGINT;

-- Held messages whose classification failed (the dashboard counts them on every load).
CREATE INDEX messages_unclassified ON messages (mailbox_id)
    WHERE status = 'held' AND reason LIKE 'could not be classified: %';
