//! The worker: leases due mailboxes, polls each one (SPEC 2.1) and records the outcome.
//!
//! Up to `concurrency` mailboxes are polled at once, each in its own task with its own
//! timeouts, so one slow or broken mailbox holds one slot and never stalls the others.

mod check;
mod confirm;
mod failpoint;
mod idle;
use idle::{Watcher, Watchers};
mod maildrop;
mod poll;
mod release;
mod replies;
mod robot;

use std::{sync::Arc, time::Duration};

use quorum_config::WorkerSettings;
use quorum_domain::{Keys, Timestamp};
use quorum_forgery::Checker;
use quorum_pop3::{ConnectOptions, Endpoint, TlsSettings};
use quorum_statistics::Statistics;
use quorum_storage::{Database, LeasedMailbox, PollOutcome, PollStatus};
use tokio::{sync::watch, task::JoinSet};

pub use check::{CheckFailure, CheckReport, CheckStep, check_imap_mailbox, check_mailbox};
pub use confirm::{Answered, Confirmer, answer_confirmation};
pub use failpoint::fail_point;
pub use maildrop::{DELETED_FOLDER, HELD_FOLDER, MailError};
pub use poll::{PollError, PollReport};
pub use release::{Deliverer, DeliveryError, DeliveryReport, ImapReach};
pub use replies::{Applied, Held, Receipt, ReplyError, apply_action, apply_reply, send_receipt, send_refusal_notice};
pub use robot::{RobotError, RobotReport, poll_robot};

/// How often the worker looks for due mailboxes when it has free slots.
const TICK: Duration = Duration::from_secs(1);

pub struct Worker<DB: Database> {
    db: DB,
    keys: Arc<Keys>,
    settings: WorkerSettings,
    tls: Arc<rustls::ClientConfig>,
    checker: Checker,
    confirmer: Option<Confirmer>,
    statistics: Option<Arc<Statistics>>,
    name: String,
    /// IDLE connections to the IMAP mailboxes this worker polled ([`idle`]), and who
    /// watches (this worker's name, the renewal period).
    watchers: Watchers,
    watcher: Watcher,
    /// The bound on watchers was reported (once per process).
    bound_reported: Arc<std::sync::atomic::AtomicBool>,
}

impl<DB: Database> Clone for Worker<DB> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            keys: self.keys.clone(),
            settings: self.settings.clone(),
            tls: self.tls.clone(),
            checker: self.checker.clone(),
            confirmer: self.confirmer.clone(),
            statistics: self.statistics.clone(),
            name: self.name.clone(),
            watchers: self.watchers.clone(),
            watcher: self.watcher.clone(),
            bound_reported: self.bound_reported.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] quorum_transport::TransportError),
    #[error(transparent)]
    Storage(#[from] quorum_storage::StorageError),
}

impl<DB: Database> Worker<DB> {
    /// A worker; `checker` runs the forgery checks on what it retrieves.
    pub fn new(db: DB, keys: Arc<Keys>, settings: WorkerSettings, checker: Checker) -> Result<Self, WorkerError> {
        let tls = TlsSettings { extra_ca_files: settings.tls_ca_files.clone() }.client_config()?;
        let name = settings.name.clone().unwrap_or_else(default_name);
        let watcher = Watcher { owner: name.as_str().into(), renew: settings.idle_renew() };
        Ok(Self {
            db,
            keys,
            settings,
            tls,
            checker,
            confirmer: None,
            statistics: None,
            name,
            watchers: Watchers::default(),
            watcher,
            bound_reported: Arc::default(),
        })
    }

    /// Deletes what the collaborative statistics make certain (SPEC 2.2), keeping them
    /// fresh every `refresh` while running.
    pub fn with_statistics(mut self, statistics: Arc<Statistics>) -> Self {
        self.statistics = Some(statistics);
        self
    }

    /// Reads new votes into the statistics now.
    pub async fn sync_statistics(&self) {
        if let Some(stats) = &self.statistics {
            match stats.sync(&self.db, Timestamp::now()).await {
                Ok(s) if s.votes > 0 => tracing::info!(votes = s.votes, users = s.users, "statistics refreshed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "statistics not refreshed"),
            }
        }
    }

    /// Sends confirmations to unknown senders after each poll (SPEC 2.4).
    pub fn with_confirmations(mut self, confirmer: Confirmer) -> Self {
        self.confirmer = Some(confirmer);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn connect_options(&self, mailbox: &LeasedMailbox) -> ConnectOptions {
        let m = &mailbox.settings;
        self.connect_options_for(&m.host, m.port, m.security)
    }

    /// Options for any POP3 server with this worker's timeouts, size cap and trust store.
    pub fn connect_options_for(&self, host: &str, port: u16, security: quorum_domain::Security) -> ConnectOptions {
        ConnectOptions {
            endpoint: Endpoint {
                host: host.to_string(),
                port,
                security,
                timeout: self.settings.pop3_timeout(),
                tls: self.tls.clone(),
            },
            max_message_size: self.settings.max_message_size,
        }
    }

    /// Polls the robot mailbox every poll interval until `shutdown` turns true; what the
    /// replies release goes out with the delivery loop's next pass.
    pub async fn run_robot(
        &self,
        robot: quorum_config::RobotSettings,
        policy: quorum_summary::ReplyPolicy,
        mailer: quorum_mailer::Mailer,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let options = self.connect_options_for(&robot.host, robot.port, robot.security);
        loop {
            match poll_robot(&self.db, &self.keys, &mailer, &robot, &policy, &options).await {
                Ok(report) if report.applied + report.rejected + report.confirmations > 0 => tracing::info!(
                    applied = report.applied,
                    rejected = report.rejected,
                    confirmations = report.confirmations,
                    "robot mailbox polled"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "robot mailbox poll failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval()) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Polls until `shutdown` turns true; polls in flight then finish (their leases would
    /// otherwise block the mailboxes until they expire).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        let stale = self.db.release_leases(&self.name).await?;
        tracing::info!(worker = %self.name, concurrency = self.settings.concurrency, stale_leases = stale, "worker started");
        let mut running = JoinSet::new();
        let mut statistics_due = std::time::Instant::now();
        loop {
            while running.try_join_next().is_some() {}
            if std::time::Instant::now() >= statistics_due {
                self.sync_statistics().await;
                statistics_due = std::time::Instant::now()
                    + self.statistics.as_ref().map_or(Duration::from_secs(60), |s| s.refresh_every());
            }
            let free = self.settings.concurrency.saturating_sub(running.len());
            if free > 0 && !*shutdown.borrow() {
                let now = Timestamp::now();
                let lease_until = now.plus(Duration::from_secs(self.settings.lease_secs));
                match self.db.lease_due_mailboxes(&self.name, now, lease_until, free as i64).await {
                    Ok(mailboxes) => {
                        for mailbox in mailboxes {
                            let worker = self.clone();
                            running.spawn(async move {
                                let outcome = worker.poll(mailbox.clone()).await;
                                if outcome.status == PollStatus::Ok {
                                    worker.watch(&mailbox);
                                }
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot lease mailboxes"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = running.join_next(), if !running.is_empty() => {}
                _ = self.watchers.woken() => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        while running.join_next().await.is_some() {}
        self.watchers.stop();
        // Other workers may watch this one's mailboxes at once.
        if let Err(e) = self.db.release_leases(&self.name).await {
            tracing::warn!(worker = %self.name, error = %e, "could not give up the IDLE watch claims; they run out");
        }
        tracing::info!(worker = %self.name, "worker stopped");
        Ok(())
    }

    /// After a good poll of an IMAP mailbox: watch it with IDLE, within the bound.
    fn watch(&self, mailbox: &LeasedMailbox) {
        let limit = self.settings.idle_connections;
        let imap = mailbox.settings.protocol == quorum_domain::Protocol::Imap;
        if !imap || limit == 0 && self.bound_reported() {
            return;
        }
        let watched = self.watchers.watching(mailbox.mailbox_id) || {
            let Ok(password) = self.keys.decrypt_password(&mailbox.settings.password_enc, mailbox.email.as_str())
            else {
                return;
            };
            let endpoint = self.connect_options(mailbox).endpoint;
            self.watchers.watch(&self.db, mailbox, endpoint, password, limit, &self.watcher)
        };
        metrics::gauge!("quorum_idle_watchers").set(self.watchers.len() as f64);
        if !watched && !self.bound_reported() {
            self.bound_reported.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                bound = limit,
                "IDLE bound reached ([worker] idle_connections): further IMAP mailboxes are polled only"
            );
        }
    }

    fn bound_reported(&self) -> bool {
        self.bound_reported.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Polls one leased mailbox, records the outcome and releases the lease.
    pub async fn poll(&self, mailbox: LeasedMailbox) -> PollOutcome {
        let started = Timestamp::now();
        // In a task of its own, so that a panic (a bug) is recorded against this mailbox
        // and its lease released, instead of vanishing with the lease held.
        let (db, keys, checker, statistics, options, leased) = (
            self.db.clone(),
            self.keys.clone(),
            self.checker.clone(),
            self.statistics.clone(),
            self.connect_options(&mailbox),
            mailbox.clone(),
        );
        // The whole session must end well inside the lease, or a second worker could start
        // on the mailbox; cutting it short is as safe as a crash (nothing deleted unstored).
        let deadline = Duration::from_secs(self.settings.lease_secs * 9 / 10);
        let session =
            async move { poll::poll_mailbox(&db, &keys, &checker, statistics.as_deref(), &options, &leased).await };
        let result = tokio::spawn(async move {
            tokio::time::timeout(deadline, session).await.unwrap_or(Err(PollError::Deadline(deadline.as_secs())))
        })
        .await
        .unwrap_or_else(|e| Err(PollError::Internal(e.to_string())));
        let s = &self.settings;
        let (status, error, retry_after, report) = match result {
            Ok(report) => {
                let error = (!report.skipped.is_empty()).then(|| report.skipped.join("; "));
                (PollStatus::Ok, error, s.poll_interval_secs, report)
            }
            Err(e) if e.is_busy() => (PollStatus::Busy, Some(e.to_string()), s.retry_busy_secs, PollReport::default()),
            Err(e) => (PollStatus::Error, Some(e.to_string()), s.retry_error_secs, PollReport::default()),
        };
        match status {
            PollStatus::Error => tracing::warn!(mailbox = mailbox.mailbox_id, error = ?error, "poll failed"),
            _ => tracing::info!(
                mailbox = mailbox.mailbox_id,
                status = status.as_str(),
                quarantined = report.quarantined,
                forged = report.forged,
                kept = report.kept,
                "polled"
            ),
        }
        metrics::counter!("quorum_polls_total", "status" => status.as_str()).increment(1);
        metrics::counter!("quorum_messages_quarantined_total").increment(report.quarantined as u64);
        metrics::counter!("quorum_messages_kept_total").increment(report.kept as u64);
        metrics::counter!("quorum_messages_forged_total").increment(report.forged as u64);
        let outcome = PollOutcome {
            status,
            error,
            polled_at: started,
            next_poll_at: Timestamp::now().plus(Duration::from_secs(retry_after)),
            quarantined: report.quarantined,
            kept: report.kept,
        };
        match self.db.finish_poll(mailbox.mailbox_id, &self.name, &outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                mailbox = mailbox.mailbox_id,
                "the lease expired during the poll and another worker took the mailbox; outcome not recorded"
            ),
            Err(e) => tracing::error!(mailbox = mailbox.mailbox_id, error = %e, "cannot record poll outcome"),
        }
        // After the lease is released: SMTP must not keep the mailbox from being polled.
        if let Some(confirmer) = &self.confirmer {
            match confirmer
                .send(&self.db, mailbox.subscriber_id, &mailbox.email, mailbox.mailbox_id, Timestamp::now())
                .await
            {
                Ok(sent) if sent > 0 => tracing::info!(mailbox = mailbox.mailbox_id, sent, "confirmations sent"),
                Ok(_) => {}
                Err(e) => tracing::warn!(mailbox = mailbox.mailbox_id, error = %e, "confirmations not sent"),
            }
        }
        outcome
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{}-{}", if host.is_empty() { "worker" } else { &host }, std::process::id())
}
