//! The statistics kept up to date as votes arrive: every user's per-domain counts, the
//! votes on every sender, trust statuses, and each user's correlations to a bounded set of
//! other users. Used by the service and, unchanged, by `quorum simulate`.
//!
//! **Cost.** No pass over all pairs of users, ever. A refresh recomputes only users whose
//! votes changed since the last one ("dirty"), each against a bounded candidate set: the
//! spam probes plus the users who share the most of its spammer domains, found through an
//! inverted index (domain → users calling it spam), visiting the target's rarest domains
//! first and at most `scan` users per domain. Each user's disagreement with the probes is
//! counted as votes arrive (approvals of senders a probe received); the statuses then need
//! one O(users) pass per refresh, and the coordination rule one pass over approved senders.
//! Domain scores are computed on demand from the domain's votes.
//!
//! **Campaigns** (the fingerprint issue). The copies of one campaign share a fingerprint;
//! the caller clusters them into campaign ids and records each user's verdict on a campaign
//! beside the sender vote ([`Engine::record_campaign`]), and mail from an approved sender
//! that went to the Inbox as an approval of its campaign. A campaign's witnesses are its
//! distinct voters (each user's weighted consensus on it, weighted by trust exactly like
//! sender evidence): the recipients of one campaign judge the same content independently,
//! while one user's many copies are one judgement. Campaign votes do not enter the users'
//! per-domain counts, so trust is measured on sender votes alone.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{
    bayes::{Vote, VoteModel, logistic, logit},
    domain::{EvidenceUnit, Score, SenderVotes, prior, score},
    trust::{
        Correlation, Ratios, TrustSettings, TrustStatus, UserVotes, apply_probe_rule, base_status, correlate, weight,
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub model: VoteModel,
    pub unit: EvidenceUnit,
    pub trust: TrustSettings,
    /// Users correlated with each target besides the probes.
    pub candidates: usize,
    /// Users looked at per spammer domain when choosing candidates.
    pub scan: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: VoteModel::default(),
            unit: EvidenceUnit::default(),
            trust: TrustSettings::default(),
            candidates: 50,
            scan: 32,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct User {
    probe: bool,
    approvals: u32,
    spam: u32,
    /// `(domain, approvals, spam)`, sorted by domain.
    counts: Vec<(u32, u32, u32)>,
    ratios: Ratios,
    /// Correlations with this user as the target, sorted by candidate.
    correlations: Vec<(u32, Correlation)>,
    /// Votes on senders a spam probe had received, and how many of them approved.
    probe_hits: u32,
    probe_hit_approvals: u32,
}

/// Which evidence made a message certain spam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeletedBy {
    /// The sender domain's evidence alone was certain.
    Domain,
    /// The campaign fingerprint's evidence alone was certain.
    Fingerprint,
    /// Both were needed, or each alone was certain.
    Both,
}

impl DeletedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletedBy::Domain => "domain",
            DeletedBy::Fingerprint => "fingerprint",
            DeletedBy::Both => "both",
        }
    }
}

/// The statistics' verdict on one message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The sender domain's evidence (for a `major_isp` domain, the address's).
    pub domain: Score,
    /// The campaign's evidence, when the message belongs to one.
    pub campaign: Option<Score>,
    /// Certain beyond the deletion bound (`deleted_statistical`), and by what.
    pub deleted_by: Option<DeletedBy>,
}

impl Judgement {
    /// Combines the two pieces of evidence and applies the deletion bound. They are treated
    /// as independent witnesses, so their log-odds add: a message is deleted when the
    /// domain, the fingerprint or both together make it certain. Evidence that leans the
    /// other way (an approved newsletter's fingerprint, logit < 0) is subtracted, so it can
    /// save a message whose domain alone would have been certain.
    pub fn new(domain: Score, campaign: Option<Score>, delete_above: f64) -> Judgement {
        let mut j = Judgement { domain, campaign, deleted_by: None };
        let bound = logit(delete_above);
        if j.logit() > bound {
            let by_campaign = campaign.is_some_and(|c| c.logit > bound);
            j.deleted_by = Some(match (domain.logit > bound, by_campaign) {
                (true, false) => DeletedBy::Domain,
                (false, true) => DeletedBy::Fingerprint,
                _ => DeletedBy::Both,
            });
        }
        j
    }

    /// Combined log-odds that the message is spam.
    pub fn logit(&self) -> f64 {
        self.domain.logit + self.campaign.map_or(0.0, |c| c.logit)
    }

    pub fn delete(&self) -> bool {
        self.deleted_by.is_some()
    }

    /// The chance the message is spam, from both pieces of evidence.
    pub fn p_spam(&self) -> f64 {
        logistic(self.logit())
    }

    /// The chance the message is not spam, for ranking the summary.
    pub fn not_spam(&self) -> f64 {
        1.0 - self.p_spam()
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshed {
    pub users: usize,
    pub correlations: usize,
}

pub struct Engine {
    settings: Settings,
    users: Vec<User>,
    statuses: Vec<TrustStatus>,
    /// Per domain, every vote on its senders.
    domains: HashMap<u32, Vec<SenderVotes>>,
    /// Per domain, the users whose ratio calls it spam.
    spam_index: HashMap<u32, Vec<u32>>,
    /// Senders a spam probe received (all spam, by definition of a probe).
    probe_senders: std::collections::HashSet<u32>,
    /// Per sender, the (non-probe) users who approved it, once per approval.
    approvers: HashMap<u32, Vec<u32>>,
    /// Per campaign, every vote on it (`sender` is the voter: one witness per voter).
    campaigns: HashMap<u32, Vec<SenderVotes>>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
}

impl Engine {
    pub fn new(settings: Settings) -> Self {
        Engine {
            settings,
            users: Vec::new(),
            statuses: Vec::new(),
            domains: HashMap::new(),
            spam_index: HashMap::new(),
            probe_senders: std::collections::HashSet::new(),
            approvers: HashMap::new(),
            campaigns: HashMap::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A new user (ids are dense, from 0); a probe votes spam on everything it receives.
    pub fn add_user(&mut self, probe: bool) -> u32 {
        self.users.push(User { probe, ..User::default() });
        self.statuses.push(if probe { TrustStatus::Probe } else { TrustStatus::TooFewVotes { votes: 0 } });
        self.is_dirty.push(false);
        (self.users.len() - 1) as u32
    }

    /// Makes a user a spam probe or an ordinary user again.
    pub fn set_probe(&mut self, user: u32, probe: bool) {
        if self.users[user as usize].probe != probe {
            self.users[user as usize].probe = probe;
            if !self.is_dirty[user as usize] {
                self.is_dirty[user as usize] = true;
                self.dirty.push(user);
            }
        }
    }

    /// Users whose votes changed since the last refresh.
    pub fn dirty(&self) -> &[u32] {
        &self.dirty
    }

    /// Records one vote of `user` on a message from `sender` at `domain`.
    pub fn record(&mut self, user: u32, domain: u32, sender: u32, vote: Vote) {
        let (a, s) = match vote {
            Vote::Ham => (1, 0),
            Vote::Spam => (0, 1),
        };
        let u = &mut self.users[user as usize];
        u.approvals += a;
        u.spam += s;
        if u.probe {
            self.probe_senders.insert(sender);
        } else {
            if self.probe_senders.contains(&sender) {
                u.probe_hits += 1;
                u.probe_hit_approvals += a;
            }
            if a > 0 {
                // Duplicates are removed where it matters, in the coordination rule.
                self.approvers.entry(sender).or_default().push(user);
            }
        }
        match u.counts.binary_search_by_key(&domain, |c| c.0) {
            Ok(i) => {
                u.counts[i].1 += a;
                u.counts[i].2 += s;
            }
            Err(i) => u.counts.insert(i, (domain, a, s)),
        }
        // Appended, not merged: scores sum over a sender's votes (and take the strongest
        // voter's weight), so one entry per vote gives the same result as merged counts.
        self.domains.entry(domain).or_default().push(SenderVotes { sender, voter: user, approvals: a, spam: s });
        if !self.is_dirty[user as usize] {
            self.is_dirty[user as usize] = true;
            self.dirty.push(user);
        }
    }

    /// Records `user`'s verdict on a campaign: their vote on one of its messages, or an
    /// approval when a copy reached their Inbox from a sender they approved.
    pub fn record_campaign(&mut self, user: u32, campaign: u32, vote: Vote) {
        let (approvals, spam) = match vote {
            Vote::Ham => (1, 0),
            Vote::Spam => (0, 1),
        };
        self.campaigns.entry(campaign).or_default().push(SenderVotes { sender: user, voter: user, approvals, spam });
    }

    /// Brings ratios, the spam index, statuses and the dirty users' correlations up to date.
    pub fn refresh(&mut self) -> Refreshed {
        let dirty = std::mem::take(&mut self.dirty);
        for &u in &dirty {
            self.is_dirty[u as usize] = false;
            let user = &mut self.users[u as usize];
            let before: Vec<u32> = user.ratios.spammer_domains().collect();
            user.ratios = Ratios::from_counts(user.counts.iter().copied());
            let after: Vec<u32> = user.ratios.spammer_domains().collect();
            for d in before.iter().filter(|d| after.binary_search(d).is_err()) {
                if let Some(list) = self.spam_index.get_mut(d) {
                    list.retain(|x| *x != u);
                }
            }
            for d in after.iter().filter(|d| before.binary_search(d).is_err()) {
                self.spam_index.entry(*d).or_default().push(u);
            }
        }
        let probes: Vec<u32> = (0..self.users.len() as u32).filter(|&u| self.users[u as usize].probe).collect();
        let trust = self.settings.trust;
        self.statuses = self
            .users
            .iter()
            .map(|u| base_status(&UserVotes { probe: u.probe, approvals: u.approvals, spam: u.spam }, &trust))
            .collect();
        // Disagreement with the probes, per sender: approving what a probe received.
        let measured: Vec<Option<(f64, usize)>> = self
            .users
            .iter()
            .map(|u| {
                (u.probe_hits > 0)
                    .then(|| (f64::from(u.probe_hit_approvals) / f64::from(u.probe_hits), u.probe_hits as usize))
            })
            .collect();
        apply_probe_rule(&mut self.statuses, &measured, &trust);
        self.apply_coordination_rule();
        let mut correlations = 0;
        let mut shared = vec![0u32; self.users.len()];
        for &t in &dirty {
            let candidates = self.candidates(t, &probes, &mut shared);
            let target = &self.users[t as usize].ratios;
            let mut rows: Vec<(u32, Correlation)> = candidates
                .into_iter()
                .filter_map(|c| correlate(target, &self.users[c as usize].ratios).map(|r| (c, r)))
                .collect();
            rows.sort_unstable_by_key(|(c, _)| *c);
            correlations += rows.len();
            self.users[t as usize].correlations = rows;
        }
        Refreshed { users: dirty.len(), correlations }
    }

    /// Seed 002, item 2: a spammer's accounts approve the spammer's senders. A sender the
    /// spam probes received (so spam) that `coordination` or more accounts approved is
    /// *contested*; an account that approved `coordination` or more contested senders is
    /// excluded if such senders are nearly all (90%) it approved. Honest mistakes are rare and
    /// scattered, and honest approvals go mostly to correspondents no probe hears from;
    /// every account of a spammer approves the same spam senders and little else. Looks only
    /// at approved senders.
    fn apply_coordination_rule(&mut self) {
        let min = self.settings.trust.coordination as usize;
        if min == 0 {
            return;
        }
        let mut contested: HashMap<u32, u32> = HashMap::new();
        for (sender, approvers) in &self.approvers {
            if approvers.len() < min || !self.probe_senders.contains(sender) {
                continue;
            }
            let mut distinct = approvers.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() >= min {
                for u in distinct {
                    *contested.entry(u).or_default() += 1;
                }
            }
        }
        for (u, senders) in contested {
            // Nearly all of the account's approvals went to such senders: an honest user
            // approves their own correspondents too, whom no probe ever hears from.
            let approvals = self.users[u as usize].approvals.max(1);
            let status = &mut self.statuses[u as usize];
            if senders as usize >= min
                && f64::from(senders) >= 0.9 * f64::from(approvals)
                && status.counts()
                && *status != TrustStatus::Probe
            {
                *status = TrustStatus::ApprovesCondemned { senders };
            }
        }
    }

    /// The probes and the users sharing the most of `t`'s spammer domains, rarest first.
    /// `shared` is a zeroed counter per user, left zeroed again.
    fn candidates(&self, t: u32, probes: &[u32], shared: &mut [u32]) -> Vec<u32> {
        let mut domains: Vec<&Vec<u32>> =
            self.users[t as usize].ratios.spammer_domains().filter_map(|d| self.spam_index.get(&d)).collect();
        domains.sort_unstable_by_key(|l| l.len());
        let mut touched: Vec<u32> = Vec::new();
        for list in domains {
            for &v in list.iter().rev().take(self.settings.scan) {
                if v != t && !self.users[v as usize].probe {
                    if shared[v as usize] == 0 {
                        touched.push(v);
                    }
                    shared[v as usize] += 1;
                }
            }
        }
        let mut ranked: Vec<(u32, u32)> = touched.iter().map(|&v| (v, shared[v as usize])).collect();
        for &v in &touched {
            shared[v as usize] = 0;
        }
        let keep = self.settings.candidates.min(ranked.len());
        if keep > 0 && keep < ranked.len() {
            ranked.select_nth_unstable_by(keep - 1, |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        probes.iter().copied().filter(|&p| p != t).chain(ranked.into_iter().take(keep).map(|(v, _)| v)).collect()
    }

    /// A user's `(approvals, spam)` votes.
    pub fn votes(&self, user: u32) -> (u32, u32) {
        let u = &self.users[user as usize];
        (u.approvals, u.spam)
    }

    pub fn status(&self, user: u32) -> TrustStatus {
        self.statuses[user as usize]
    }

    /// `user`'s correlations as the target, by candidate.
    pub fn correlations(&self, user: u32) -> &[(u32, Correlation)] {
        &self.users[user as usize].correlations
    }

    /// The recipient's prior: their share of spam votes.
    pub fn prior(&self, recipient: u32) -> f64 {
        let u = &self.users[recipient as usize];
        prior(u64::from(u.approvals), u64::from(u.spam))
    }

    /// How much `voter` counts for `recipient`.
    pub fn weight(&self, recipient: u32, voter: u32) -> f64 {
        let rows = &self.users[recipient as usize].correlations;
        let correlation = rows.binary_search_by_key(&voter, |(c, _)| *c).ok().map(|i| &rows[i].1);
        weight(&self.settings.trust, recipient == voter, &self.statuses[voter as usize], correlation)
    }

    /// The domain's score for `recipient`. With `sender`, only that address's votes count
    /// (address-level statistics, for `major_isp` domains whose many users are not spammers).
    pub fn score(&self, recipient: u32, domain: u32, sender: Option<u32>) -> Score {
        let empty = Vec::new();
        let votes = self.domains.get(&domain).unwrap_or(&empty);
        let prior = self.prior(recipient);
        let weight = |voter| self.weight(recipient, voter);
        match sender {
            None => score(&self.settings.model, self.settings.unit, prior, votes, weight),
            Some(s) => {
                let own: Vec<SenderVotes> = votes.iter().filter(|v| v.sender == s).copied().collect();
                score(&self.settings.model, self.settings.unit, prior, &own, weight)
            }
        }
    }

    /// The campaign's score for `recipient`: one witness per voter, weighted by trust;
    /// `None` when nobody has voted on it.
    pub fn campaign_score(&self, recipient: u32, campaign: u32) -> Option<Score> {
        let votes = self.campaigns.get(&campaign)?;
        let weight = |voter| self.weight(recipient, voter);
        Some(score(&self.settings.model, EvidenceUnit::Senders, self.prior(recipient), votes, weight))
    }

    /// The statistics' verdict on one message from `sender` at `domain` for `recipient`
    /// (SPEC 2.2), with its campaign if it has one: delete when the evidence makes it spam
    /// beyond `delete_above` ([`Judgement::new`]). For a `major_isp` domain (many users,
    /// most not spammers) only the sender address's own evidence counts. The judgement's
    /// P(not spam) ranks held mail.
    pub fn judge(
        &self,
        recipient: u32,
        domain: u32,
        sender: u32,
        major_isp: bool,
        campaign: Option<u32>,
        delete_above: f64,
    ) -> Judgement {
        let domain = self.score(recipient, domain, major_isp.then_some(sender));
        let campaign = campaign.and_then(|c| self.campaign_score(recipient, c));
        Judgement::new(domain, campaign, delete_above)
    }

    /// The domain's score with every counted user at full weight (no recipient): the
    /// operator's per-domain table.
    pub fn global_score(&self, domain: u32) -> Score {
        let empty = Vec::new();
        let votes = self.domains.get(&domain).unwrap_or(&empty);
        let weight = |voter: u32| if self.statuses[voter as usize].counts() { 1.0 } else { 0.0 };
        score(&self.settings.model, self.settings.unit, 0.5, votes, weight)
    }

    /// Every domain with votes.
    pub fn domains(&self) -> impl Iterator<Item = u32> + '_ {
        self.domains.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_build_statuses_correlations_and_scores() {
        let mut e = Engine::new(Settings::default());
        let probe = e.add_user(true);
        let alice = e.add_user(false);
        let bob = e.add_user(false);
        let newcomer = e.add_user(false);
        // Spam domains 0..30 (sender = domain); alice's and bob's correspondents at 100+.
        for d in 0..30 {
            e.record(probe, d, d, Vote::Spam);
            e.record(alice, d, d, Vote::Spam);
            if d % 2 == 0 {
                e.record(bob, d, d, Vote::Spam);
            }
        }
        for d in 100..110 {
            e.record(alice, d, d, Vote::Ham);
            e.record(bob, d + 50, d + 50, Vote::Ham);
        }
        e.record(newcomer, 5, 5, Vote::Ham);
        let r = e.refresh();
        assert_eq!(r.users, 4);
        assert_eq!(e.status(probe), TrustStatus::Probe);
        assert_eq!(e.status(alice), TrustStatus::Trusted);
        assert_eq!(e.status(newcomer), TrustStatus::TooFewVotes { votes: 1 });
        // Alice agrees with the probe on all of her spammer domains.
        let rows = e.correlations(alice);
        let to_probe = rows.iter().find(|(c, _)| *c == probe).unwrap().1;
        assert!(to_probe.rms_error < 1e-9 && to_probe.domains == 30, "{rows:?}");
        // Bob saw half of them: the other half count fully against him.
        let to_bob = rows.iter().find(|(c, _)| *c == bob).unwrap().1;
        assert!((to_bob.rms_error - 0.5f64.sqrt()).abs() < 1e-6, "{to_bob:?}");
        assert!(e.weight(alice, bob) < 0.2 && e.weight(alice, probe) == 1.0 && e.weight(alice, newcomer) == 0.0);

        // Domain 3's one sender is reported by the probe and alice (one witness per sender:
        // bob's prior 16/27 makes it 0.83); the newcomer's approval is ignored.
        let s = e.score(bob, 3, None);
        assert!(s.p_spammer() > 0.8 && (s.spam_witnesses, s.ham_witnesses) == (1, 0), "{s:?}");
        assert!(e.score(bob, 100, None).p_spammer() < 0.1, "alice's correspondent");
        // A major ISP's domain is judged by the sender address alone.
        assert!(e.judge(bob, 3, 3, true, None, 1.0 - 1e-6).domain.spam_witnesses == 1);
        assert_eq!(e.judge(bob, 3, 999, true, None, 1.0 - 1e-6).domain.spam_witnesses, 0);
        // Only dirty users are recomputed.
        e.record(bob, 29, 29, Vote::Spam);
        assert_eq!(e.refresh().users, 1);
    }

    #[test]
    fn accounts_approving_the_same_spam_senders_are_excluded() {
        let mut e = Engine::new(Settings::default());
        let probe = e.add_user(true);
        for d in 0..30 {
            e.record(probe, d, d, Vote::Spam);
        }
        let sybils: Vec<u32> = (0..5).map(|_| e.add_user(false)).collect();
        for &s in &sybils {
            for d in 0..4 {
                e.record(s, d, d, Vote::Ham);
            }
            for d in 4..10 {
                e.record(s, d, d, Vote::Spam);
            }
        }
        // Honest users: blank the spam, approve their correspondents; one mistake each, and
        // two of them err on the same spam sender.
        let honest: Vec<u32> = (0..4).map(|_| e.add_user(false)).collect();
        for (i, &h) in honest.iter().enumerate() {
            for d in 0..20 {
                let mistake = d == 10 + (i as u32).min(1);
                e.record(h, d, d, if mistake { Vote::Ham } else { Vote::Spam });
            }
            for c in 0..5 {
                e.record(h, 100 + c, 1000 + 10 * i as u32 + c, Vote::Ham);
            }
        }
        e.refresh();
        for s in sybils {
            assert_eq!(e.status(s), TrustStatus::ApprovesCondemned { senders: 4 });
        }
        for h in honest {
            assert_eq!(e.status(h), TrustStatus::Trusted, "user {h}");
        }
    }

    /// Trusted users (each with a probe-like history on domains 0..30) and one probe.
    fn population(n: usize) -> (Engine, Vec<u32>) {
        let mut e = Engine::new(Settings::default());
        let probe = e.add_user(true);
        let users: Vec<u32> = (0..n).map(|_| e.add_user(false)).collect();
        for d in 0..30 {
            e.record(probe, d, d, Vote::Spam);
            for (i, &u) in users.iter().enumerate() {
                e.record(u, d, d, Vote::Spam);
                e.record(u, 1000 + i as u32, 1000 + i as u32, Vote::Ham);
            }
        }
        e.refresh();
        (e, users)
    }

    #[test]
    fn a_campaign_reported_by_its_recipients_is_certain_whatever_its_senders() {
        let (mut e, users) = population(16);
        let bound = 1.0 - 1e-6;
        // Every copy comes from a new sender at a new domain: no domain evidence at all.
        // The recipients' prior is ½ (as much ham as spam), so each report is worth
        // logit(0.99 / (0.99 + 0.30)) = 1.19 and twelve make 14.3 > logit(1 − 1e-6) = 13.8.
        for (i, &u) in users.iter().enumerate().take(12) {
            e.record(u, 500 + i as u32, 500 + i as u32, Vote::Spam);
            e.record_campaign(u, 7, Vote::Spam);
        }
        e.refresh();
        let late = users[15];
        let j = e.judge(late, 999, 999, false, Some(7), bound);
        assert_eq!(j.domain.spam_witnesses, 0);
        assert_eq!(j.campaign.unwrap().spam_witnesses, 12);
        assert_eq!(j.deleted_by, Some(DeletedBy::Fingerprint), "{j:?}");
        assert!(j.not_spam() < 1e-6);
        // Without the campaign the same message is only held.
        assert!(!e.judge(late, 999, 999, false, None, bound).delete());
        // One user's many copies are one witness.
        let (mut e, users) = population(3);
        for _ in 0..20 {
            e.record_campaign(users[0], 7, Vote::Spam);
        }
        assert_eq!(e.campaign_score(users[2], 7).unwrap().spam_witnesses, 1);
        assert_eq!(e.campaign_score(users[2], 8), None);
    }

    #[test]
    fn an_approved_newsletter_is_not_deleted_by_the_few_who_blank_it() {
        let (mut e, users) = population(40);
        let bound = 1.0 - 1e-6;
        // 30 subscribers approved the newsletter's sender: its new issue reaches their
        // Inbox (an approval of its campaign); 8 others leave it blank.
        for &u in &users[..30] {
            e.record_campaign(u, 3, Vote::Ham);
        }
        for &u in &users[30..38] {
            e.record(u, 77, 77, Vote::Spam);
            e.record_campaign(u, 3, Vote::Spam);
        }
        e.refresh();
        for &u in &users[38..] {
            let j = e.judge(u, 77, 77, false, Some(3), bound);
            assert!(!j.delete() && j.campaign.unwrap().logit < 0.0, "{j:?}");
        }
        // Approval evidence on the fingerprint outweighs a domain that alone looks certain.
        let certain = Score { logit: 20.0, spam_witnesses: 9, ham_witnesses: 0 };
        let approved = Score { logit: -30.0, spam_witnesses: 0, ham_witnesses: 30 };
        assert!(!Judgement::new(certain, Some(approved), bound).delete());
        assert_eq!(Judgement::new(certain, None, bound).deleted_by, Some(DeletedBy::Domain));
        let half = Score { logit: 8.0, spam_witnesses: 3, ham_witnesses: 0 };
        assert_eq!(Judgement::new(half, Some(half), bound).deleted_by, Some(DeletedBy::Both));
        assert_eq!(Judgement::new(half, None, bound).deleted_by, None);
    }
}
