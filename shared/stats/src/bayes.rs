//! The probability that a sender domain is a spammer, from votes (SPEC 4; seed 002,
//! "ACCUSPAM's USE OF BAYES THEOREM").
//!
//! **One vote.** Let S = "the domain is a spammer" and v a vote on one of its messages.
//! Bayes' theorem with the prior kept (the seed's point: not the naive form, which assumes
//! P(S) = P(¬S)):
//!
//! ```text
//! P(S | spam vote) = P(spam|S)·P(S) / [P(spam|S)·P(S) + P(spam|¬S)·(1 − P(S))]
//! P(S | ham vote)  = P(ham|S)·P(S)  / [P(ham|S)·P(S)  + P(ham|¬S)·(1 − P(S))]
//! ```
//!
//! with `P(ham|·) = 1 − P(spam|·)`. The seed's defaults: a spammer domain sends spam 99% of
//! the time (`P(spam|S) = 0.99`, allowing 1% for errors and disagreement), a legitimate
//! domain 30% (`P(spam|¬S) = 0.30`: free-mail and ISP domains carry spam too), and the
//! prior is the recipient's share of spam. With prior 0.9 a spam vote gives 0.967 and a ham
//! vote 0.114; with prior 0.5, 0.767 and 0.014 (so `P(¬S | ham) = 0.986`).
//!
//! **Several votes.** Treating each piece of evidence as an independent witness of the same
//! prior (mathpages "kmath267", cited by the seed):
//!
//! ```text
//! P(S | v1..vn) = Π pᵢ / [Π pᵢ + Π (1 − pᵢ)]
//! ```
//!
//! Dividing through by the denominator shows it is a sum in log-odds,
//! `logit P = Σ logit pᵢ`, which is how it is computed here: products of thousands of
//! probabilities underflow, sums of logits do not. A weight `w` on a witness (trust) scales
//! its logit, `logit P = Σ wᵢ·logit pᵢ`: `w = 1` is the seed's formula, `w = 0` ignores it.
//!
//! Votes about one sender are not independent (a campaign brings dozens of spam votes, its
//! real correspondents a few approvals), which is why the evidence unit is a setting
//! ([`crate::EvidenceUnit`]): the formula is the seed's either way.

use serde::{Deserialize, Serialize};

/// The likelihoods of a spam vote, given the domain is or is not a spammer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VoteModel {
    /// P(spam vote | spammer domain); the seed's 0.99.
    pub spam_given_spammer: f64,
    /// P(spam vote | legitimate domain); the seed's 0.30.
    pub spam_given_legitimate: f64,
}

impl Default for VoteModel {
    fn default() -> Self {
        VoteModel { spam_given_spammer: 0.99, spam_given_legitimate: 0.30 }
    }
}

/// One vote on a message from a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    /// Empty box, bounced confirmation, spam probe.
    Spam,
    /// `A` (approve).
    Ham,
}

impl VoteModel {
    /// P(spammer | vote) for a recipient whose share of spam is `prior`.
    pub fn posterior(&self, vote: Vote, prior: f64) -> f64 {
        let (given_spammer, given_legitimate) = match vote {
            Vote::Spam => (self.spam_given_spammer, self.spam_given_legitimate),
            Vote::Ham => (1.0 - self.spam_given_spammer, 1.0 - self.spam_given_legitimate),
        };
        let spammer = given_spammer * prior;
        spammer / (spammer + given_legitimate * (1.0 - prior))
    }
}

/// log(p / (1 − p)), finite for p in (0, 1).
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The inverse of [`logit`], without overflow for large |x|.
pub fn logistic(x: f64) -> f64 {
    if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) }
}

/// Combines independent probabilities of the same hypothesis (the seed's
/// `Πp / (Πp + Π(1−p))`), each with a weight, in log-odds. Returns the combined log-odds:
/// callers compare it with a threshold's log-odds, which keeps precision near 1 where a
/// probability like 1 − 1e-9 cannot be told from 1 − 1e-17.
pub fn combine_logit(weighted: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    weighted.into_iter().map(|(p, w)| w * logit(p)).sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round3(x: f64) -> f64 {
        (x * 1000.0).round() / 1000.0
    }

    #[test]
    fn the_seeds_worked_numbers() {
        let m = VoteModel::default();
        // "P( spammer ! spam ) = 0.99 * 0.9 / (0.99 * 0.9 + 0.3 * 0.1) = 0.967"
        assert_eq!(round3(m.posterior(Vote::Spam, 0.9)), 0.967);
        // "P( spammer ! non spam ) = 0.01 * 0.9 / (0.01 * 0.9 + 0.7 * 0.1) = 0.114"
        assert_eq!(round3(m.posterior(Vote::Ham, 0.9)), 0.114);
        // With equal priors: 0.767, 0.014, and P(not spammer | non spam) = 0.986.
        assert_eq!(round3(m.posterior(Vote::Spam, 0.5)), 0.767);
        assert_eq!(round3(m.posterior(Vote::Ham, 0.5)), 0.014);
        assert_eq!(round3(1.0 - m.posterior(Vote::Ham, 0.5)), 0.986);
    }

    #[test]
    fn combination_is_the_seeds_product_formula() {
        // a, b, c = abc / [abc + (1 - a)(1 - b)(1 - c)]: mathpages' Mr. Red, Green and Blue.
        let (a, b, c) = (0.75, 0.60, 0.55);
        let direct = a * b * c / (a * b * c + (1.0 - a) * (1.0 - b) * (1.0 - c));
        let combine = |ps: &[f64]| logistic(combine_logit(ps.iter().map(|p| (*p, 1.0))));
        assert!((combine(&[a, b, c]) - direct).abs() < 1e-12);
        assert_eq!(combine(&[]), 0.5, "no evidence: no opinion");
        // Thousands of votes neither underflow nor reach exactly 1 in log-odds.
        let many = combine_logit((0..5000).map(|_| (0.967, 1.0)));
        assert!(many.is_finite() && many > logit(1.0 - 1e-6));
    }

    fn probability() -> impl Strategy<Value = f64> {
        0.001f64..0.999
    }

    proptest! {
        #[test]
        fn combination_is_symmetric(mut ps in prop::collection::vec(probability(), 0..30), seed in any::<u64>()) {
            let before = combine_logit(ps.iter().map(|p| (*p, 1.0)));
            // Any order gives the same answer.
            let n = ps.len().max(1);
            ps.rotate_left((seed as usize) % n);
            ps.reverse();
            let after = combine_logit(ps.iter().map(|p| (*p, 1.0)));
            prop_assert!((before - after).abs() < 1e-9);
            // Swapping every p for 1 − p mirrors the result.
            let mirrored = combine_logit(ps.iter().map(|p| (1.0 - *p, 1.0)));
            prop_assert!((before + mirrored).abs() < 1e-9);
        }

        #[test]
        fn combination_is_monotone(ps in prop::collection::vec(probability(), 0..30), extra in probability(), w in 0.0f64..1.0) {
            let base = combine_logit(ps.iter().map(|p| (*p, 1.0)));
            let with = combine_logit(ps.iter().map(|p| (*p, 1.0)).chain([(extra, w)]));
            // Evidence for the hypothesis never lowers it, evidence against never raises it.
            if extra >= 0.5 { prop_assert!(with >= base - 1e-12) } else { prop_assert!(with <= base + 1e-12) }
        }

        #[test]
        fn a_spam_vote_raises_and_a_ham_vote_lowers_any_prior(prior in 0.001f64..0.999) {
            let m = VoteModel::default();
            prop_assert!(m.posterior(Vote::Spam, prior) > prior);
            prop_assert!(m.posterior(Vote::Ham, prior) < prior);
        }
    }
}
