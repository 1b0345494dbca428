//! Rows and records passed through [`crate::Database`].

use quorum_domain::{AuthMethod, EmailAddress, MessageHash, Protocol, Security, Timestamp, schedule::SummarySchedule};

use crate::StorageError;

#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub approved_days: i64,
    pub schedule: SummarySchedule,
    pub mailbox: MailboxSettings,
}

/// How to reach and log in to a POP3 mailbox.
#[derive(Debug, Clone)]
pub struct MailboxSettings {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: AuthMethod,
    pub username: String,
    /// Already encrypted with [`quorum_domain::Keys::encrypt_password`].
    pub password_enc: Vec<u8>,
    /// Domains whose Received headers the mailbox's provider writes (the trusted hop);
    /// empty: learned from each message's chain.
    pub trusted_domains: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberIds {
    pub subscriber_id: i64,
    pub mailbox_id: i64,
}

/// A subscriber with the health of its mailbox, for listings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriberStatus {
    pub subscriber_id: i64,
    pub mailbox_id: i64,
    pub email: String,
    pub enabled: bool,
    pub protocol: String,
    pub host: String,
    pub port: i32,
    pub security: String,
    pub last_poll_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub polls: i64,
    pub quarantined_count: i64,
    pub kept_count: i64,
    pub summary_times: String,
    pub time_zone: String,
    pub next_summary_at: Option<i64>,
}

/// What a worker needs to poll one mailbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeasedMailboxRow {
    pub mailbox_id: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub approved_days: i64,
    pub protocol: String,
    pub host: String,
    pub port: i32,
    pub security: String,
    pub auth: String,
    pub username: String,
    pub password_enc: Vec<u8>,
    pub trusted_domains: String,
    pub confirmations: bool,
    pub spam_probe: bool,
}

#[derive(Debug, Clone)]
pub struct LeasedMailbox {
    pub mailbox_id: i64,
    pub subscriber_id: i64,
    pub email: EmailAddress,
    pub approved_days: i64,
    /// The subscriber wants confirmations sent to unknown senders (SPEC 2.4).
    pub confirmations: bool,
    /// A spam probe (honeypot): everything it receives is a spam vote at once.
    pub spam_probe: bool,
    pub settings: MailboxSettings,
}

impl TryFrom<LeasedMailboxRow> for LeasedMailbox {
    type Error = StorageError;
    fn try_from(r: LeasedMailboxRow) -> Result<Self, StorageError> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("mailbox {}: {what}", r.mailbox_id));
        Ok(Self {
            mailbox_id: r.mailbox_id,
            subscriber_id: r.subscriber_id,
            email: EmailAddress::parse(&r.email).map_err(|_| corrupt("email"))?,
            approved_days: r.approved_days,
            confirmations: r.confirmations,
            spam_probe: r.spam_probe,
            settings: MailboxSettings {
                protocol: r.protocol.parse().map_err(|_| corrupt("protocol"))?,
                port: u16::try_from(r.port).map_err(|_| corrupt("port"))?,
                security: r.security.parse().map_err(|_| corrupt("security"))?,
                auth: r.auth.parse().map_err(|_| corrupt("auth"))?,
                host: r.host,
                username: r.username,
                password_enc: r.password_enc,
                trusted_domains: quorum_domain::provider::parse_list(&r.trusted_domains)
                    .map_err(|_| corrupt("trusted_domains"))?,
            },
        })
    }
}

/// Converts leased rows, leaving out (and logging) any that cannot be valid: one damaged
/// row must not keep the others of its batch from being polled. Its lease simply expires.
pub(crate) fn valid_leases(rows: Vec<LeasedMailboxRow>) -> Vec<LeasedMailbox> {
    rows.into_iter()
        .filter_map(|row| {
            LeasedMailbox::try_from(row).map_err(|e| tracing::error!(error = %e, "skipping a mailbox")).ok()
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UidlDisposition {
    /// The bytes are in the quarantine; the message may still be on the server if DELE or
    /// QUIT did not complete.
    Quarantined,
    /// Left in the Inbox (approved sender or released by Quorum).
    Kept,
}

impl UidlDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quarantined => "quarantined",
            Self::Kept => "kept",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StorageError> {
        match s {
            "quarantined" => Ok(Self::Quarantined),
            "kept" => Ok(Self::Kept),
            other => Err(StorageError::Corrupt(format!("UIDL disposition `{other}`"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownUidl {
    pub uidl: String,
    pub disposition: UidlDisposition,
    /// For a quarantined UIDL, the content hash of the stored message: before deleting a
    /// message under a known UIDL, the worker checks it is still those bytes.
    pub hash: Option<MessageHash>,
    /// The stored message is held for the subscriber's decision (its status `held`), not
    /// deleted or released: over IMAP it belongs in `Quorum/Held`.
    pub held: bool,
    pub message_id: Option<i64>,
}

/// A quarantined message's copy to find in an IMAP folder: by its size, then its bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldCopy {
    #[sqlx(rename = "id")]
    pub message_id: i64,
    pub size: i64,
    pub content_hash: Vec<u8>,
}

impl KnownUidl {
    pub(crate) fn from_row(
        (uidl, disposition, hash, status, message_id): (String, String, Option<Vec<u8>>, Option<String>, Option<i64>),
    ) -> Result<Self, StorageError> {
        let hash = hash
            .map(|h| {
                <[u8; 32]>::try_from(h.as_slice())
                    .map(MessageHash)
                    .map_err(|_| StorageError::Corrupt(format!("content hash of UIDL {uidl}")))
            })
            .transpose()?;
        let held = status.as_deref() == Some("held");
        Ok(Self { disposition: UidlDisposition::parse(&disposition)?, uidl, hash, held, message_id })
    }
}

/// One retrieved message's fate, as committed by [`crate::Database::commit_poll`].
#[derive(Debug)]
pub enum PollItem<'a> {
    Quarantine {
        uidl: &'a str,
        /// `held`, or `deleted_blocked` for a sender on the subscriber's disapproved list
        /// (stored all the same: the UIDL must be known before the message is deleted), or
        /// another decided status; `probe_spam` (a spam probe's mail) also records a spam
        /// vote on the sender and campaign, in the same transaction.
        status: &'a str,
        raw: &'a [u8],
        hash: MessageHash,
        from: Option<&'a EmailAddress>,
        from_name: Option<&'a str>,
        subject: Option<&'a str>,
        /// What the forgery checks found, if they ran.
        checked: Option<CheckRecord<'a>>,
        /// The campaign its fingerprint belongs to.
        campaign: Option<i64>,
        /// The statistics' evidence keys it was judged by (JSON), which its votes are on.
        stat_keys: Option<&'a str>,
        /// The sender a confirmation may go to (queued with the message, SPEC 2.4).
        confirm_to: Option<&'a EmailAddress>,
        /// The reputation tables' keys it counts under ([`quorum_reputation::keys`]),
        /// distinct.
        reputation: &'a [quorum_reputation::Key],
        /// IMAP: the folder it is moved to once committed (`held` or `deleted`). Written
        /// with the message, before the move, so that no crash after the move can leave a
        /// copy Quorum does not know it made; a crash before it leaves the message in the
        /// Inbox, where the next poll finds it by its UID and moves it there.
        imap_folder: Option<&'a str>,
    },
    /// Left in the Inbox; `approved` is the sender whose last-seen time to refresh.
    /// `campaign`: the campaign of a message from an approved sender, which the Inbox
    /// delivery approves. `reputation`: its keys, under which an approved sender's delivery
    /// counts as ham.
    Keep {
        uidl: &'a str,
        approved: Option<&'a EmailAddress>,
        campaign: Option<i64>,
        reputation: &'a [quorum_reputation::Key],
    },
}

/// A subscriber's verdict on a campaign (`approve`, `spam` or `inbox`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CampaignVoteRow {
    pub subscriber_id: i64,
    pub campaign_id: i64,
    pub verdict: String,
    pub created_at: i64,
}

impl CampaignVoteRow {
    /// Where the next read starts.
    pub fn cursor(&self) -> CampaignVoteCursor {
        CampaignVoteCursor {
            created_at: self.created_at,
            subscriber_id: self.subscriber_id,
            campaign_id: self.campaign_id,
            verdict: self.verdict.clone(),
        }
    }
}

/// The position after the last campaign vote read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignVoteCursor {
    pub created_at: i64,
    pub subscriber_id: i64,
    pub campaign_id: i64,
    pub verdict: String,
}

impl Default for CampaignVoteCursor {
    fn default() -> Self {
        CampaignVoteCursor {
            created_at: i64::MIN,
            subscriber_id: i64::MIN,
            campaign_id: i64::MIN,
            verdict: String::new(),
        }
    }
}

/// A campaign to store: its first message's signature and band keys.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub signature: Vec<u8>,
    pub words: i64,
    pub band_keys: Vec<i64>,
}

/// A message's forgery-check results as stored with it.
#[derive(Debug, Clone, Copy)]
pub struct CheckRecord<'a> {
    /// `quorum_forgery::Evidence` as JSON.
    pub evidence: &'a str,
    /// The line shown to people, if any finding deserves one.
    pub reason: Option<&'a str>,
    /// The checks could not finish (DNS failure): check again before the summary.
    pub incomplete: bool,
}

impl CheckRecord<'_> {
    pub fn state(&self) -> &'static str {
        if self.incomplete { "incomplete" } else { "done" }
    }
}

/// A held message whose checks must run again.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recheck {
    pub id: i64,
    pub raw: Vec<u8>,
    pub trusted_domains: String,
}

/// A confirmation that was sent, and the held message it asks about.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct Confirmation {
    pub message_id: i64,
    pub subscriber_id: i64,
    pub mailbox_id: i64,
    pub subscriber_email: String,
    pub sender: String,
    /// `bounced`, `replied`, `auto_replied`, or `None` while nothing came back.
    pub outcome: Option<String>,
    /// The held message's status now.
    pub status: String,
}

/// A row of the provider table, as stored (lists comma-separated).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ProviderRow {
    pub domain: String,
    pub major_isp: bool,
    pub ptr_supported: bool,
    pub ptr_required: bool,
    pub ptr_domains: String,
    pub ns_matches: String,
}

impl TryFrom<ProviderRow> for quorum_domain::Provider {
    type Error = StorageError;
    fn try_from(r: ProviderRow) -> Result<Self, StorageError> {
        quorum_domain::Provider::new(
            &r.domain,
            r.major_isp,
            r.ptr_supported,
            r.ptr_required,
            &r.ptr_domains,
            &r.ns_matches,
        )
        .map_err(|e| StorageError::Corrupt(format!("provider {}: {e}", r.domain)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStatus {
    Ok,
    /// The maildrop was locked by another client; not an error.
    Busy,
    Error,
}

impl PollStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Busy => "busy",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PollOutcome {
    pub status: PollStatus,
    pub error: Option<String>,
    pub polled_at: Timestamp,
    pub next_poll_at: Timestamp,
    pub quarantined: i64,
    pub kept: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuarantinedMessage {
    pub id: i64,
    pub uidl: String,
    pub size: i64,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub subject: Option<String>,
    pub status: String,
    pub quarantined_at: i64,
    /// What the forgery checks found worth showing (`forged: PTR of ... missing, ...`).
    pub reason: Option<String>,
    /// The campaign its fingerprint belongs to.
    pub campaign_id: Option<i64>,
    /// The statistics' evidence keys it was judged by (JSON; `None` from before they were kept).
    pub stat_keys: Option<String>,
}

/// A release leased for delivery: the original bytes and where they go.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRelease {
    pub outbox_id: i64,
    pub message_id: i64,
    pub mailbox_id: i64,
    pub recipient: String,
    /// Delivery attempts made before this one.
    pub attempts: i64,
    pub raw: Vec<u8>,
    pub subscriber_id: i64,
    /// The mailbox's protocol: an IMAP mailbox gets its message moved back, not re-sent.
    pub protocol: String,
}

/// A release not yet accepted by the SMTP server, for operators.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEntry {
    pub outbox_id: i64,
    pub message_id: i64,
    pub recipient: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

/// One line of a sent summary and the state of its message now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SummaryItem {
    pub short_id: String,
    pub message_id: i64,
    pub mailbox_id: i64,
    pub status: String,
    pub from_address: Option<String>,
}

/// What happened since the last summary, for its header lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecidedCounts {
    pub deleted: i64,
    pub forged: i64,
    pub delivered: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Approve,
    Spam,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Spam => "spam",
        }
    }
}

/// Which held messages to release.
#[derive(Debug, Clone, Copy)]
pub enum ReleaseSelection<'a> {
    One(i64),
    All,
    From(&'a EmailAddress),
}

/// Whom a summary was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryOwner {
    pub subscriber_id: i64,
    pub email: EmailAddress,
    pub mailbox_id: i64,
}

/// One vote as the statistics read it.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq)]
pub struct VoteRow {
    pub subscriber_id: i64,
    pub message_id: i64,
    pub address: String,
    pub domain: String,
    /// `approve` or `spam`.
    pub verdict: String,
    pub created_at: i64,
    /// The voted message's evidence keys (JSON; `None` from before they were kept).
    pub stat_keys: Option<String>,
    /// The raw log-odds its summary line was printed with, if a summary showed it.
    pub shown_logit: Option<f64>,
}

impl VoteRow {
    /// Where the next read starts.
    pub fn cursor(&self) -> VoteCursor {
        VoteCursor { created_at: self.created_at, subscriber_id: self.subscriber_id, message_id: self.message_id }
    }
}

/// A position in the vote order; the default is before the first vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteCursor {
    pub created_at: i64,
    pub subscriber_id: i64,
    pub message_id: i64,
}

impl Default for VoteCursor {
    fn default() -> Self {
        VoteCursor { created_at: i64::MIN, subscriber_id: i64::MIN, message_id: i64::MIN }
    }
}

/// A message the statistics deleted, as they read it back: a label of the recipient's
/// mail that no answer gives (the recipient's prior counts it), with its keys (what they
/// said when it was deleted counts in the silence ratios).
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, Eq)]
pub struct DeletionRow {
    pub subscriber_id: i64,
    pub message_id: i64,
    pub decided_at: i64,
    pub stat_keys: Option<String>,
}

impl DeletionRow {
    /// Where the next read starts.
    pub fn cursor(&self) -> DeletionCursor {
        DeletionCursor { decided_at: self.decided_at, message_id: self.message_id }
    }
}

/// A position in the order of statistical deletions; the default is before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletionCursor {
    pub decided_at: i64,
    pub message_id: i64,
}

impl Default for DeletionCursor {
    fn default() -> Self {
        DeletionCursor { decided_at: i64::MIN, message_id: i64::MIN }
    }
}

/// A user's trust status, as written for the operator.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, serde::Serialize)]
pub struct TrustRow {
    pub subscriber_id: i64,
    #[sqlx(default)]
    pub email: String,
    pub status: String,
    pub reason: String,
    pub approvals: i64,
    pub spam: i64,
    pub computed_at: i64,
}

/// A row of the correlation table.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, serde::Serialize)]
pub struct CorrelationRow {
    pub user_id: i64,
    pub cuser_id: i64,
    pub rms_error: f64,
    pub confidence: f64,
    pub max_rms_error: f64,
    pub domains: i64,
    pub computed_at: i64,
}

/// A row of the correlation table with both users' addresses, as the operator reads it.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, serde::Serialize)]
pub struct CorrelationLine {
    pub user_email: String,
    pub cuser_email: String,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub row: CorrelationRow,
}

/// One row of a reputation table ([`quorum_reputation`]) as stored: its counts are on the
/// common scale ([`quorum_reputation::Counts::as_of`] gives them at a time).
#[derive(Debug, Clone, PartialEq)]
pub struct ReputationRow {
    pub name: String,
    pub counts: quorum_reputation::Counts,
    pub first_seen: i64,
    pub last_seen: i64,
}

type ReputationColumns = (String, String, f64, f64, f64, f64, f64, f64, f64, f64, i64, i64);

impl ReputationRow {
    /// A stored row with its kind; none for a kind this version does not know.
    pub(crate) fn keyed(r: ReputationColumns) -> Option<(quorum_reputation::Key, Self)> {
        let (
            kind,
            name,
            messages,
            recipients,
            spam,
            approvals,
            probe,
            nonexistent,
            forged,
            inbox,
            first_seen,
            last_seen,
        ) = r;
        let counts =
            quorum_reputation::Counts { messages, recipients, spam, approvals, probe, nonexistent, forged, inbox };
        let key = quorum_reputation::Key { kind: kind.parse().ok()?, name: name.clone() };
        Some((key, ReputationRow { name, counts, first_seen, last_seen }))
    }
}

/// One evidence key's standing with every counted user at full weight: its log-likelihood
/// ratio, and how many of its units (a domain's senders, a URL's or network's campaigns, an
/// item's voters) the votes call spam or not.
#[derive(Debug, Clone, sqlx::FromRow, PartialEq, serde::Serialize)]
pub struct KeyRow {
    /// `sender`, `domain`, `campaign`, `url`, `reply_to`, `network`, `short_text`, `attachment`.
    pub kind: String,
    pub name: String,
    pub logit: f64,
    pub spam_units: i64,
    pub ham_units: i64,
    pub computed_at: i64,
}

impl KeyRow {
    /// What the key alone makes of a message carrying it, from an even prior.
    pub fn p_spam(&self) -> f64 {
        1.0 / (1.0 + (-self.logit).exp())
    }
}

/// What one statistics refresh writes for the operator.
#[derive(Debug, Clone, Default)]
pub struct StatisticsUpdate {
    pub trust: Vec<TrustRow>,
    /// Per target user: its correlations now (replacing the previous ones).
    pub correlations: Vec<(i64, Vec<CorrelationRow>)>,
    /// The evidence keys the votes read since the last refresh touched.
    pub keys: Vec<KeyRow>,
}

/// Who a web session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Subscriber(i64),
    Operator(i64),
}

/// A held message whose confirmation is queued ([`PollItem::Quarantine::confirm_to`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingConfirmation {
    pub message_id: i64,
    pub sender: String,
    pub subject: Option<String>,
    /// Claimed already (a worker died between the claim and the send): send it now.
    pub claimed: bool,
}

/// The start of the reason of a held message whose classification failed (a step of it
/// panicked): the worker holds it and goes on; [`WorkerTotals::unclassified`] counts them.
pub const UNCLASSIFIED: &str = "could not be classified: ";

/// The workers' state at a glance (the operator's dashboard).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerTotals {
    pub mailboxes: i64,
    pub enabled: i64,
    /// Enabled mailboxes whose last poll failed.
    pub failing: i64,
    /// Held messages that could not be classified ([`UNCLASSIFIED`]): a bug to report.
    pub unclassified: i64,
    /// When the least recently polled enabled mailbox was polled (`Some(-1)`: one never was).
    pub oldest_poll_at: Option<i64>,
    /// Releases not yet delivered.
    pub outbox_backlog: i64,
}

/// What a subscriber can change about their service on the web.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriberSettings {
    pub approved_days: i64,
    pub summary_times: String,
    pub time_zone: String,
    pub confirmations: bool,
    /// The POP3 user name (shown, and needed to check a new POP3 password).
    pub username: String,
}
