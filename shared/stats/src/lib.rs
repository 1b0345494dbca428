//! Collaborative statistics (SPEC 4): what every subscriber's answers say about a sender
//! domain, and whose answers to believe.
//!
//! - [`bayes`]: per-vote probabilities with priors and their combination in log-odds;
//! - [`trust`]: the RMS correlation between users and robust spreads.

pub mod bayes;
pub mod trust;

pub use bayes::{Vote, VoteModel, combine, combine_logit, logistic, logit};
pub use trust::{Correlation, Ratios, correlate, robust_spread};
