-- IDLE watchers (the IMAP issue): which worker keeps the IDLE connection of an IMAP mailbox,
-- and until when that claim holds unless renewed. One watcher per mailbox among all workers:
-- providers limit an account's simultaneous connections (Gmail: 15), and a second watcher
-- would only wake the same mailbox twice. A claim that ran out (its worker died) may be
-- taken by the next worker to poll the mailbox.
ALTER TABLE mailboxes ADD COLUMN watch_owner TEXT;
ALTER TABLE mailboxes ADD COLUMN watch_until BIGINT;
