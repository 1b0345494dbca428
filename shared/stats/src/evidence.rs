//! Evidence keys and what one key's votes say about the next message that carries it
//! (SPEC 4, "Evidence keys"; the statistics issue).
//!
//! **One prior, likelihood ratios.** For a message `m` with keys `k₁..kₙ`, treating the
//! keys' evidence as independent given the class of `m` (the naive-Bayes assumption the
//! collaborative filters DCC, Razor and rspamd fuzzy make too):
//!
//! ```text
//! logit P(spam | E) = logit π + Σₖ ln [P(Eₖ | spam) / P(Eₖ | ham)]
//! ```
//!
//! where `π` is the recipient's prior and `Eₖ` the votes on key `k`. Each term is a
//! likelihood ratio, so the prior is counted once (the seed's witness formula counts it once
//! per witness; it stays as [`Combination::Seed`] for comparison).
//!
//! **Witnesses.** A vote is a witness with its own likelihoods (estimated per user in
//! [`crate::engine`], one-coin/two-coin Dawid–Skene anchored on the spam probes): a spam
//! vote multiplies the odds that the voted item is spam by `LR⁺ = sens / (1 − spec)`, an
//! approval by `LR⁻ = (1 − sens) / spec`. Each voter's log-ratio is scaled by their trust for
//! the recipient (`w ∈ [0, 1]`) and by the vote's age, `2^(−age / half-life)`. One voter's
//! many votes on one unit are one judgement (the majority of their decayed votes).
//!
//! **Item keys** (sender address, campaign, Reply-To, short-text hash, attachment hash): the
//! votes judge one item `Z` (a sender, a campaign's text), and the message is a copy of it:
//!
//! ```text
//! ln Λ = Σ_voters wᵥ · ln LRᵥ                    (the votes' ratio about Z)
//! term = ln [((1 − ε) Λ + ε) / (ε Λ + 1 − ε)]    (a spam message is a spam item's copy
//!                                                 with probability 1 − ε)
//! ```
//!
//! `ε` is the chance that a message carrying the key is not of the item's class (a
//! fingerprint matching an unrelated message: 1e-4, the false-match rate the fingerprint
//! issue measured over all ham pairs; a sender address or Reply-To reused or spoofed past the
//! forgery checks: 1e-3). It bounds what one key can say: ln((1 − ε)/ε) either way.
//!
//! **Population keys** (sender domain, URL domain, handoff /24): the key is shared by many
//! units (the domain's distinct sender addresses; the URL's or network's distinct campaigns),
//! and the message is a *new* unit. Each unit's own evidence `ℓᵤ` (as above) labels it spam
//! (`ℓᵤ ≥ 1`) or ham (`ℓᵤ ≤ −1`); weaker units say too little to count. The key is of one of
//! three types, with prior weights `p_S, p_H, p_M` estimated from the data of its kind
//! (EM over the keys with two or more labelled units: each adds its posterior chance of
//! being of each type, [`type_weights`]; Dirichlet(1, 1, 1) smoothing):
//!
//! - *spam-only* (every unit spam), likelihood `L_S = Π exp(ℓᵤ)` relative to all-ham;
//! - *ham-only*, `L_H = 1`;
//! - *mixed*, each unit spam with an unknown share `θ ~ Beta(1, 1)`:
//!   `L_M = ∫ θ^s (1 − θ)^h dθ · Π_{spam units} exp(ℓᵤ) = B(s + 1, h + 1) · Π_{spam} exp(ℓᵤ)`
//!   (exact when each unit's label is certain).
//!
//! The chance that a new unit is spam is then
//!
//! ```text
//! P(new spam | E) = [p_S L_S + p_M L_M (s + 1)/(s + h + 2)] / [p_S L_S + p_H L_H + p_M L_M]
//! ```
//!
//! and the key's term is its log-odds minus the same with no evidence (the ratio of the
//! evidence's likelihoods). With `s` spam units and no ham, a mixed key still leaves the next
//! unit ham with probability about `p_M / (p_S (s + 1)(s + 2))`: a domain's senders so far
//! say little about its next one unless many independent senders agree, and one trusted
//! approval (`L_S` falls by its likelihood ratio) makes the domain mixed at best.
//!
//! **Why the terms add.** A message is a copy of its item (its sender, its campaign) except
//! with probability ε; only then do the other keys decide, and the message is then a new
//! unit of its population keys (its own sender or campaign counting as one of their
//! units). So `P(ham) ≈ Π (ε-weighted item terms) · P(ham | populations)`: in log-odds the
//! terms add, and no single key deletes: one item key reaches at most 1 − ε, so a deletion
//! needs keys that agree.

use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::bayes::logit;

/// The kinds of evidence a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// The From address.
    Sender,
    /// The From address's domain (not for `major_isp` domains); units are sender addresses.
    Domain,
    /// The campaign fingerprint's campaign.
    Campaign,
    /// A registrable domain linked from the body; units are campaigns.
    Url,
    /// The Reply-To address, when it differs from From.
    ReplyTo,
    /// The handoff IP's /24 (IPv6 /48); units are campaigns.
    Network,
    /// Exact hash of a short message's normalised text.
    ShortText,
    /// Exact hash of an attachment or image.
    Attachment,
}

impl KeyKind {
    pub const ALL: [KeyKind; 8] = [
        KeyKind::Sender,
        KeyKind::Domain,
        KeyKind::Campaign,
        KeyKind::Url,
        KeyKind::ReplyTo,
        KeyKind::Network,
        KeyKind::ShortText,
        KeyKind::Attachment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Sender => "sender",
            KeyKind::Domain => "domain",
            KeyKind::Campaign => "campaign",
            KeyKind::Url => "url",
            KeyKind::ReplyTo => "reply_to",
            KeyKind::Network => "network",
            KeyKind::ShortText => "short_text",
            KeyKind::Attachment => "attachment",
        }
    }

    /// Keys shared by many independent units (see the module docs).
    pub fn population(self) -> bool {
        matches!(self, KeyKind::Domain | KeyKind::Url | KeyKind::Network)
    }

    /// Index into per-kind tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::str::FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        KeyKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown evidence key kind `{s}`"))
    }
}

/// One key of a message. `unit` names what counts once under a population key (the sender
/// address under its domain, the campaign under a URL or network); item keys ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Evidence {
    pub kind: KeyKind,
    pub key: String,
    pub unit: String,
}

impl Evidence {
    pub fn new(kind: KeyKind, key: impl Into<String>, unit: impl Into<String>) -> Self {
        Evidence { kind, key: key.into(), unit: unit.into() }
    }
}

/// How evidence is combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combination {
    /// One prior plus each key's log likelihood ratio (the module docs).
    #[default]
    Likelihood,
    /// The seed's witness formula: every unit's Bayes posterior under the recipient's prior,
    /// summed in log-odds (`Πp / (Πp + Π(1 − p))`), for comparison only.
    Seed,
}

impl std::str::FromStr for Combination {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "likelihood" => Ok(Combination::Likelihood),
            "seed" => Ok(Combination::Seed),
            other => Err(format!("unknown combination `{other}`; expected likelihood or seed")),
        }
    }
}

/// An item key's term: the voters' summed log-ratio `ell` (about the item) seen through the
/// key's impurity `epsilon` (module docs). With `Λ = e^ell`, a spam message is of a spam
/// item with probability 1 − ε and a ham message of a ham item likewise, so
/// `LR = ((1 − ε)Λ + ε) / (εΛ + 1 − ε)`: independent of the prior, odd in `ell`, and at most
/// `(1 − ε)/ε` either way.
pub fn item_term(ell: f64, epsilon: f64) -> f64 {
    if ell == 0.0 {
        return 0.0;
    }
    let (a, b) = ((1.0 - epsilon).ln(), epsilon.ln());
    // ln((1 − ε)e^ℓ + ε) − ln(ε e^ℓ + 1 − ε), without overflow.
    log_sum_exp(a + ell, b) - log_sum_exp(b + ell, a)
}

/// Item keys that agree: one message's links to earlier mail through independent matches
/// (its campaign's text, its Reply-To address, its short-text hash, its sender address),
/// each `(ell, epsilon)`, all on the same side (every `ell` > 0, or every `ell` < 0) and
/// ordered by `|ell|`, strongest first. Returns their combined log-likelihood ratio.
///
/// The keys' votes are the same voters' judgements of the same earlier messages, so no
/// vote may count twice. What is independent is each *link*: a message is a false match of
/// its campaign's text with probability ε₁ (the fingerprint's measured rate), carries the
/// spammer's Reply-To without being the spammer's with ε₂, and so on. Take the links in
/// order: with probability `1 − ε₁` the first is true and the message is of item 1's
/// class, which is the other class than the votes say with `q₁ = 1 / (1 + e^{|ℓ₁|})`;
/// else the second decides, and so on; when every link is false, the message is of the
/// other class than the last item (as [`item_term`] takes one false link). With
/// `E_k = ε₁ ⋯ ε_k`:
///
/// ```text
/// P(other class) = Σ_{k<n} E_{k−1}(1 − ε_k) q_k + E_{n−1} [(1 − ε_n) q_n + ε_n (1 − q_n)]
/// ```
///
/// Each item's evidence enters only where the links before it are false, so the same
/// votes never multiply: a campaign whose 16 voters all said spam and a sender three of
/// them voted on are `(1 − ε₁) q₁ + ε₁ · (the sender's doubt)`, not the product of both
/// doubts. Nothing is assumed of how the items' classes relate. For one key this is
/// [`item_term`]; it is monotone in every `ℓ` (and continuous where two keys swap places:
/// with equal `q` the order does not matter), so a spam vote never lowers P(spam), and it
/// is never taken below the strongest key alone.
pub fn agreeing_items(keys: &[(f64, f64)]) -> f64 {
    let Some(&(first, _)) = keys.first() else { return 0.0 };
    let (mut other, mut all_false) = (0.0, 1.0);
    for (k, &(ell, epsilon)) in keys.iter().enumerate() {
        let q = 1.0 / (1.0 + ell.abs().exp());
        let tail = if k + 1 == keys.len() { epsilon * (1.0 - q) } else { 0.0 };
        other += all_false * ((1.0 - epsilon) * q + tail);
        all_false *= epsilon;
    }
    let combined = (-other).ln_1p() - other.ln();
    let strongest = keys.iter().map(|&(ell, epsilon)| item_term(ell, epsilon).abs()).fold(0.0, f64::max);
    combined.max(strongest).copysign(first)
}

/// Prior weights of a population kind's key types: spam-only, ham-only, mixed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    pub spam_only: f64,
    pub ham_only: f64,
    pub mixed: f64,
}

impl Mixture {
    /// From (expected) numbers of keys of each type, with Dirichlet(1, 1, 1) smoothing.
    pub fn from_counts(spam_only: f64, ham_only: f64, mixed: f64) -> Mixture {
        let n = spam_only + ham_only + mixed + 3.0;
        Mixture { spam_only: (spam_only + 1.0) / n, ham_only: (ham_only + 1.0) / n, mixed: (mixed + 1.0) / n }
    }
}

/// A key's units count toward its kind's mixture once this many are decisive.
pub const TYPED: usize = 2;

/// A unit's evidence labels it spam or ham (for [`TYPED`]) once it is this decisive (a
/// likelihood ratio of e to 1 either way).
pub const DECISIVE: f64 = 1.0;

/// Points of the quadrature over θ: `θ = sin²(πt/2)` at 64 midpoints of t, which packs
/// points toward 0 and 1 where a key with hundreds of agreeing units has its mass.
const GRID: usize = 64;

/// One point of the quadrature over θ, with the logarithms every key's integral uses.
struct Node {
    theta: f64,
    ln_dtheta: f64,
    ln_theta: f64,
    ln_one_minus_theta: f64,
}

/// The midpoint rule in t ([`GRID`]), computed once: every population term integrates over
/// the same points.
static NODES: std::sync::LazyLock<[Node; GRID]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|i| {
        let t = (i as f64 + 0.5) / GRID as f64;
        let theta = (std::f64::consts::FRAC_PI_2 * t).sin().powi(2);
        let dtheta = std::f64::consts::FRAC_PI_2 * (std::f64::consts::PI * t).sin() / GRID as f64;
        Node { theta, ln_dtheta: dtheta.ln(), ln_theta: theta.ln(), ln_one_minus_theta: (1.0 - theta).ln() }
    })
});

/// The three types' log-likelihoods of a key's unit evidence, relative to "every unit
/// ham": spam-only `Σ ℓᵤ`, ham-only 0, and the mixed type's split by the next unit,
/// `ln ∫ θ L(θ) dθ` and `ln ∫ (1 − θ) L(θ) dθ` with `L(θ) = Π (θ·e^ℓᵤ + 1 − θ)` (integrated
/// exactly, so a weak approval is weighed as what it is: it may be a mistaken vote on a
/// spam unit).
struct Likelihoods {
    spam_only: f64,
    mixed_next_spam: f64,
    mixed_next_ham: f64,
}

impl Likelihoods {
    fn of(units: impl IntoIterator<Item = f64>) -> Likelihoods {
        // Units with the same evidence (many probes' reports) are summed once, with a count.
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        let mut total = 0.0;
        for l in units {
            total += l;
            let rounded = (l * 20.0).round() / 20.0;
            match buckets.iter_mut().find(|(v, _)| *v == rounded) {
                Some(b) => b.1 += 1.0,
                None => buckets.push((rounded, 1.0)),
            }
        }
        let (mut spam, mut ham) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for &Node { theta, ln_dtheta, ln_theta, ln_one_minus_theta } in NODES.iter() {
            let mut ln = ln_dtheta;
            for &(l, n) in &buckets {
                // ln(θ·e^ℓ + 1 − θ), without overflow for large |ℓ|.
                ln += n * if l > 0.0 {
                    l + (theta + (1.0 - theta) * (-l).exp()).ln()
                } else {
                    (1.0 - theta + theta * l.exp()).ln()
                };
            }
            spam = log_sum_exp(spam, ln + ln_theta);
            ham = log_sum_exp(ham, ln + ln_one_minus_theta);
        }
        Likelihoods { spam_only: total, mixed_next_spam: spam, mixed_next_ham: ham }
    }
}

/// The log-odds that a new unit under a population key is spam, from its units' evidence
/// `units` (each `ℓᵤ`, the log-ratio of its votes under "unit spam" against "unit ham").
pub fn population_logit(units: impl IntoIterator<Item = f64>, mixture: &Mixture) -> f64 {
    let l = Likelihoods::of(units);
    let ln_m = mixture.mixed.ln();
    log_sum_exp(mixture.spam_only.ln() + l.spam_only, ln_m + l.mixed_next_spam)
        - log_sum_exp(mixture.ham_only.ln(), ln_m + l.mixed_next_ham)
}

/// The chance that a key of these units is of each type (spam-only, ham-only, mixed) under
/// `mixture`: what the key adds to its kind's expected counts, one step of EM for the
/// mixture weights. Counting a key by hard labels instead (any decisive spam unit and any
/// decisive ham unit make it mixed) would call every large ham-only key mixed after one
/// mistaken blank, though one weak vote against a hundred approvals is what a ham-only key
/// with fallible voters looks like; the voters' likelihoods already say how fallible.
pub fn type_weights(units: impl IntoIterator<Item = f64>, mixture: &Mixture) -> [f64; 3] {
    let l = Likelihoods::of(units);
    let ln = [
        mixture.spam_only.ln() + l.spam_only,
        mixture.ham_only.ln(),
        mixture.mixed.ln() + log_sum_exp(l.mixed_next_spam, l.mixed_next_ham),
    ];
    let total = ln.iter().fold(f64::NEG_INFINITY, |a, &b| log_sum_exp(a, b));
    ln.map(|x| (x - total).exp())
}

/// A population key's term: [`population_logit`] against the same with no evidence.
pub fn population_term(units: impl IntoIterator<Item = f64>, mixture: &Mixture) -> f64 {
    population_logit(units, mixture) - population_logit(std::iter::empty(), mixture)
}

fn log_sum_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY { m } else { m + ((a - m).exp() + (b - m).exp()).ln() }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EVEN: Mixture = Mixture { spam_only: 1.0 / 3.0, ham_only: 1.0 / 3.0, mixed: 1.0 / 3.0 };

    #[test]
    fn an_item_key_is_bounded_by_its_purity() {
        // Overwhelming evidence about the item cannot say more than ln((1 − ε)/ε).
        let t = item_term(500.0, 1e-4);
        assert!((t - logit(1.0 - 1e-4)).abs() < 1e-6, "{t}");
        assert_eq!(item_term(0.0, 1e-3), 0.0);
        // Weak evidence passes through nearly unchanged.
        assert!((item_term(1.0, 1e-4) - 1.0).abs() < 1e-3);
        assert!((item_term(-500.0, 1e-3) + logit(1.0 - 1e-3)).abs() < 1e-6);
    }

    #[test]
    fn a_domain_needs_many_spam_senders_and_no_approval() {
        let strong = 3.0; // one probe's report, ln 20
        let few = population_term(vec![strong; 5], &EVEN);
        let many = population_term(vec![strong; 200], &EVEN);
        assert!(few > 0.0 && few < 5.0, "{few}");
        assert!(many > few && many < logit(1.0 - 1e-6), "{many}");
        // Approved senders: mixed at best, the next sender may well be ham.
        let mut mixed = vec![strong; 200];
        mixed.push(-4.6);
        let one = population_term(mixed.clone(), &EVEN);
        mixed.extend([-4.6; 2]);
        let three = population_term(mixed, &EVEN);
        assert!(one < many && three < one, "{one}, {three} vs {many}");
        // A few spam senders and two approved ones: the next sender is a toss-up.
        let mut small = vec![strong; 8];
        small.extend([-4.6; 2]);
        let small = population_term(small, &EVEN);
        assert!(small < 2.0, "{small}");
        // Units with little evidence say little.
        assert!(population_term([0.5, -0.3], &EVEN).abs() < 0.2);
    }

    #[test]
    fn independent_links_to_one_item_multiply_their_impurities() {
        // A campaign (ε 1e-4) and its Reply-To (ε 1e-3), both with overwhelming votes: a
        // false match of both is 1e-7, beyond what either says alone.
        let both = agreeing_items(&[(60.0, 1e-4), (40.0, 1e-3)]);
        assert!((both - logit(1.0 - 1e-7)).abs() < 1e-3, "{both}");
        // A weakly voted second key counts only where the first link is false.
        let weak = agreeing_items(&[(60.0, 1e-4), (8.0, 1e-3)]);
        let doubt = 1e-4 * (1.0 / (1.0 + 8f64.exp()) + 1e-3);
        assert!((weak - logit(1.0 - doubt)).abs() < 1e-3, "{weak}");
        assert!(weak > item_term(60.0, 1e-4) + 5.0 && weak < item_term(60.0, 1e-4) + 8.0 + 1e-3, "{weak}");
        // One key is its own term; a weak key adds little.
        assert!((agreeing_items(&[(7.0, 1e-4)]) - item_term(7.0, 1e-4)).abs() < 1e-9);
        let little = agreeing_items(&[(60.0, 1e-4), (0.5, 1e-3)]) - item_term(60.0, 1e-4);
        assert!(little > 0.0 && little < 1.0, "{little}");
        // Approvals agree the same way.
        assert!((agreeing_items(&[(-60.0, 1e-4), (-40.0, 1e-3)]) + both).abs() < 1e-9);
        assert_eq!(agreeing_items(&[]), 0.0);
    }

    #[test]
    fn one_mistaken_blank_does_not_make_a_ham_only_key_mixed() {
        // A hundred approved senders and one a single user blanked (a spam vote worth
        // ln 10): a ham-only key with fallible voters, not a mixed one.
        let mut units = vec![-4.6; 100];
        units.push(2.3);
        let [spam_only, ham_only, mixed] = type_weights(units, &EVEN);
        assert!(ham_only > 0.9 && spam_only < 1e-9, "{ham_only} {mixed}");
        // Eight senders the probes reported and two approved ones: mixed.
        let mut units = vec![6.0; 8];
        units.extend([-4.6; 2]);
        let [spam_only, ham_only, mixed] = type_weights(units, &EVEN);
        assert!(mixed > 0.9, "{spam_only} {ham_only} {mixed}");
        // Twenty reported senders: spam-only.
        let [spam_only, _, mixed] = type_weights(vec![6.0; 20], &EVEN);
        assert!(spam_only > 0.9 && mixed < 0.1, "{spam_only} {mixed}");
    }

    proptest! {
        #[test]
        fn agreeing_keys_are_monotone_and_never_below_the_strongest(
            ells in prop::collection::vec(0.01f64..60.0, 1..5),
            d in 0.0f64..20.0, which in 0usize..5,
        ) {
            let eps = [1e-4, 1e-3, 1e-3, 1e-3, 1e-3];
            let mut keys: Vec<(f64, f64)> = ells.iter().zip(eps).map(|(&l, e)| (l, e)).collect();
            let strongest = keys.iter().map(|&(l, e)| item_term(l, e)).fold(0.0, f64::max);
            let ordered = |mut k: Vec<(f64, f64)>| {
                k.sort_by(|a, b| b.0.total_cmp(&a.0));
                k
            };
            let base = agreeing_items(&ordered(keys.clone()));
            prop_assert!(base >= strongest - 1e-9);
            let i = which % keys.len();
            keys[i].0 += d;
            let more = agreeing_items(&ordered(keys));
            prop_assert!(more >= base - 1e-9, "{} < {}", more, base);
        }

        #[test]
        fn a_spam_unit_never_lowers_and_a_ham_unit_never_raises(
            units in prop::collection::vec(-8.0f64..8.0, 0..40),
            extra in 1.0f64..8.0,
            spam_only in 0.01f64..1.0, ham_only in 0.01f64..1.0, mixed in 0.01f64..1.0,
        ) {
            let m = Mixture { spam_only, ham_only, mixed };
            let base = population_term(units.iter().copied(), &m);
            let more = population_term(units.iter().copied().chain([extra]), &m);
            let less = population_term(units.iter().copied().chain([-extra]), &m);
            prop_assert!(more >= base - 1e-9, "{} < {}", more, base);
            prop_assert!(less <= base + 1e-9, "{} > {}", less, base);
            // Order does not matter.
            let mut reversed = units.clone();
            reversed.reverse();
            prop_assert!((population_term(reversed, &m) - base).abs() < 1e-9);
        }

        #[test]
        fn item_terms_are_monotone_and_odd(ell in -50.0f64..50.0, d in 0.0f64..10.0) {
            prop_assert!(item_term(ell + d, 1e-3) >= item_term(ell, 1e-3) - 1e-9);
            // Evidence for and against weigh the same.
            prop_assert!((item_term(ell, 1e-3) + item_term(-ell, 1e-3)).abs() < 1e-9);
        }
    }
}
