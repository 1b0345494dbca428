//! Forged-sender checks (SPEC 3): the provider table's reverse-DNS rule with forward
//! confirmation, SPF, DKIM and DMARC (the `mail-auth` crate), and header consistency.
//!
//! [`Checker::check`] gathers the facts about one raw message; the rules that turn them
//! into a verdict are pure and live in [`evidence`]. DNS goes through one hickory resolver
//! with its cache, short per-query timeouts, a budget for the whole check, and a bound on
//! how many checks run at once. A DNS failure yields an incomplete verdict, never a
//! forged one.

pub mod dns;
pub mod evidence;
pub mod headers;
pub mod store;

use std::{collections::HashMap, sync::Arc, time::Duration};

use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult,
    dmarc::{Policy, verify::DmarcParameters},
    hickory_resolver::{
        config::{NameServerConfig, ResolverConfig, ResolverOpts},
        system_conf::read_system_conf,
    },
    spf::verify::SpfParameters,
};
use quorum_config::DnsSettings;
use quorum_domain::{
    Provider,
    received::{self, Handoff},
};
use tokio::sync::Semaphore;

pub use evidence::{Evidence, Finding, Outcome, Verdict};
pub use store::{Checked, Rechecked, recheck_incomplete};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
}

/// The provider table, loaded once per poll round (it changes rarely and is small).
#[derive(Debug, Clone, Default)]
pub struct Providers(HashMap<String, Provider>);

impl Providers {
    pub fn new(rows: impl IntoIterator<Item = Provider>) -> Self {
        Providers(rows.into_iter().map(|p| (p.domain.clone(), p)).collect())
    }

    /// The row for an author domain: exact match (yahoo.co.uk is its own row).
    pub fn get(&self, domain: &str) -> Option<&Provider> {
        self.0.get(&domain.to_ascii_lowercase())
    }
}

/// What the header section alone says, before any DNS lookup: the half of
/// [`Checker::check`] that is pure (and fuzzed on its own).
#[derive(Debug, Clone)]
pub struct Examined<'a> {
    pub parties: headers::Parties,
    pub handoff: Option<Handoff>,
    /// The provider table's row for the author domain.
    pub provider: Option<&'a Provider>,
    /// Every DNS-based finding still `skipped`, the verdict not yet decided.
    pub evidence: Evidence,
}

/// Reads the parties, the Received chain's handoff and whether a list or forwarder relayed
/// the message (then the path rules do not apply).
pub fn examine<'a>(raw: &[u8], providers: &'a Providers, trusted: &[String]) -> Examined<'a> {
    let parties = headers::parties(raw);
    let hops = received::hops(raw);
    let handoff = received::handoff(&hops, trusted);
    let from_domain = parties.consistency.from_domain.clone();
    let provider = from_domain.as_deref().and_then(|d| providers.get(d));
    // A forwarder's chain: the provider's relays, or for other domains the author
    // domain's own hosts, handed the message to the connecting host.
    let indirect = parties.relayed_by.clone().or_else(|| {
        let (h, domain) = (handoff.as_ref()?, from_domain.as_deref()?);
        let relays = provider.map_or_else(|| vec![domain], Provider::relay_domains);
        headers::forwarded_from(&hops, h, &relays).then(|| format!("forwarded from {domain}'s own servers"))
    });
    let evidence = Evidence {
        from_domain,
        handoff: handoff.as_ref().map(|h| h.ip),
        indirect,
        reverse_dns: Finding::skipped("author domain not in the provider table"),
        fcrdns: Finding::skipped("not asked"),
        spf: Finding::skipped("no trusted hop in the Received chain"),
        dkim: Finding::skipped("no DKIM signature"),
        dmarc: Finding::skipped("no author domain"),
        dmarc_policy: None,
        authenticated: false,
        consistency: parties.consistency.clone(),
        verdict: Verdict::Checked,
    };
    Examined { parties, handoff, provider, evidence }
}

/// Runs the checks. Cheap to clone; clones share the resolver, its cache and the
/// concurrency bound.
#[derive(Clone)]
pub struct Checker {
    auth: Arc<MessageAuthenticator>,
    limit: Arc<Semaphore>,
    budget: Duration,
}

impl Checker {
    /// A checker using `settings.nameservers`, or the system's resolvers when that is empty.
    pub fn new(settings: &DnsSettings) -> Result<Self, CheckError> {
        let (config, mut opts) = if settings.nameservers.is_empty() {
            read_system_conf().unwrap_or_else(|e| {
                // Every lookup will fail, so every check ends incomplete: mail is held,
                // never deleted, until the resolvers are configured.
                tracing::error!(error = %e, "no usable /etc/resolv.conf and no [dns] nameservers: forgery checks cannot finish");
                (ResolverConfig::from_name_servers(Vec::new()), ResolverOpts::default())
            })
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            (ResolverConfig::from_name_servers(servers), ResolverOpts::default())
        };
        opts.timeout = settings.timeout();
        opts.attempts = 1;
        opts.cache_size = settings.cache_size;
        // The cache must survive between polls: keep negative answers at least a minute.
        opts.negative_min_ttl = Some(Duration::from_secs(60));
        let auth = MessageAuthenticator::new(config, opts).map_err(|e| CheckError::Resolver(e.to_string()))?;
        Ok(Checker {
            auth: Arc::new(auth),
            limit: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            budget: settings.budget(),
        })
    }

    /// Checks one raw message. `trusted` are the subscriber's provider domains for the
    /// trusted hop (empty: learn them from the Received chain).
    pub async fn check(&self, raw: &[u8], providers: &Providers, trusted: &[String]) -> Evidence {
        let _permit = self.limit.acquire().await.expect("the semaphore is never closed");
        let Examined { parties, handoff, provider, mut evidence } = examine(raw, providers, trusted);
        let lookups = self.lookups(raw, &parties, provider, handoff.as_ref(), &mut evidence);
        if tokio::time::timeout(self.budget, lookups).await.is_err() {
            let late = format!("DNS did not answer within {} ms", self.budget.as_millis());
            for f in [
                &mut evidence.reverse_dns,
                &mut evidence.fcrdns,
                &mut evidence.spf,
                &mut evidence.dkim,
                &mut evidence.dmarc,
            ] {
                if f.detail == "pending" {
                    *f = Finding::unknown(late.clone());
                }
            }
        }
        evidence.decide(provider);
        evidence
    }

    /// Fills in the DNS-based findings. Each is marked `pending` first, so a check cut off
    /// by the budget leaves the unfinished ones recognisable.
    async fn lookups(
        &self,
        raw: &[u8],
        parties: &headers::Parties,
        provider: Option<&Provider>,
        handoff: Option<&Handoff>,
        evidence: &mut Evidence,
    ) {
        let pending = || Finding::unknown("pending");
        let resolver = self.auth.resolver();
        if let (Some(p), Some(h)) = (provider, handoff) {
            evidence.reverse_dns = pending();
            evidence.fcrdns = pending();
            let ptr = dns::ptr(resolver, h.ip).await;
            let relay = match &ptr {
                evidence::Answer::Found(names) => evidence::relay_name(names, &p.relay_domains()).map(str::to_string),
                _ => None,
            };
            let (zone_ns, forward) = match relay {
                Some(name) => {
                    let ns = async {
                        if p.ns_matches.is_empty() { None } else { Some(dns::reverse_zone_ns(resolver, h.ip).await) }
                    };
                    let (ns, fwd) = tokio::join!(ns, dns::resolves_to(resolver, &name, h.ip));
                    (ns, Some(fwd))
                }
                None => (None, None),
            };
            let (rdns, fcrdns) = evidence::judge_reverse(p, h.ip, &evidence::ReverseLookup { ptr, zone_ns, forward });
            evidence.reverse_dns = rdns;
            evidence.fcrdns = fcrdns;
        } else if provider.is_some() {
            evidence.reverse_dns = Finding::skipped("no trusted hop in the Received chain");
        }

        let Some(message) = AuthenticatedMessage::parse(raw) else {
            evidence.dkim = Finding::skipped("unparsable header section");
            evidence.dmarc = Finding::skipped("unparsable header section");
            return;
        };
        evidence.dkim = pending();
        evidence.dmarc = pending();
        let mail_from = parties.return_path.clone().unwrap_or_default();
        let spf = async {
            let h = handoff?;
            let helo = h.helo.clone().unwrap_or_else(|| h.ip.to_string());
            Some(self.auth.verify_spf(SpfParameters::verify_mail_from(h.ip, &helo, "localhost", &mail_from)).await)
        };
        let (dkim, spf) = tokio::join!(self.auth.verify_dkim(&message), spf);
        let from_domain = evidence.from_domain.clone().unwrap_or_default();
        evidence.dkim = dkim_finding(&dkim, &from_domain);
        let spf = match spf {
            Some(spf) => {
                evidence.spf = spf_finding(spf.result(), spf.domain());
                spf
            }
            // DMARC still runs on DKIM alone; SPF counts as not passing.
            None => mail_auth::SpfOutput::default(),
        };
        if handoff.is_none() && !evidence.dkim.is(Outcome::Pass) {
            // Without the connecting IP, SPF is unknown: DMARC could only fail for want of
            // evidence, which proves nothing.
            evidence.dmarc = Finding::skipped("no trusted hop: SPF unknown, no aligned DKIM");
            return;
        }
        let envelope_domain = mail_from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        let dmarc = self.auth.verify_dmarc(DmarcParameters::new(&message, &dkim, envelope_domain, &spf)).await;
        if dmarc.dmarc_record().is_none() && !matches!(dmarc.result(), DmarcResult::TempError(_)) {
            evidence.dmarc = Finding::skipped(format!("{} publishes no DMARC record", display(dmarc.domain())));
            return;
        }
        evidence.dmarc_policy = Some(
            match dmarc.policy() {
                Policy::Reject => "reject",
                Policy::Quarantine => "quarantine",
                Policy::None | Policy::Unspecified => "none",
            }
            .to_string(),
        );
        let detail = format!("{}; {}", evidence.spf.detail, evidence.dkim.detail);
        evidence.dmarc = match dmarc.result() {
            DmarcResult::Pass => Finding::pass(detail),
            DmarcResult::TempError(_) => Finding::unknown(format!("DMARC could not be evaluated: {detail}")),
            _ => Finding::fail(detail),
        };
    }
}

fn display(domain: &str) -> &str {
    if domain.is_empty() { "the author domain" } else { domain }
}

fn spf_finding(result: SpfResult, domain: &str) -> Finding {
    let detail = format!("spf={} for {}", format!("{result:?}").to_ascii_lowercase(), display(domain));
    match result {
        SpfResult::Pass => Finding::pass(detail),
        SpfResult::Fail | SpfResult::SoftFail => Finding::fail(detail),
        SpfResult::TempError => Finding::unknown(detail),
        SpfResult::Neutral | SpfResult::PermError | SpfResult::None => Finding::skipped(detail),
    }
}

/// Aligned DKIM: a passing signature whose `d=` is in the author domain's organisation.
fn dkim_finding(outputs: &[mail_auth::DkimOutput<'_>], from_domain: &str) -> Finding {
    let domain_of = |o: &mail_auth::DkimOutput<'_>| o.signature().map(|s| s.d.to_ascii_lowercase()).unwrap_or_default();
    if let Some(o) =
        outputs.iter().find(|o| *o.result() == DkimResult::Pass && evidence::aligned(&domain_of(o), from_domain))
    {
        return Finding::pass(format!("dkim=pass d={}", domain_of(o)));
    }
    if outputs.iter().any(|o| matches!(o.result(), DkimResult::TempError(_))) {
        return Finding::unknown("dkim=temperror");
    }
    match outputs.first() {
        None => Finding::skipped("no DKIM signature"),
        Some(o) if *o.result() == DkimResult::Pass => {
            Finding::skipped(format!("dkim=pass d={}, not aligned", domain_of(o)))
        }
        Some(o) => Finding::fail(format!("dkim={} d={}", dkim_word(o.result()), domain_of(o))),
    }
}

fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}
