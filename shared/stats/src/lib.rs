//! Collaborative statistics (SPEC 4): what every subscriber's answers say about a sender
//! domain, and whose answers to believe.
//!
//! - [`bayes`]: per-vote probabilities with priors and their combination in log-odds;
//! - [`domain`]: a domain's probability for one recipient, per vote or per sender address;
//! - [`trust`]: the RMS correlation between users, trust statuses and weights;
//! - [`engine`]: all of it kept up to date incrementally as votes arrive.

pub mod bayes;
pub mod domain;
pub mod engine;
pub mod trust;

pub use bayes::{Vote, VoteModel, combine_logit, logistic, logit};
pub use domain::{EvidenceUnit, Score, SenderVotes, prior, score};
pub use engine::{DeletedBy, Engine, Judgement, Refreshed, Settings};
pub use trust::{Correlation, Ratios, TrustSettings, TrustStatus, UserVotes, correlate, weight};
