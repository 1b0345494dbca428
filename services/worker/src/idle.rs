//! IDLE watchers (the IMAP issue): a worker keeps one IDLE connection per IMAP mailbox it
//! polls, up to `[worker] idle_connections`, so new mail is quarantined within seconds
//! instead of at the next poll. A watcher only notices: when the server announces a new
//! message it makes the mailbox due now ([`Database::poll_soon`]) and wakes the worker's
//! loop, which leases and polls due mailboxes as always. So a watcher never moves mail.
//!
//! One watcher per mailbox among all workers: a watcher first claims the mailbox in the
//! database ([`Database::claim_watch`]) before it connects, and renews the claim after each
//! IDLE; a mailbox
//! another worker watches is only polled by this one. The claim lasts two renewal periods,
//! so a watcher whose worker died leaves its mailbox unwatched (polled at its interval) at
//! most that long before the next worker to poll it watches it.
//!
//! Beyond the bound, for servers without IDLE, and after a failed login, a mailbox is only
//! polled. A watcher whose connection breaks reconnects after a pause; it stops when the
//! mailbox is removed, disabled or no longer IMAP, or its settings changed (the next poll
//! starts a watcher with the new ones).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use quorum_domain::{Protocol, Timestamp, secrets::Password};
use quorum_imap::{Endpoint, ImapError, Session};
use quorum_storage::{Database, LeasedMailbox, MailboxSettings};
use tokio::{sync::Notify, task::AbortHandle};

/// Pause before a broken watcher connects again.
const RECONNECT_AFTER: Duration = Duration::from_secs(30);

/// The watchers of one worker process.
#[derive(Clone, Default)]
pub(crate) struct Watchers {
    tasks: Arc<Mutex<HashMap<i64, AbortHandle>>>,
    /// Rung when a watcher made a mailbox due: the worker looks for due mailboxes now
    /// rather than at its next tick.
    wake: Arc<Notify>,
}

/// Who watches, and how long one IDLE lasts before it is re-issued (and the claim renewed).
#[derive(Clone)]
pub(crate) struct Watcher {
    /// The worker's name, the owner of its watch claims.
    pub(crate) owner: Arc<str>,
    pub(crate) renew: Duration,
}

/// Why a watcher ended.
enum End {
    /// The mailbox's settings are not the ones watched any more (or it is gone).
    Changed,
    /// Another worker watches it (its claim is live).
    WatchedElsewhere,
    /// The server has no IDLE, or refuses the login: polling alone.
    NotPossible(ImapError),
}

impl Watchers {
    /// Starts watching `mailbox` (just polled, with `endpoint` and `password`, which the
    /// watcher keeps as a [`Password`]: wiped when it ends) unless it is
    /// watched already or `limit` watchers run. False when the bound kept it from being
    /// watched.
    pub(crate) fn watch<DB: Database>(
        &self,
        db: &DB,
        mailbox: &LeasedMailbox,
        endpoint: Endpoint,
        password: Password,
        limit: usize,
        watcher: &Watcher,
    ) -> bool {
        let mut tasks = self.tasks.lock().expect("watchers lock");
        tasks.retain(|_, task| !task.is_finished());
        if tasks.contains_key(&mailbox.mailbox_id) {
            return true;
        }
        if tasks.len() >= limit {
            return false;
        }
        let (db, mailbox, all, wake) = (db.clone(), mailbox.clone(), self.tasks.clone(), self.wake.clone());
        let id = mailbox.mailbox_id;
        let watcher = watcher.clone();
        let task = tokio::spawn(async move {
            let watch = Watch { db, mailbox, endpoint, password, watcher, wake };
            match watch.run().await {
                End::Changed => tracing::info!(mailbox = id, "IDLE watcher stopped: the mailbox changed"),
                End::WatchedElsewhere => tracing::debug!(mailbox = id, "another worker watches this mailbox"),
                End::NotPossible(e) => tracing::info!(mailbox = id, error = %e, "IDLE not possible; polling only"),
            }
            if let Err(e) = watch.db.release_watch(id, &watch.watcher.owner).await {
                tracing::warn!(mailbox = id, error = %e, "could not give up the IDLE watch claim; it runs out");
            }
            all.lock().expect("watchers lock").remove(&id);
        });
        tasks.insert(id, task.abort_handle());
        true
    }

    /// Whether this worker watches the mailbox now (so a poll need not decrypt its password
    /// for a watcher).
    pub(crate) fn watching(&self, mailbox_id: i64) -> bool {
        self.tasks.lock().expect("watchers lock").get(&mailbox_id).is_some_and(|task| !task.is_finished())
    }

    pub(crate) fn len(&self) -> usize {
        let mut tasks = self.tasks.lock().expect("watchers lock");
        tasks.retain(|_, task| !task.is_finished());
        tasks.len()
    }

    /// Returns when a watcher made a mailbox due (at once if one did since the last call).
    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    /// Ends every watcher (the worker is stopping): their connections just close.
    pub(crate) fn stop(&self) {
        for (_, task) in self.tasks.lock().expect("watchers lock").drain() {
            task.abort();
        }
    }
}

/// One watcher: what it watches and how it wakes its worker.
struct Watch<DB> {
    db: DB,
    mailbox: LeasedMailbox,
    endpoint: Endpoint,
    password: Password,
    watcher: Watcher,
    wake: Arc<Notify>,
}

impl<DB: Database> Watch<DB> {
    async fn run(&self) -> End {
        loop {
            if !self.claim().await {
                return End::WatchedElsewhere;
            }
            match self.session().await {
                Ok(end) => return end,
                Err(e) if e.is_auth_failure() || matches!(e, ImapError::Unsupported(_)) => return End::NotPossible(e),
                Err(e) => {
                    tracing::debug!(mailbox = self.mailbox.mailbox_id, error = %e, "IDLE connection broke; reconnecting")
                }
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
            if !self.unchanged().await {
                return End::Changed;
            }
        }
    }

    /// One connection: IDLE, re-issued every `renew`, until it breaks or the mailbox changes.
    async fn session(&self) -> Result<End, ImapError> {
        let m = &self.mailbox.settings;
        let mut session = Session::connect(&self.endpoint, m.auth, &m.username, self.password.expose()).await?;
        if !session.capabilities().idle {
            return Err(ImapError::Unsupported("IDLE"));
        }
        // Mail that came between the poll and this IDLE was announced to no one: if the
        // Inbox holds anything, one more poll (it finds nothing new when there is nothing).
        if session.select("INBOX").await?.exists > 0 {
            self.mark_due().await;
        }
        // The claim was made just before this connection ([`Watch::run`]); it is renewed
        // after each IDLE, at most one renewal period later.
        loop {
            let (back, news) = session.idle(self.watcher.renew).await?;
            session = back;
            if news {
                self.mark_due().await;
                metrics::counter!("quorum_idle_wakeups_total").increment(1);
            } else if !self.unchanged().await {
                let _ = session.logout().await;
                return Ok(End::Changed);
            }
            if !self.claim().await {
                let _ = session.logout().await;
                return Ok(End::WatchedElsewhere);
            }
        }
    }

    /// Claims the mailbox's watch, or renews the claim, for two renewal periods: false when
    /// another worker's claim is live. A database away for a moment keeps the watch going
    /// (its claim holds a renewal period longer).
    async fn claim(&self) -> bool {
        let now = Timestamp::now();
        let until = now.plus(2 * self.watcher.renew);
        match self.db.claim_watch(self.mailbox.mailbox_id, &self.watcher.owner, until, now).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(mailbox = self.mailbox.mailbox_id, error = %e, "could not renew the IDLE watch claim");
                true
            }
        }
    }

    /// The mailbox is due now, and the worker's loop looks at once.
    async fn mark_due(&self) {
        match self.db.poll_soon(self.mailbox.mailbox_id, Timestamp::now()).await {
            Ok(()) => self.wake.notify_one(),
            Err(e) => tracing::warn!(
                mailbox = self.mailbox.mailbox_id,
                error = %e,
                "new mail announced, but the mailbox could not be marked due"
            ),
        }
    }

    async fn unchanged(&self) -> bool {
        unchanged(&self.db, self.mailbox.subscriber_id, &self.mailbox.settings).await
    }
}

/// Whether the subscriber's mailbox still has the settings being watched (and is IMAP).
async fn unchanged<DB: Database>(db: &DB, subscriber_id: i64, watched: &MailboxSettings) -> bool {
    match db.mailbox_of(subscriber_id).await {
        Ok(Some(now)) => {
            let s = &now.settings;
            s.protocol == Protocol::Imap
                && (s.host.as_str(), s.port, s.security, s.username.as_str(), &s.password_enc)
                    == (
                        watched.host.as_str(),
                        watched.port,
                        watched.security,
                        watched.username.as_str(),
                        &watched.password_enc,
                    )
        }
        Ok(None) => false,
        // The database is away for a moment: keep watching.
        Err(_) => true,
    }
}
