//! Operators' reputation tables (seed 001, the reputation issue): for every handoff IP and
//! its networks, every sender domain, every linked domain and every Reply-To address,
//! how much mail came with it and what became of it, and a status *good*, *suspicious* or
//! *blocked* by seed 001's rule. Pure: which keys a message counts under, the decay and the
//! rule; storage keeps the counts (incrementally, as mail arrives and votes come in). The
//! campaign report over the same keys is [`campaigns`].
//!
//! **What counts.** Per key: messages, distinct recipients, spam votes (an empty box),
//! approvals, spam probes' copies, non-existent senders (confirmations that bounced),
//! forgeries, and deliveries to the Inbox from senders the recipient approved (ham by
//! the recipient's standing word: a provider's relays carry far more of it than of spam). A probe's copy is a spam report by a trap nothing legitimate writes to; a
//! vote is a subscriber's report. The statistics' own deletions are not reports: the table
//! must not feed on its own verdicts.
//!
//! **Decay.** Every count is a sum of `2^(−age / HALF_LIFE)` over its events, the
//! statistics' half-life: what an IP did last month weighs half of what it does today, so a
//! network that stopped spamming and now sends clean mail becomes good again. Storage adds
//! [`mass`]`(t) = 2^((t − EPOCH) / HALF_LIFE)` per event (the same scale for every row, so
//! one addition per event, no rescan) and [`Counts::as_of`] multiplies by `2^(−(now − EPOCH) /
//! HALF_LIFE)` when the table is read. 2^(12 per year) stays within a double for
//! eighty years.
//!
//! **The rule** (seed 001, thresholds in `[reputation]`): a key is *blocked* when at least
//! `blocked_invalid` of its messages were from non-existent senders or `blocked_spam` of
//! them were reported as spam, *suspicious* at `suspicious_invalid` or `suspicious_spam`,
//! *good* otherwise; with fewer than `min_messages` (decayed) it is *new*: one report on
//! one message is no reputation. Forgeries count as reports for the network keys (the
//! connecting host sent the forgery) and not for the sender domain (a forged From is the
//! spoofed domain's misfortune, not its doing).

pub mod blocklist;
pub mod campaigns;

use std::net::IpAddr;

use quorum_fingerprint::Fingerprint;
use serde::{Deserialize, Serialize};

/// What a table is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The handoff IP: the host that gave the message to the first trusted relay.
    Ip,
    /// Its /24 (IPv6: /48), the block a provider usually hands one customer or one site.
    Network,
    /// An IPv6 handoff's /64, one end user's or one server's subnet.
    Subnet,
    /// The From address's domain.
    SenderDomain,
    /// A registrable domain linked from the visible text.
    UrlDomain,
    /// The Reply-To address, when it differs from From.
    ReplyTo,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::Ip, Kind::Network, Kind::Subnet, Kind::SenderDomain, Kind::UrlDomain, Kind::ReplyTo];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::SenderDomain => "sender_domain",
            Kind::UrlDomain => "url_domain",
            Kind::ReplyTo => "reply_to",
        }
    }

    /// A key of the connecting host's address space.
    pub fn is_network(self) -> bool {
        matches!(self, Kind::Ip | Kind::Network | Kind::Subnet)
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown reputation table `{s}`; expected one of ip, network, subnet, sender_domain, url_domain, reply_to")
        })
    }
}

/// One row of a table: its kind and its name (an address, a network in CIDR notation, a
/// domain).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub kind: Kind,
    pub name: String,
}

/// Linked domains per message that are counted (the first, in order): a message linking to
/// hundreds of domains does not make hundreds of rows.
const MAX_URL_DOMAINS: usize = 8;

/// What is known of one message when its keys are made.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The handoff IP ([`quorum_domain::received::handoff`]).
    pub handoff: Option<IpAddr>,
    /// The From address, lower-cased.
    pub from: Option<&'a str>,
    pub fingerprint: Option<&'a Fingerprint>,
}

/// The keys a message counts under (module docs), each once.
pub fn keys(facts: &Facts<'_>) -> Vec<Key> {
    let mut keys = Vec::with_capacity(6);
    let mut push = |kind, name: String| keys.push(Key { kind, name });
    if let Some(ip) = facts.handoff {
        push(Kind::Ip, ip.to_string());
        push(Kind::Network, quorum_domain::received::network(ip));
        if let IpAddr::V6(v6) = ip {
            let s = v6.segments();
            push(Kind::Subnet, format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]));
        }
    }
    if let Some((_, domain)) = facts.from.and_then(|f| f.rsplit_once('@')).filter(|(_, d)| !d.is_empty()) {
        push(Kind::SenderDomain, domain.to_ascii_lowercase());
    }
    if let Some(f) = facts.fingerprint {
        for domain in f.url_domains.iter().take(MAX_URL_DOMAINS) {
            push(Kind::UrlDomain, domain.clone());
        }
        if let Some(reply_to) = f.reply_to.as_deref().filter(|r| Some(*r) != facts.from) {
            push(Kind::ReplyTo, reply_to.to_string());
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Half-life of every count: the statistics' (30 days).
pub const HALF_LIFE_SECS: f64 = 30.0 * 86_400.0;

/// The counts' common scale: 2026-01-01 00:00 UTC.
const EPOCH: i64 = 1_767_225_600;

/// What one event at `at` (Unix seconds) adds to a stored count (module docs).
pub fn mass(at: i64) -> f64 {
    ((at - EPOCH) as f64 / HALF_LIFE_SECS).exp2()
}

/// A key's counts, each a sum of decayed events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub messages: f64,
    /// Distinct recipients, each at the decayed weight of the last message it got.
    pub recipients: f64,
    pub spam: f64,
    pub approvals: f64,
    pub probe: f64,
    pub nonexistent: f64,
    pub forged: f64,
    /// Delivered to the Inbox from a sender the recipient approved (counted among the
    /// messages: ham by the recipient's standing word).
    pub inbox: f64,
}

impl Counts {
    /// Stored counts (sums of [`mass`]) as of `now`.
    pub fn as_of(self, now: i64) -> Counts {
        let k = 1.0 / mass(now);
        Counts {
            messages: self.messages * k,
            recipients: self.recipients * k,
            spam: self.spam * k,
            approvals: self.approvals * k,
            probe: self.probe * k,
            nonexistent: self.nonexistent * k,
            forged: self.forged * k,
            inbox: self.inbox * k,
        }
    }

    /// Spam reports: subscribers' spam votes and probes' copies, and for a network key its
    /// forgeries (module docs).
    pub fn reports(&self, kind: Kind) -> f64 {
        self.spam + self.probe + if kind.is_network() { self.forged } else { 0.0 }
    }
}

/// Seed 001's thresholds (`[reputation]`), as shares of a key's messages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub suspicious_invalid: f64,
    pub suspicious_spam: f64,
    pub blocked_invalid: f64,
    pub blocked_spam: f64,
    /// Fewer (decayed) messages than this: *new*, not rated.
    pub min_messages: f64,
}

impl Default for Thresholds {
    /// Seed 001's numbers: 30% invalid recipients or 10% spam reports make an IP suspicious,
    /// 50% or 30% blocked.
    fn default() -> Self {
        Thresholds {
            suspicious_invalid: 0.30,
            suspicious_spam: 0.10,
            blocked_invalid: 0.50,
            blocked_spam: 0.30,
            min_messages: 5.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Good,
    Suspicious,
    Blocked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Good => "good",
            Status::Suspicious => "suspicious",
            Status::Blocked => "blocked",
        }
    }
}

impl Thresholds {
    /// Shares between 0 and 1, each suspicious threshold at most its blocked one.
    pub fn validate(&self) -> Result<(), String> {
        let shares = [self.suspicious_invalid, self.suspicious_spam, self.blocked_invalid, self.blocked_spam];
        if !shares.iter().all(|s| (0.0..=1.0).contains(s))
            || self.suspicious_invalid > self.blocked_invalid
            || self.suspicious_spam > self.blocked_spam
            || self.min_messages.is_nan()
            || self.min_messages < 0.0
        {
            return Err(format!(
                "reputation thresholds must be shares in [0, 1] with suspicious at most blocked, and \
                 min_messages at least 0: {self:?}"
            ));
        }
        Ok(())
    }
}

/// A key's status by seed 001's rule (module docs), from counts as of one time.
pub fn status(kind: Kind, counts: &Counts, t: &Thresholds) -> Status {
    if counts.messages < t.min_messages {
        return Status::New;
    }
    let invalid = counts.nonexistent / counts.messages;
    let spam = counts.reports(kind) / counts.messages;
    if invalid >= t.blocked_invalid || spam >= t.blocked_spam {
        Status::Blocked
    } else if invalid >= t.suspicious_invalid || spam >= t.suspicious_spam {
        Status::Suspicious
    } else {
        Status::Good
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = EPOCH + 400 * DAY;

    /// Counts stored as the storage keeps them: `n` events of each kind at `at`.
    fn stored(at: i64, messages: u32, spam: u32, nonexistent: u32) -> Counts {
        let m = mass(at);
        Counts {
            messages: f64::from(messages) * m,
            recipients: m,
            spam: f64::from(spam) * m,
            nonexistent: f64::from(nonexistent) * m,
            ..Counts::default()
        }
    }

    fn add(a: Counts, b: Counts) -> Counts {
        Counts {
            messages: a.messages + b.messages,
            recipients: a.recipients + b.recipients,
            spam: a.spam + b.spam,
            approvals: a.approvals + b.approvals,
            probe: a.probe + b.probe,
            nonexistent: a.nonexistent + b.nonexistent,
            forged: a.forged + b.forged,
            inbox: a.inbox + b.inbox,
        }
    }

    fn rated(c: Counts) -> Status {
        status(Kind::Ip, &c.as_of(NOW), &Thresholds::default())
    }

    #[test]
    fn the_status_changes_at_seed_001s_thresholds() {
        // 100 messages today: 9 spam reports is good, 10 suspicious, 29 suspicious, 30 blocked.
        for (spam, expected) in [
            (0, Status::Good),
            (9, Status::Good),
            (10, Status::Suspicious),
            (29, Status::Suspicious),
            (30, Status::Blocked),
        ] {
            assert_eq!(rated(stored(NOW, 100, spam, 0)), expected, "{spam} spam");
        }
        // Invalid recipients (non-existent senders): 29% good, 30% suspicious, 50% blocked.
        for (invalid, expected) in
            [(29, Status::Good), (30, Status::Suspicious), (49, Status::Suspicious), (50, Status::Blocked)]
        {
            assert_eq!(rated(stored(NOW, 100, 0, invalid)), expected, "{invalid} invalid");
        }
        // Too few messages to say.
        assert_eq!(rated(stored(NOW, 4, 4, 0)), Status::New);
        assert_eq!(rated(stored(NOW, 5, 4, 0)), Status::Blocked);
    }

    #[test]
    fn probes_count_as_reports_and_forgeries_only_against_networks() {
        let t = Thresholds::default();
        let c = Counts { messages: 10.0, probe: 3.0, ..Counts::default() };
        assert_eq!(status(Kind::SenderDomain, &c, &t), Status::Blocked);
        let forged = Counts { messages: 10.0, forged: 3.0, ..Counts::default() };
        assert_eq!(status(Kind::Ip, &forged, &t), Status::Blocked);
        assert_eq!(status(Kind::Network, &forged, &t), Status::Blocked);
        assert_eq!(status(Kind::SenderDomain, &forged, &t), Status::Good);
    }

    #[test]
    fn decay_lowers_a_status_again() {
        // Blocked in its first month: 40 reports of 100 messages.
        let past = stored(NOW - 120 * DAY, 100, 40, 0);
        assert_eq!(status(Kind::Ip, &past.as_of(NOW - 120 * DAY), &Thresholds::default()), Status::Blocked);
        // Four months on (four half-lives) without mail: 100 messages weigh 6.25, still rated.
        let quiet = past.as_of(NOW);
        assert!((quiet.messages - 100.0 / 16.0).abs() < 1e-9, "{quiet:?}");
        assert_eq!(rated(past), Status::Blocked);
        // Clean mail since: 15 messages leave 2.5 old reports in 20.9 (suspicious), 30 more
        // outweigh them (good).
        let clean = add(past, stored(NOW - DAY, 15, 0, 0));
        assert_eq!(rated(clean), Status::Suspicious);
        let cleaner = add(clean, stored(NOW, 30, 0, 0));
        assert_eq!(rated(cleaner), Status::Good);
        // Eight months of silence: too little left to rate.
        assert_eq!(status(Kind::Ip, &past.as_of(NOW + 120 * DAY), &Thresholds::default()), Status::New);
    }

    #[test]
    fn a_message_counts_under_its_host_its_networks_its_domains_and_its_reply_to() {
        let raw = b"From: Shop <Deals@Shop.Example>\r\nReply-To: claims@elsewhere.example\r\nSubject: x\r\n\r\n\
            Visit http://www.pills.example/a and https://pills.example/b or http://cdn.other.example/c\r\n";
        let f = Fingerprint::of(raw);
        let facts = Facts {
            handoff: Some("192.0.2.7".parse().unwrap()),
            from: Some("deals@shop.example"),
            fingerprint: Some(&f),
        };
        let keys_of = keys(&facts);
        let names: Vec<(Kind, &str)> = keys_of.iter().map(|k| (k.kind, k.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (Kind::Ip, "192.0.2.7"),
                (Kind::Network, "192.0.2.0/24"),
                (Kind::SenderDomain, "shop.example"),
                (Kind::UrlDomain, "other.example"),
                (Kind::UrlDomain, "pills.example"),
                (Kind::ReplyTo, "claims@elsewhere.example"),
            ]
        );
        // IPv6: the address, its /48 and its /64.
        let v6 = Facts { handoff: Some("2001:db8:1:2:3::9".parse().unwrap()), ..Facts::default() };
        let names: Vec<String> = keys(&v6).into_iter().map(|k| format!("{} {}", k.kind.as_str(), k.name)).collect();
        assert_eq!(names, ["ip 2001:db8:1:2:3::9", "network 2001:db8:1::/48", "subnet 2001:db8:1:2::/64"]);
        // Nothing known, nothing counted; a Reply-To that is the sender is no key of its own.
        assert!(keys(&Facts::default()).is_empty());
        let same = Fingerprint::of(b"From: a@b.example\r\nReply-To: a@b.example\r\n\r\nhi\r\n");
        let k = keys(&Facts { from: Some("a@b.example"), fingerprint: Some(&same), ..Facts::default() });
        assert_eq!(k, [Key { kind: Kind::SenderDomain, name: "b.example".into() }]);
    }

    #[test]
    fn thresholds_must_be_shares_in_order() {
        assert_eq!(Thresholds::default().validate(), Ok(()));
        let bad = [
            Thresholds { blocked_spam: 1.5, ..Thresholds::default() },
            Thresholds { suspicious_spam: 0.4, ..Thresholds::default() },
            Thresholds { suspicious_invalid: 0.6, ..Thresholds::default() },
            Thresholds { min_messages: f64::NAN, ..Thresholds::default() },
            Thresholds { suspicious_invalid: -0.1, ..Thresholds::default() },
        ];
        for t in bad {
            assert!(t.validate().unwrap_err().contains("reputation thresholds"), "{t:?}");
        }
    }

    #[test]
    fn tables_are_named_and_parsed() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
        }
        assert!("colour".parse::<Kind>().unwrap_err().contains("unknown reputation table"));
    }

    proptest! {
        #[test]
        fn decay_keeps_shares_and_halves_every_half_life(t in -1_000i64..1_000, days in 0i64..400) {
            let c = stored(EPOCH + t * DAY, 50, 7, 3);
            let now = EPOCH + (t + days) * DAY;
            let a = c.as_of(now);
            prop_assert!((a.messages - 50.0 * (-(days as f64) / 30.0).exp2()).abs() < 1e-6 * 50.0);
            prop_assert!((a.spam / a.messages - 7.0 / 50.0).abs() < 1e-12);
        }
    }
}
