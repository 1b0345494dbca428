-- IMAP mailboxes (the IMAP issue): the protocol a mailbox is polled with. Every mailbox so
-- far is POP3. For IMAP, the UIDL column of mailbox_uidls holds `UIDVALIDITY:UID` of the
-- Inbox, so a new UIDVALIDITY makes every remembered UID unknown at once.
ALTER TABLE mailboxes ADD COLUMN protocol TEXT NOT NULL DEFAULT 'pop3';
-- Where an IMAP mailbox's copy of a quarantined message is: 'held' (Quorum/Held) or
-- 'deleted' (Quorum/Deleted); NULL for POP3 mailboxes and once the copy is out of Quorum's
-- reach (the subscriber's own client moved it). A held copy whose message was decided
-- (deleted, purged) is moved on to Quorum/Deleted by the next poll.
ALTER TABLE messages ADD COLUMN imap_folder TEXT;
