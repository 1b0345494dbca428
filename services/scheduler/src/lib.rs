//! Summaries (SPEC 2.3): what each subscriber gets twice a day, and on request again.

use std::collections::HashMap;

use lettre::message::{Mailbox, Message, header::ContentType};
use quorum_config::SummarySettings;
use quorum_domain::{EmailAddress, Keys, ReleaseMarker, Timestamp, release::rfc5322_date};
use quorum_mailer::{Mailer, MailerError};
use quorum_storage::{Database, StorageError, SubscriberStatus};
use quorum_summary::{Counts, HeldLine, compose, reply_address};
use rand::Rng;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Mail(#[from] MailerError),
    #[error("building the summary message: {0}")]
    Build(String),
}

pub struct SummarySender<DB: Database> {
    db: DB,
    keys: Keys,
    mailer: Mailer,
    settings: SummarySettings,
}

/// A summary that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSummary {
    pub summary_id: i64,
    pub held: usize,
}

impl<DB: Database> SummarySender<DB> {
    pub fn new(db: DB, keys: Keys, mailer: Mailer, settings: SummarySettings) -> Self {
        Self { db, keys, mailer, settings }
    }

    /// Composes, records and sends the subscriber's current summary. Nothing is sent when
    /// nothing is held and nothing happened since the last summary (`Ok(None)`).
    pub async fn send(
        &self,
        subscriber: &SubscriberStatus,
        now: Timestamp,
    ) -> Result<Option<SentSummary>, SummaryError> {
        let email = EmailAddress::parse(&subscriber.email)
            .map_err(|_| StorageError::Corrupt(format!("subscriber {} email", subscriber.subscriber_id)))?;
        let held = self.db.held(subscriber.mailbox_id).await?;
        let since = self.db.last_summary_at(subscriber.subscriber_id).await?.unwrap_or(Timestamp(0));
        let decided = self.db.decided_since(subscriber.mailbox_id, since).await?;
        if held.is_empty() && decided == Default::default() {
            return Ok(None);
        }
        let votes: HashMap<String, (i64, i64)> = self
            .db
            .domain_votes(subscriber.subscriber_id)
            .await?
            .into_iter()
            .map(|v| (v.domain, (v.approvals, v.spam)))
            .collect();
        let lines: Vec<HeldLine> = held
            .iter()
            .map(|m| {
                let domain = m.from_address.as_deref().and_then(|a| a.rsplit_once('@')).map(|(_, d)| d);
                let (approvals, spam) = domain.and_then(|d| votes.get(d)).copied().unwrap_or((0, 0));
                HeldLine {
                    message_id: m.id,
                    from_name: m.from_name.clone(),
                    from_address: m.from_address.clone(),
                    subject: m.subject.clone(),
                    not_spam: not_spam(approvals, spam),
                    expires_in_days: self.settings.max_retention_days - (now.0 - m.quarantined_at) / 86_400,
                }
            })
            .collect();
        let counts = Counts { deleted: decided.deleted, forged: decided.forged, delivered: decided.delivered };
        let composed = compose(&email, &rfc5322_date(now), counts, lines);
        let items: Vec<(String, i64)> = composed.items.iter().map(|(id, m)| (id.to_string(), *m)).collect();
        let summary_id = self.db.record_summary(subscriber.subscriber_id, &items, now).await?;
        let mut message = ReleaseMarker::notice(subscriber.mailbox_id).header_line(&self.keys).into_bytes();
        message.extend(self.message(&email, summary_id, composed.items.len(), composed.text)?);
        self.mailer.send(&email, &message).await?;
        tracing::info!(subscriber = subscriber.subscriber_id, summary = summary_id, held = items.len(), "summary sent");
        Ok(Some(SentSummary { summary_id, held: items.len() }))
    }

    fn message(&self, to: &EmailAddress, summary_id: i64, held: usize, text: String) -> Result<Vec<u8>, SummaryError> {
        let build = |e: &dyn std::fmt::Display| SummaryError::Build(e.to_string());
        let reply_to = reply_address(&self.keys, summary_id, &self.settings.reply_local, &self.settings.reply_domain);
        let from: Mailbox = format!("Quorum <{}>", self.mailer.from_address()).parse().map_err(|e| build(&e))?;
        let nonce: u64 = rand::thread_rng().r#gen();
        let message = Message::builder()
            .from(from)
            .to(to.as_str().parse().map_err(|e| build(&e))?)
            .reply_to(reply_to.parse().map_err(|e| build(&e))?)
            .subject(format!("Quorum summary: {held} held message{}", if held == 1 { "" } else { "s" }))
            .message_id(Some(format!("<summary-{summary_id}.{nonce:x}@{}>", self.settings.reply_domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| build(&e))?;
        Ok(message.formatted())
    }
}

/// Until the collaborative statistics replace it: this subscriber's own votes on the
/// sender's domain, with Laplace's rule of succession, `(approvals + 1) / (votes + 2)`, so a
/// domain never voted on shows 50% and no finite count reaches 0% or 100%.
pub fn not_spam(approvals: i64, spam: i64) -> f64 {
    (approvals.max(0) as f64 + 1.0) / ((approvals.max(0) + spam.max(0)) as f64 + 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplace_score() {
        assert_eq!(not_spam(0, 0), 0.5);
        assert_eq!(not_spam(3, 0), 0.8);
        assert_eq!(not_spam(0, 8), 0.1);
        assert!(not_spam(1000, 0) < 1.0 && not_spam(0, 1000) > 0.0);
    }
}
