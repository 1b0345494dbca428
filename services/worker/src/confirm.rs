//! Confirmations (SPEC 2.4): sending them after a poll, and applying what comes back to
//! their VERP addresses in the robot mailbox. The rules for who gets one and how answers
//! are read are in `quorum_challenge`.

use std::sync::Arc;

use quorum_challenge::{Response, classify_response, compose, verp_address};
use quorum_config::{ConfirmationSettings, SummarySettings};
use quorum_domain::{EmailAddress, Keys, Timestamp, release::rfc5322_date};
use quorum_mailer::{Mailer, MailerError};
use quorum_storage::{Database, ReleaseSelection, StorageError, Vote};

/// A held message that may get a confirmation: its sender's domain vouched for it and its
/// headers show no list, bulk or auto-responder.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub message_id: i64,
    pub sender: EmailAddress,
    pub subject: Option<String>,
}

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

    /// Sends what the limits allow; returns how many went out. A confirmation is a
    /// courtesy to a possibly real sender: one that fails is logged, not retried (the
    /// message stays held either way).
    pub async fn send<DB: Database>(
        &self,
        db: &DB,
        subscriber_id: i64,
        subscriber: &EmailAddress,
        candidates: &[Candidate],
        now: Timestamp,
    ) -> Result<usize, StorageError> {
        let mut sent = 0;
        for c in candidates {
            if !db.claim_confirmation(subscriber_id, c.message_id, &c.sender, now, self.hourly_cap).await? {
                continue;
            }
            let verp = verp_address(&self.keys, c.message_id, now, &self.local, &self.domain);
            let id = format!("cnfm-{}.{}@{}", c.message_id, now.0, self.domain);
            let raw = compose(subscriber, &c.sender, c.subject.as_deref(), &verp, &rfc5322_date(now), &id);
            match self.mailer.send_from(&verp, &c.sender, &raw).await {
                Ok(()) => {
                    sent += 1;
                    metrics::counter!("quorum_confirmations_sent_total").increment(1);
                }
                Err(e) => {
                    tracing::warn!(message = c.message_id, error = %e, "confirmation not sent");
                    if matches!(e, MailerError::Refused(_)) {
                        // Refused for good: it does not count against the sender's 24 h.
                        db.unclaim_confirmation(c.message_id).await?;
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
