//! The collaborative statistics (SPEC 4) in the running service. Each process that
//! classifies mail (the worker, the scheduler before a summary) keeps a
//! [`quorum_stats::Engine`] fed from the stored votes: [`Statistics::sync`] reads the
//! votes cast since its last read, refreshes what they touched, and writes the operator's
//! tables (trust, correlations, the touched domains' probabilities). Processes on other
//! machines read the same votes, so they converge on the same statistics.
//!
//! With `[statistics] fingerprints`, votes on campaigns ([`campaigns`]) are read too and a
//! message's campaign is judged beside its sender domain.

pub mod campaigns;

use std::collections::{HashMap, HashSet};

use quorum_config::StatisticsSettings;
use quorum_domain::{EmailAddress, Timestamp};
use quorum_stats::{DeletedBy, Engine, EvidenceUnit, Judgement, Settings, TrustStatus, Vote};
use quorum_storage::{
    CampaignVoteCursor, CorrelationRow, Database, DomainRow, StatisticsUpdate, StorageError, TrustRow, VoteCursor,
};
use tokio::sync::Mutex;

/// Votes read per query while catching up.
const PAGE: i64 = 10_000;

/// The engine id of a domain or sender without votes (ids are dense from 0, so never one).
const NO_VOTES: u32 = u32::MAX;

pub struct Statistics {
    /// Held by the sync in progress.
    syncing: Mutex<()>,
    delete_above: f64,
    fingerprints: bool,
    keep_campaigns: std::time::Duration,
    refresh_every: std::time::Duration,
    state: Mutex<State>,
}

struct State {
    engine: Engine,
    cursor: VoteCursor,
    campaign_cursor: CampaignVoteCursor,
    /// Campaign ids in the database → the engine's.
    campaigns: HashMap<i64, u32>,
    users: HashMap<i64, u32>,
    subscribers: Vec<i64>,
    domains: HashMap<String, u32>,
    domain_names: Vec<String>,
    senders: HashMap<String, u32>,
    /// The trust status last written per user: `(status, approvals, spam)`, so a refresh
    /// writes only the rows that changed.
    written: Vec<(TrustStatus, u32, u32)>,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Votes read (on senders and on campaigns).
    pub votes: usize,
    /// Users whose statistics were recomputed.
    pub users: usize,
}

impl Statistics {
    pub fn new(settings: &StatisticsSettings) -> Self {
        // `[statistics] evidence` was validated when the settings were loaded.
        let unit: EvidenceUnit = settings.evidence.parse().unwrap_or_default();
        Statistics {
            syncing: Mutex::new(()),
            delete_above: settings.delete_above,
            fingerprints: settings.fingerprints,
            keep_campaigns: std::time::Duration::from_secs(settings.fingerprint_keep_days.max(1) as u64 * 86_400),
            refresh_every: std::time::Duration::from_secs(settings.refresh_secs),
            state: Mutex::new(State {
                engine: Engine::new(Settings { unit, ..Settings::default() }),
                cursor: VoteCursor::default(),
                campaign_cursor: CampaignVoteCursor::default(),
                campaigns: HashMap::new(),
                users: HashMap::new(),
                subscribers: Vec::new(),
                domains: HashMap::new(),
                domain_names: Vec::new(),
                senders: HashMap::new(),
                written: Vec::new(),
            }),
        }
    }

    /// Whether campaign fingerprints are evidence (`[statistics] fingerprints`).
    pub fn fingerprints(&self) -> bool {
        self.fingerprints
    }

    /// Forgets campaigns not seen for `[statistics] fingerprint_keep_days`, with their votes
    /// (this process's engine keeps what it read until it restarts; new mail cannot join a
    /// forgotten campaign). Returns how many went.
    pub async fn expire_campaigns<DB: Database>(&self, db: &DB, now: Timestamp) -> Result<u64, StorageError> {
        db.expire_campaigns(now.minus(self.keep_campaigns)).await
    }

    /// How often a running worker should [`Statistics::sync`].
    pub fn refresh_every(&self) -> std::time::Duration {
        self.refresh_every
    }

    /// Reads the votes cast since the last sync, refreshes, and writes the operator's
    /// tables for what changed.
    pub async fn sync<DB: Database>(&self, db: &DB, now: Timestamp) -> Result<Synced, StorageError> {
        self.read_votes(db, now, true).await
    }

    /// [`Statistics::sync`] without writing the operator's tables (`quorum explain`: no side
    /// effects).
    pub async fn load<DB: Database>(&self, db: &DB, now: Timestamp) -> Result<Synced, StorageError> {
        self.read_votes(db, now, false).await
    }

    /// Reads the votes after the cursors page by page. Syncs run one at a time (they share
    /// the cursors); judging goes on meanwhile: the state is locked only to record a page
    /// and to refresh, never across a query.
    async fn read_votes<DB: Database>(&self, db: &DB, now: Timestamp, write: bool) -> Result<Synced, StorageError> {
        let _one_sync = self.syncing.lock().await;
        let probes: HashSet<i64> = db.spam_probes().await?.into_iter().collect();
        let (mut cursor, mut campaign_cursor) = {
            let state = self.state.lock().await;
            (state.cursor, state.campaign_cursor.clone())
        };
        let mut touched: HashSet<u32> = HashSet::new();
        let mut votes = 0;
        loop {
            let page = db.votes_after(cursor, PAGE).await?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor();
            let mut state = self.state.lock().await;
            state.cursor = cursor;
            for v in &page {
                let vote = if v.verdict == "approve" { Vote::Ham } else { Vote::Spam };
                let user = state.user(v.subscriber_id);
                let domain = state.domain(&v.domain);
                let sender = state.sender(&v.address);
                state.engine.record(user, domain, sender, vote);
                touched.insert(domain);
            }
            votes += page.len();
            if (page.len() as i64) < PAGE {
                break;
            }
        }
        // Campaign votes count only with `[statistics] fingerprints`.
        if self.fingerprints {
            loop {
                let page = db.campaign_votes_after(&campaign_cursor, PAGE).await?;
                let Some(last) = page.last() else { break };
                campaign_cursor = last.cursor();
                let mut state = self.state.lock().await;
                state.campaign_cursor = campaign_cursor.clone();
                for v in &page {
                    // An approval, or a copy that reached the Inbox from an approved sender.
                    let vote = if v.verdict == "spam" { Vote::Spam } else { Vote::Ham };
                    let user = state.user(v.subscriber_id);
                    let campaign = state.campaign(v.campaign_id);
                    state.engine.record_campaign(user, campaign, vote);
                }
                votes += page.len();
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
        }
        let (users, update) = {
            let mut state = self.state.lock().await;
            let known: Vec<(i64, u32)> = state.users.iter().map(|(s, u)| (*s, *u)).collect();
            for (subscriber, user) in known {
                state.engine.set_probe(user, probes.contains(&subscriber));
            }
            for &p in &probes {
                state.user(p);
            }
            if state.engine.dirty().is_empty() {
                return Ok(Synced { votes, users: 0 });
            }
            let changed: Vec<u32> = state.engine.dirty().to_vec();
            let refreshed = state.engine.refresh();
            (refreshed.users, write.then(|| state.update(&changed, &touched, now)))
        };
        if let Some((update, statuses)) = update {
            db.write_statistics(&update).await?;
            self.state.lock().await.written = statuses;
        }
        Ok(Synced { votes, users })
    }

    /// The statistics' verdict on mail from `from` for `subscriber_id`, of `campaign` if it
    /// belongs to one; `major_isp` domains are judged by the sender address alone.
    pub async fn judge(
        &self,
        subscriber_id: i64,
        from: &EmailAddress,
        major_isp: bool,
        campaign: Option<i64>,
    ) -> Judgement {
        let mut state = self.state.lock().await;
        let user = state.user(subscriber_id);
        // A domain, sender or campaign nobody voted on has no evidence: it is looked up, not
        // added (judging every sender ever seen would grow the tables without end).
        let domain = state.domains.get(from.domain()).copied().unwrap_or(NO_VOTES);
        let sender = state.senders.get(from.as_str()).copied().unwrap_or(NO_VOTES);
        let campaign = campaign.filter(|_| self.fingerprints).and_then(|c| state.campaigns.get(&c).copied());
        state.engine.judge(user, domain, sender, major_isp, campaign, self.delete_above)
    }

    /// The line shown for a message the statistics delete (stored as its reason): which
    /// evidence was certain, with its probability and witnesses.
    pub fn reason(judgement: &Judgement, domain: &str, campaign: Option<i64>) -> String {
        let d = &judgement.domain;
        let domain_part = format!(
            "{domain} is a spammer with P = {:.7} ({} spam, {} not)",
            d.p_spammer(),
            d.spam_witnesses,
            d.ham_witnesses
        );
        let campaign_part = match (judgement.campaign, campaign) {
            (Some(c), Some(id)) => format!(
                "campaign #{id} is spam with P = {:.7} ({} recipients said spam, {} not)",
                c.p_spammer(),
                c.spam_witnesses,
                c.ham_witnesses
            ),
            _ => String::new(),
        };
        match judgement.deleted_by {
            Some(DeletedBy::Fingerprint) => format!("statistics (fingerprint): {campaign_part}"),
            Some(DeletedBy::Both) if !campaign_part.is_empty() => format!(
                "statistics (domain and fingerprint, P = {:.7} together): {domain_part}; {campaign_part}",
                judgement.p_spam()
            ),
            _ => format!("statistics (domain): {domain_part}"),
        }
    }
}

impl State {
    fn user(&mut self, subscriber: i64) -> u32 {
        if let Some(u) = self.users.get(&subscriber) {
            return *u;
        }
        let u = self.engine.add_user(false);
        self.users.insert(subscriber, u);
        self.subscribers.push(subscriber);
        u
    }

    fn domain(&mut self, name: &str) -> u32 {
        if let Some(d) = self.domains.get(name) {
            return *d;
        }
        let d = self.domain_names.len() as u32;
        self.domains.insert(name.to_string(), d);
        self.domain_names.push(name.to_string());
        d
    }

    fn campaign(&mut self, id: i64) -> u32 {
        let n = self.campaigns.len() as u32;
        *self.campaigns.entry(id).or_insert(n)
    }

    fn sender(&mut self, address: &str) -> u32 {
        let n = self.senders.len() as u32;
        *self.senders.entry(address.to_string()).or_insert(n)
    }

    /// The rows to write, and every user's status as it will then be stored.
    fn update(
        &self,
        changed: &[u32],
        touched: &HashSet<u32>,
        now: Timestamp,
    ) -> (StatisticsUpdate, Vec<(TrustStatus, u32, u32)>) {
        // Statuses can change for anyone (the population's rates moved), but most do not:
        // only the rows that differ from what was written last are written again.
        let statuses: Vec<(TrustStatus, u32, u32)> = (0..self.subscribers.len() as u32)
            .map(|u| {
                let (approvals, spam) = self.engine.votes(u);
                (self.engine.status(u), approvals, spam)
            })
            .collect();
        let trust = statuses
            .iter()
            .enumerate()
            .filter(|(u, current)| self.written.get(*u) != Some(*current))
            .map(|(u, &(status, approvals, spam))| TrustRow {
                subscriber_id: self.subscribers[u],
                email: String::new(),
                status: status_name(&status).into(),
                reason: status.reason(),
                approvals: i64::from(approvals),
                spam: i64::from(spam),
                computed_at: now.0,
            })
            .collect();
        let correlations = changed
            .iter()
            .map(|&u| {
                let rows = self
                    .engine
                    .correlations(u)
                    .iter()
                    .map(|(c, r)| CorrelationRow {
                        user_id: self.subscribers[u as usize],
                        cuser_id: self.subscribers[*c as usize],
                        rms_error: r.rms_error,
                        confidence: r.confidence,
                        max_rms_error: r.max_rms_error,
                        domains: r.domains as i64,
                        computed_at: now.0,
                    })
                    .collect();
                (self.subscribers[u as usize], rows)
            })
            .collect();
        let domains = touched
            .iter()
            .map(|&d| {
                let s = self.engine.global_score(d);
                DomainRow {
                    domain: self.domain_names[d as usize].clone(),
                    p_spammer: s.p_spammer(),
                    spam_witnesses: i64::from(s.spam_witnesses),
                    ham_witnesses: i64::from(s.ham_witnesses),
                    computed_at: now.0,
                }
            })
            .collect();
        (StatisticsUpdate { trust, correlations, domains }, statuses)
    }
}

fn status_name(s: &TrustStatus) -> &'static str {
    match s {
        TrustStatus::Probe => "probe",
        TrustStatus::Trusted => "trusted",
        TrustStatus::TooFewVotes { .. } => "too_few_votes",
        TrustStatus::ApprovesAlmostEverything { .. } => "approves_almost_everything",
        TrustStatus::UnlikeProbes { .. } => "unlike_probes",
        TrustStatus::ApprovesCondemned { .. } => "approves_condemned",
    }
}
