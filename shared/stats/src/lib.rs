//! Collaborative statistics (SPEC 4): what every subscriber's answers say about the next
//! message, and whose answers to believe.
//!
//! - [`bayes`]: the seed's per-vote probabilities with priors, and log-odds arithmetic;
//! - [`evidence`]: evidence keys, and one key's likelihood ratio (items and populations);
//! - [`calibration`]: what a printed P(not spam) is worth, from the answers;
//! - [`decay`]: votes and answers that count less with age;
//! - [`trust`]: the RMS correlation between users, trust statuses and weights;
//! - [`engine`]: all of it kept up to date incrementally as votes arrive, and the judgement.

pub mod bayes;
pub mod calibration;
pub mod decay;
pub mod engine;
pub mod evidence;
pub mod trust;

pub use bayes::{Vote, VoteModel, combine_logit, logistic, logit};
pub use engine::{Engine, EvidenceUnit, Judgement, Refreshed, Settings, Term};
pub use evidence::{Combination, Evidence, KeyKind, Mixture};
pub use trust::{Correlation, Ratios, TrustSettings, TrustStatus, UserVotes, correlate, weight};
