//! Storage behind one async trait, [`Database`], with one implementation per database
//! (the atuin pattern): [`Sqlite`] for the single-machine default and [`Postgres`] for
//! workers on many machines. Queries are checked at run time (`sqlx::query_as`), so one
//! code base serves both; the statements both databases understand alike live in [`sql`].

mod common;
pub mod copy;
mod models;
mod postgres;
mod sql;
mod sqlite;

use async_trait::async_trait;
use quorum_domain::{EmailAddress, MessageHash, Timestamp};

pub use models::*;
pub use postgres::Postgres;
pub use sqlite::Sqlite;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("database holds an invalid value: {0}")]
    Corrupt(String),
    /// The change would lose something that is still under way.
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[async_trait]
pub trait Database: Send + Sync + Clone + 'static {
    /// A trivial query: is the database reachable?
    async fn ping(&self) -> Result<()>;

    /// Applies the migrations this build carries.
    async fn migrate(&self) -> Result<()>;

    /// Creates a subscriber and its mailbox, due for polling at once.
    async fn add_subscriber(&self, new: &NewSubscriber, now: Timestamp) -> Result<SubscriberIds>;

    async fn list_subscribers(&self) -> Result<Vec<SubscriberStatus>>;

    async fn subscriber_by_email(&self, email: &EmailAddress) -> Result<Option<SubscriberStatus>>;

    /// Enables or disables a subscriber and the polling of its mailbox.
    async fn set_subscriber_enabled(&self, subscriber_id: i64, enabled: bool) -> Result<()>;

    /// Adds a sender to the approved list, or refreshes it.
    async fn approve_sender(&self, subscriber_id: i64, sender: &EmailAddress, now: Timestamp) -> Result<()>;

    /// Senders approved for a subscriber and seen at or after `seen_since`.
    async fn approved_senders(&self, subscriber_id: i64, seen_since: Timestamp) -> Result<Vec<EmailAddress>>;

    /// Leases up to `limit` enabled mailboxes due at `now` that no live lease holds, for
    /// `owner` until `lease_until`. Two workers never get the same mailbox.
    async fn lease_due_mailboxes(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<LeasedMailbox>>;

    /// Leases one enabled mailbox now, whether due or not (`quorum poll`), unless another
    /// live lease holds it; `take_over` ignores such a lease (after a crash, when the
    /// operator knows no worker is polling it).
    async fn lease_mailbox(
        &self,
        mailbox_id: i64,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        take_over: bool,
    ) -> Result<Option<LeasedMailbox>>;

    /// Drops every lease and IDLE watch claim held by `owner`: a worker restarted under the
    /// same name (after a crash, its polls and watchers died with it) takes its mailboxes
    /// back at once instead of waiting for the leases to expire, and one stopping lets
    /// others watch. Worker names must therefore be unique among live workers.
    async fn release_leases(&self, owner: &str) -> Result<u64>;

    /// Claims the IDLE watch of a mailbox for `owner` until `until`, or renews it; false
    /// when another worker's claim is live at `now` (one watcher per mailbox among all
    /// workers).
    async fn claim_watch(&self, mailbox_id: i64, owner: &str, until: Timestamp, now: Timestamp) -> Result<bool>;

    /// Gives up `owner`'s IDLE watch claim on a mailbox (its watcher ended).
    async fn release_watch(&self, mailbox_id: i64, owner: &str) -> Result<()>;

    /// Makes a mailbox due now (new mail was announced); a worker leases it within its tick.
    async fn poll_soon(&self, mailbox_id: i64, now: Timestamp) -> Result<()>;

    /// Every UIDL already handled in a mailbox.
    async fn known_uidls(&self, mailbox_id: i64) -> Result<Vec<KnownUidl>>;

    /// Commits a batch of retrieved messages in one transaction: quarantined messages
    /// (bytes, metadata, UIDL), kept UIDLs, and the last-seen time of approved senders. A
    /// message whose bytes are already quarantined in this mailbox (same content hash) is
    /// not stored again: its new UIDL points at the existing copy. Returns, per item, the
    /// stored message's id (`None` for kept ones).
    async fn commit_poll(
        &self,
        mailbox_id: i64,
        subscriber_id: i64,
        items: &[PollItem<'_>],
        now: Timestamp,
    ) -> Result<Vec<Option<i64>>>;

    /// Forgets UIDLs that are no longer on the server.
    async fn forget_uidls(&self, mailbox_id: i64, uidls: &[String]) -> Result<()>;

    /// Records a poll's outcome, schedules the next one and releases the lease. False when
    /// `owner` no longer held the lease (it expired and another worker took the mailbox):
    /// then nothing is recorded.
    async fn finish_poll(&self, mailbox_id: i64, owner: &str, outcome: &PollOutcome) -> Result<bool>;

    /// Queues held messages of a mailbox for delivery back to `recipient`: one message,
    /// every held one, or every held one from a sender. Returns how many were queued; a message already queued or
    /// not held is left as it is.
    async fn queue_release(
        &self,
        mailbox_id: i64,
        which: ReleaseSelection<'_>,
        recipient: &EmailAddress,
        now: Timestamp,
    ) -> Result<u64>;

    /// Leases up to `limit` releases due at `now` for delivery by `owner`.
    async fn lease_due_releases(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<PendingRelease>>;

    /// The SMTP server accepted the release: done, and the message is marked released.
    /// False if `owner` no longer held the release's lease (then nothing is recorded).
    async fn release_sent(&self, outbox_id: i64, owner: &str, now: Timestamp) -> Result<bool>;

    /// The SMTP server refused the release for good: the message is held again.
    async fn release_refused(&self, outbox_id: i64, owner: &str) -> Result<()>;

    /// Delivery failed: record why and when to try again.
    async fn release_failed(&self, outbox_id: i64, owner: &str, error: &str, next_attempt_at: Timestamp) -> Result<()>;

    /// Makes every waiting release due now (the operator knows the SMTP server is back).
    async fn retry_releases_now(&self, now: Timestamp) -> Result<u64>;

    /// Releases the SMTP server has not accepted yet, soonest due first.
    async fn outbox_pending(&self) -> Result<Vec<OutboxEntry>>;

    /// Subscribers whose summary is due at `now`, most overdue first.
    async fn due_summaries(&self, now: Timestamp, limit: i64) -> Result<Vec<SubscriberStatus>>;

    /// Moves a subscriber's next summary from `due` to `next`; false if another scheduler
    /// claimed it first.
    async fn claim_summary(&self, subscriber_id: i64, due: Timestamp, next: Timestamp) -> Result<bool>;

    async fn set_next_summary(&self, subscriber_id: i64, at: Timestamp) -> Result<()>;

    /// Claims the subscriber's refusal notice at `now` unless one was sent after
    /// `not_after`; false when one was (or the subscriber is gone).
    async fn claim_refusal_notice(&self, subscriber_id: i64, now: Timestamp, not_after: Timestamp) -> Result<bool>;

    /// Removes approved senders silent for longer than their subscriber's `approved_days`.
    async fn expire_approved_senders(&self, now: Timestamp) -> Result<u64>;

    /// Purges held messages quarantined before `cutoff`; returns how many.
    async fn purge_older_than(&self, cutoff: Timestamp, now: Timestamp) -> Result<u64>;

    /// Purges one held message (retention rule); false if it was not held.
    async fn purge_message(&self, message_id: i64, now: Timestamp) -> Result<bool>;

    /// The held messages of a mailbox (what a summary lists), oldest first.
    async fn held(&self, mailbox_id: i64) -> Result<Vec<QuarantinedMessage>>;

    /// Deletes a held message at the subscriber's word (`status` says why), adds its sender
    /// to the hidden disapproved list and takes it off the approved list. False if the
    /// message was no longer held (decided already): then nothing changes.
    async fn reject_message(
        &self,
        subscriber_id: i64,
        mailbox_id: i64,
        message_id: i64,
        sender: Option<&EmailAddress>,
        status: &str,
        now: Timestamp,
    ) -> Result<bool>;

    /// Senders on a subscriber's hidden disapproved list.
    async fn disapproved_senders(&self, subscriber_id: i64) -> Result<Vec<EmailAddress>>;

    /// Records a subscriber's vote on the sender of a message (once per message).
    async fn record_vote(
        &self,
        subscriber_id: i64,
        message_id: i64,
        sender: &EmailAddress,
        vote: Vote,
        now: Timestamp,
    ) -> Result<()>;

    /// When the subscriber's last summary was accepted by the SMTP server.
    async fn last_summary_at(&self, subscriber_id: i64) -> Result<Option<Timestamp>>;

    /// Messages of a mailbox decided at or after `since`.
    async fn decided_since(&self, mailbox_id: i64, since: Timestamp) -> Result<DecidedCounts>;

    /// Records a summary and the message each of its short IDs names; returns its id.
    async fn record_summary(&self, subscriber_id: i64, items: &[(String, i64)], now: Timestamp) -> Result<i64>;

    /// The lines of a summary with their messages' current state.
    async fn summary_items(&self, summary_id: i64) -> Result<Vec<SummaryItem>>;

    /// The subscriber (and mailbox) a summary was made for.
    async fn summary_owner(&self, summary_id: i64) -> Result<Option<SummaryOwner>>;

    /// The SMTP server accepted the summary: counts in the next one start from now.
    async fn summary_sent(&self, summary_id: i64, now: Timestamp) -> Result<()>;

    /// The original bytes of a message of this mailbox that Quorum is releasing or has
    /// released; `None` for any other message.
    async fn released_raw(&self, mailbox_id: i64, message_id: i64) -> Result<Option<Vec<u8>>>;

    /// An IMAP mailbox's messages whose copy is in Quorum/Held but that are decided
    /// (deleted, purged): the poll moves those copies on to Quorum/Deleted.
    async fn held_copies_decided(&self, mailbox_id: i64) -> Result<Vec<HeldCopy>>;

    /// Records which IMAP folder the copies of these messages are in now (`None`: out of
    /// Quorum's reach).
    async fn set_imap_folder(&self, mailbox_id: i64, message_ids: &[i64], folder: Option<&str>) -> Result<()>;

    /// Of these content hashes, those of the mailbox's messages being or having been
    /// released, with their ids (an IMAP message moved back to the Inbox is recognised by
    /// its bytes).
    async fn released_among(&self, mailbox_id: i64, hashes: &[MessageHash]) -> Result<Vec<(MessageHash, i64)>>;

    /// Metadata of the quarantined messages of a mailbox, oldest first.
    async fn quarantined(&self, mailbox_id: i64) -> Result<Vec<QuarantinedMessage>>;

    /// The raw bytes of a quarantined message.
    async fn message_raw(&self, message_id: i64) -> Result<Vec<u8>>;

    /// The provider table (SPEC 3), by domain.
    async fn providers(&self) -> Result<Vec<quorum_domain::Provider>>;

    /// Adds a provider row, or replaces the row for its domain.
    async fn upsert_provider(&self, provider: &quorum_domain::Provider) -> Result<()>;

    /// Removes a provider row; false when there was none.
    async fn remove_provider(&self, domain: &str) -> Result<bool>;

    /// Messages of a mailbox deleted as forged at or after `since` (at most `limit`).
    async fn forged_since(&self, mailbox_id: i64, since: Timestamp, limit: i64) -> Result<Vec<QuarantinedMessage>>;

    /// Held messages of a subscriber whose forgery checks did not finish.
    async fn incomplete_checks(&self, subscriber_id: i64) -> Result<Vec<Recheck>>;

    /// Stores the result of checking a held message again; a forged verdict deletes it
    /// (`deleted_forged`). False when the message was no longer held.
    async fn record_recheck(
        &self,
        message_id: i64,
        check: &CheckRecord<'_>,
        forged: bool,
        now: Timestamp,
    ) -> Result<bool>;

    /// Turns confirmations to unknown senders on or off for a subscriber.
    async fn set_confirmations(&self, subscriber_id: i64, enabled: bool) -> Result<()>;

    /// Records that a confirmation about held message `message_id` goes to `sender` now,
    /// if the limits allow: none to this sender from this subscriber in the last 24 hours,
    /// fewer than `hourly_cap` by the whole service in the last hour. False: do not send.
    async fn claim_confirmation(
        &self,
        subscriber_id: i64,
        message_id: i64,
        sender: &EmailAddress,
        now: Timestamp,
        hourly_cap: i64,
    ) -> Result<bool>;

    /// Forgets a claimed confirmation that could not be sent.
    async fn unclaim_confirmation(&self, message_id: i64) -> Result<()>;

    /// The confirmations queued with a mailbox's held messages and not done yet.
    async fn pending_confirmations(&self, mailbox_id: i64) -> Result<Vec<PendingConfirmation>>;

    /// Takes a message's confirmation off the queue (sent, refused, or not allowed).
    async fn confirmation_done(&self, message_id: i64) -> Result<()>;

    /// The confirmation sent about a held message, if one was.
    async fn confirmation(&self, message_id: i64) -> Result<Option<Confirmation>>;

    /// Records what came back to a confirmation (the first answer counts).
    async fn confirmation_answered(&self, message_id: i64, outcome: &str, now: Timestamp) -> Result<()>;

    /// Deletes a held message with `status` (`deleted_forged`, `deleted_statistical`) and the
    /// reason shown to people. False if it was not held in this mailbox.
    async fn mark_deleted(
        &self,
        mailbox_id: i64,
        message_id: i64,
        status: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool>;

    /// Keeps the raw log-odds each held message's summary line was printed with,
    /// `(message id, log-odds)`: its answer then calibrates what summaries print.
    async fn record_shown(&self, shown: &[(i64, f64)]) -> Result<()>;

    /// Up to `limit` votes after `after`, oldest first.
    async fn votes_after(&self, after: VoteCursor, limit: i64) -> Result<Vec<VoteRow>>;

    /// Up to `limit` messages the statistics deleted after `after`, in decision order.
    async fn deletions_after(&self, after: DeletionCursor, limit: i64) -> Result<Vec<DeletionRow>>;

    /// Subscribers flagged as spam probes.
    async fn spam_probes(&self) -> Result<Vec<i64>>;

    /// The addresses of the spam probes, for the operator.
    async fn spam_probe_emails(&self) -> Result<Vec<String>>;

    /// Flags a subscriber as a spam probe (honeypot) or not.
    async fn set_spam_probe(&self, subscriber_id: i64, probe: bool) -> Result<()>;

    /// Writes a statistics refresh's tables in one transaction.
    async fn write_statistics(&self, update: &StatisticsUpdate) -> Result<()>;

    /// Every user's trust status.
    async fn trust_rows(&self) -> Result<Vec<TrustRow>>;

    /// Correlations up to `max_rms_error`, for one target user or all (`None`).
    async fn correlation_rows(&self, max_rms_error: f64, user: Option<i64>, limit: i64)
    -> Result<Vec<CorrelationLine>>;

    /// Evidence keys of one kind (`domain`, `url`, ...), the strongest evidence of spam first.
    async fn key_rows(&self, kind: &str, limit: i64) -> Result<Vec<KeyRow>>;

    /// The spam that arrived since `since`, in the order stored, with its reputation keys (the
    /// campaign report's input).
    async fn spam_since(&self, since: quorum_domain::Timestamp) -> Result<Vec<quorum_reputation::campaigns::Spam>>;

    /// The reputation rows of these keys (those that have one), in no order.
    async fn reputation_of(
        &self,
        keys: &[quorum_reputation::Key],
    ) -> Result<Vec<(quorum_reputation::Key, ReputationRow)>>;

    /// One reputation table's rows, the most reported first.
    async fn reputation_rows(&self, kind: quorum_reputation::Kind, limit: i64) -> Result<Vec<ReputationRow>>;

    /// Campaigns sharing at least one of these band keys: `(id, signature)`, by id.
    async fn campaign_candidates(&self, band_keys: &[i64]) -> Result<Vec<(i64, Vec<u8>)>>;

    /// Stores new campaigns with their band keys (returns their ids, in order) and marks
    /// the campaigns in `seen` as seen now, in one transaction.
    async fn store_campaigns(&self, new: &[NewCampaign], seen: &[i64], now: Timestamp) -> Result<Vec<i64>>;

    /// Up to `limit` campaign votes after `after`, oldest first.
    async fn campaign_votes_after(&self, after: &CampaignVoteCursor, limit: i64) -> Result<Vec<CampaignVoteRow>>;

    /// The subscriber with this id.
    async fn subscriber(&self, subscriber_id: i64) -> Result<Option<SubscriberStatus>>;

    /// Mailbox and outbox totals for the dashboard, in one query.
    async fn worker_totals(&self) -> Result<WorkerTotals>;

    /// Enabled mailboxes whose last poll failed (at most `limit`), longest failing first.
    async fn failing_mailboxes(&self, limit: i64) -> Result<Vec<SubscriberStatus>>;

    /// Stores a subscriber's web password (an argon2 PHC string, never the password).
    async fn set_web_password(&self, subscriber_id: i64, hash: &str) -> Result<()>;

    /// An enabled subscriber's id and web password hash (`None` inside: no web login yet).
    async fn web_login(&self, email: &EmailAddress) -> Result<Option<(i64, Option<String>)>>;

    /// An enabled subscriber's web password hash (`None` inside: no web login yet).
    async fn web_password(&self, subscriber_id: i64) -> Result<Option<Option<String>>>;

    async fn subscriber_settings(&self, subscriber_id: i64) -> Result<Option<SubscriberSettings>>;

    /// A subscriber's mailbox as a worker would poll it (without leasing it).
    async fn mailbox_of(&self, subscriber_id: i64) -> Result<Option<LeasedMailbox>>;

    /// New POP3 settings for a subscriber's mailbox (`trusted_domains` stay); its last error
    /// is cleared and its next poll is due at `now`.
    async fn update_mailbox(&self, subscriber_id: i64, settings: &MailboxSettings, now: Timestamp) -> Result<()>;

    /// Removes a subscriber and everything of theirs (mailbox, messages, votes, summaries,
    /// trust rows, sessions) in one transaction. Refused with [`StorageError::Conflict`]
    /// while releases of theirs wait in the outbox: those would be lost.
    async fn remove_subscriber(&self, subscriber_id: i64) -> Result<()>;

    /// Stores new settings; the next summary moves to the new schedule's next time.
    async fn update_subscriber_settings(
        &self,
        subscriber_id: i64,
        approved_days: i64,
        schedule: &quorum_domain::schedule::SummarySchedule,
        confirmations: bool,
        now: Timestamp,
    ) -> Result<()>;

    /// Replaces the encrypted POP3 password of a subscriber's mailbox.
    async fn set_mailbox_password(&self, subscriber_id: i64, password_enc: &[u8]) -> Result<()>;

    /// Creates an operator account; returns its id.
    async fn add_operator(&self, email: &EmailAddress, hash: &str, now: Timestamp) -> Result<i64>;

    /// An operator's id and password hash.
    async fn operator_login(&self, email: &EmailAddress) -> Result<Option<(i64, String)>>;

    async fn operator_email(&self, operator_id: i64) -> Result<Option<String>>;

    /// Opens a web session (and drops expired ones).
    async fn create_session(
        &self,
        token_hash: &[u8],
        principal: Principal,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<()>;

    /// Whose unexpired session this is.
    async fn session(&self, token_hash: &[u8], now: Timestamp) -> Result<Option<Principal>>;

    async fn delete_session(&self, token_hash: &[u8]) -> Result<()>;

    /// Ends every web session of a subscriber (disabled account).
    async fn delete_subscriber_sessions(&self, subscriber_id: i64) -> Result<()>;

    /// A message of this mailbox (any status); `None` for another mailbox's.
    async fn message_in_mailbox(&self, mailbox_id: i64, message_id: i64) -> Result<Option<QuarantinedMessage>>;

    /// Messages by status, for the whole service or one mailbox.
    async fn message_counts(&self, mailbox_id: Option<i64>) -> Result<Vec<(String, i64)>>;

    /// `(day, status, messages)` since `since`: days as Unix days (seconds / 86,400), each
    /// message on the day it was decided (held ones on the day they arrived).
    async fn daily_counts(&self, since: Timestamp) -> Result<Vec<(i64, String, i64)>>;

    /// Every approved sender of a subscriber, however long unseen.
    async fn all_approved_senders(&self, subscriber_id: i64) -> Result<Vec<String>>;

    /// Removes a sender from the approved list; false when it was not on it.
    async fn remove_approved_sender(&self, subscriber_id: i64, sender: &EmailAddress) -> Result<bool>;

    /// Removes campaigns not seen since `not_seen_since`, with their bands and votes;
    /// returns how many.
    async fn expire_campaigns(&self, not_seen_since: Timestamp) -> Result<u64>;
}
