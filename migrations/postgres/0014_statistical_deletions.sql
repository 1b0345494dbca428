-- The statistics read back what they deleted, in decision order: each deletion is a label
-- of the recipient's mail that no answer gives (the recipient's prior counts it).
CREATE INDEX messages_statistical_deletions ON messages (decided_at, id)
    WHERE status = 'deleted_statistical';
