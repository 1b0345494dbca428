//! The statistics kept up to date as votes arrive: the votes on every evidence key, every
//! user's per-domain counts (for trust), each witness's estimated likelihoods, trust
//! statuses, and each user's correlations to a bounded set of other users. Used by the
//! service and, unchanged, by `quorum simulate`: both call [`Engine::judge`].
//!
//! **Votes.** A vote on a message is a vote on each of its keys ([`crate::evidence`]). Per
//! key, one entry per (unit, voter) holds that voter's decayed spam and approval masses, so
//! a voter's many copies are one judgement and judging a key costs one pass over its
//! entries. Decay ([`crate::decay`]): a vote cast at `t` weighs `2^(−(now − t)/half_life)`;
//! masses are stored relative to the first vote and scaled once at judging time, so they
//! add up without being rewritten.
//!
//! **Witnesses** (the two-coin Dawid–Skene model, anchored). Each user's sensitivity (a
//! spam vote on spam) is measured on the senders the spam probes received, their
//! specificity (an approval of ham) on the senders another counted user approved; both are
//! shrunk toward the population's pooled rates with [`Settings::shrinkage`] pseudo-votes
//! (empirical Bayes), so a new user starts at the population's reliability. A spam vote's
//! log-ratio is `ln(sens / (1 − spec))`, an approval's `ln((1 − sens) / spec)`; neither is
//! ever turned around (a user worse than chance counts for nothing, not the opposite). A
//! spam probe receives only what spammers send; its report's ratio is
//! [`Settings::probe_ratio`] (20:1), lowered by the data when counted users approve what the
//! probes received: `min(probe_ratio, (n + probe_ratio) / (approved + 1))` over the probes'
//! `n` senders.
//!
//! **Priors.** The recipient's prior is their share of spam votes shrunk toward the
//! population's (10 pseudo-votes): a new subscriber starts at what everyone sees.
//!
//! **Trust.** Who counts at all (statuses) and how much for one recipient (correlation) is
//! [`crate::trust`]'s, as before: the seed's rules, the probe rule and the coordination rule.
//!
//! **Cost.** No pass over all pairs of users, ever. A refresh recomputes correlations only
//! for users whose votes changed since the last one ("dirty"), each against a bounded
//! candidate set: the spam probes plus the users who share the most of its spammer domains,
//! found through an inverted index (domain → users calling it spam). The witnesses'
//! anchors need one pass over the sender keys' entries, the statuses one over the users,
//! the population mixtures only the keys touched since the last refresh.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{
    bayes::{Vote, VoteModel, logistic, logit},
    calibration::Calibration,
    decay::Decay,
    evidence::{
        Combination, DECISIVE, Evidence, KeyKind, Mixture, TYPED, agreeing_items, item_term, population_term,
        type_weights,
    },
    trust::{
        Correlation, Ratios, TrustSettings, TrustStatus, UserVotes, apply_probe_rule, base_status, correlate, weight,
    },
};

/// What counts once under a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceUnit {
    /// Every vote is a unit of its own (the seed's reading).
    Votes,
    /// Item keys count each voter once, population keys each distinct sender or campaign.
    #[default]
    Senders,
}

impl std::str::FromStr for EvidenceUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "votes" => Ok(EvidenceUnit::Votes),
            "senders" => Ok(EvidenceUnit::Senders),
            other => Err(format!("unknown evidence unit `{other}`; expected votes or senders")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub combination: Combination,
    pub unit: EvidenceUnit,
    /// The seed's likelihoods, used by [`Combination::Seed`] only.
    pub model: VoteModel,
    pub trust: TrustSettings,
    /// Half-life of a vote, in seconds (30 days).
    pub half_life_secs: f64,
    /// A spam probe's report: likelihood ratio at most this (20:1).
    pub probe_ratio: f64,
    /// Pseudo-votes pulling a user's estimated reliability toward the population's.
    pub shrinkage: f64,
    /// Item keys' impurity ε: the chance a message carrying the key is not of its item's
    /// class (see [`crate::evidence`]). The campaign's is the fingerprint's measured
    /// false-match rate; the others allow for addresses reused or spoofed.
    pub campaign_impurity: f64,
    pub item_impurity: f64,
    /// Users correlated with each target besides the probes.
    pub candidates: usize,
    /// Users looked at per spammer domain when choosing candidates.
    pub scan: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            combination: Combination::default(),
            unit: EvidenceUnit::default(),
            model: VoteModel::default(),
            trust: TrustSettings::default(),
            half_life_secs: 30.0 * 86_400.0,
            probe_ratio: 20.0,
            shrinkage: 5.0,
            campaign_impurity: 1e-4,
            item_impurity: 1e-3,
            candidates: 50,
            scan: 32,
        }
    }
}

/// Reliability estimates are kept inside this range: nobody is certain, and nobody counts
/// below chance.
const RELIABILITY: (f64, f64) = (0.5, 0.99);

#[derive(Debug, Clone, Default)]
struct User {
    probe: bool,
    approvals: u32,
    spam: u32,
    deleted: u32,
    /// `(domain, approvals, spam)`, sorted by domain.
    counts: Vec<(u32, u32, u32)>,
    ratios: Ratios,
    /// Correlations with this user as the target, sorted by candidate.
    correlations: Vec<(u32, Correlation)>,
    /// The log-ratios of this user's spam votes (≥ 0) and approvals (≤ 0).
    llr_spam: f64,
    llr_ham: f64,
}

/// One voter's votes on one unit of a key: decayed masses (see the module docs), and the
/// sender key of the message the voter first voted on for it ([`NO_SENDER`] if it had none),
/// so that a population key can leave out votes its item keys already hold.
#[derive(Debug, Clone, Copy)]
struct Entry {
    unit: u32,
    voter: u32,
    origin: u32,
    spam: f64,
    ham: f64,
}

/// [`Entry::origin`] of a vote on a message without a sender key.
const NO_SENDER: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
struct Key {
    /// Sorted by (unit, voter).
    entries: Vec<Entry>,
    /// Population keys: what the last refresh added to the kind's expected type counts.
    seen: [f64; 3],
}

/// One key's part in a judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub kind: KeyKind,
    pub key: String,
    /// Its log likelihood ratio (with [`Combination::Seed`], its witnesses' summed logits).
    pub logit: f64,
    /// Part of the combined log-odds: false for a key weaker than the message's strongest
    /// key of its family and sign ([`Engine::judge`]).
    pub counted: bool,
    /// An item key weaker than the strongest of its sign whose independent match adds to
    /// [`Judgement::agreement_logit`] instead.
    #[serde(default)]
    pub agrees: bool,
    /// Units whose evidence calls them spam or ham (voters for item keys).
    pub spam_units: u32,
    pub ham_units: u32,
}

/// The statistics' verdict on one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The recipient's prior, in log-odds (0 with the seed's combination, whose witnesses
    /// carry it).
    pub prior_logit: f64,
    /// One per key of the message, in the order given.
    pub terms: Vec<Term>,
    /// When no key spoke: what silence is worth ([`Engine::silence_llr`]); when only
    /// population keys spoke: what the item keys' silence is worth
    /// ([`Engine::item_silence_llr`]); never above 0; else 0.
    pub silence_logit: f64,
    /// What item keys agreeing with the strongest of their sign add to it: each speaks
    /// where the stronger keys' links are false matches, whose chances multiply
    /// ([`crate::evidence::agreeing_items`]).
    #[serde(default)]
    pub agreement_logit: f64,
    /// What the summary prints and ranks by: P(not spam) calibrated against the users'
    /// answers to lines printed with the same log-odds ([`crate::calibration`]); deletion
    /// and the purge go by the log-odds themselves.
    pub not_spam: f64,
    /// Certain beyond the deletion bound (`deleted_statistical`), and the key that said the
    /// most.
    pub deleted_by: Option<KeyKind>,
}

impl Judgement {
    /// Combined log-odds that the message is spam.
    pub fn logit(&self) -> f64 {
        self.prior_logit
            + self.silence_logit
            + self.agreement_logit
            + self.terms.iter().filter(|t| t.counted).map(|t| t.logit).sum::<f64>()
    }

    pub fn delete(&self) -> bool {
        self.deleted_by.is_some()
    }

    pub fn p_spam(&self) -> f64 {
        logistic(self.logit())
    }

    /// The chance the message is not spam as the summary prints it (calibrated).
    pub fn not_spam(&self) -> f64 {
        self.not_spam
    }

    /// The term of one kind of key, if the message has one (the first).
    pub fn term(&self, kind: KeyKind) -> Option<&Term> {
        self.terms.iter().find(|t| t.kind == kind)
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshed {
    pub users: usize,
    pub correlations: usize,
}

#[derive(Clone)]
pub struct Engine {
    settings: Settings,
    users: Vec<User>,
    statuses: Vec<TrustStatus>,
    /// Per kind, key name → key id; keys by id.
    names: [HashMap<String, u32>; 8],
    keys: Vec<Key>,
    kinds: Vec<KeyKind>,
    /// Unit names (senders, campaigns) → ids.
    units: HashMap<String, u32>,
    /// Units made for [`EvidenceUnit::Votes`], counted down from `u32::MAX`.
    vote_units: u32,
    /// Vote masses ([`crate::decay`]).
    decay: Decay,
    /// Per population kind: expected numbers of keys spam-only, ham-only, mixed.
    types: [[f64; 3]; 8],
    mixtures: [Mixture; 8],
    touched: Vec<u32>,
    is_touched: Vec<bool>,
    probe_llr: f64,
    /// The population's pooled sensitivity and specificity.
    pooled: (f64, f64),
    /// The latest vote's time: what the operator's tables decay to.
    latest: f64,
    /// The share of spam among counted users' votes and deletions (probes aside), as of the
    /// last refresh.
    population_spam: f64,
    /// Users' votes (probes aside) and the statistics' deletions by what the labelled
    /// message's keys said when it was labelled, `[hearing][spam]` ([`Hearing`]): what the
    /// absence of evidence of spam is worth.
    heard: [[u64; 2]; 4],
    /// [`Engine::silence_llr`] and [`Engine::item_silence_llr`], from `heard` at the last
    /// refresh.
    silence: f64,
    item_silence: f64,
    /// Answers to held lines by the log-odds they were printed with: what the summary's
    /// P(not spam) is worth.
    calibration: Calibration,
    /// Per domain key, the users whose ratio calls it spam.
    spam_index: HashMap<u32, Vec<u32>>,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
}

impl Engine {
    pub fn new(settings: Settings) -> Self {
        let even = Mixture::from_counts(0.0, 0.0, 0.0);
        Engine {
            settings,
            users: Vec::new(),
            statuses: Vec::new(),
            names: Default::default(),
            keys: Vec::new(),
            kinds: Vec::new(),
            units: HashMap::new(),
            vote_units: u32::MAX,
            decay: Decay::new(settings.half_life_secs),
            types: [[0.0; 3]; 8],
            mixtures: [even; 8],
            touched: Vec::new(),
            is_touched: Vec::new(),
            probe_llr: settings.probe_ratio.ln(),
            pooled: (0.9, 0.9),
            latest: 0.0,
            population_spam: 0.5,
            heard: [[0; 2]; 4],
            silence: 0.0,
            item_silence: 0.0,
            calibration: Calibration::new(settings.half_life_secs),
            spam_index: HashMap::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A new user (ids are dense, from 0); a probe votes spam on everything it receives.
    pub fn add_user(&mut self, probe: bool) -> u32 {
        let (llr_spam, llr_ham) = if probe { (self.probe_llr, 0.0) } else { llrs(self.pooled.0, self.pooled.1) };
        self.users.push(User { probe, llr_spam, llr_ham, ..User::default() });
        self.statuses.push(if probe { TrustStatus::Probe } else { TrustStatus::TooFewVotes { votes: 0 } });
        self.is_dirty.push(false);
        (self.users.len() - 1) as u32
    }

    /// Makes a user a spam probe or an ordinary user again.
    pub fn set_probe(&mut self, user: u32, probe: bool) {
        if self.users[user as usize].probe != probe {
            self.users[user as usize].probe = probe;
            self.mark_dirty(user);
        }
    }

    fn mark_dirty(&mut self, user: u32) {
        if !self.is_dirty[user as usize] {
            self.is_dirty[user as usize] = true;
            self.dirty.push(user);
        }
    }

    /// Users whose votes changed since the last refresh.
    pub fn dirty(&self) -> &[u32] {
        &self.dirty
    }

    fn key_id(&mut self, kind: KeyKind, name: &str) -> u32 {
        if let Some(id) = self.names[kind.index()].get(name) {
            return *id;
        }
        let id = self.keys.len() as u32;
        self.names[kind.index()].insert(name.to_string(), id);
        self.keys.push(Key::default());
        self.kinds.push(kind);
        self.is_touched.push(false);
        id
    }

    fn unit_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.units.get(name) {
            return *id;
        }
        let id = self.units.len() as u32;
        self.units.insert(name.to_string(), id);
        id
    }

    /// Records one vote of `user` at time `at` (seconds) on a message from a sender at
    /// `domain` carrying `evidence`. The domain feeds the user's per-domain counts (trust
    /// correlation) whether or not the domain is itself evidence (`major_isp`).
    pub fn record(&mut self, user: u32, domain: &str, evidence: &[Evidence], vote: Vote, at: f64) {
        self.record_heard(user, domain, evidence, evidence, vote, at);
    }

    /// [`Engine::record`] for a vote whose message had the keys `heard` when it was judged,
    /// of which only `evidence` take this vote: a service that records a campaign's votes
    /// apart (with the Inbox deliveries that approve it) still counts what the campaign
    /// said in the silence ratios, as the judgement heard it.
    pub fn record_heard(
        &mut self,
        user: u32,
        domain: &str,
        heard: &[Evidence],
        evidence: &[Evidence],
        vote: Vote,
        at: f64,
    ) {
        if !self.users[user as usize].probe {
            let hearing = self.hearing(user, heard);
            self.heard[hearing as usize][usize::from(vote == Vote::Spam)] += 1;
        }
        self.count(user, domain, vote);
        self.record_evidence(user, evidence, vote, at);
    }

    /// The statistics deleted a message of `user`'s: a label as certain as a vote (P(spam)
    /// beyond the deletion bound), and one the user never gives, since a deleted message is
    /// never shown. The recipient's prior ([`Engine::prior`]) is the share of spam among the
    /// messages the statistics judge; counted from answers alone it is the share among those
    /// they could *not* decide, which leaves out most spam once the statistics work (with
    /// 95% of a user's spam deleted, their answers are mostly ham). A prior from that
    /// selection counts the absence of decisive evidence once more on top of the evidence
    /// itself. The same holds for the silence ratios (a deleted message carrying
    /// `evidence` is counted as spam with what its keys said) and for the approval-share
    /// rule ([`crate::trust::base_status`]).
    ///
    /// A deletion was heard: it took evidence of spam. Keys read back as silent (stored
    /// before keys were kept, or decided by the recipient's own votes, which
    /// [`Engine::speaks`] leaves out) count as heard by an item key, which the item keys'
    /// silence ratio does not read, so that the silence ratio counts every deletion as heard.
    pub fn deleted(&mut self, user: u32, evidence: &[Evidence]) {
        if !self.users[user as usize].probe {
            let hearing = match self.hearing(user, evidence) {
                Hearing::Silent => Hearing::Item,
                heard => heard,
            };
            self.heard[hearing as usize][1] += 1;
            let u = &mut self.users[user as usize];
            u.deleted += 1;
        }
    }

    /// `user` answered a held line printed with raw log-odds of spam `shown_logit`
    /// ([`Judgement::logit`]): the calibration of what the summary prints
    /// ([`crate::calibration`]). A probe's reports are no answers.
    pub fn answered(&mut self, user: u32, shown_logit: f64, vote: Vote, at: f64) {
        if !self.users[user as usize].probe {
            self.calibration.answered(shown_logit, vote == Vote::Ham, at);
        }
    }

    /// Whether a key has evidence of spam for `user` from someone else: an entry of another
    /// voter who mostly voted spam on it, outside the message's own unit for a population
    /// key. What [`Engine::judge`] would hear, without weighing it (trust is not known while a service reads its votes back
    /// after a restart, and the count must not depend on when refreshes ran).
    fn speaks(&self, user: u32, e: &Evidence) -> bool {
        let Some(&key) = self.names[e.kind.index()].get(&e.key) else { return false };
        let own = if e.kind.population() { self.units.get(&e.unit).copied() } else { None };
        self.keys[key as usize].entries.iter().any(|x| x.voter != user && own != Some(x.unit) && x.spam > x.ham)
    }

    /// What a message's keys say for `user` as labels are counted: whether an item key and
    /// whether a population key has someone else's evidence of spam ([`Engine::speaks`]).
    fn hearing(&self, user: u32, evidence: &[Evidence]) -> Hearing {
        let speaks =
            |population: bool| evidence.iter().any(|e| e.kind.population() == population && self.speaks(user, e));
        Hearing::of(speaks(false), speaks(true))
    }

    /// The log-ratio of silence, a message none of whose keys has anyone's evidence of spam:
    /// `ln(P(silent | spam) / P(silent | ham))`, from the users' votes (each a label of a
    /// held message, [`Engine::record`]) and the statistics' deletions (heard spam) with
    /// one pseudo-vote each way ([`absence_llr`]). Spam mostly comes in campaigns that others have reported
    /// by the time it is shown; a correspondent's mail is known to no one else, or only
    /// through approvals (a link other senders' readers approved, a domain with approved
    /// senders). Silence is the absence of evidence *of spam*: a weak term for ham is no
    /// reason to print a new correspondent's line at the prior (on the development corpus
    /// such lines, printed "not spam: 60–90%", were all ham). Without it, every unknown
    /// line would print the prior.
    ///
    /// As of the last refresh, like the weights: one more vote changes what silence is
    /// worth for everyone, and judged at once it could lower the P(spam) of a message whose
    /// keys it does not touch.
    pub fn silence_llr(&self) -> f64 {
        self.silence
    }

    /// The log-ratio of the item keys' silence where population keys speak: a message whose
    /// link, network or domain others reported in *other* senders' mail, while nobody
    /// reported its sender, campaign, Reply-To or content,
    /// `ln(P(no item speaks | a population key speaks, spam) / P(… | ham))`, counted like
    /// [`Engine::silence_llr`]. The population term weighs what other senders' mail through
    /// the same link or network was; it cannot weigh what the message's own keys did not
    /// say. Spam that reaches many users is reported by its campaign (the probes see it
    /// first), so once the campaigns are known, a held line with only population evidence is
    /// mostly a correspondent who links to a site that spam also links to (on the held-out
    /// SpamAssassin mail, the ham nearest deletion was `url yahoo.com`, 7 spam campaigns, and
    /// nothing else). The counts say how far that holds; at cold start, with no ham among
    /// them, the pseudo-votes alone speak, as for silence.
    pub fn item_silence_llr(&self) -> f64 {
        self.item_silence
    }

    fn estimate_silence(&mut self) {
        let [none, population, item, both] = self.heard;
        let heard = [0, 1].map(|spam| population[spam] + item[spam] + both[spam]);
        self.silence = absence_llr(none, heard);
        self.item_silence = absence_llr(population, both);
    }

    fn count(&mut self, user: u32, domain: &str, vote: Vote) {
        let (a, s) = match vote {
            Vote::Ham => (1, 0),
            Vote::Spam => (0, 1),
        };
        let domain = self.key_id(KeyKind::Domain, domain);
        let u = &mut self.users[user as usize];
        u.approvals += a;
        u.spam += s;
        match u.counts.binary_search_by_key(&domain, |c| c.0) {
            Ok(i) => {
                u.counts[i].1 += a;
                u.counts[i].2 += s;
            }
            Err(i) => u.counts.insert(i, (domain, a, s)),
        }
        self.mark_dirty(user);
    }

    /// Records `user`'s verdict on keys without counting it as one of their votes: a copy
    /// that reached their Inbox from a sender they approved approves its campaign (and
    /// whatever else it carries), though they never answered for it.
    pub fn record_evidence(&mut self, user: u32, evidence: &[Evidence], vote: Vote, at: f64) {
        self.latest = self.latest.max(at);
        let mass = self.decay.mass(at);
        let (spam, ham) = if vote == Vote::Spam { (mass, 0.0) } else { (0.0, mass) };
        let origin = evidence
            .iter()
            .find(|e| e.kind == KeyKind::Sender)
            .map_or(NO_SENDER, |e| self.key_id(KeyKind::Sender, &e.key));
        for e in evidence {
            let key = self.key_id(e.kind, &e.key);
            let unit = match (self.settings.unit, e.kind.population()) {
                (EvidenceUnit::Votes, _) => {
                    self.vote_units -= 1;
                    self.vote_units
                }
                (EvidenceUnit::Senders, true) => self.unit_id(&e.unit),
                (EvidenceUnit::Senders, false) => user,
            };
            let entries = &mut self.keys[key as usize].entries;
            match entries.binary_search_by_key(&(unit, user), |e| (e.unit, e.voter)) {
                Ok(i) => {
                    entries[i].spam += spam;
                    entries[i].ham += ham;
                }
                Err(i) => entries.insert(i, Entry { unit, voter: user, origin, spam, ham }),
            }
            if e.kind.population() && !self.is_touched[key as usize] {
                self.is_touched[key as usize] = true;
                self.touched.push(key);
            }
        }
    }

    /// Brings ratios, the spam index, witnesses, statuses, mixtures and the dirty users'
    /// correlations up to date.
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
            .map(|u| {
                let votes = UserVotes { probe: u.probe, approvals: u.approvals, spam: u.spam, deleted: u.deleted };
                base_status(&votes, &trust)
            })
            .collect();
        let anchors = self.anchors();
        // Disagreement with the probes: approving what a probe received.
        let measured: Vec<Option<(f64, usize)>> = anchors
            .iter()
            .map(|a| (a.probe_n > 0).then(|| (1.0 - a.probe_agree / a.probe_n as f64, a.probe_n as usize)))
            .collect();
        apply_probe_rule(&mut self.statuses, &measured, &trust);
        self.apply_coordination_rule(&anchors);
        self.estimate_witnesses(&anchors);
        self.update_mixtures();
        self.calibration.refresh();
        self.estimate_silence();
        let (mut spam, mut votes) = (0.0, 0.0);
        for (u, user) in self.users.iter().enumerate() {
            if !user.probe && self.statuses[u].counts() {
                spam += f64::from(user.spam + user.deleted);
                votes += f64::from(user.spam + user.deleted + user.approvals);
            }
        }
        self.population_spam = (spam + 1.0) / (votes + 2.0);
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

    /// One pass over the sender and campaign keys: per user, their votes on senders and
    /// campaigns a probe received (and how many were spam votes; a message's sender and
    /// campaign count once), on senders another counted user approved (and how many
    /// approvals), and how many contested items (a sender or a campaign received by a
    /// probe, approved by `coordination` or more accounts) they approved, once per approved
    /// message's sender where it is known. Campaigns count because botnets rotate sender
    /// addresses: a Sybil ring approving its campaigns approves a different address in
    /// every copy, but the same campaign.
    fn anchors(&self) -> Vec<Anchor> {
        let mut anchors = vec![Anchor::default(); self.users.len()];
        let min = self.settings.trust.coordination as usize;
        let mut probe_senders = 0u64;
        let mut probe_senders_approved = 0u64;
        // (user, the voted message's sender) per contested approval and per vote on what a
        // probe received: a message's sender and campaign are one judgement.
        let mut contested: Vec<(u32, u32)> = Vec::new();
        let mut probed_votes: Vec<(u32, u32, bool)> = Vec::new();
        for (id, key) in self.keys.iter().enumerate() {
            let kind = self.kinds[id];
            if !matches!(kind, KeyKind::Sender | KeyKind::Campaign) || key.entries.len() < 2 {
                continue;
            }
            // An item key is one item: all its voters judged the same sender or campaign.
            let unit = key.entries.as_slice();
            let probed = unit.iter().any(|e| self.users[e.voter as usize].probe);
            // The voted message's sender; a campaign vote recorded on its own (the service's
            // campaign votes) is a judgement of its own.
            let message = |e: &Entry| match (kind, e.origin) {
                (KeyKind::Campaign, origin) if origin != NO_SENDER => origin,
                _ => id as u32,
            };
            let voters = unit.iter().filter(|e| !self.users[e.voter as usize].probe);
            if probed {
                probed_votes.extend(voters.clone().map(|e| (e.voter, message(e), e.spam >= e.ham)));
            }
            let approvers = voters.clone().filter(|e| e.ham > e.spam);
            if probed && min > 0 && approvers.clone().count() >= min {
                contested.extend(approvers.clone().map(|e| (e.voter, message(e))));
            }
            if kind != KeyKind::Sender {
                continue;
            }
            let counted = approvers.filter(|e| self.statuses[e.voter as usize].counts()).count();
            if probed {
                probe_senders += 1;
                probe_senders_approved += u64::from(counted > 0);
            }
            for e in voters {
                let a = &mut anchors[e.voter as usize];
                let spam = e.spam >= e.ham;
                let own = usize::from(!spam && self.statuses[e.voter as usize].counts());
                if counted > own {
                    a.ham_n += 1;
                    a.ham_agree += f64::from(u8::from(!spam));
                }
            }
        }
        contested.sort_unstable();
        contested.dedup();
        for (user, _) in contested {
            anchors[user as usize].contested += 1;
        }
        probed_votes.sort_unstable();
        probed_votes.dedup_by_key(|(user, message, _)| (*user, *message));
        for (user, _, spam) in probed_votes {
            let a = &mut anchors[user as usize];
            a.probe_n += 1;
            a.probe_agree += f64::from(u8::from(spam));
        }
        if let Some(first) = anchors.first_mut() {
            // Carried on the first row: the probes' own record.
            first.probe_senders = probe_senders;
            first.probe_senders_approved = probe_senders_approved;
        }
        anchors
    }

    /// Seed 002, item 2: a spammer's accounts approve the spammer's senders. A sender or
    /// campaign the spam probes received (so spam) that `coordination` or more accounts
    /// approved is *contested*; an account that approved `coordination` or more contested
    /// items is excluded if such items are nearly all (90%) it approved. Honest mistakes are rare
    /// and scattered, and honest approvals go mostly to correspondents no probe hears from.
    fn apply_coordination_rule(&mut self, anchors: &[Anchor]) {
        let min = self.settings.trust.coordination;
        if min == 0 {
            return;
        }
        for (u, a) in anchors.iter().enumerate() {
            let approvals = self.users[u].approvals.max(1);
            let status = &mut self.statuses[u];
            if a.contested >= min
                && f64::from(a.contested) >= 0.9 * f64::from(approvals)
                && status.counts()
                && *status != TrustStatus::Probe
            {
                *status = TrustStatus::ApprovesCondemned { senders: a.contested };
            }
        }
    }

    /// The population's pooled sensitivity and specificity (counted users), and each user's
    /// own, shrunk toward them; the probes' ratio from how often what they received was
    /// approved (module docs).
    fn estimate_witnesses(&mut self, anchors: &[Anchor]) {
        let (mut pn, mut pa, mut hn, mut ha) = (0.0, 0.0, 0.0, 0.0);
        for (u, a) in anchors.iter().enumerate() {
            if self.statuses[u].counts() && !self.users[u].probe {
                pn += a.probe_n as f64;
                pa += a.probe_agree;
                hn += a.ham_n as f64;
                ha += a.ham_agree;
            }
        }
        let (lo, hi) = RELIABILITY;
        // Two pseudo-votes at 0.9 each way: before any anchor, a user is taken to be right
        // nine times in ten.
        let sens0 = ((pa + 1.8) / (pn + 2.0)).clamp(lo, hi);
        let spec0 = ((ha + 1.8) / (hn + 2.0)).clamp(lo, hi);
        self.pooled = (sens0, spec0);
        let k = self.settings.shrinkage;
        let (n, approved) = anchors.first().map_or((0, 0), |a| (a.probe_senders, a.probe_senders_approved));
        let ratio = self.settings.probe_ratio.min((n as f64 + self.settings.probe_ratio) / (approved as f64 + 1.0));
        self.probe_llr = ratio.max(1.0).ln();
        for (u, user) in self.users.iter_mut().enumerate() {
            if user.probe {
                (user.llr_spam, user.llr_ham) = (self.probe_llr, 0.0);
                continue;
            }
            let a = anchors.get(u).copied().unwrap_or_default();
            let sens = ((a.probe_agree + k * sens0) / (a.probe_n as f64 + k)).clamp(lo, hi);
            let spec = ((a.ham_agree + k * spec0) / (a.ham_n as f64 + k)).clamp(lo, hi);
            (user.llr_spam, user.llr_ham) = llrs(sens, spec);
        }
    }

    /// Re-types the population keys touched since the last refresh (global weights: every
    /// counted user fully) and updates their kinds' mixtures.
    fn update_mixtures(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        for key in touched {
            self.is_touched[key as usize] = false;
            let kind = self.kinds[key as usize];
            let units = self.unit_logits(key, None, None, self.latest, |_| true);
            let decisive = units.iter().filter(|(_, l)| l.abs() >= DECISIVE).count();
            let now = match decisive >= TYPED {
                true => type_weights(units.iter().map(|(_, l)| *l), &self.mixtures[kind.index()]),
                false => [0.0; 3],
            };
            let before = std::mem::replace(&mut self.keys[key as usize].seen, now);
            for (count, (b, n)) in self.types[kind.index()].iter_mut().zip(before.into_iter().zip(now)) {
                *count = (*count - b + n).max(0.0);
            }
        }
        for kind in KeyKind::ALL {
            let [s, h, m] = self.types[kind.index()];
            self.mixtures[kind.index()] = Mixture::from_counts(s, h, m);
        }
    }

    /// The mixture a population kind's keys are judged with now.
    pub fn mixture(&self, kind: KeyKind) -> Mixture {
        self.mixtures[kind.index()]
    }

    /// Each unit's summed evidence under a key, `(unit, ℓᵤ)`: for `recipient` (trust
    /// weights, decay to `now`), or with every counted user at full weight when `None`
    /// (the mixture estimate and the operator's tables). `seed_prior`, with the seed's
    /// combination, turns each unit into its witness logit instead. Entries `keep` rejects
    /// are left out (see [`Engine::judge`]).
    fn unit_logits(
        &self,
        key: u32,
        recipient: Option<u32>,
        seed_prior: Option<f64>,
        now: f64,
        keep: impl Fn(&Entry) -> bool,
    ) -> Vec<(u32, f64)> {
        let decay = self.decay.scale(now);
        let mut out: Vec<(u32, f64)> = Vec::new();
        for unit in self.keys[key as usize].entries.chunk_by(|a, b| a.unit == b.unit) {
            let (mut ell, mut balance, mut strongest) = (0.0, 0.0, 0.0f64);
            for e in unit.iter().filter(|e| keep(e)) {
                let w = match recipient {
                    Some(r) => self.weight(r, e.voter),
                    None => f64::from(u8::from(self.statuses[e.voter as usize].counts())),
                };
                if w <= 0.0 {
                    continue;
                }
                let (spam, ham) = (e.spam * decay, e.ham * decay);
                let strength = spam.max(ham).min(1.0);
                let user = &self.users[e.voter as usize];
                ell += w * strength * if spam > ham { user.llr_spam } else { user.llr_ham };
                balance += w * (spam - ham);
                strongest = strongest.max(w * strength);
            }
            let value = match seed_prior {
                // The seed: the unit is one witness, its voters' weighted majority, with the
                // Bayes posterior of that verdict under the recipient's prior.
                Some(prior) if balance != 0.0 => {
                    let vote = if balance > 0.0 { Vote::Spam } else { Vote::Ham };
                    strongest * logit(self.settings.model.posterior(vote, prior))
                }
                Some(_) => continue,
                None => ell,
            };
            if value != 0.0 {
                out.push((unit[0].unit, value));
            }
        }
        out
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

    /// The log-ratios of `user`'s spam votes and approvals, as last estimated.
    pub fn reliability(&self, user: u32) -> (f64, f64) {
        let u = &self.users[user as usize];
        (u.llr_spam, u.llr_ham)
    }

    /// `user`'s correlations as the target, by candidate.
    pub fn correlations(&self, user: u32) -> &[(u32, Correlation)] {
        &self.users[user as usize].correlations
    }

    /// The recipient's prior P(spam): their share of spam among their votes and the
    /// statistics' deletions of their mail ([`Engine::deleted`]), with 10 pseudo-votes at
    /// the population's share (counted users other than probes, as of the last refresh),
    /// inside [0.02, 0.98].
    pub fn prior(&self, recipient: u32) -> f64 {
        let population = self.population_spam;
        let u = &self.users[recipient as usize];
        ((f64::from(u.spam + u.deleted) + 10.0 * population) / (f64::from(u.spam + u.deleted + u.approvals) + 10.0))
            .clamp(0.02, 0.98)
    }

    /// How much `voter` counts for `recipient`.
    pub fn weight(&self, recipient: u32, voter: u32) -> f64 {
        let rows = &self.users[recipient as usize].correlations;
        let correlation = rows.binary_search_by_key(&voter, |(c, _)| *c).ok().map(|i| &rows[i].1);
        weight(&self.settings.trust, recipient == voter, &self.statuses[voter as usize], correlation)
    }

    /// The statistics' verdict on one message for `recipient` at `now` (seconds) from the
    /// votes on its keys (SPEC 2.2): delete when P(spam) exceeds `delete_above`, compared in
    /// log-odds so that bounds like 1 − 1e-9 keep their meaning.
    ///
    /// **Each vote counts once per message.** A vote on an earlier message is a vote on all
    /// of that message's keys, so the keys of the message judged now share voters: two
    /// users who blanked one newsletter voted on its sender, its domain, its campaign, each
    /// of its URL domains and its network. Adding those terms would count the two
    /// judgements many times over (on the hard-ham corpus, one mistaken blank of a
    /// newsletter, counted through its sender, three footer URL domains and its /24,
    /// deleted the next issue for every other reader). So:
    /// - a population key leaves out the message's own unit (its sender under the domain,
    ///   its campaign under a URL or network) and every vote on a message of the same
    ///   sender: the item keys already hold those. The population term is about the
    ///   message as a *new* unit from a *new* sender, as its derivation assumes
    ///   ([`crate::evidence`]); what remains are other senders' and campaigns' votes;
    /// - the item keys (sender, campaign, Reply-To, hashes) judge one message through the
    ///   same votes, and so do the population keys (the URL domains and the network of the
    ///   other campaigns are on the same earlier messages): each of the two families is
    ///   combined as fully dependent evidence, its strongest term for spam plus its
    ///   strongest against, not their sum. The item keys' *links* are independent, though
    ///   (a false match of the campaign's text is not a false match of its Reply-To), so
    ///   item keys of one sign that agree add what each one says where the stronger ones'
    ///   links are false ([`agreeing_items`], [`Judgement::agreement_logit`]); no vote
    ///   counts twice. The two families add: what the voters said of
    ///   this sender and campaign, and what they said of *other* senders' mail through the
    ///   same domain, links or network. Both are monotone in every term, so a spam vote
    ///   still never lowers P(spam).
    ///
    /// Each term keeps its own value in [`Judgement::terms`] (what `explain` shows); the
    /// terms not counted carry their value in [`Term::logit`] but are marked by
    /// [`Term::counted`] false, and those that agree by [`Term::agrees`].
    pub fn judge(&self, recipient: u32, evidence: &[Evidence], now: f64, delete_above: f64) -> Judgement {
        let prior = self.prior(recipient);
        let seed = self.settings.combination == Combination::Seed;
        let prior_logit = if seed { 0.0 } else { logit(prior) };
        let sender = evidence
            .iter()
            .find(|e| e.kind == KeyKind::Sender)
            .and_then(|e| self.names[KeyKind::Sender.index()].get(&e.key).copied());
        let (mut terms, ells): (Vec<Term>, Vec<f64>) = evidence
            .iter()
            .map(|e| {
                let mut term = Term {
                    kind: e.kind,
                    key: e.key.clone(),
                    logit: 0.0,
                    counted: true,
                    agrees: false,
                    spam_units: 0,
                    ham_units: 0,
                };
                let Some(&key) = self.names[e.kind.index()].get(&e.key) else { return (term, 0.0) };
                // The seed's formula counts every witness on every key, as seed 002 does.
                let own = if e.kind.population() && !seed { self.units.get(&e.unit).copied() } else { None };
                let same_sender = |x: &Entry| e.kind.population() && !seed && sender == Some(x.origin);
                let units = self.unit_logits(key, Some(recipient), seed.then_some(prior), now, |x| {
                    own != Some(x.unit) && !same_sender(x)
                });
                term.spam_units = units.iter().filter(|(_, l)| *l > 0.0).count() as u32;
                term.ham_units = units.iter().filter(|(_, l)| *l < 0.0).count() as u32;
                let ell: f64 = units.iter().map(|(_, l)| l).sum();
                term.logit = match (seed, e.kind.population()) {
                    (true, _) => ell,
                    (false, true) => population_term(units.iter().map(|(_, l)| *l), &self.mixture(e.kind)),
                    (false, false) => item_term(ell, self.impurity(e.kind)),
                };
                (term, ell)
            })
            .unzip();
        let mut agreement_logit = 0.0;
        if !seed {
            let strongest = |population: bool, spam: bool| {
                let family = terms
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.kind.population() == population && t.logit != 0.0 && (t.logit > 0.0) == spam);
                family.max_by(|a, b| a.1.logit.abs().total_cmp(&b.1.logit.abs())).map(|(i, _)| i)
            };
            let keep = [strongest(false, true), strongest(false, false), strongest(true, true), strongest(true, false)];
            for (i, t) in terms.iter_mut().enumerate() {
                t.counted = t.logit == 0.0 || keep.contains(&Some(i));
            }
            // Item keys of one sign, strongest evidence first: their links are independent.
            for (spam, top) in [(true, keep[0]), (false, keep[1])] {
                let Some(top) = top else { continue };
                let mut side: Vec<usize> = (0..terms.len())
                    .filter(|&i| !terms[i].kind.population() && terms[i].logit != 0.0 && (terms[i].logit > 0.0) == spam)
                    .collect();
                side.sort_by(|&a, &b| ells[b].abs().total_cmp(&ells[a].abs()));
                let links: Vec<(f64, f64)> = side.iter().map(|&i| (ells[i], self.impurity(terms[i].kind))).collect();
                // Never below the strongest key alone ([`agreeing_items`]).
                agreement_logit += agreeing_items(&links) - terms[top].logit;
                for &i in side.iter().filter(|&&i| i != top) {
                    terms[i].agrees = true;
                }
            }
        }
        let speaks = |population: bool| terms.iter().any(|t| t.kind.population() == population && t.logit > 0.0);
        // Silence only ever speaks for a message: it never brings one closer to deletion
        // (or to the purge of what is almost certainly spam) without anyone's evidence.
        let silence_logit = match (seed, Hearing::of(speaks(false), speaks(true))) {
            (false, Hearing::Silent) => self.silence_llr().min(0.0),
            (false, Hearing::Population) => self.item_silence_llr().min(0.0),
            _ => 0.0,
        };
        let mut j = Judgement { prior_logit, terms, silence_logit, agreement_logit, not_spam: 0.5, deleted_by: None };
        j.not_spam = 1.0 - logistic(self.calibration.calibrated(j.logit()));
        if j.logit() > logit(delete_above) {
            j.deleted_by =
                j.terms.iter().filter(|t| t.counted).max_by(|a, b| a.logit.total_cmp(&b.logit)).map(|t| t.kind);
        }
        j
    }

    /// An item key's impurity ε ([`Settings::campaign_impurity`], [`Settings::item_impurity`]).
    fn impurity(&self, kind: KeyKind) -> f64 {
        match kind {
            KeyKind::Campaign => self.settings.campaign_impurity,
            _ => self.settings.item_impurity,
        }
    }

    /// A key's term with every counted user at full weight and an even prior (no
    /// recipient): the operator's tables.
    pub fn global_term(&self, kind: KeyKind, name: &str) -> Option<Term> {
        let key = *self.names[kind.index()].get(name)?;
        let units = self.unit_logits(key, None, None, self.latest, |_| true);
        let logit = match kind.population() {
            true => population_term(units.iter().map(|(_, l)| *l), &self.mixture(kind)),
            false => item_term(units.iter().map(|(_, l)| l).sum(), self.impurity(kind)),
        };
        Some(Term {
            kind,
            key: name.to_string(),
            logit,
            counted: true,
            agrees: false,
            spam_units: units.iter().filter(|(_, l)| *l > 0.0).count() as u32,
            ham_units: units.iter().filter(|(_, l)| *l < 0.0).count() as u32,
        })
    }

    /// Every key of a kind with votes.
    pub fn keys(&self, kind: KeyKind) -> impl Iterator<Item = &str> + '_ {
        self.names[kind.index()]
            .iter()
            .filter(|(_, id)| !self.keys[**id as usize].entries.is_empty())
            .map(|(name, _)| name.as_str())
    }
}

/// What a message's keys said of it: which of the two families had evidence of spam.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hearing {
    Silent = 0,
    Population = 1,
    Item = 2,
    Both = 3,
}

impl Hearing {
    fn of(item: bool, population: bool) -> Hearing {
        match (item, population) {
            (false, false) => Hearing::Silent,
            (false, true) => Hearing::Population,
            (true, false) => Hearing::Item,
            (true, true) => Hearing::Both,
        }
    }
}

/// `ln(P(absent | spam) / P(absent | ham))` from labelled counts `[ham, spam]` of messages
/// where some evidence was absent and where it was present, with one pseudo-count each way
/// (Laplace's rule).
fn absence_llr(absent: [u64; 2], present: [u64; 2]) -> f64 {
    let p = |c: usize| (absent[c] as f64 + 1.0) / ((absent[c] + present[c]) as f64 + 2.0);
    (p(1) / p(0)).ln()
}

/// A user's anchored record, from [`Engine::anchors`].
#[derive(Debug, Clone, Copy, Default)]
struct Anchor {
    probe_n: u32,
    probe_agree: f64,
    ham_n: u32,
    ham_agree: f64,
    contested: u32,
    probe_senders: u64,
    probe_senders_approved: u64,
}

/// The log-ratios of a spam vote and of an approval by a witness with this sensitivity and
/// specificity, never turned around.
fn llrs(sens: f64, spec: f64) -> (f64, f64) {
    ((sens / (1.0 - spec)).ln().max(0.0), ((1.0 - sens) / spec).ln().min(0.0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: f64 = 86_400.0;
    const BOUND: f64 = 1.0 - 1e-6;

    /// The keys of a message from `sender` at `domain` in `campaign`, linking to `url`.
    fn message(sender: &str, campaign: Option<&str>, url: Option<&str>) -> Vec<Evidence> {
        let domain = sender.rsplit_once('@').map_or(sender, |(_, d)| d);
        let unit = campaign.unwrap_or(sender);
        let mut keys =
            vec![Evidence::new(KeyKind::Sender, sender, sender), Evidence::new(KeyKind::Domain, domain, sender)];
        keys.extend(campaign.map(|c| Evidence::new(KeyKind::Campaign, c, c)));
        keys.extend(url.map(|u| Evidence::new(KeyKind::Url, u, unit)));
        keys
    }

    fn vote(e: &mut Engine, user: u32, keys: &[Evidence], v: Vote, at: f64) {
        let domain = keys.iter().find(|k| k.kind == KeyKind::Domain).map_or("none", |k| k.key.as_str()).to_string();
        e.record(user, &domain, keys, v, at);
    }

    /// `n` users with a history like the probes' (30 spam senders blanked, 5 correspondents
    /// approved each), and one probe.
    fn population(n: usize) -> (Engine, u32, Vec<u32>) {
        let mut e = Engine::new(Settings::default());
        let probe = e.add_user(true);
        let users: Vec<u32> = (0..n).map(|_| e.add_user(false)).collect();
        for d in 0..30 {
            let spam = message(&format!("s{d}@spam{d}.example"), None, None);
            vote(&mut e, probe, &spam, Vote::Spam, 0.0);
            for (i, &u) in users.iter().enumerate() {
                vote(&mut e, u, &spam, Vote::Spam, 0.0);
                if d < 5 {
                    vote(&mut e, u, &message(&format!("friend{d}@home{i}.example"), None, None), Vote::Ham, 0.0);
                }
            }
        }
        e.refresh();
        (e, probe, users)
    }

    #[test]
    fn statuses_correlations_and_witnesses() {
        let (mut e, probe, users) = population(3);
        let newcomer = e.add_user(false);
        vote(&mut e, newcomer, &message("s1@spam1.example", None, None), Vote::Ham, 0.0);
        e.refresh();
        assert_eq!(e.status(probe), TrustStatus::Probe);
        assert_eq!(e.status(users[0]), TrustStatus::Trusted);
        assert_eq!(e.status(newcomer), TrustStatus::TooFewVotes { votes: 1 });
        let to_probe = e.correlations(users[0]).iter().find(|(c, _)| *c == probe).unwrap().1;
        assert!(to_probe.rms_error < 1e-9 && to_probe.domains == 30, "{to_probe:?}");
        // Agreeing with the probe on 30 senders makes a user's approvals strong evidence;
        // nobody else approved their correspondents, so their specificity is the
        // population's prior one (0.9) and a spam vote is worth 0.99 / 0.1.
        let (spam, ham) = e.reliability(users[0]);
        assert!((spam - (0.99f64 / 0.1).ln()).abs() < 0.05 && ham < -4.0, "{spam} {ham}");
        assert!((e.reliability(probe).0 - 20f64.ln()).abs() < 1e-9);
        assert_eq!(e.weight(users[0], newcomer), 0.0);
        // Only dirty users are recomputed.
        vote(&mut e, users[1], &message("x@y.example", None, None), Vote::Spam, 0.0);
        assert_eq!(e.refresh().users, 1);
    }

    #[test]
    fn no_single_key_deletes_and_agreeing_keys_do() {
        let (mut e, probe, users) = population(16);
        // Three other campaigns linking to the same domain, reported by the probe.
        for c in 0..3 {
            let other = message(&format!("o{c}@other{c}.example"), Some(&format!("o{c}")), Some("pills.example"));
            vote(&mut e, probe, &other, Vote::Spam, 0.0);
        }
        // Every copy from a new sender at a new domain; twelve recipients report it.
        for (i, &u) in users.iter().enumerate().take(12) {
            let copy = message(&format!("x{i}@rot{i}.example"), Some("c7"), Some("pills.example"));
            vote(&mut e, u, &copy, Vote::Spam, 0.0);
        }
        e.refresh();
        let late = users[15];
        let campaign_only = e.judge(late, &message("new@fresh.example", Some("c7"), None), 0.0, BOUND);
        let c = campaign_only.term(KeyKind::Campaign).unwrap();
        assert_eq!(c.spam_units, 12);
        // At most 1 − ε from one key, however many said spam.
        assert!(campaign_only.p_spam() > 0.999 && !campaign_only.delete(), "{campaign_only:?}");
        assert!((c.logit - logit(1.0 - 1e-4)).abs() < 0.01, "{c:?}");
        let both = e.judge(late, &message("new@fresh.example", Some("c7"), Some("pills.example")), 0.0, BOUND);
        assert_eq!(both.deleted_by, Some(KeyKind::Campaign), "{both:?}");
        assert!(both.term(KeyKind::Url).unwrap().logit > 0.0);
        assert_eq!(both.term(KeyKind::Domain).unwrap().logit, 0.0, "nobody voted on the domain");
    }

    #[test]
    fn a_new_address_at_a_mixed_domain_is_held() {
        let (mut e, probe, users) = population(10);
        // Eight spam senders at a free-mail-like domain reported by the probe and users,
        // two correspondents there approved.
        for (i, &u) in users.iter().enumerate().take(8) {
            let spam = message(&format!("spam{i}@mixed.example"), None, None);
            vote(&mut e, probe, &spam, Vote::Spam, 0.0);
            vote(&mut e, u, &spam, Vote::Spam, 0.0);
        }
        for (i, &u) in users.iter().enumerate().take(2) {
            vote(&mut e, u, &message(&format!("pal{i}@mixed.example"), None, None), Vote::Ham, 0.0);
        }
        e.refresh();
        let j = e.judge(users[9], &message("newcomer@mixed.example", None, None), 0.0, BOUND);
        let d = j.term(KeyKind::Domain).unwrap();
        assert_eq!((d.spam_units, d.ham_units), (8, 2));
        assert!(!j.delete() && j.p_spam() < 0.999, "{j:?}");
        // The same spam senders with no approval: stronger, but a domain alone is not
        // certain about its next sender.
        let (mut e, probe, users) = population(10);
        for (i, &u) in users.iter().enumerate().take(8) {
            let spam = message(&format!("spam{i}@spamonly.example"), None, None);
            vote(&mut e, probe, &spam, Vote::Spam, 0.0);
            vote(&mut e, u, &spam, Vote::Spam, 0.0);
        }
        e.refresh();
        let only = e.judge(users[9], &message("newcomer@spamonly.example", None, None), 0.0, BOUND);
        // Two approvals among ten senders cut the odds for the next one by more than e².
        assert!(only.term(KeyKind::Domain).unwrap().logit > d.logit + 2.0 && !only.delete(), "{only:?}");
        // A known sender: its own votes (sender key) and its domain's other senders (its
        // own unit is the sender key's).
        let known = e.judge(users[9], &message("spam0@spamonly.example", None, None), 0.0, BOUND);
        assert_eq!(known.term(KeyKind::Domain).unwrap().spam_units, 7);
        assert_eq!(known.term(KeyKind::Sender).unwrap().spam_units, 2);
    }

    #[test]
    fn a_ring_approving_its_campaigns_from_rotating_addresses_is_excluded() {
        let (mut e, probe, users) = population(3);
        let ring: Vec<u32> = (0..4).map(|_| e.add_user(false)).collect();
        for d in 0..30 {
            // Like honest users, the ring blanks what the probes report.
            let spam = message(&format!("s{d}@spam{d}.example"), None, None);
            for &s in &ring {
                vote(&mut e, s, &spam, Vote::Spam, 0.0);
            }
        }
        for c in 0..10 {
            let campaign = format!("ring{c}");
            vote(&mut e, probe, &message(&format!("a@p{c}.example"), Some(&campaign), None), Vote::Spam, 0.0);
            for (i, &s) in ring.iter().enumerate() {
                // Every copy from an address of its own: no sender is approved twice.
                let copy = message(&format!("a@r{c}-{i}.example"), Some(&campaign), None);
                vote(&mut e, s, &copy, Vote::Ham, 0.0);
            }
        }
        e.refresh();
        for &s in &ring {
            assert_eq!(e.status(s), TrustStatus::ApprovesCondemned { senders: 10 });
        }
        for &u in &users {
            assert_eq!(e.status(u), TrustStatus::Trusted);
        }
    }

    #[test]
    fn answers_calibrate_what_is_printed_not_what_is_deleted() {
        let (mut e, probe, users) = population(3);
        let m = message("s1@spam1.example", None, None);
        let before = e.judge(users[0], &m, 0.0, BOUND);
        assert!(before.not_spam() < 0.01, "{before:?}");
        // A probe's reports are no answers; users' answers at those log-odds, all ham, are.
        for _ in 0..100 {
            e.answered(probe, before.logit(), Vote::Ham, 0.0);
        }
        e.refresh();
        assert_eq!(e.judge(users[0], &m, 0.0, BOUND), before);
        for _ in 0..100 {
            e.answered(users[1], before.logit(), Vote::Ham, 0.0);
        }
        e.refresh();
        // Printed far higher (short of the answers' share: the lines printed as less likely
        // spam, none answered, may not be printed below it).
        let after = e.judge(users[0], &m, 0.0, BOUND);
        assert!(after.not_spam() > 0.5, "{after:?}");
        assert_eq!((after.logit(), after.deleted_by), (before.logit(), before.deleted_by));
    }

    #[test]
    fn silence_raises_a_line_and_is_never_evidence_of_spam() {
        // The users' spam votes were on what the probe had reported, their approvals on
        // correspondents nobody else knows.
        let (e, _, users) = population(10);
        assert!(e.silence_llr() < -3.0, "{}", e.silence_llr());
        let stranger = e.judge(users[0], &message("stranger@nowhere.example", None, None), 0.0, BOUND);
        let prior = logistic(-stranger.prior_logit);
        assert!(stranger.silence_logit < -3.0 && stranger.not_spam() > prior, "{stranger:?}");
        // Evidence only for ham is no evidence of spam: a new sender at a domain another
        // user's correspondents write from is as silent as a stranger, and its term adds.
        let neighbour = e.judge(users[0], &message("new@home1.example", None, None), 0.0, BOUND);
        assert!(neighbour.terms.iter().any(|t| t.logit < 0.0), "{neighbour:?}");
        assert_eq!(neighbour.silence_logit, stranger.silence_logit);
        assert!(neighbour.not_spam() > stranger.not_spam(), "{neighbour:?}");
        // A message a key speaks for is judged by its keys.
        let known = e.judge(users[0], &message("s1@spam1.example", None, None), 0.0, BOUND);
        assert_eq!(known.silence_logit, 0.0);
        // Where the spam was the silent kind, silence says nothing: every spam sender was
        // new, and the ham was newsletters one reader had blanked before the others
        // approved them.
        let mut e = Engine::new(Settings::default());
        let users: Vec<u32> = (0..5).map(|_| e.add_user(false)).collect();
        for d in 0..20 {
            let news = message(&format!("news{d}@list.example"), None, None);
            vote(&mut e, users[0], &news, Vote::Spam, 0.0);
            for &u in &users {
                vote(&mut e, u, &message(&format!("s{d}.{u}@spam.example{d}.{u}"), None, None), Vote::Spam, 0.0);
                if u != users[0] {
                    vote(&mut e, u, &news, Vote::Ham, 0.0);
                }
            }
            e.refresh();
        }
        assert!(e.silence_llr() > 0.0, "{}", e.silence_llr());
        let j = e.judge(users[0], &message("stranger@nowhere.example", None, None), 0.0, BOUND);
        assert_eq!(j.silence_logit, 0.0);
    }

    #[test]
    fn where_only_population_keys_speak_the_item_keys_silence_counts() {
        // Each spam campaign was reported by the probe before the users saw it, and linked
        // to a site; afterwards a correspondent of every user linked to that site too.
        let mut e = Engine::new(Settings::default());
        let probe = e.add_user(true);
        let users: Vec<u32> = (0..5).map(|_| e.add_user(false)).collect();
        let spam = |d: usize, u: u32, site: &str| {
            message(&format!("s{d}.{u}@spam{d}.example"), Some(format!("c{d}").as_str()), Some(site))
        };
        for d in 0..20 {
            let site = format!("site{d}.example");
            vote(&mut e, probe, &spam(d, probe, &site), Vote::Spam, 0.0);
            for &u in &users {
                vote(&mut e, u, &spam(d, u, &site), Vote::Spam, 0.0);
            }
            e.refresh();
            for &u in &users {
                let friend = message(&format!("friend{d}@home{u}.example"), None, Some(&site));
                vote(&mut e, u, &friend, Vote::Ham, 0.0);
            }
        }
        // Three more campaigns link to one more site.
        for d in 20..23 {
            vote(&mut e, probe, &spam(d, probe, "site99.example"), Vote::Spam, 0.0);
        }
        e.refresh();
        assert!(e.item_silence_llr() < -3.0, "{}", e.item_silence_llr());
        // A new correspondent linking there: the link's term speaks, nothing of its own
        // does, and that silence counts for it.
        let keys = message("new@home9.example", None, Some("site99.example"));
        let j = e.judge(users[0], &keys, 0.0, BOUND);
        let url = j.term(KeyKind::Url).expect("a link term").logit;
        assert!(url > 0.0, "{j:?}");
        assert_eq!(j.silence_logit, e.item_silence_llr());
        assert!((j.logit() - (j.prior_logit + url + e.item_silence_llr())).abs() < 1e-9, "{j:?}");
        // Mail of a reported campaign is judged by its keys.
        let known = e.judge(users[0], &spam(21, users[0], "site99.example"), 0.0, BOUND);
        assert_eq!(known.silence_logit, 0.0);

        // Where spam was the kind only its links give away (every campaign new to everyone,
        // its site known from others), the item keys' silence says nothing.
        let mut e = Engine::new(Settings::default());
        let users: Vec<u32> = (0..5).map(|_| e.add_user(false)).collect();
        for d in 0..20 {
            for &u in &users {
                let campaign = format!("c{d}.{u}");
                vote(
                    &mut e,
                    u,
                    &message(&format!("s{d}.{u}@x.example"), Some(&campaign), Some("pills.example")),
                    Vote::Spam,
                    0.0,
                );
            }
            e.refresh();
        }
        assert!(e.item_silence_llr() > 0.0, "{}", e.item_silence_llr());
        let j = e.judge(users[0], &message("new@home9.example", None, Some("pills.example")), 0.0, BOUND);
        assert!(j.term(KeyKind::Url).is_some_and(|t| t.logit > 0.0), "{j:?}");
        assert_eq!(j.silence_logit, 0.0);
    }

    #[test]
    fn a_deletion_whose_keys_read_silent_counts_as_heard() {
        // The same history, then five deletions: read back without keys (stored before
        // keys were kept), or with a sender key another user reported.
        let with = |keys: &[Evidence]| {
            let (mut e, _, users) = population(3);
            vote(&mut e, users[1], &message("s99@spam99.example", None, None), Vote::Spam, 0.0);
            for _ in 0..5 {
                e.deleted(users[0], keys);
            }
            e.refresh();
            (e.silence_llr(), e.item_silence_llr(), e.prior(users[0]))
        };
        assert_eq!(with(&[]), with(&message("s99@spam99.example", None, None)));
    }

    #[test]
    fn the_statistics_deletions_count_in_the_prior() {
        // A user who answers only what the statistics could not decide: mostly ham. Their
        // prior is the share of spam in all their judged mail, the deleted spam included.
        let mut e = Engine::new(Settings::default());
        let probe = e.add_user(true);
        let user = e.add_user(false);
        for d in 0..10 {
            vote(&mut e, user, &message(&format!("friend{d}@home.example"), None, None), Vote::Ham, 0.0);
        }
        vote(&mut e, user, &message("s@spam.example", None, None), Vote::Spam, 0.0);
        e.refresh();
        let answers_only = e.prior(user);
        assert!(answers_only < 0.3, "{answers_only}");
        for _ in 0..40 {
            e.deleted(user, &[]);
            // A probe's mail is no one's judged mail.
            e.deleted(probe, &[]);
        }
        let with_deletions = e.prior(user);
        assert!(with_deletions > 0.7 && with_deletions > answers_only + 0.4, "{with_deletions}");
        assert_eq!(e.votes(user), (10, 1), "a deletion is no vote: trust is about answers");
    }

    #[test]
    fn two_votes_on_one_newsletter_count_once() {
        // Two users blank a newsletter: their two judgements are votes on its sender, its
        // domain and its campaign. For a third subscriber they count once: the strongest
        // item key, and the domain has no sender besides the newsletter's own.
        let (mut e, _, users) = population(4);
        let letter = message("news@letters.example", Some("weekly"), None);
        vote(&mut e, users[0], &letter, Vote::Spam, 0.0);
        vote(&mut e, users[1], &letter, Vote::Spam, 0.0);
        e.refresh();
        let j = e.judge(users[2], &letter, 0.0, BOUND);
        let (sender, campaign) = (j.term(KeyKind::Sender).unwrap(), j.term(KeyKind::Campaign).unwrap());
        assert!(sender.logit > 0.0 && campaign.logit > 0.0, "{j:?}");
        assert_eq!(j.term(KeyKind::Domain).unwrap().logit, 0.0, "{j:?}");
        assert_eq!(u8::from(sender.counted) + u8::from(campaign.counted), 1, "{j:?}");
        let strongest = sender.logit.max(campaign.logit);
        assert!((j.logit() - j.prior_logit - strongest - j.agreement_logit).abs() < 1e-9, "{j:?}");
        // Two keys linking the message to the same two votes lift only the bound of what
        // the votes can say (a false match of both), not the votes: far from that bound,
        // the agreement adds next to nothing.
        assert!(sender.agrees && j.agreement_logit >= 0.0 && j.agreement_logit < 0.05, "{j:?}");
        assert!(!j.delete());
        // A second sender of the domain that the same two blanked is the domain's evidence
        // about the newsletter: a different unit.
        let other = message("promo@letters.example", None, None);
        vote(&mut e, users[0], &other, Vote::Spam, 0.0);
        vote(&mut e, users[1], &other, Vote::Spam, 0.0);
        e.refresh();
        let j = e.judge(users[2], &letter, 0.0, BOUND);
        assert_eq!(j.term(KeyKind::Domain).unwrap().spam_units, 1, "{j:?}");
        assert!(j.term(KeyKind::Domain).unwrap().logit > 0.0, "{j:?}");
    }

    #[test]
    fn old_votes_count_less() {
        let (mut e, _, users) = population(4);
        let keys = message("once@old.example", None, None);
        vote(&mut e, users[0], &keys, Vote::Spam, 0.0);
        e.refresh();
        let fresh = e.judge(users[1], &keys, 0.0, BOUND).term(KeyKind::Sender).unwrap().logit;
        let later = e.judge(users[1], &keys, 60.0 * DAY, BOUND).term(KeyKind::Sender).unwrap().logit;
        assert!(later > 0.0 && (later - fresh / 4.0).abs() < 0.3 * fresh, "{fresh} then {later}");
    }

    #[test]
    fn sybils_approving_the_same_spam_senders_are_excluded_and_weaker() {
        let (mut e, probe, honest) = population(4);
        let sybils: Vec<u32> = (0..5).map(|_| e.add_user(false)).collect();
        for &s in &sybils {
            for d in 0..4 {
                vote(&mut e, s, &message(&format!("s{d}@spam{d}.example"), None, None), Vote::Ham, 0.0);
            }
            for d in 4..10 {
                vote(&mut e, s, &message(&format!("s{d}@spam{d}.example"), None, None), Vote::Spam, 0.0);
            }
        }
        e.refresh();
        for &s in &sybils {
            assert_eq!(e.status(s), TrustStatus::ApprovesCondemned { senders: 4 });
            assert_eq!(e.weight(honest[0], s), 0.0);
        }
        for &h in &honest {
            assert_eq!(e.status(h), TrustStatus::Trusted, "user {h}");
        }
        assert_eq!(e.status(probe), TrustStatus::Probe);
    }

    #[test]
    fn the_seeds_combination_is_a_setting() {
        let settings = Settings { combination: Combination::Seed, ..Settings::default() };
        let mut e = Engine::new(settings);
        let (a, b) = (e.add_user(false), e.add_user(false));
        let keys = message("x@spam.example", None, None);
        vote(&mut e, a, &keys, Vote::Spam, 0.0);
        e.refresh();
        let j = e.judge(b, &keys, 0.0, BOUND);
        // Own votes only (a has too few votes to count for b): nothing.
        assert_eq!(j.logit(), 0.0);
        let j = e.judge(a, &keys, 0.0, BOUND);
        let witness = logit(VoteModel::default().posterior(Vote::Spam, e.prior(a)));
        // Each key's one witness carries the prior again: the seed's formula.
        assert!((j.term(KeyKind::Sender).unwrap().logit - witness).abs() < 1e-9, "{j:?}");
        assert!((j.logit() - 2.0 * witness).abs() < 1e-9);
        assert_eq!(j.prior_logit, 0.0);
    }

    proptest! {
        #[test]
        fn a_spam_vote_never_lowers_and_an_approval_never_raises_p_spam(
            history in prop::collection::vec((0usize..6, 0usize..4, any::<bool>()), 0..40),
            voter in 0usize..6, judged in 0usize..6, sender in 0usize..4,
        ) {
            let mut e = Engine::new(Settings::default());
            let probe = e.add_user(true);
            let users: Vec<u32> = (0..6).map(|_| e.add_user(false)).collect();
            let keys = |s: usize| message(&format!("a{s}@d{}.example", s % 2), Some(&format!("c{}", s % 3)), Some("u.example"));
            for (u, s, spam) in &history {
                vote(&mut e, users[*u], &keys(*s), if *spam { Vote::Spam } else { Vote::Ham }, 0.0);
            }
            vote(&mut e, probe, &keys(0), Vote::Spam, 0.0);
            e.refresh();
            let before = e.judge(users[judged], &keys(sender), 0.0, BOUND).logit();
            // Weights and reliabilities stay as they are: one more vote, judged at once.
            let (mut spam, mut ham) = (e.clone(), e);
            vote(&mut spam, users[voter], &keys(sender), Vote::Spam, 0.0);
            vote(&mut ham, users[voter], &keys(sender), Vote::Ham, 0.0);
            prop_assert!(spam.judge(users[judged], &keys(sender), 0.0, BOUND).logit() >= before - 1e-9);
            prop_assert!(ham.judge(users[judged], &keys(sender), 0.0, BOUND).logit() <= before + 1e-9);
        }
    }
}
