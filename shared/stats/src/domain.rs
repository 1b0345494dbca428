//! A domain's probability of being a spammer, for one recipient, from everyone's evidence
//! (SPEC 4).
//!
//! The evidence unit matters more than any formula (the statistics issue's measurement: a
//! campaign brings ~25 spam votes against a domain whose real correspondents bring a handful
//! of approvals). [`EvidenceUnit::Votes`] is the seed's reading: every vote is a witness.
//! [`EvidenceUnit::Senders`] (the default) counts each distinct sender address once, with
//! the verdict of its voters' weighted majority: votes on one sender are correlated, votes
//! on distinct senders are the independent witnesses the formula assumes.
//!
//! Each witness gets the Bayes posterior of its verdict under the recipient's prior (their
//! share of spam) and the weight of the voter's trust; [`crate::bayes::combine_logit`] adds
//! them up. Deleting needs the combined probability above `delete_above` (1 − 1e-6).

use serde::{Deserialize, Serialize};

use crate::bayes::{Vote, VoteModel, combine_logit, logistic, logit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceUnit {
    /// One witness per vote (the seed).
    Votes,
    /// One witness per distinct sender address: its voters' weighted consensus.
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

/// One user's votes on one sender address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderVotes {
    pub sender: u32,
    pub voter: u32,
    pub approvals: u32,
    pub spam: u32,
}

/// What a domain's evidence says, for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Combined log-odds that the domain is a spammer.
    pub logit: f64,
    /// Witnesses for and against (votes or senders, per the unit).
    pub spam_witnesses: u32,
    pub ham_witnesses: u32,
}

impl Score {
    pub fn p_spammer(&self) -> f64 {
        logistic(self.logit)
    }

    /// Certain enough to delete: P(spammer) > `delete_above`, compared in log-odds so that
    /// thresholds like 1 − 1e-9 keep their meaning.
    pub fn condemns(&self, delete_above: f64) -> bool {
        self.logit > logit(delete_above)
    }
}

/// The recipient's prior P(spammer): their share of spam votes, smoothed (a new user with
/// no votes starts at ½) and kept inside [0.05, 0.95] so one user's history never makes
/// the prior itself a verdict.
pub fn prior(approvals: u64, spam: u64) -> f64 {
    ((spam as f64 + 1.0) / ((approvals + spam) as f64 + 2.0)).clamp(0.05, 0.95)
}

/// Scores a domain from the votes on its senders. `weight(voter)` is the voter's trust for
/// this recipient in [0, 1] (0: ignored).
pub fn score(
    model: &VoteModel,
    unit: EvidenceUnit,
    prior: f64,
    votes: &[SenderVotes],
    weight: impl Fn(u32) -> f64,
) -> Score {
    let spam_p = model.posterior(Vote::Spam, prior);
    let ham_p = model.posterior(Vote::Ham, prior);
    let (mut spam_witnesses, mut ham_witnesses) = (0u32, 0u32);
    let mut witnesses: Vec<(f64, f64)> = Vec::new();
    match unit {
        EvidenceUnit::Votes => {
            for v in votes {
                let w = weight(v.voter);
                if w <= 0.0 {
                    continue;
                }
                spam_witnesses += v.spam;
                ham_witnesses += v.approvals;
                witnesses.push((spam_p, w * f64::from(v.spam)));
                witnesses.push((ham_p, w * f64::from(v.approvals)));
            }
        }
        EvidenceUnit::Senders => {
            // Votes arrive grouped by sender when sorted; a sender's consensus is the sign
            // of its weighted spam-minus-approval count, weighted by its most trusted voter.
            let mut sorted: Vec<&SenderVotes> = votes.iter().collect();
            sorted.sort_unstable_by_key(|v| v.sender);
            for group in sorted.chunk_by(|a, b| a.sender == b.sender) {
                let (mut balance, mut strongest) = (0.0, 0.0f64);
                for v in group {
                    let w = weight(v.voter);
                    if w > 0.0 {
                        balance += w * (f64::from(v.spam) - f64::from(v.approvals));
                        strongest = strongest.max(w);
                    }
                }
                if balance > 0.0 {
                    spam_witnesses += 1;
                    witnesses.push((spam_p, strongest));
                } else if balance < 0.0 {
                    ham_witnesses += 1;
                    witnesses.push((ham_p, strongest));
                }
            }
        }
    }
    Score { logit: combine_logit(witnesses), spam_witnesses, ham_witnesses }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(sender: u32, voter: u32, approvals: u32, spam: u32) -> SenderVotes {
        SenderVotes { sender, voter, approvals, spam }
    }

    const M: VoteModel = VoteModel { spam_given_spammer: 0.99, spam_given_legitimate: 0.30 };

    #[test]
    fn the_seeds_formula_per_vote() {
        // Three spam votes and one approval, prior 0.9: Σ logit of 0.967, 0.967, 0.967, 0.114.
        let votes = [v(1, 1, 0, 2), v(2, 2, 1, 1)];
        let s = score(&M, EvidenceUnit::Votes, 0.9, &votes, |_| 1.0);
        let expected = 3.0 * logit(M.posterior(Vote::Spam, 0.9)) + logit(M.posterior(Vote::Ham, 0.9));
        assert!((s.logit - expected).abs() < 1e-9);
        assert_eq!((s.spam_witnesses, s.ham_witnesses), (3, 1));
        // No evidence, no opinion.
        assert_eq!(score(&M, EvidenceUnit::Votes, 0.9, &[], |_| 1.0).p_spammer(), 0.5);
    }

    #[test]
    fn a_campaign_is_one_witness_per_sender_address() {
        // 25 users report one sender; two correspondents approve two other senders.
        let mut votes: Vec<SenderVotes> = (0..25).map(|u| v(1, u, 0, 1)).collect();
        votes.extend([v(2, 100, 3, 0), v(3, 101, 1, 0)]);
        // A recipient whose mail is 90% spam (the seed's prior).
        let by_votes = score(&M, EvidenceUnit::Votes, 0.9, &votes, |_| 1.0);
        let by_senders = score(&M, EvidenceUnit::Senders, 0.9, &votes, |_| 1.0);
        assert!(by_votes.condemns(1.0 - 1e-6), "per vote, the campaign condemns the domain: {by_votes:?}");
        assert!(!by_senders.condemns(1.0 - 1e-6) && by_senders.p_spammer() < 0.5, "{by_senders:?}");
        assert_eq!((by_senders.spam_witnesses, by_senders.ham_witnesses), (1, 2));
        // Many distinct spam senders and no approval: certain.
        let spray: Vec<SenderVotes> = (0..12).map(|s| v(s, s, 0, 1)).collect();
        assert!(score(&M, EvidenceUnit::Senders, 0.9, &spray, |_| 1.0).condemns(1.0 - 1e-6));
    }

    #[test]
    fn trust_weights_the_witnesses() {
        // A sender approved by an untrusted account and reported by a trusted one is spam;
        // ignored voters count for nothing.
        let votes = [v(1, 1, 0, 1), v(1, 2, 5, 0)];
        let s = score(&M, EvidenceUnit::Senders, 0.5, &votes, |voter| if voter == 2 { 0.0 } else { 1.0 });
        assert_eq!((s.spam_witnesses, s.ham_witnesses), (1, 0));
        let half = score(&M, EvidenceUnit::Votes, 0.5, &votes[..1], |_| 0.5);
        let full = score(&M, EvidenceUnit::Votes, 0.5, &votes[..1], |_| 1.0);
        assert!((half.logit * 2.0 - full.logit).abs() < 1e-12);
    }

    #[test]
    fn priors() {
        assert_eq!(prior(0, 0), 0.5);
        assert_eq!(prior(0, 1000), 0.95);
        assert_eq!(prior(1000, 0), 0.05);
        assert!((prior(10, 88) - 0.89).abs() < 0.01);
        assert_eq!("senders".parse::<EvidenceUnit>(), Ok(EvidenceUnit::Senders));
        assert!("both".parse::<EvidenceUnit>().is_err());
    }
}
