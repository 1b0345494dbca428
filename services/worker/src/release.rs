//! Delivery of released mail (SPEC 2.5): the durable outbox is drained through SMTP; a
//! release is done only when the server answered 250, otherwise it is retried with
//! exponential backoff. The message goes out as the original bytes plus Quorum's marker
//! and trace header ([`quorum_domain::release::release_message`]).
//!
//! An IMAP mailbox's released message is not re-sent: it is moved from `Quorum/Held` back to
//! the Inbox, the original bytes and flags, marked with [`RELEASED_KEYWORD`] first so the
//! next poll knows to look it up. Only if the subscriber's own client took it out of
//! `Quorum/Held` does it go by SMTP after all.

use std::{sync::Arc, time::Duration};

use quorum_domain::{EmailAddress, Keys, ReleaseMarker, Timestamp, release::release_message};
use quorum_imap::{Endpoint, Session};
use quorum_mailer::{Mailer, MailerError};
use quorum_storage::{Database, PendingRelease};
use quorum_transport::TlsConfig;
use tokio::sync::watch;

use crate::maildrop::{HELD_FOLDER, RELEASED_KEYWORD};

/// How the deliverer reaches IMAP mailboxes: the worker's trust store and timeout.
#[derive(Clone)]
pub struct ImapReach {
    pub tls: Arc<TlsConfig>,
    pub timeout: Duration,
}

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
    imap: ImapReach,
    name: String,
    lease: Duration,
}

impl<DB: Database> Deliverer<DB> {
    pub fn new(db: DB, keys: Arc<Keys>, mailer: Mailer, imap: ImapReach, name: String) -> Self {
        // The lease on a release outlasts the longest SMTP session the mailer allows, and
        // an IMAP move (a handful of exchanges, each within the timeout).
        let lease = mailer.session_limit().max(imap.timeout * 8) + Duration::from_secs(60);
        Self { db, keys, mailer, imap, name, lease }
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
        if release.protocol == quorum_domain::Protocol::Imap.as_str() {
            // Well inside the lease: a second deliverer must never find it lapsed and move
            // or send the same message while this one still works on it.
            let bound = self.lease.saturating_sub(Duration::from_secs(60));
            let moved = tokio::time::timeout(bound, self.move_back(release))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", bound.as_secs())));
            match moved {
                Ok(true) => return Ok(()),
                Ok(false) => tracing::info!(
                    message = release.message_id,
                    "released message no longer in Quorum/Held; delivering it by SMTP"
                ),
                // Retried with backoff, like an SMTP server that is away.
                Err(e) => return Err(MailerError::Send(format!("moving it back over IMAP: {e}"))),
            }
        }
        let recipient = EmailAddress::parse(&release.recipient).map_err(|e| MailerError::Refused(e.to_string()))?;
        let now = Timestamp::now();
        let marker = ReleaseMarker::release(release.mailbox_id, release.message_id, now);
        let bytes = release_message(&release.raw, &marker, &self.keys, &recipient, now);
        self.mailer.send(&recipient, &bytes).await
    }

    /// Moves the released message from `Quorum/Held` back to the Inbox, keyword first. True
    /// when it is in the Inbox now (also when an earlier attempt moved it and then lost its
    /// lease); false when neither folder holds those bytes. Candidates are found by size and
    /// confirmed by their bytes: only those few are fetched.
    async fn move_back(&self, release: &PendingRelease) -> Result<bool, String> {
        let mailbox = self
            .db
            .mailbox_of(release.subscriber_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the subscriber has no mailbox any more".to_string())?;
        let m = &mailbox.settings;
        let password = self
            .keys
            .decrypt_password(&m.password_enc, mailbox.email.as_str())
            .map_err(|_| "the stored mailbox password cannot be decrypted".to_string())?;
        let endpoint = Endpoint {
            host: m.host.clone(),
            port: m.port,
            security: m.security,
            timeout: self.imap.timeout,
            tls: self.imap.tls.clone(),
        };
        let imap = |e: quorum_imap::ImapError| e.to_string();
        let mut session = Session::connect(&endpoint, m.auth, &m.username, password.expose()).await.map_err(imap)?;
        let held = session.folder(&HELD_FOLDER).await.map_err(imap)?;
        for (folder, moved) in [(held.as_str(), false), ("INBOX", true)] {
            session.select(folder).await.map_err(imap)?;
            let candidates: Vec<u32> = session
                .list()
                .await
                .map_err(imap)?
                .into_iter()
                .filter(|l| u64::from(l.size) == release.raw.len() as u64)
                .filter(|l| !moved || l.keywords.iter().any(|k| k == RELEASED_KEYWORD))
                .map(|l| l.uid)
                .collect();
            let fetched = session.fetch(&candidates).await.map_err(imap)?;
            if let Some(uid) = fetched.into_iter().find(|f| f.bytes == release.raw).map(|f| f.uid) {
                if !moved {
                    session.add_keyword(&[uid], RELEASED_KEYWORD).await.map_err(imap)?;
                    session.move_to(&[uid], "INBOX").await.map_err(imap)?;
                }
                let _ = session.logout().await;
                return Ok(true);
            }
        }
        let _ = session.logout().await;
        Ok(false)
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
