//! The reply processor (SPEC 2.3): a subscriber's answer to a summary, applied.
//!
//! Only a reply that carries a valid summary token and comes from that summary's
//! subscriber changes anything. Lines are applied to messages still held; a line whose
//! message was decided already (an earlier reply, a resent summary, a purge) is a no-op,
//! which makes applying the same reply twice harmless.

use std::fmt;

use quorum_domain::{EmailAddress, Keys, ReleaseMarker, Timestamp, release::rfc5322_date};
use quorum_mailer::Mailer;
use quorum_storage::{Database, ReleaseSelection, StorageError, Vote};
use quorum_summary::{Action, AuthError, ReplyPolicy, ShortId, Verdict, check_sender, parse_reply, verified_summary};

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("reply rejected: {0}")]
    Rejected(#[from] AuthError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a reply did, as the receipt tells it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub approved: usize,
    pub delivered: usize,
    pub deleted: usize,
    /// Lines whose message is no longer held (decided before, or purged).
    pub not_found: usize,
    /// Lines removed from the reply: still held.
    pub kept: usize,
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} approved, {} delivered, {} deleted, {} not found, {} still held",
            self.approved, self.delivered, self.deleted, self.not_found, self.kept
        )
    }
}

/// Who a reply came from, and what it did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub subscriber: EmailAddress,
    /// The subscriber's mailbox (the receipt's marker names it).
    pub mailbox_id: i64,
    pub receipt: Receipt,
}

/// Authenticates and applies a reply.
/// Releases are queued in the outbox (the caller or the delivery loop sends them).
pub async fn apply_reply<DB: Database>(
    db: &DB,
    keys: &Keys,
    policy: &ReplyPolicy,
    raw: &[u8],
    now: Timestamp,
) -> Result<Applied, ReplyError> {
    let summary_id = verified_summary(raw, keys, policy, now)?;
    let summary = db.summary_owner(summary_id).await?.ok_or(AuthError::UnknownSummary(summary_id))?;
    let (subscriber_id, owner) = (summary.subscriber_id, summary.email.clone());
    check_sender(raw, &owner, policy)?;

    let items = db.summary_items(summary_id).await?;
    let ids: Vec<ShortId> = items.iter().filter_map(|i| ShortId::parse(&i.short_id)).collect();
    let mut receipt = Receipt::default();
    let mut lines = parse_reply(raw, &ids);
    // Approvals first: a sender approved anywhere in this reply is not also blocked by an
    // empty box on another of its messages (that message is still deleted).
    lines.sort_by_key(|l| !matches!(l.verdict, Verdict::Action(Action::Approve)));
    let mut approved_now: Vec<EmailAddress> = Vec::new();
    for line in lines {
        let Some(item) = items.iter().find(|i| i.short_id == line.id.as_str()) else { continue };
        let Verdict::Action(action) = line.verdict else {
            receipt.kept += usize::from(item.status == "held");
            continue;
        };
        if item.status != "held" {
            receipt.not_found += 1;
            continue;
        }
        let sender = item.from_address.as_deref().and_then(|a| EmailAddress::parse(a).ok());
        let held = Held {
            subscriber_id,
            owner: &owner,
            mailbox_id: item.mailbox_id,
            message_id: item.message_id,
            sender: sender.as_ref(),
        };
        apply_action(db, &held, action, &mut approved_now, &mut receipt, now).await?;
    }
    tracing::info!(summary = summary_id, subscriber = subscriber_id, %receipt, "reply applied");
    Ok(Applied { subscriber: owner, mailbox_id: summary.mailbox_id, receipt })
}

/// A held message someone decided about: a line of a summary reply, or a button on the
/// subscriber's web page. Both go through [`apply_action`], so they have the same effects.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub subscriber_id: i64,
    /// The subscriber's address: where released mail goes.
    pub owner: &'a EmailAddress,
    pub mailbox_id: i64,
    pub message_id: i64,
    pub sender: Option<&'a EmailAddress>,
}

/// Applies one decision to a message that was held when it was read, and adds its effect to
/// `receipt`: `A` approves the sender (a vote), and releases this and every other held message
/// from it; `R` releases this one; an empty box deletes it, blocks the sender and votes spam.
/// `approved_now` holds senders approved earlier in the same reply: their mail is released
/// already, and an empty box on another of their messages deletes it without blocking them.
/// A message decided meanwhile (a second reply, a purge) counts as not found.
pub async fn apply_action<DB: Database>(
    db: &DB,
    held: &Held<'_>,
    action: Action,
    approved_now: &mut Vec<EmailAddress>,
    receipt: &mut Receipt,
    now: Timestamp,
) -> Result<(), StorageError> {
    let (subscriber_id, owner) = (held.subscriber_id, held.owner);
    match (action, held.sender) {
        (Action::Approve, Some(sender)) => {
            approved_now.push(sender.clone());
            db.approve_sender(subscriber_id, sender, now).await?;
            db.record_vote(subscriber_id, held.message_id, sender, Vote::Approve, now).await?;
            // This message and every other held one from the same sender.
            let released = db.queue_release(held.mailbox_id, ReleaseSelection::From(sender), owner, now).await?;
            receipt.approved += 1;
            receipt.delivered += released as usize;
        }
        // `A` on mail without a usable sender can approve no one: deliver it.
        (Action::Approve | Action::Release, _) => {
            let released =
                db.queue_release(held.mailbox_id, ReleaseSelection::One(held.message_id), owner, now).await?;
            receipt.delivered += released as usize;
            // Already on its way if an `A` in this reply released its sender's mail.
            let by_approval = held.sender.is_some_and(|s| approved_now.contains(s));
            receipt.not_found += usize::from(released == 0 && !by_approval);
        }
        (Action::Delete, _) => {
            let block = held.sender.filter(|s| !approved_now.contains(s));
            let status = "deleted_spam";
            if db.reject_message(subscriber_id, held.mailbox_id, held.message_id, block, status, now).await? {
                if let Some(sender) = block {
                    db.record_vote(subscriber_id, held.message_id, sender, Vote::Spam, now).await?;
                }
                receipt.deleted += 1;
            } else {
                receipt.not_found += 1;
            }
        }
    }
    Ok(())
}

/// Tells a subscriber, at most once a day, that a reply from their address was refused
/// and why (an old summary's expired address, a summary of another of their addresses):
/// otherwise an answer they took care over would vanish without a word. The caller has
/// checked that the refusal deserves a notice ([`quorum_summary::notice_address`]).
/// Returns whether one was sent.
pub async fn send_refusal_notice<DB: Database>(
    db: &DB,
    mailer: &Mailer,
    keys: &Keys,
    to: &EmailAddress,
    refusal: &AuthError,
    now: Timestamp,
) -> Result<bool, ReplyError> {
    let Some(subscriber) = db.subscriber_by_email(to).await? else { return Ok(false) };
    if !db.claim_refusal_notice(subscriber.subscriber_id, now, Timestamp(now.0 - REFUSAL_NOTICE_INTERVAL_SECS)).await? {
        return Ok(false);
    }
    let marker = ReleaseMarker::notice(subscriber.mailbox_id, now).header_line(keys);
    let text = format!(
        "{marker}From: Quorum <{from}>\r\nTo: <{to}>\r\nSubject: Quorum: your reply could not be applied\r\n\
         Date: {date}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         A reply from your address reached Quorum but changed nothing: {refusal}.\r\n\r\n\
         Answer the most recent summary (each summary's reply address works as long as\r\n\
         the messages it lists can be held), from the address it was sent to, or decide\r\n\
         on the held messages on the web page. If you did not write that reply, you can\r\n\
         ignore this message. You get at most one such notice a day.\r\n",
        from = mailer.from_address(),
        date = rfc5322_date(now),
    );
    if let Err(e) = mailer.send(to, text.as_bytes()).await {
        tracing::warn!(subscriber = subscriber.subscriber_id, error = %e, "refusal notice not sent");
        return Ok(false);
    }
    Ok(true)
}

/// At most one refusal notice per subscriber in this many seconds.
const REFUSAL_NOTICE_INTERVAL_SECS: i64 = 86_400;

/// Mails the receipt to the subscriber, marked so the worker leaves it in the Inbox.
pub async fn send_receipt(
    mailer: &Mailer,
    keys: &Keys,
    applied: &Applied,
    now: Timestamp,
) -> Result<(), quorum_mailer::MailerError> {
    let (to, receipt) = (&applied.subscriber, &applied.receipt);
    let marker = ReleaseMarker::notice(applied.mailbox_id, now).header_line(keys);
    let text = format!(
        "{marker}From: Quorum <{from}>\r\nTo: <{to}>\r\nSubject: Quorum: your reply was applied\r\nDate: {date}\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         Your reply to the summary was applied: {receipt}.\r\n",
        from = mailer.from_address(),
        date = rfc5322_date(now),
    );
    mailer.send(to, text.as_bytes()).await
}
