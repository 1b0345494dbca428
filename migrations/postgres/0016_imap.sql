-- IMAP mailboxes (the IMAP issue): the protocol a mailbox is polled with. Every mailbox so
-- far is POP3. For IMAP, the UIDL column of mailbox_uidls holds `UIDVALIDITY:UID` of the
-- Inbox, so a new UIDVALIDITY makes every remembered UID unknown at once.
ALTER TABLE mailboxes ADD COLUMN protocol TEXT NOT NULL DEFAULT 'pop3';
