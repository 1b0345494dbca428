-- The statistics' evidence keys of each quarantined message (sender, domain, campaign,
-- URL domains, Reply-To, handoff network, short-text and attachment hashes), as the worker
-- judged it: a JSON array of {kind, key, unit}. A vote on the message is a vote on each of
-- them, and the re-score before a summary judges the same keys. NULL: from before this
-- migration (its votes count on the sender and domain only).
ALTER TABLE messages ADD COLUMN stat_keys TEXT;
