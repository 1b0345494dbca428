//! Summaries (SPEC 2.3): what each subscriber gets twice a day, and on request again.

use std::sync::Arc;

use lettre::message::{Mailbox, Message, header::ContentType};
use quorum_config::SummarySettings;
use quorum_domain::{EmailAddress, Keys, ReleaseMarker, Timestamp, release::rfc5322_date, schedule::SummarySchedule};
use quorum_forgery::{Checker, Providers, recheck_incomplete};
use quorum_mailer::{Mailer, MailerError};
use quorum_statistics::Statistics;
use quorum_storage::{Database, StorageError, SubscriberStatus};
use quorum_summary::{Counts, FORGED_LINES, ForgedLine, HeldLine, compose, reply_address};
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

/// Held messages older than this many days ...
const PURGE_UNLIKELY_AFTER_DAYS: i64 = 14;
/// ... whose chance of not being spam is below this are purged (SPEC 2.3).
const PURGE_BELOW: f64 = 1.0 / 1000.0;

pub struct SummarySender<DB: Database> {
    db: DB,
    keys: Keys,
    mailer: Mailer,
    settings: SummarySettings,
    checker: Checker,
    statistics: Arc<Statistics>,
}

/// A summary that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSummary {
    pub summary_id: i64,
    pub held: usize,
}

impl<DB: Database> SummarySender<DB> {
    /// Before composing, `checker` re-runs forgery checks a DNS failure left incomplete and
    /// `statistics` judge what is held again.
    pub fn new(
        db: DB,
        keys: Keys,
        mailer: Mailer,
        settings: SummarySettings,
        checker: Checker,
        statistics: Arc<Statistics>,
    ) -> Self {
        Self { db, keys, mailer, settings, checker, statistics }
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
        let providers = Providers::new(self.db.providers().await?);
        // Checks a DNS failure cut short run again first: what is now proven forged is
        // deleted instead of listed (SPEC 2.3, "statistics are re-run"; here, the checks).
        let rechecked = recheck_incomplete(&self.db, &self.checker, &providers, subscriber.subscriber_id, now).await?;
        if rechecked.checked > 0 {
            tracing::info!(subscriber = subscriber.subscriber_id, ?rechecked, "incomplete forgery checks run again");
        }
        let held = self.db.held(subscriber.mailbox_id).await?;
        let since = self.db.last_summary_at(subscriber.subscriber_id).await?.unwrap_or(Timestamp(0));
        // The statistics are re-run for what is held (SPEC 2.3): new votes may condemn it
        // now, and each line is ranked by its chance of not being spam (½ without a sender).
        if let Err(e) = self.statistics.sync(&self.db, now).await {
            tracing::warn!(error = %e, "statistics not refreshed before the summary");
        }
        // Each line: what is printed (calibrated) and, if judged, the raw P(not spam) and
        // log-odds.
        let mut judged = Vec::with_capacity(held.len());
        for m in held {
            let Some(from) = m.from_address.as_deref().and_then(|a| EmailAddress::parse(a).ok()) else {
                judged.push((m, 0.5, None));
                continue;
            };
            // The keys the worker judged it by; from before they were kept: its sender,
            // domain and campaign.
            let evidence = match m.stat_keys.as_deref().and_then(quorum_statistics::keys::decode) {
                Some(keys) => keys,
                None => self.statistics.evidence(&quorum_statistics::keys::Facts {
                    from: from.as_str(),
                    own_address: from == email,
                    major_isp: providers.get(from.domain()).is_some_and(|p| p.major_isp),
                    fingerprint: None,
                    campaign: m.campaign_id,
                    network: None,
                }),
            };
            let j = self.statistics.judge(subscriber.subscriber_id, &evidence).await;
            if j.delete() {
                let reason = Statistics::reason(&j);
                if self.db.mark_deleted(subscriber.mailbox_id, m.id, "deleted_statistical", &reason, now).await? {
                    continue;
                }
            }
            judged.push((m, j.not_spam(), Some((1.0 - j.p_spam(), j.logit()))));
        }
        let decided = self.db.decided_since(subscriber.mailbox_id, since).await?;
        if judged.is_empty() && decided == Default::default() {
            return Ok(None);
        }
        // Retention (SPEC 2.3): after 14 days, what is almost certainly spam is purged.
        // By the raw P(not spam): the calibration only says how to print it.
        let mut kept = Vec::with_capacity(judged.len());
        let mut shown = Vec::with_capacity(judged.len());
        for (m, not_spam, raw) in judged {
            let old = now.0 - m.quarantined_at >= PURGE_UNLIKELY_AFTER_DAYS * 86_400;
            if old && raw.map_or(not_spam, |(p, _)| p) < PURGE_BELOW && self.db.purge_message(m.id, now).await? {
                continue;
            }
            shown.extend(raw.map(|(_, logit)| (m.id, logit)));
            kept.push((m, not_spam));
        }
        if !shown.is_empty() {
            self.db.record_shown(&shown).await?;
        }
        let lines: Vec<HeldLine> = kept
            .iter()
            .map(|(m, not_spam)| HeldLine {
                message_id: m.id,
                from_name: m.from_name.clone(),
                from_address: m.from_address.clone(),
                subject: m.subject.clone(),
                not_spam: *not_spam,
                expires_in_days: self.settings.max_retention_days - (now.0 - m.quarantined_at) / 86_400,
                note: m.reason.clone(),
            })
            .collect();
        let forged: Vec<ForgedLine> = self
            .db
            .forged_since(subscriber.mailbox_id, since, FORGED_LINES as i64 + 1)
            .await?
            .into_iter()
            .map(|m| ForgedLine {
                from_name: m.from_name,
                from_address: m.from_address,
                subject: m.subject,
                reason: m.reason.unwrap_or_else(|| "forged".into()),
            })
            .collect();
        let counts = Counts { deleted: decided.deleted, forged: decided.forged, delivered: decided.delivered };
        let heading = SummarySchedule::parse(&subscriber.summary_times, &subscriber.time_zone)
            .map(|schedule| schedule.local_label(now))
            .unwrap_or_else(|_| rfc5322_date(now));
        let composed = compose(&email, &heading, counts, lines, &forged);
        let items: Vec<(String, i64)> = composed.items.iter().map(|(id, m)| (id.to_string(), *m)).collect();
        let summary_id = self.db.record_summary(subscriber.subscriber_id, &items, now).await?;
        let mut message = ReleaseMarker::notice(subscriber.mailbox_id, now).header_line(&self.keys).into_bytes();
        message.extend(self.message(&email, summary_id, composed.items.len(), composed.text, now)?);
        self.mailer.send(&email, &message).await?;
        self.db.summary_sent(summary_id, now).await?;
        tracing::info!(subscriber = subscriber.subscriber_id, summary = summary_id, held = items.len(), "summary sent");
        Ok(Some(SentSummary { summary_id, held: items.len() }))
    }

    fn message(
        &self,
        to: &EmailAddress,
        summary_id: i64,
        held: usize,
        text: String,
        now: Timestamp,
    ) -> Result<Vec<u8>, SummaryError> {
        let build = |e: &dyn std::fmt::Display| SummaryError::Build(e.to_string());
        let reply_to =
            reply_address(&self.keys, summary_id, now, &self.settings.reply_local, &self.settings.reply_domain);
        let from: Mailbox = format!("Quorum <{}>", self.mailer.from_address()).parse().map_err(|e| build(&e))?;
        let nonce: u64 = rand::thread_rng().r#gen();
        let message = Message::builder()
            .from(from)
            .to(to.as_str().parse().map_err(|e| build(&e))?)
            .reply_to(reply_to.parse().map_err(|e| build(&e))?)
            .subject(format!("Quorum summary: {held} held message{}", if held == 1 { "" } else { "s" }))
            // RFC 3834: no auto-responder should answer it (and one that quotes it back
            // would otherwise read as "delete everything"; replies marked so are refused).
            .header(AutoSubmitted)
            .message_id(Some(format!("<summary-{summary_id}.{nonce:x}@{}>", self.settings.reply_domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| build(&e))?;
        Ok(message.formatted())
    }
}

/// Sends summaries when they are due and applies the retention limit.
pub struct Scheduler<DB: Database> {
    sender: SummarySender<DB>,
}

/// What one scheduler pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub sent: usize,
    pub nothing_to_send: usize,
    pub failed: usize,
    pub purged: u64,
    pub expired_senders: u64,
    pub expired_campaigns: u64,
}

impl<DB: Database> Scheduler<DB> {
    pub fn new(sender: SummarySender<DB>) -> Self {
        Self { sender }
    }

    /// Sends every summary due at `now`, purges what is past `max_retention_days`,
    /// expires approved senders silent for their subscriber's `approved_days` and campaigns
    /// not seen for `[statistics] fingerprint_keep_days`.
    ///
    /// A due summary is claimed before it is sent (two schedulers never send the same one)
    /// and the next time is computed from `now`: a summary that fell due several times
    /// while the service was down is sent once. A failed send is retried in five minutes.
    pub async fn run_once(&self, now: Timestamp) -> Result<PassReport, SummaryError> {
        let db = &self.sender.db;
        let mut report = PassReport {
            purged: db
                .purge_older_than(Timestamp(now.0 - self.sender.settings.max_retention_days * 86_400), now)
                .await?,
            expired_senders: db.expire_approved_senders(now).await?,
            expired_campaigns: self.sender.statistics.expire_campaigns(db, now).await?,
            ..Default::default()
        };
        loop {
            let due = db.due_summaries(now, 100).await?;
            if due.is_empty() {
                return Ok(report);
            }
            for subscriber in due {
                let Some(due_at) = subscriber.next_summary_at.map(Timestamp) else { continue };
                let next = match SummarySchedule::parse(&subscriber.summary_times, &subscriber.time_zone) {
                    Ok(schedule) => schedule.next_after(now),
                    Err(e) => {
                        tracing::error!(subscriber = subscriber.subscriber_id, error = %e, "bad summary schedule; using the default");
                        SummarySchedule::parse(SummarySchedule::DEFAULT_TIMES, "UTC")
                            .expect("valid default")
                            .next_after(now)
                    }
                };
                // Claim for five minutes: a crash before the send retries it then; only after
                // the send succeeded does the next time move to the next local summary time.
                let retry = Timestamp(now.0 + 300);
                if !db.claim_summary(subscriber.subscriber_id, due_at, retry).await? {
                    continue;
                }
                match self.sender.send(&subscriber, now).await {
                    Ok(sent) => {
                        db.set_next_summary(subscriber.subscriber_id, next).await?;
                        if sent.is_some() {
                            report.sent += 1;
                        } else {
                            report.nothing_to_send += 1;
                        }
                    }
                    Err(e) => {
                        tracing::error!(subscriber = subscriber.subscriber_id, error = %e, "summary not sent; retrying in 5 minutes");
                        report.failed += 1;
                    }
                }
            }
        }
    }

    /// Runs a pass every 30 seconds until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.run_once(Timestamp::now()).await {
                Ok(r) if r.sent + r.failed > 0 || r.purged > 0 => {
                    tracing::info!(sent = r.sent, failed = r.failed, purged = r.purged, "scheduler pass")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "scheduler pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834).
#[derive(Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".into())
    }
}
