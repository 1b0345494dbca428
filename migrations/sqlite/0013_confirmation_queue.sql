-- Confirmations go through a durable queue (SPEC 2.4): the sender a held message may get a
-- confirmation from is stored with the message, in the poll's own transaction, and cleared
-- once the confirmation is sent or decided against. A worker that dies between the commit
-- and the send leaves it there, and the next pass sends it.
ALTER TABLE messages ADD COLUMN confirm_to TEXT;
CREATE INDEX messages_confirm_pending ON messages (mailbox_id) WHERE confirm_to IS NOT NULL;
