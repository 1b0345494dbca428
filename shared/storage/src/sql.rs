//! Statements SQLite and PostgreSQL both understand with the same meaning (`$n` parameters
//! work in both through sqlx). Statements that differ stay in their implementation.

pub const INSERT_SUBSCRIBER: &str = "INSERT INTO subscribers \
     (email, approved_days, enabled, created_at, summary_times, time_zone, next_summary_at) \
     VALUES ($1, $2, TRUE, $3, $4, $5, $6) RETURNING id";

pub const INSERT_MAILBOX: &str = "INSERT INTO mailboxes \
     (subscriber_id, host, port, security, auth, username, password_enc, enabled, next_poll_at, trusted_domains, \
     protocol) VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $9, $10) RETURNING id";

const SUBSCRIBER_STATUS: &str = "SELECT s.id AS subscriber_id, m.id AS mailbox_id, s.email, s.enabled, \
     m.protocol, m.host, m.port, m.security, m.last_poll_at, m.last_success_at, m.last_status, m.last_error, \
     m.polls, m.quarantined_count, m.kept_count, s.summary_times, s.time_zone, s.next_summary_at \
     FROM subscribers s JOIN mailboxes m ON m.subscriber_id = s.id";

/// Enabled mailboxes whose last poll failed, longest failing first.
pub fn failing_mailboxes() -> String {
    format!("{SUBSCRIBER_STATUS} WHERE m.enabled AND m.last_status <> 'ok' ORDER BY m.last_poll_at, s.id LIMIT $1")
}

pub fn due_summaries() -> String {
    format!("{SUBSCRIBER_STATUS} WHERE s.enabled AND s.next_summary_at <= $1 ORDER BY s.next_summary_at LIMIT $2")
}

pub fn list_subscribers() -> String {
    format!("{SUBSCRIBER_STATUS} ORDER BY s.email")
}

pub fn subscriber_by_email() -> String {
    format!("{SUBSCRIBER_STATUS} WHERE s.email = $1")
}

pub fn subscriber_by_id() -> String {
    format!("{SUBSCRIBER_STATUS} WHERE s.id = $1")
}

pub const SET_SUBSCRIBER_ENABLED: &str = "UPDATE subscribers SET enabled = $2 WHERE id = $1";
pub const SET_MAILBOX_ENABLED: &str = "UPDATE mailboxes SET enabled = $2 WHERE subscriber_id = $1";

pub const APPROVE_SENDER: &str = "INSERT INTO approved_senders (subscriber_id, address, created_at, last_seen_at) \
     VALUES ($1, $2, $3, $3) \
     ON CONFLICT (subscriber_id, address) DO UPDATE SET last_seen_at = excluded.last_seen_at";

pub const UNDISAPPROVE_SENDER: &str = "DELETE FROM disapproved_senders WHERE subscriber_id = $1 AND address = $2";

pub const TOUCH_SENDER: &str =
    "UPDATE approved_senders SET last_seen_at = $3 WHERE subscriber_id = $1 AND address = $2 AND last_seen_at < $3";

pub const APPROVED_SENDERS: &str =
    "SELECT address FROM approved_senders WHERE subscriber_id = $1 AND last_seen_at >= $2";

/// What a worker needs of a mailbox it has just leased, returned by the leasing `UPDATE`
/// itself (both databases allow subqueries in `RETURNING`).
pub const LEASED_RETURNING: &str = "RETURNING id AS mailbox_id, subscriber_id, \
     (SELECT s.email FROM subscribers s WHERE s.id = mailboxes.subscriber_id) AS email, \
     (SELECT s.approved_days FROM subscribers s WHERE s.id = mailboxes.subscriber_id) AS approved_days, \
     protocol, host, port, security, auth, username, password_enc, trusted_domains, \
     (SELECT s.confirmations FROM subscribers s WHERE s.id = mailboxes.subscriber_id) AS confirmations, \
     (SELECT s.spam_probe FROM subscribers s WHERE s.id = mailboxes.subscriber_id) AS spam_probe";

/// Mailboxes not held by a live lease; `$1` = now.
pub const FREE: &str = "(m.lease_until IS NULL OR m.lease_until < $1)";

/// New mail announced (IMAP IDLE): the mailbox is due now, unless it is due already. During
/// a poll (leased) the time is written all the same: later than the poll's start, it tells
/// [`FINISH_POLL`] to keep the mailbox due, as the poll may have listed the Inbox before the
/// new mail came.
pub const POLL_SOON: &str =
    "UPDATE mailboxes SET next_poll_at = $2 WHERE id = $1 AND (next_poll_at > $2 OR lease_owner IS NOT NULL)";

pub const RELEASE_LEASES: &str = "UPDATE mailboxes SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1";

pub const RELEASE_WATCHES: &str = "UPDATE mailboxes SET watch_owner = NULL, watch_until = NULL WHERE watch_owner = $1";

/// Claims (or renews) the IDLE watch of mailbox `$1` for `$2` until `$3`, unless another
/// worker's claim is live at `$4`.
pub const CLAIM_WATCH: &str = "UPDATE mailboxes SET watch_owner = $2, watch_until = $3 \
     WHERE id = $1 AND (watch_owner IS NULL OR watch_owner = $2 OR watch_until <= $4)";

pub const RELEASE_WATCH: &str =
    "UPDATE mailboxes SET watch_owner = NULL, watch_until = NULL WHERE id = $1 AND watch_owner = $2";

pub const KNOWN_UIDLS: &str = "SELECT u.uidl, u.disposition, m.content_hash, m.status, m.id FROM mailbox_uidls u \
     LEFT JOIN messages m ON m.id = u.message_id WHERE u.mailbox_id = $1";

/// Stores `n` messages of mailbox `$1` quarantined at `$2`, or finds the copies already
/// stored with the same content hashes: the update (an IMAP copy's folder, where this poll
/// moves it; else nothing changes) makes `RETURNING` yield the existing row's id in both
/// databases. Per row, 15 parameters: UIDL, content hash, bytes, size, From address and
/// name, subject, status, evidence, reason, check state, campaign, statistics keys, address
/// to confirm, IMAP folder. The hashes must be distinct (one statement may not update a row
/// twice); the ids come back with their hashes, in no promised order.
pub fn insert_messages(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = |k: usize| format!("${}", 15 * i + 2 + k);
            format!(
                "($1, {}, {}, {}, {}, {}, {}, {}, {}, $2, CASE WHEN {} = 'held' THEN NULL ELSE $2 END, {}, {}, {}, {}, {}, {}, {})",
                p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(8), p(9), p(10), p(11), p(12), p(13), p(14), p(15)
            )
        })
        .collect();
    format!(
        "INSERT INTO messages \
         (mailbox_id, uidl, content_hash, raw, size, from_address, from_name, subject, status, quarantined_at, decided_at, \
          evidence, reason, check_state, campaign_id, stat_keys, confirm_to, imap_folder) \
         VALUES {} \
         ON CONFLICT (mailbox_id, content_hash) DO UPDATE SET \
         imap_folder = COALESCE(excluded.imap_folder, messages.imap_folder) RETURNING id, content_hash",
        rows.join(", ")
    )
}

/// Records the fates of `n` distinct UIDLs of mailbox `$1` seen at `$2`: per row (UIDL,
/// disposition, message). A UIDL seen before is overwritten: that happens only when the
/// server gave a known UIDL to different bytes (see the worker's hash check).
pub fn insert_uidls(n: usize) -> String {
    let rows: Vec<String> =
        (0..n).map(|i| format!("($1, ${}, ${}, ${}, $2)", 3 * i + 3, 3 * i + 4, 3 * i + 5)).collect();
    format!(
        "INSERT INTO mailbox_uidls (mailbox_id, uidl, disposition, message_id, seen_at) VALUES {} \
         ON CONFLICT (mailbox_id, uidl) DO UPDATE SET \
         disposition = excluded.disposition, message_id = excluded.message_id, seen_at = excluded.seen_at",
        rows.join(", ")
    )
}

pub const FORGET_UIDL: &str = "DELETE FROM mailbox_uidls WHERE mailbox_id = $1 AND uidl = $2";

pub const FINISH_POLL: &str = "UPDATE mailboxes SET \
     last_poll_at = $3, last_success_at = COALESCE($9, last_success_at), \
     last_status = $4, last_error = $5, next_poll_at = CASE WHEN next_poll_at > $3 THEN next_poll_at ELSE $6 END, \
     polls = polls + 1, \
     quarantined_count = quarantined_count + $7, kept_count = kept_count + $8, \
     lease_owner = NULL, lease_until = NULL \
     WHERE id = $1 AND (lease_owner = $2 OR lease_owner IS NULL)";

pub const QUARANTINED: &str = "SELECT id, uidl, size, from_address, from_name, subject, status, quarantined_at, reason, campaign_id, stat_keys \
     FROM messages WHERE mailbox_id = $1 ORDER BY id";

pub const MESSAGE_RAW: &str = "SELECT raw FROM messages WHERE id = $1";

/// Takes held messages of a mailbox for release (`$2` one message or NULL, `$3` one sender
/// or NULL). Changing the status first, in the same statement that selects, means a purge
/// or deletion committing meanwhile cannot leave an outbox row for a message not released.
pub const MARK_RELEASING: &str = "UPDATE messages SET status = 'releasing' \
     WHERE mailbox_id = $1 AND status = 'held' AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR from_address = $3) \
     RETURNING id";

pub const QUEUE_RELEASE: &str = "INSERT INTO outbox (message_id, mailbox_id, recipient, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (message_id) DO NOTHING";

/// Releases due and not held by a live lease; `$1` = now.
pub const DUE_RELEASES: &str = "SELECT id FROM outbox \
     WHERE sent_at IS NULL AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1) \
     ORDER BY next_attempt_at LIMIT $2";

pub const RELEASE_RETURNING: &str = "RETURNING id AS outbox_id, message_id, mailbox_id, recipient, attempts, \
     (SELECT m.raw FROM messages m WHERE m.id = outbox.message_id) AS raw, \
     (SELECT mb.subscriber_id FROM mailboxes mb WHERE mb.id = outbox.mailbox_id) AS subscriber_id, \
     (SELECT mb.protocol FROM mailboxes mb WHERE mb.id = outbox.mailbox_id) AS protocol";

pub const RELEASE_SENT: &str = "UPDATE outbox SET sent_at = $3, attempts = attempts + 1, last_error = NULL, \
     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2";

pub const MARK_RELEASED: &str = "UPDATE messages SET status = 'released', decided_at = $2 \
     WHERE id = (SELECT message_id FROM outbox WHERE id = $1) AND status = 'releasing'";

pub const RELEASE_FAILED: &str = "UPDATE outbox SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4, \
     lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2";

pub const OUTBOX_PENDING: &str = "SELECT id AS outbox_id, message_id, recipient, attempts, next_attempt_at, last_error \
     FROM outbox WHERE sent_at IS NULL ORDER BY next_attempt_at";

pub const RETRY_NOW: &str = "UPDATE outbox SET next_attempt_at = $1 WHERE sent_at IS NULL AND next_attempt_at > $1";

pub const HELD: &str = "SELECT id, uidl, size, from_address, from_name, subject, status, quarantined_at, reason, campaign_id, stat_keys \
     FROM messages WHERE mailbox_id = $1 AND status = 'held' ORDER BY id";

pub const DISAPPROVE_SENDER: &str = "INSERT INTO disapproved_senders (subscriber_id, address, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (subscriber_id, address) DO NOTHING";

pub const DISAPPROVED_SENDERS: &str = "SELECT address FROM disapproved_senders WHERE subscriber_id = $1";

pub const UNAPPROVE_SENDER: &str = "DELETE FROM approved_senders WHERE subscriber_id = $1 AND address = $2";

pub const DELETE_HELD: &str =
    "UPDATE messages SET status = $3, decided_at = $4 WHERE id = $2 AND mailbox_id = $1 AND status = 'held'";

pub const RECORD_VOTE: &str = "INSERT INTO sender_votes (subscriber_id, message_id, address, domain, verdict, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subscriber_id, message_id) DO NOTHING";

/// The vote on a message is also a vote on its campaign (if it has one that has not expired).
pub const RECORD_CAMPAIGN_VOTE: &str = "INSERT INTO campaign_votes (subscriber_id, campaign_id, verdict, created_at) \
     SELECT $1, m.campaign_id, $3, $4 FROM messages m JOIN campaigns c ON c.id = m.campaign_id WHERE m.id = $2 \
     ON CONFLICT DO NOTHING";

/// A copy of a campaign reached the subscriber's Inbox from a sender they approved.
pub const RECORD_INBOX_VOTE: &str = "INSERT INTO campaign_votes (subscriber_id, campaign_id, verdict, created_at) \
     SELECT $1, id, 'inbox', $3 FROM campaigns WHERE id = $2 ON CONFLICT DO NOTHING";

pub const LAST_SUMMARY: &str = "SELECT MAX(sent_at) FROM summaries WHERE subscriber_id = $1";

pub const SUMMARY_SENT: &str = "UPDATE summaries SET sent_at = $2 WHERE id = $1";

pub const DECIDED_SINCE: &str = "SELECT \
     SUM(CASE WHEN status LIKE 'deleted%' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN status = 'deleted_forged' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN status = 'released' THEN 1 ELSE 0 END) \
     FROM messages WHERE mailbox_id = $1 AND decided_at >= $2";

pub const INSERT_SUMMARY: &str = "INSERT INTO summaries (subscriber_id, created_at) VALUES ($1, $2) RETURNING id";

pub const INSERT_SUMMARY_ITEM: &str =
    "INSERT INTO summary_items (summary_id, short_id, message_id) VALUES ($1, $2, $3)";

pub const SUMMARY_ITEMS: &str = "SELECT i.short_id, i.message_id, m.mailbox_id, m.status, m.from_address \
     FROM summary_items i JOIN messages m ON m.id = i.message_id WHERE i.summary_id = $1";

pub const SUMMARY_OWNER: &str = "SELECT s.id, s.email, m.id FROM summaries y \
     JOIN subscribers s ON s.id = y.subscriber_id JOIN mailboxes m ON m.subscriber_id = s.id WHERE y.id = $1";

/// Claims a due summary by moving its next time on; only one scheduler can win the claim.
pub const CLAIM_SUMMARY: &str = "UPDATE subscribers SET next_summary_at = $3 WHERE id = $1 AND next_summary_at = $2";

pub const SET_NEXT_SUMMARY: &str = "UPDATE subscribers SET next_summary_at = $2 WHERE id = $1";

pub const CLAIM_REFUSAL_NOTICE: &str = "UPDATE subscribers SET refusal_notice_at = $2 \
     WHERE id = $1 AND (refusal_notice_at IS NULL OR refusal_notice_at <= $3)";

/// Purges held messages quarantined before `$1` (nothing is held longer than
/// `max_retention`): their bytes are dropped, the row stays for the counts.
pub const PURGE_OLD: &str = "UPDATE messages SET status = 'purged', decided_at = $2, raw = $3 \
     WHERE status = 'held' AND quarantined_at < $1";

pub const PURGE_ONE: &str =
    "UPDATE messages SET status = 'purged', decided_at = $2, raw = $3 WHERE id = $1 AND status = 'held'";

/// Approved senders silent for longer than their subscriber's `approved_days` expire.
pub const EXPIRE_APPROVED: &str = "DELETE FROM approved_senders WHERE last_seen_at < $1 - \
     (SELECT s.approved_days * 86400 FROM subscribers s WHERE s.id = approved_senders.subscriber_id)";

/// The bytes of a message Quorum is releasing or has released from this mailbox.
pub const RELEASED_RAW: &str =
    "SELECT raw FROM messages WHERE id = $1 AND mailbox_id = $2 AND status IN ('releasing', 'released')";

/// Messages of an IMAP mailbox whose copy is in Quorum/Held but which are no longer held
/// (deleted at the subscriber's word, purged): their copies go on to Quorum/Deleted.
pub const HELD_COPIES_DECIDED: &str = "SELECT id, size, content_hash FROM messages \
     WHERE mailbox_id = $1 AND imap_folder = 'held' AND status NOT IN ('held', 'releasing', 'released')";

/// `UPDATE messages SET imap_folder = $2 WHERE mailbox_id = $1 AND id IN (...)`, with one
/// placeholder per id from `$3`.
pub fn set_imap_folder(ids: usize) -> String {
    let list: Vec<String> = (0..ids).map(|i| format!("${}", i + 3)).collect();
    format!("UPDATE messages SET imap_folder = $2 WHERE mailbox_id = $1 AND id IN ({})", list.join(", "))
}

/// The messages of a mailbox with these bytes (content hashes `$2...`) that are being or
/// were released: what an IMAP message Quorum moved back to the Inbox must be.
pub fn released_among(hashes: usize) -> String {
    let list: Vec<String> = (0..hashes).map(|i| format!("${}", i + 2)).collect();
    format!(
        "SELECT content_hash, id FROM messages WHERE mailbox_id = $1 AND status IN ('releasing', 'released') \
         AND content_hash IN ({})",
        list.join(", ")
    )
}

/// A release the SMTP server refused for good: the message goes back to being held (it is
/// listed in the next summary again) and its outbox row is removed.
pub const RELEASE_REFUSED_MESSAGE: &str = "UPDATE messages SET status = 'held' \
     WHERE id = (SELECT message_id FROM outbox WHERE id = $1 AND lease_owner = $2) AND status = 'releasing'";

pub const DELETE_OUTBOX: &str = "DELETE FROM outbox WHERE id = $1 AND lease_owner = $2";

pub const PROVIDERS: &str = "SELECT domain, major_isp, ptr_supported, ptr_required, ptr_domains, ns_matches \
     FROM providers ORDER BY domain";

pub const UPSERT_PROVIDER: &str = "INSERT INTO providers \
     (domain, major_isp, ptr_supported, ptr_required, ptr_domains, ns_matches) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (domain) DO UPDATE SET major_isp = excluded.major_isp, ptr_supported = excluded.ptr_supported, \
     ptr_required = excluded.ptr_required, ptr_domains = excluded.ptr_domains, ns_matches = excluded.ns_matches";

pub const DELETE_PROVIDER: &str = "DELETE FROM providers WHERE domain = $1";

/// Held messages of a subscriber whose checks did not finish (a DNS failure).
pub const INCOMPLETE_CHECKS: &str = "SELECT m.id, m.raw, b.trusted_domains FROM messages m \
     JOIN mailboxes b ON b.id = m.mailbox_id \
     WHERE b.subscriber_id = $1 AND m.status = 'held' AND m.check_state = 'incomplete' ORDER BY m.id";

/// The result of checking a held message again; a forged verdict deletes it. `$5` is the
/// new status (`held` or `deleted_forged`).
pub const RECORD_RECHECK: &str = "UPDATE messages SET evidence = $2, reason = $3, check_state = $4, status = $5, \
     decided_at = CASE WHEN $5 = 'held' THEN NULL ELSE $6 END WHERE id = $1 AND status = 'held'";

/// Messages of a mailbox deleted as forged at or after `$2`, newest last, at most `$3`.
pub const FORGED_SINCE: &str = "SELECT id, uidl, size, from_address, from_name, subject, status, quarantined_at, reason, campaign_id, stat_keys \
     FROM messages WHERE mailbox_id = $1 AND status = 'deleted_forged' AND decided_at >= $2 ORDER BY id LIMIT $3";

pub const SET_CONFIRMATIONS: &str = "UPDATE subscribers SET confirmations = $2 WHERE id = $1";

/// Records a confirmation about to be sent, unless the subscriber confirmed to this sender
/// in the last 24 h (`$5`) or the service sent `$7` in the last hour (`$6`): one statement,
/// so the limits hold for concurrent workers as far as the database serialises inserts.
pub const CLAIM_CONFIRMATION: &str = "INSERT INTO confirmations (message_id, subscriber_id, sender, sent_at) \
     SELECT $1, $2, $3, $4 \
     WHERE NOT EXISTS (SELECT 1 FROM confirmations WHERE subscriber_id = $2 AND sender = $3 AND sent_at > $5) \
     AND (SELECT COUNT(*) FROM confirmations WHERE sent_at > $6) < $7 \
     ON CONFLICT (message_id) DO NOTHING";

/// Queued confirmations of a mailbox's held messages, oldest first.
pub const PENDING_CONFIRMATIONS: &str = "SELECT m.id AS message_id, m.confirm_to AS sender, m.subject, \
     EXISTS (SELECT 1 FROM confirmations c WHERE c.message_id = m.id) AS claimed \
     FROM messages m WHERE m.mailbox_id = $1 AND m.confirm_to IS NOT NULL AND m.status = 'held' ORDER BY m.id";

/// A queued confirmation was sent, refused, or decided against (the limits).
pub const CONFIRMATION_DONE: &str = "UPDATE messages SET confirm_to = NULL WHERE id = $1";

/// The SMTP server refused the confirmation: it does not count against the limits.
pub const UNCLAIM_CONFIRMATION: &str = "DELETE FROM confirmations WHERE message_id = $1 AND outcome IS NULL";

pub const CONFIRMATION: &str = "SELECT c.message_id, c.subscriber_id, m.mailbox_id, s.email AS subscriber_email, \
     c.sender, c.outcome, m.status FROM confirmations c JOIN messages m ON m.id = c.message_id \
     JOIN subscribers s ON s.id = c.subscriber_id WHERE c.message_id = $1";

pub const CONFIRMATION_ANSWERED: &str =
    "UPDATE confirmations SET outcome = $2, answered_at = $3 WHERE message_id = $1 AND outcome IS NULL";

pub const MARK_DELETED: &str = "UPDATE messages SET status = $5, reason = $3, decided_at = $4 \
     WHERE id = $1 AND mailbox_id = $2 AND status = 'held'";

/// Votes after a cursor, in the order the statistics read them.
/// With the voted message's evidence keys (`NULL` for messages from before they were kept).
pub const VOTES_AFTER: &str = "SELECT v.subscriber_id, v.message_id, v.address, v.domain, v.verdict, v.created_at, \
     m.stat_keys, m.shown_logit FROM sender_votes v LEFT JOIN messages m ON m.id = v.message_id \
     WHERE (v.created_at, v.subscriber_id, v.message_id) > ($1, $2, $3) \
     ORDER BY v.created_at, v.subscriber_id, v.message_id LIMIT $4";

/// Statistical deletions after a cursor, in decision order (index
/// `messages_statistical_deletions`).
pub const DELETIONS_AFTER: &str = "SELECT b.subscriber_id, m.id AS message_id, m.decided_at, m.stat_keys FROM messages m \
     JOIN mailboxes b ON b.id = m.mailbox_id \
     WHERE m.status = 'deleted_statistical' AND (m.decided_at, m.id) > ($1, $2) \
     ORDER BY m.decided_at, m.id LIMIT $3";

pub const SPAM_PROBES: &str = "SELECT id FROM subscribers WHERE spam_probe ORDER BY id";

pub const SPAM_PROBE_EMAILS: &str = "SELECT email FROM subscribers WHERE spam_probe ORDER BY email";

pub const SET_SPAM_PROBE: &str = "UPDATE subscribers SET spam_probe = $2 WHERE id = $1";

pub const UPSERT_TRUST: &str = "INSERT INTO user_trust (subscriber_id, status, reason, approvals, spam, computed_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subscriber_id) DO UPDATE SET status = excluded.status, \
     reason = excluded.reason, approvals = excluded.approvals, spam = excluded.spam, computed_at = excluded.computed_at";

pub const CLEAR_CORRELATIONS: &str = "DELETE FROM correlation WHERE user_id = $1";

pub const INSERT_CORRELATION: &str = "INSERT INTO correlation \
     (user_id, cuser_id, rms_error, confidence, max_rms_error, domains, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub const UPSERT_KEY_STATS: &str = "INSERT INTO key_stats (kind, name, logit, spam_units, ham_units, computed_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, name) DO UPDATE SET logit = excluded.logit, \
     spam_units = excluded.spam_units, ham_units = excluded.ham_units, computed_at = excluded.computed_at";

pub const TRUST_ROWS: &str = "SELECT t.subscriber_id, s.email, t.status, t.reason, t.approvals, t.spam, t.computed_at \
     FROM user_trust t JOIN subscribers s ON s.id = t.subscriber_id ORDER BY t.subscriber_id";

pub const CORRELATION_ROWS: &str = "SELECT c.user_id, c.cuser_id, c.rms_error, c.confidence, c.max_rms_error, \
     c.domains, c.computed_at, u.email AS user_email, cu.email AS cuser_email FROM correlation c \
     JOIN subscribers u ON u.id = c.user_id JOIN subscribers cu ON cu.id = c.cuser_id \
     WHERE c.max_rms_error <= $1 AND ($2 < 0 OR c.user_id = $2) ORDER BY c.max_rms_error, c.user_id, c.cuser_id LIMIT $3";

pub const KEY_ROWS: &str = "SELECT kind, name, logit, spam_units, ham_units, computed_at FROM key_stats \
     WHERE kind = $1 ORDER BY logit DESC, name LIMIT $2";

/// Sets `shown_logit` of `n` messages: `($1, $2), ($3, $4), ...` are (id, log-odds).
pub fn record_shown(n: usize) -> String {
    let rows: Vec<String> = (0..n).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
    format!(
        "UPDATE messages SET shown_logit = v.column2 FROM (VALUES {}) AS v WHERE messages.id = v.column1",
        rows.join(", ")
    )
}

/// Campaigns sharing one of `n` band keys (`$1..$n`).
pub fn campaign_candidates(n: usize) -> String {
    let keys: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT DISTINCT c.id, c.signature FROM campaign_bands b JOIN campaigns c ON c.id = b.campaign_id \
         WHERE b.band_key IN ({}) ORDER BY c.id",
        keys.join(", ")
    )
}

pub const INSERT_CAMPAIGN: &str =
    "INSERT INTO campaigns (signature, words, first_seen, last_seen) VALUES ($1, $2, $3, $3) RETURNING id";

pub const INSERT_CAMPAIGN_BAND: &str =
    "INSERT INTO campaign_bands (band_key, campaign_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

pub const TOUCH_CAMPAIGN: &str = "UPDATE campaigns SET last_seen = $2 WHERE id = $1 AND last_seen < $2";

pub const CAMPAIGN_VOTES_AFTER: &str = "SELECT subscriber_id, campaign_id, verdict, created_at FROM campaign_votes \
     WHERE (created_at, subscriber_id, campaign_id, verdict) > ($1, $2, $3, $4) \
     ORDER BY created_at, subscriber_id, campaign_id, verdict LIMIT $5";

/// Campaigns not seen since `$1` go, with their bands and votes (cascade).
pub const EXPIRE_CAMPAIGNS: &str = "DELETE FROM campaigns WHERE last_seen < $1";

pub const SET_WEB_PASSWORD: &str = "UPDATE subscribers SET web_password = $2 WHERE id = $1";

pub const WEB_LOGIN: &str = "SELECT id, web_password FROM subscribers WHERE email = $1 AND enabled";

pub const INSERT_OPERATOR: &str =
    "INSERT INTO operators (email, password, created_at) VALUES ($1, $2, $3) RETURNING id";

pub const OPERATOR_LOGIN: &str = "SELECT id, password FROM operators WHERE email = $1";

pub const OPERATOR_EMAIL: &str = "SELECT email FROM operators WHERE id = $1";

pub const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM web_sessions WHERE expires_at < $1";

pub const INSERT_SESSION: &str = "INSERT INTO web_sessions (token_hash, subscriber_id, operator_id, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5)";

pub const SESSION: &str =
    "SELECT subscriber_id, operator_id FROM web_sessions WHERE token_hash = $1 AND expires_at >= $2";

pub const DELETE_SESSION: &str = "DELETE FROM web_sessions WHERE token_hash = $1";

pub const DELETE_SUBSCRIBER_SESSIONS: &str = "DELETE FROM web_sessions WHERE subscriber_id = $1";

/// One message, only if it belongs to the mailbox: a subscriber can name no other's.
pub const MESSAGE_IN_MAILBOX: &str = "SELECT id, uidl, size, from_address, from_name, subject, status, quarantined_at, \
     reason, campaign_id, stat_keys FROM messages WHERE id = $1 AND mailbox_id = $2";

pub const MESSAGE_COUNTS: &str = "SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status";

pub const MAILBOX_MESSAGE_COUNTS: &str =
    "SELECT status, COUNT(*) FROM messages WHERE mailbox_id = $1 GROUP BY status ORDER BY status";

pub const ALL_APPROVED_SENDERS: &str = "SELECT address FROM approved_senders WHERE subscriber_id = $1 ORDER BY address";

/// Mailboxes, enabled ones, failing ones, the oldest last poll of an enabled mailbox (-1:
/// one was never polled), and the releases waiting: one row for the dashboard.
pub const WORKER_TOTALS: &str = "SELECT COUNT(*), \
     COALESCE(SUM(CASE WHEN enabled THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN enabled AND last_status <> 'ok' THEN 1 ELSE 0 END), 0), \
     MIN(CASE WHEN enabled THEN COALESCE(last_poll_at, -1) END), \
     (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL), \
     (SELECT COUNT(*) FROM messages WHERE status = 'held' AND reason LIKE 'could not be classified: %') \
     FROM mailboxes";

pub const WEB_PASSWORD: &str = "SELECT web_password FROM subscribers WHERE id = $1 AND enabled";

pub const SUBSCRIBER_SETTINGS: &str = "SELECT s.approved_days, s.summary_times, s.time_zone, s.confirmations, \
     m.username FROM subscribers s JOIN mailboxes m ON m.subscriber_id = s.id WHERE s.id = $1";

pub const UPDATE_SUBSCRIBER_SETTINGS: &str = "UPDATE subscribers SET approved_days = $2, summary_times = $3, \
     time_zone = $4, next_summary_at = $5, confirmations = $6 WHERE id = $1";

pub const SET_MAILBOX_PASSWORD: &str = "UPDATE mailboxes SET password_enc = $2 WHERE subscriber_id = $1";

/// A subscriber's mailbox as [`LEASED_RETURNING`] gives it, without leasing it.
pub const MAILBOX_OF: &str = "SELECT m.id AS mailbox_id, m.subscriber_id, s.email, s.approved_days, \
     m.protocol, m.host, m.port, m.security, m.auth, m.username, m.password_enc, m.trusted_domains, \
     s.confirmations, s.spam_probe FROM mailboxes m JOIN subscribers s ON s.id = m.subscriber_id WHERE m.subscriber_id = $1";

/// New mailbox settings: the last error was about the old ones, and the next poll is due now.
pub const UPDATE_MAILBOX: &str = "UPDATE mailboxes SET host = $2, port = $3, security = $4, auth = $5, \
     username = $6, password_enc = $7, last_error = NULL, next_poll_at = $8, protocol = $9 WHERE subscriber_id = $1";

/// Releases of the mailbox that are not delivered yet.
pub const PENDING_RELEASES: &str = "SELECT COUNT(*) FROM outbox WHERE mailbox_id = $1 AND sent_at IS NULL";

/// Everything of one subscriber (`$1`), children first. Each statement takes only `$1`
/// (PostgreSQL refuses parameters a statement does not use).
pub const REMOVE_SUBSCRIBER: [&str; 17] = [
    "DELETE FROM web_sessions WHERE subscriber_id = $1",
    "DELETE FROM reputation_recipients WHERE subscriber_id = $1",
    "DELETE FROM message_reputation WHERE message_id IN (SELECT id FROM messages \
     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE subscriber_id = $1))",
    "DELETE FROM correlation WHERE user_id = $1 OR cuser_id = $1",
    "DELETE FROM user_trust WHERE subscriber_id = $1",
    "DELETE FROM campaign_votes WHERE subscriber_id = $1",
    "DELETE FROM sender_votes WHERE subscriber_id = $1 OR message_id IN (SELECT id FROM messages \
     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE subscriber_id = $1))",
    "DELETE FROM confirmations WHERE subscriber_id = $1",
    "DELETE FROM summary_items WHERE summary_id IN (SELECT id FROM summaries WHERE subscriber_id = $1) \
     OR message_id IN (SELECT id FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE subscriber_id = $1))",
    "DELETE FROM summaries WHERE subscriber_id = $1",
    "DELETE FROM disapproved_senders WHERE subscriber_id = $1",
    "DELETE FROM approved_senders WHERE subscriber_id = $1",
    "DELETE FROM outbox WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE subscriber_id = $1)",
    "DELETE FROM mailbox_uidls WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE subscriber_id = $1)",
    "DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE subscriber_id = $1)",
    "DELETE FROM mailboxes WHERE subscriber_id = $1",
    "DELETE FROM subscribers WHERE id = $1",
];

/// Messages decided (or, while held, arrived) per day and status since `$1` (Unix seconds).
pub const DAILY_COUNTS: &str = "SELECT COALESCE(decided_at, quarantined_at) / 86400 AS day, status, COUNT(*) \
     FROM messages WHERE COALESCE(decided_at, quarantined_at) >= $1 GROUP BY day, status ORDER BY day, status";

/// New messages' reputation keys, `n` rows of (message, kind, name) from `$1`; returns the
/// message of every row inserted. A message stored before (the same content again) inserts
/// none, and counts nothing twice.
pub fn message_reputation(n: usize) -> String {
    let rows: Vec<String> = (0..n).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
    format!(
        "INSERT INTO message_reputation (message_id, kind, name) VALUES {} ON CONFLICT DO NOTHING RETURNING message_id",
        rows.join(", ")
    )
}

/// A poll's arrivals under `n` distinct keys, one recipient: `$1` one event's mass (the
/// recipient's weight), `$2` the time, `$3` the recipient, then per key (kind, name, the
/// masses of its messages, of those that were probes' copies, forgeries and Inbox
/// deliveries from approved senders). The recipient counts once per key, at the latest
/// weight: what it weighed before under the key is taken off (read before
/// [`reputation_recipients`] writes the new weight).
pub fn reputation_arrival(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = 6 * i + 4;
            format!("(${p}, ${}, ${}, $1, ${}, ${}, ${}, $2, $2)", p + 1, p + 2, p + 3, p + 4, p + 5)
        })
        .collect();
    format!(
        "INSERT INTO reputation (kind, name, messages, recipients, probe, forged, inbox, first_seen, last_seen) \
         VALUES {} ON CONFLICT (kind, name) DO UPDATE SET messages = reputation.messages + excluded.messages, \
         recipients = reputation.recipients + excluded.recipients - COALESCE((SELECT r.mass FROM reputation_recipients r \
         WHERE r.kind = excluded.kind AND r.name = excluded.name AND r.subscriber_id = $3), 0), \
         probe = reputation.probe + excluded.probe, forged = reputation.forged + excluded.forged, \
         inbox = reputation.inbox + excluded.inbox, \
         last_seen = CASE WHEN excluded.last_seen > reputation.last_seen THEN excluded.last_seen ELSE reputation.last_seen END",
        rows.join(", ")
    )
}

/// The recipient's latest weight under `n` keys: `$1` the mass, `$2` the recipient, then
/// (kind, name) pairs.
pub fn reputation_recipients(n: usize) -> String {
    let rows: Vec<String> = (0..n).map(|i| format!("(${}, ${}, $2, $1)", 2 * i + 3, 2 * i + 4)).collect();
    format!(
        "INSERT INTO reputation_recipients (kind, name, subscriber_id, mass) VALUES {} \
         ON CONFLICT (kind, name, subscriber_id) DO UPDATE SET mass = excluded.mass",
        rows.join(", ")
    )
}

/// What became of a message after its arrival, counted under its reputation keys.
#[derive(Debug, Clone, Copy)]
pub enum ReputationEvent {
    Spam,
    Approval,
    Nonexistent,
    Forged,
}

impl ReputationEvent {
    /// The statement that counts it: `$1` the message, `$2` the event's mass.
    pub fn sql(self) -> &'static str {
        macro_rules! add {
            ($column:literal) => {
                concat!(
                    "UPDATE reputation SET ",
                    $column,
                    " = ",
                    $column,
                    " + $2 WHERE (kind, name) IN (SELECT kind, name FROM message_reputation WHERE message_id = $1)"
                )
            };
        }
        match self {
            ReputationEvent::Spam => add!("spam"),
            ReputationEvent::Approval => add!("approvals"),
            ReputationEvent::Nonexistent => add!("nonexistent"),
            ReputationEvent::Forged => add!("forged"),
        }
    }
}

/// One table's rows, the most reported first (stored counts share one scale, so they order
/// as the decayed ones do): `$1` the kind, `$2` how many.
pub const REPUTATION: &str = "SELECT kind, name, messages, recipients, spam, approvals, probe, nonexistent, forged, \
     inbox, first_seen, last_seen FROM reputation WHERE kind = $1 \
     ORDER BY spam + probe + forged DESC, messages DESC, name LIMIT $2";

/// What the probes, the statistics, the recipients and the checks decided was spam. The
/// queries below test `(status || '')`, which no index serves, so that SQLite reads the
/// window by the arrival index rather than every spam message by the status index (it
/// has no statistics to tell which is smaller).
macro_rules! spam_statuses {
    () => {
        "('probe_spam', 'deleted_statistical', 'deleted_spam', 'deleted_blocked', 'deleted_forged', \
         'deleted_nonexistent')"
    };
}

/// The spam that arrived since `$1` (the campaign report), in no order: an ORDER BY would
/// make SQLite walk every message in id order instead of the window by arrival.
pub const SPAM_SINCE: &str = concat!(
    "SELECT m.id, b.subscriber_id, m.quarantined_at, m.subject, m.from_address, m.status \
     FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id \
     WHERE m.quarantined_at >= $1 AND (m.status || '') IN ",
    spam_statuses!()
);

/// The reputation keys of the spam that arrived since `$1`, in no order (CROSS JOIN: SQLite
/// reads the window's messages first, then their keys).
pub const SPAM_KEYS_SINCE: &str = concat!(
    "SELECT r.message_id, r.kind, r.name FROM messages m CROSS JOIN message_reputation r \
     WHERE r.message_id = m.id AND m.quarantined_at >= $1 AND (m.status || '') IN ",
    spam_statuses!()
);

/// The rows of `n` keys: `($1, $2), ($3, $4), ...` are (kind, name).
pub fn reputation_of(n: usize) -> String {
    let rows: Vec<String> = (0..n).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
    // A join on the primary key: SQLite scans the whole table for a row-value IN list.
    format!(
        "SELECT r.kind, r.name, r.messages, r.recipients, r.spam, r.approvals, r.probe, r.nonexistent, r.forged, \
         r.inbox, r.first_seen, r.last_seen FROM (VALUES {}) AS v \
         JOIN reputation r ON r.kind = v.column1 AND r.name = v.column2",
        rows.join(", ")
    )
}
