//! Delivery of released mail (SPEC 2.5): the durable outbox is drained through SMTP; a
//! release is done only when the server answered 250, otherwise it is retried with
//! exponential backoff. The message goes out as the original bytes plus Quorum's marker
//! and trace header ([`quorum_domain::release::release_message`]).

use std::{sync::Arc, time::Duration};

use quorum_domain::{EmailAddress, Keys, ReleaseMarker, Timestamp, release::release_message};
use quorum_mailer::{Mailer, MailerError};
use quorum_storage::{Database, PendingRelease};
use tokio::sync::watch;

/// Releases leased at a time: one, so a lease only has to outlast one SMTP session and a
/// slow server cannot let a lease lapse while its release waits its turn.
const BATCH: i64 = 1;
/// First retry after a failure; doubles per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Storage(#[from] quorum_storage::StorageError),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub failed: usize,
}

pub struct Deliverer<DB: Database> {
    db: DB,
    keys: Arc<Keys>,
    mailer: Mailer,
    name: String,
    lease: Duration,
}

impl<DB: Database> Deliverer<DB> {
    pub fn new(db: DB, keys: Arc<Keys>, mailer: Mailer, name: String) -> Self {
        // The lease on a release outlasts the longest SMTP session the mailer allows.
        let lease = mailer.session_limit() + Duration::from_secs(60);
        Self { db, keys, mailer, name, lease }
    }

    /// Delivers every release due now, once.
    pub async fn run_once(&self) -> Result<DeliveryReport, DeliveryError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = Timestamp::now();
            let due = self.db.lease_due_releases(&self.name, now, now.plus(self.lease), BATCH).await?;
            if due.is_empty() {
                return Ok(report);
            }
            for release in due {
                match self.deliver(&release).await {
                    Ok(()) => {
                        if !self.db.release_sent(release.outbox_id, &self.name, Timestamp::now()).await? {
                            tracing::warn!(message = release.message_id, "release sent after its lease lapsed");
                        }
                        metrics::counter!("quorum_releases_total", "result" => "sent").increment(1);
                        report.sent += 1;
                    }
                    Err(MailerError::Refused(error)) => {
                        tracing::warn!(message = release.message_id, %error, "release refused for good; the message is held again");
                        self.db.release_refused(release.outbox_id, &self.name).await?;
                        metrics::counter!("quorum_releases_total", "result" => "refused").increment(1);
                        report.failed += 1;
                    }
                    Err(error) => {
                        let error = error.to_string();
                        let retry = Timestamp::now().plus(backoff(release.attempts));
                        tracing::warn!(message = release.message_id, attempts = release.attempts + 1, %error, "release not delivered, will retry");
                        self.db.release_failed(release.outbox_id, &self.name, &error, retry).await?;
                        metrics::counter!("quorum_releases_total", "result" => "failed").increment(1);
                        report.failed += 1;
                    }
                }
            }
        }
    }

    async fn deliver(&self, release: &PendingRelease) -> Result<(), MailerError> {
        let recipient = EmailAddress::parse(&release.recipient).map_err(|e| MailerError::Refused(e.to_string()))?;
        let now = Timestamp::now();
        let marker = ReleaseMarker::release(release.mailbox_id, release.message_id, now);
        let bytes = release_message(&release.raw, &marker, &self.keys, &recipient, now);
        self.mailer.send(&recipient, &bytes).await
    }

    /// Delivers due releases every few seconds until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), DeliveryError> {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "release delivery pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return Ok(());
            }
        }
    }
}

/// Wait before attempt `attempts + 1`: 1 min, 2 min, 4 min, ... at most 1 h.
fn backoff(attempts: i64) -> Duration {
    let factor = 1u32.checked_shl(attempts.clamp(0, 31) as u32).unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_secs(60));
        assert_eq!(backoff(1), Duration::from_secs(120));
        assert_eq!(backoff(5), Duration::from_secs(1920));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
        assert_eq!(backoff(-3), Duration::from_secs(60));
    }
}
