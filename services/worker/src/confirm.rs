//! Confirmations (SPEC 2.4): sending them after a poll, and applying what comes back to
//! their VERP addresses in the robot mailbox. The rules for who gets one and how answers
//! are read are in `quorum_challenge`.

use std::sync::Arc;

use quorum_challenge::{Response, classify_response, compose, verp_address};
use quorum_config::{ConfirmationSettings, SummarySettings};
use quorum_domain::{EmailAddress, Keys, Timestamp, release::rfc5322_date};
use quorum_mailer::{Mailer, MailerError};
use quorum_storage::{Database, ReleaseSelection, StorageError, Vote};

/// Sends confirmations through the service's SMTP server.
#[derive(Clone)]
pub struct Confirmer {
    mailer: Mailer,
    keys: Arc<Keys>,
    local: String,
    domain: String,
    hourly_cap: i64,
}

impl Confirmer {
    /// The VERP address lives under the summary reply address, which the robot mailbox
    /// receives.
    pub fn new(mailer: Mailer, keys: Arc<Keys>, summary: &SummarySettings, settings: &ConfirmationSettings) -> Self {
        Confirmer {
            mailer,
            keys,
            local: summary.reply_local.clone(),
            domain: summary.reply_domain.clone(),
            hourly_cap: settings.hourly_cap,
        }
    }

    /// Sends the confirmations queued with the mailbox's held messages (the poll queued
    /// them in its own transaction: [`quorum_storage::PollItem::Quarantine::confirm_to`]),
    /// as far as the limits allow; returns how many went out. Each is claimed (the limits),
    /// sent, then taken off the queue, so a worker that dies after the commit, or between
    /// the claim and the send, leaves it queued and the next pass sends it; only a death
    /// between the SMTP server's 250 and the next statement sends it twice. A transient
    /// SMTP failure keeps it queued (and, if it was claimed now, unclaimed); a refusal
    /// takes it off.
    pub async fn send<DB: Database>(
        &self,
        db: &DB,
        subscriber_id: i64,
        subscriber: &EmailAddress,
        mailbox_id: i64,
        now: Timestamp,
    ) -> Result<usize, StorageError> {
        let mut sent = 0;
        for c in db.pending_confirmations(mailbox_id).await? {
            let Ok(sender) = EmailAddress::parse(&c.sender) else {
                db.confirmation_done(c.message_id).await?;
                continue;
            };
            let claimed_now = !c.claimed;
            if claimed_now && !db.claim_confirmation(subscriber_id, c.message_id, &sender, now, self.hourly_cap).await?
            {
                // Not allowed (one per sender per day, the hourly cap): never sent.
                db.confirmation_done(c.message_id).await?;
                continue;
            }
            crate::fail_point("after-confirmation-claim");
            let verp = verp_address(&self.keys, c.message_id, now, &self.local, &self.domain);
            let id = format!("cnfm-{}.{}@{}", c.message_id, now.0, self.domain);
            let raw = compose(subscriber, &sender, c.subject.as_deref(), &verp, &rfc5322_date(now), &id);
            match self.mailer.send_from(&verp, &sender, &raw).await {
                Ok(()) => {
                    db.confirmation_done(c.message_id).await?;
                    sent += 1;
                    metrics::counter!("quorum_confirmations_sent_total").increment(1);
                }
                Err(e) => {
                    tracing::warn!(message = c.message_id, error = %e, "confirmation not sent");
                    let refused = matches!(e, MailerError::Refused(_));
                    if refused || claimed_now {
                        // Not sent: it does not count against the sender's 24 h.
                        db.unclaim_confirmation(c.message_id).await?;
                    }
                    if refused {
                        db.confirmation_done(c.message_id).await?;
                    }
                }
            }
        }
        Ok(sent)
    }
}

/// What an answer to a confirmation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The sender does not exist: the held message was deleted as `deleted_nonexistent`.
    Nonexistent,
    /// The sender replied: the held message is queued for delivery.
    Released,
    /// An auto-reply, a delay report, or an answer about a message already decided.
    Ignored(String),
}

/// Applies a message that arrived at the VERP address of the confirmation about held
/// message `message_id` (verified by the caller).
pub async fn answer_confirmation<DB: Database>(
    db: &DB,
    message_id: i64,
    raw: &[u8],
    now: Timestamp,
) -> Result<Answered, StorageError> {
    let Some(c) = db.confirmation(message_id).await? else {
        return Ok(Answered::Ignored("no confirmation was sent about this message".into()));
    };
    let sender = EmailAddress::parse(&c.sender).ok();
    match classify_response(raw) {
        Response::Bounce(why) => {
            db.confirmation_answered(message_id, "bounced", now).await?;
            let Some(sender) = sender else { return Ok(Answered::Ignored("stored sender unreadable".into())) };
            // The sender does not exist: the message goes, and its non-existent sender
            // counts as spam evidence (SPEC 2.4).
            if db
                .reject_message(c.subscriber_id, c.mailbox_id, message_id, Some(&sender), "deleted_nonexistent", now)
                .await?
            {
                db.record_vote(c.subscriber_id, message_id, &sender, Vote::Spam, now).await?;
                tracing::info!(message = message_id, %why, "confirmation bounced: held message deleted");
                return Ok(Answered::Nonexistent);
            }
            Ok(Answered::Ignored(format!("bounce for a message no longer held ({})", c.status)))
        }
        Response::Reply => {
            db.confirmation_answered(message_id, "replied", now).await?;
            let recipient = EmailAddress::parse(&c.subscriber_email)
                .map_err(|_| StorageError::Corrupt(format!("subscriber {} email", c.subscriber_id)))?;
            // That one message is delivered; the sender is not approved (SPEC 2.4).
            if db.queue_release(c.mailbox_id, ReleaseSelection::One(message_id), &recipient, now).await? > 0 {
                return Ok(Answered::Released);
            }
            Ok(Answered::Ignored(format!("reply for a message no longer held ({})", c.status)))
        }
        Response::AutoReply(why) => {
            db.confirmation_answered(message_id, "auto_replied", now).await?;
            Ok(Answered::Ignored(why))
        }
        Response::Report(why) => Ok(Answered::Ignored(why)),
    }
}
