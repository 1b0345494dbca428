//! What the checks found about one message, and the verdict drawn from it. Pure: the DNS
//! answers come in as values, so every rule is unit-tested without a network.
//!
//! The verdict is deliberately one-sided (SPEC 3, and seed 002's "never delete a real
//! message"): only two findings can condemn a message, both proofs rather than scores —
//! the claimed provider's reverse-DNS rule failing where the provider table says its PTR is
//! required, and a DMARC failure for a domain that asks receivers to reject such mail.
//! Neither applies to mail that shows it came through a mailing list or a forwarder (the
//! connecting host is then the list's, and lists break SPF and often DKIM), nor when an
//! aligned DKIM signature proves the author domain sent it. A DNS failure can only make the
//! verdict incomplete, never forged: the message is held and checked again later.

use std::net::IpAddr;

use quorum_domain::{Provider, received::within};
use serde::{Deserialize, Serialize};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not be completed (DNS failure, timeout): no conclusion either way.
    Unknown,
    /// The check does not apply to this message (no provider row, no signature, ...).
    Skipped,
}

/// One check's outcome and, for people, what it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub outcome: Outcome,
    pub detail: String,
}

impl Finding {
    pub fn pass(detail: impl Into<String>) -> Self {
        Finding { outcome: Outcome::Pass, detail: detail.into() }
    }
    pub fn fail(detail: impl Into<String>) -> Self {
        Finding { outcome: Outcome::Fail, detail: detail.into() }
    }
    pub fn unknown(detail: impl Into<String>) -> Self {
        Finding { outcome: Outcome::Unknown, detail: detail.into() }
    }
    pub fn skipped(detail: impl Into<String>) -> Self {
        Finding { outcome: Outcome::Skipped, detail: detail.into() }
    }
    pub fn is(&self, outcome: Outcome) -> bool {
        self.outcome == outcome
    }
}

/// A DNS answer as the rules need it: records, a definite "there are none" (NXDOMAIN or
/// an empty answer from an authoritative server), or no answer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Found(T),
    Missing,
    Failed(String),
}

/// The reverse-DNS facts about the handoff IP, gathered by the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseLookup {
    pub ptr: Answer<Vec<String>>,
    /// NS names of the reverse zone holding the PTR (asked only when the provider names
    /// its name servers and a PTR is under its relay domains).
    pub zone_ns: Option<Answer<Vec<String>>>,
    /// Whether the relay-domain PTR name resolves back to the IP.
    pub forward: Option<Answer<bool>>,
}

/// The provider's reverse-DNS rule (SPEC 3) and forward confirmation, as two findings.
pub fn judge_reverse(provider: &Provider, ip: IpAddr, lookup: &ReverseLookup) -> (Finding, Finding) {
    let claims = &provider.domain;
    let relays = provider.relay_domains();
    let names = match &lookup.ptr {
        Answer::Failed(e) => {
            let f = Finding::unknown(format!("PTR lookup for {ip} failed: {e}"));
            return (f.clone(), f);
        }
        Answer::Missing => {
            return (
                Finding::fail(format!("PTR of {ip} missing, claims {claims}")),
                Finding::skipped("no PTR to confirm"),
            );
        }
        Answer::Found(names) => names,
    };
    let Some(name) = relay_name(names, &relays) else {
        return (
            Finding::fail(format!(
                "PTR of {ip} is {}, not under {}; claims {claims}",
                names.join(", "),
                relays.join(", ")
            )),
            Finding::skipped("PTR not under the provider's domains"),
        );
    };
    let fcrdns = match &lookup.forward {
        None => Finding::skipped("not asked"),
        Some(Answer::Found(true)) => Finding::pass(format!("{name} resolves to {ip}")),
        Some(Answer::Found(false) | Answer::Missing) => Finding::fail(format!("{name} does not resolve to {ip}")),
        Some(Answer::Failed(e)) => Finding::unknown(format!("lookup of {name} failed: {e}")),
    };
    if provider.ns_matches.is_empty() {
        // Without known name servers the forward zone is the proof (see the module docs of
        // `quorum_domain::provider`).
        let rdns = match fcrdns.outcome {
            Outcome::Pass => Finding::pass(format!("PTR of {ip} is {name}, forward-confirmed")),
            Outcome::Unknown => Finding::unknown(format!("PTR of {ip} is {name}; {}", fcrdns.detail)),
            _ => {
                Finding::fail(format!("PTR of {ip} is {name} but {name} does not resolve back to it; claims {claims}"))
            }
        };
        return (rdns, fcrdns);
    }
    let rdns = match &lookup.zone_ns {
        None => Finding::unknown("reverse zone name servers not asked"),
        Some(Answer::Failed(e)) => Finding::unknown(format!("NS lookup for the reverse zone of {ip} failed: {e}")),
        Some(Answer::Missing) => Finding::fail(format!("reverse zone of {ip} has no NS records; claims {claims}")),
        Some(Answer::Found(ns)) if ns.iter().any(|n| provider.ns_matches.iter().any(|m| within(n, m))) => {
            Finding::pass(format!("PTR of {ip} is {name}, reverse zone served by {}", ns.join(", ")))
        }
        Some(Answer::Found(ns)) => Finding::fail(format!(
            "PTR of {ip} is {name} but its reverse zone is served by {}, not {}; claims {claims}",
            ns.join(", "),
            provider.ns_matches.join(", ")
        )),
    };
    (rdns, fcrdns)
}

/// The first PTR name under one of the relay domains.
pub fn relay_name<'a>(names: &'a [String], relays: &[&str]) -> Option<&'a str> {
    names.iter().map(String::as_str).find(|n| relays.iter().any(|r| within(n, r)))
}

/// Domains the same organisation may use for one message: equal, or one under the other
/// (`mail.example.com` and `example.com`). DMARC's relaxed alignment without a public
/// suffix list; two registrable domains under one suffix never align.
pub fn aligned(a: &str, b: &str) -> bool {
    within(a, b) || within(b, a)
}

/// LiSB-style header consistency (seed 004): do the envelope, the author and the
/// recipient agree? Evidence for scoring, never a verdict on its own — mailing lists,
/// newsletters and forwarders disagree for good reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consistency {
    pub from_domain: Option<String>,
    /// The envelope sender as the final delivery recorded it (top-most Return-Path).
    pub return_path_domain: Option<String>,
    pub sender_domain: Option<String>,
    pub reply_to_domain: Option<String>,
    /// Envelope sender and From in one organisation (`None`: one of them is missing).
    pub return_path_aligned: Option<bool>,
    /// Reply-To in the From's organisation.
    pub reply_to_aligned: Option<bool>,
    /// The recipient the provider delivered to (Delivered-To / X-Original-To) appears in
    /// To or Cc.
    pub recipient_in_to: Option<bool>,
}

/// What was concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// Proven forged: delete as `deleted_forged`.
    Forged(String),
    /// A check that could have decided did not finish: hold and check again before the
    /// summary.
    Incomplete(String),
    /// Nothing proven either way; `authenticated` below says whether SPF or DKIM vouched
    /// for the author domain.
    Checked,
}

/// Everything the checks found about one message; stored with it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The author domain (From).
    pub from_domain: Option<String>,
    /// The IP that handed the message to the subscriber's provider, if the chain shows it.
    pub handoff: Option<IpAddr>,
    /// Why the message counts as relayed by a list or forwarder (the path rules are then
    /// not applied).
    pub indirect: Option<String>,
    /// The provider table's rule, for a From domain in the table.
    pub reverse_dns: Finding,
    pub fcrdns: Finding,
    pub spf: Finding,
    /// An aligned DKIM pass (a signature by the author domain's organisation verified).
    pub dkim: Finding,
    pub dmarc: Finding,
    /// The policy the author domain publishes (`reject`, `quarantine`, `none`).
    pub dmarc_policy: Option<String>,
    /// SPF passed for an aligned envelope domain, or DKIM passed aligned: the author
    /// domain vouches for the message (confirmations may be sent; SPEC 2.4).
    pub authenticated: bool,
    pub consistency: Consistency,
    pub verdict: Verdict,
}

impl Evidence {
    /// Applies the verdict rules to the findings (see the module documentation).
    pub fn decide(&mut self, provider: Option<&Provider>) {
        self.authenticated = self.dkim.is(Outcome::Pass) || self.spf_aligned_pass();
        let direct = self.indirect.is_none();
        let dkim_vouches = self.dkim.is(Outcome::Pass);
        let ptr_required = provider.is_some_and(|p| p.ptr_required);
        self.verdict = if direct && ptr_required && !dkim_vouches && self.reverse_dns.is(Outcome::Fail) {
            Verdict::Forged(self.reverse_dns.detail.clone())
        } else if direct && self.dmarc.is(Outcome::Fail) && self.dmarc_policy.as_deref() == Some("reject") {
            Verdict::Forged(format!(
                "DMARC fails and {} publishes p=reject ({})",
                self.from_domain.as_deref().unwrap_or("the author domain"),
                self.dmarc.detail
            ))
        } else if direct && ptr_required && !dkim_vouches && self.reverse_dns.is(Outcome::Unknown) {
            Verdict::Incomplete(self.reverse_dns.detail.clone())
        } else if direct && self.dmarc.is(Outcome::Unknown) {
            Verdict::Incomplete(self.dmarc.detail.clone())
        } else {
            Verdict::Checked
        };
    }

    fn spf_aligned_pass(&self) -> bool {
        self.spf.is(Outcome::Pass) && self.consistency.return_path_aligned == Some(true)
    }

    pub fn is_forged(&self) -> bool {
        matches!(self.verdict, Verdict::Forged(_))
    }

    /// The author domain publishes DMARC and this message fails it: an approved sender's
    /// address on it must not let the message through (SPEC 3).
    pub fn fails_dmarc(&self) -> bool {
        self.dmarc.is(Outcome::Fail)
    }

    /// One line for the summary and the operator: the verdict's reason, or the findings
    /// worth a subscriber's attention.
    pub fn reason(&self) -> Option<String> {
        match &self.verdict {
            Verdict::Forged(r) => Some(format!("forged: {r}")),
            Verdict::Incomplete(r) => Some(format!("checks incomplete: {r}")),
            Verdict::Checked if self.dmarc.is(Outcome::Fail) => {
                Some(format!("DMARC fails (p={})", self.dmarc_policy.as_deref().unwrap_or("none")))
            }
            Verdict::Checked if self.reverse_dns.is(Outcome::Fail) => Some(self.reverse_dns.detail.clone()),
            Verdict::Checked => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_de() -> Provider {
        Provider::new("web.de", true, true, true, "", "cinetic.de").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn names(n: &[&str]) -> Answer<Vec<String>> {
        Answer::Found(n.iter().map(|s| s.to_string()).collect())
    }

    fn evidence(reverse_dns: Finding) -> Evidence {
        Evidence {
            from_domain: Some("web.de".into()),
            handoff: Some(ip("211.191.62.186")),
            indirect: None,
            reverse_dns,
            fcrdns: Finding::skipped(""),
            spf: Finding::skipped(""),
            dkim: Finding::skipped(""),
            dmarc: Finding::skipped(""),
            dmarc_policy: None,
            authenticated: false,
            consistency: Consistency::default(),
            verdict: Verdict::Checked,
        }
    }

    #[test]
    fn the_seed_examples() {
        // Forged: NXDOMAIN for the PTR of the connecting host.
        let lookup = ReverseLookup { ptr: Answer::Missing, zone_ns: None, forward: None };
        let (rdns, _) = judge_reverse(&web_de(), ip("211.191.62.186"), &lookup);
        assert_eq!(rdns, Finding::fail("PTR of 211.191.62.186 missing, claims web.de"));
        let mut e = evidence(rdns);
        e.decide(Some(&web_de()));
        assert_eq!(e.reason().unwrap(), "forged: PTR of 211.191.62.186 missing, claims web.de");

        // Genuine: fmmailgate01.web.de, reverse zone served by nsx1/nsx2.cinetic.de.
        let lookup = ReverseLookup {
            ptr: names(&["fmmailgate01.web.de"]),
            zone_ns: Some(names(&["nsx2.cinetic.de", "nsx1.cinetic.de"])),
            forward: Some(Answer::Found(true)),
        };
        let (rdns, fcrdns) = judge_reverse(&web_de(), ip("217.72.192.221"), &lookup);
        assert!(rdns.is(Outcome::Pass) && fcrdns.is(Outcome::Pass), "{rdns:?}");
        let mut e = evidence(rdns);
        e.decide(Some(&web_de()));
        assert_eq!((e.verdict.clone(), e.reason()), (Verdict::Checked, None));
    }

    #[test]
    fn a_spammer_naming_its_own_ptr_after_the_provider() {
        // The seed: "spammers set a Reverse DNS record for their IP to match the lie ...
        // but then of course the nameservers do not match".
        let lookup = ReverseLookup {
            ptr: names(&["mailgate.web.de"]),
            zone_ns: Some(names(&["ns1.cheap-hosting.example"])),
            forward: Some(Answer::Missing),
        };
        let (rdns, fcrdns) = judge_reverse(&web_de(), ip("203.0.113.9"), &lookup);
        assert!(rdns.is(Outcome::Fail) && rdns.detail.contains("ns1.cheap-hosting.example"), "{rdns:?}");
        assert!(fcrdns.is(Outcome::Fail));
        // Without known name servers, forward confirmation decides.
        let gmail = Provider::new("gmail.com", true, true, true, "google.com", "").unwrap();
        let lookup =
            ReverseLookup { ptr: names(&["mail-x.google.com"]), zone_ns: None, forward: Some(Answer::Missing) };
        assert!(judge_reverse(&gmail, ip("203.0.113.9"), &lookup).0.is(Outcome::Fail));
        let lookup = ReverseLookup { forward: Some(Answer::Found(true)), ..lookup };
        assert!(judge_reverse(&gmail, ip("203.0.113.9"), &lookup).0.is(Outcome::Pass));
        // A PTR outside the relay domains.
        let lookup = ReverseLookup { ptr: names(&["dsl-1-2.isp.example"]), zone_ns: None, forward: None };
        let (rdns, _) = judge_reverse(&gmail, ip("203.0.113.9"), &lookup);
        assert_eq!(rdns.detail, "PTR of 203.0.113.9 is dsl-1-2.isp.example, not under google.com; claims gmail.com");
    }

    #[test]
    fn dns_failures_never_condemn() {
        for lookup in [
            ReverseLookup { ptr: Answer::Failed("timed out".into()), zone_ns: None, forward: None },
            ReverseLookup {
                ptr: names(&["fmmailgate01.web.de"]),
                zone_ns: Some(Answer::Failed("SERVFAIL".into())),
                forward: None,
            },
        ] {
            let (rdns, _) = judge_reverse(&web_de(), ip("217.72.192.221"), &lookup);
            assert!(rdns.is(Outcome::Unknown), "{rdns:?}");
            let mut e = evidence(rdns);
            e.decide(Some(&web_de()));
            assert!(matches!(e.verdict, Verdict::Incomplete(_)), "{:?}", e.verdict);
        }
    }

    #[test]
    fn exemptions_and_dmarc() {
        let failed = Finding::fail("PTR of 211.191.62.186 missing, claims web.de");
        // Through a list: evidence only.
        let mut e = evidence(failed.clone());
        e.indirect = Some("List-Id".into());
        e.decide(Some(&web_de()));
        assert_eq!(e.verdict, Verdict::Checked);
        // An aligned DKIM signature proves the author domain sent it.
        let mut e = evidence(failed.clone());
        e.dkim = Finding::pass("d=web.de");
        e.decide(Some(&web_de()));
        assert!(e.authenticated && e.verdict == Verdict::Checked);
        // Only a required PTR condemns.
        let mut e = evidence(failed);
        e.decide(Some(&Provider::new("web.de", true, true, false, "", "cinetic.de").unwrap()));
        assert_eq!(e.verdict, Verdict::Checked);
        assert!(e.reason().unwrap().starts_with("PTR of"));

        // DMARC: reject condemns, none is evidence, and not through a list.
        let mut e = evidence(Finding::skipped("no provider"));
        e.dmarc = Finding::fail("spf=fail dkim=none");
        e.dmarc_policy = Some("reject".into());
        e.decide(None);
        assert_eq!(e.reason().unwrap(), "forged: DMARC fails and web.de publishes p=reject (spf=fail dkim=none)");
        e.indirect = Some("List-Id".into());
        e.decide(None);
        assert_eq!(e.verdict, Verdict::Checked);
        e.indirect = None;
        e.dmarc_policy = Some("none".into());
        e.decide(None);
        assert_eq!((e.verdict.clone(), e.reason().unwrap()), (Verdict::Checked, "DMARC fails (p=none)".to_string()));
        assert!(e.fails_dmarc());
    }

    #[test]
    fn alignment() {
        assert!(aligned("mail.example.com", "example.com") && aligned("example.com", "EXAMPLE.com"));
        assert!(!aligned("yahoo.co.uk", "other.co.uk") && !aligned("evilexample.com", "example.com"));
    }

    #[test]
    fn evidence_round_trips_as_json() {
        let mut e = evidence(Finding::fail("PTR of 211.191.62.186 missing, claims web.de"));
        e.decide(Some(&web_de()));
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""verdict":{"verdict":"forged","reason":"PTR of 211.191.62.186"#), "{json}");
        assert_eq!(serde_json::from_str::<Evidence>(&json).unwrap(), e);
    }
}
