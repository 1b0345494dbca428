//! The evidence keys of one message: the one list the worker, the re-score before a
//! summary, `quorum explain`, the classification benchmark and `quorum simulate` all judge
//! and vote on (pure).
//!
//! Which keys a message gets, and what counts once under each ([`quorum_stats::evidence`]):
//! - the **sender address**, unless it is the subscriber's own (spammers forge it: votes on
//!   the subscriber's own address would judge the subscriber's own mail);
//! - the **sender domain**, unless the provider table marks it `major_isp` (its users are
//!   not one sender); each distinct address is one unit;
//! - the **campaign**, when the fingerprint found one;
//! - every **URL registrable domain** in the visible text and the **handoff network**
//!   (/24, /48), each counted once per distinct campaign (else per short text, else per
//!   exact content, else per sender: copies of one short message from a botnet's rotating
//!   addresses are one unit, not one each): a mailing list's footer links and a hosting
//!   provider's network are stamped on every message they carry, so they must take many
//!   independent campaigns to mean anything. Mailing-list mail (its `List-*` headers, or
//!   the footer a list appends where those are gone) gets no network key (its
//!   handoff is the list's server), and is one unit per list under its URL domains (a
//!   footer the list adds to every message, an advertiser's link included, says nothing
//!   of one post);
//! - the **Reply-To** address when it differs from From (not a list's own address, which
//!   the list sets on all it relays);
//! - for short mail with a link, the **exact hash of its normalised text**; the **hash of
//!   each attachment or image**.

use quorum_fingerprint::Fingerprint;
use quorum_stats::{Evidence, KeyKind};

/// URL domains and attachments per message that become keys (the first, in order): a
/// message linking to hundreds of domains is not hundreds of pieces of evidence.
const MAX_PER_KIND: usize = 8;

/// What is known of one message when its keys are made.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The From address, lower-cased.
    pub from: &'a str,
    /// The From address is the subscriber's own.
    pub own_address: bool,
    /// The sender's domain is `major_isp` in the provider table.
    pub major_isp: bool,
    pub fingerprint: Option<&'a Fingerprint>,
    pub campaign: Option<i64>,
    /// The handoff IP's network ([`quorum_domain::received::network`]).
    pub network: Option<&'a str>,
}

/// The message's keys (module docs).
pub fn evidence(facts: &Facts<'_>) -> Vec<Evidence> {
    let from = facts.from;
    let domain = from.rsplit_once('@').map_or("", |(_, d)| d);
    let sender_unit = format!("s:{from}");
    let mut keys = Vec::with_capacity(8);
    if !facts.own_address {
        keys.push(Evidence::new(KeyKind::Sender, from, sender_unit.as_str()));
    }
    if !facts.major_isp && !domain.is_empty() {
        keys.push(Evidence::new(KeyKind::Domain, domain, sender_unit.as_str()));
    }
    let fingerprint = facts.fingerprint;
    let short = fingerprint.and_then(|f| f.short_text).map(|h| format!("{h:016x}"));
    let unit = match (facts.campaign, &short, fingerprint.and_then(|f| f.content)) {
        (Some(c), _, _) => format!("c:{c}"),
        (None, Some(h), _) => format!("t:{h}"),
        (None, None, Some(content)) => format!("m:{content:016x}"),
        (None, None, None) => sender_unit,
    };
    if let Some(c) = facts.campaign {
        keys.push(Evidence::new(KeyKind::Campaign, c.to_string(), unit.as_str()));
    }
    if let Some(f) = fingerprint {
        // A list's footer links are on all it relays: its mail is one unit under them.
        let url_unit = f.list.as_ref().map_or(unit.clone(), |l| format!("l:{l}"));
        for url in f.url_domains.iter().take(MAX_PER_KIND) {
            keys.push(Evidence::new(KeyKind::Url, url.as_str(), url_unit.as_str()));
        }
        if let Some(reply_to) = f.reply_to.as_deref().filter(|r| *r != from) {
            keys.push(Evidence::new(KeyKind::ReplyTo, reply_to, unit.as_str()));
        }
        for a in f.attachments.iter().take(MAX_PER_KIND) {
            keys.push(Evidence::new(KeyKind::Attachment, format!("{a:016x}"), unit.as_str()));
        }
    }
    if let Some(network) = facts.network.filter(|_| fingerprint.is_none_or(|f| f.list.is_none())) {
        keys.push(Evidence::new(KeyKind::Network, network, unit.as_str()));
    }
    if let Some(h) = short {
        keys.push(Evidence::new(KeyKind::ShortText, h, unit.as_str()));
    }
    keys
}

/// The keys as the message stores them (`messages.stat_keys`), for its votes and the
/// re-score before a summary.
pub fn encode(keys: &[Evidence]) -> String {
    // A list of plain structs with string fields: serialising it cannot fail.
    serde_json::to_string(keys).unwrap_or_default()
}

/// Stored keys; `None` when unreadable (they are then made again or left out).
pub fn decode(stored: &str) -> Option<Vec<Evidence>> {
    serde_json::from_str(stored).ok()
}

/// The network of the host that handed `raw` to the subscriber's provider, with the
/// provider's domains `trusted_domains` (empty: learned from the chain).
pub fn network(raw: &[u8], trusted_domains: &[String]) -> Option<String> {
    handoff(raw, trusted_domains).map(quorum_domain::received::network)
}

/// The handoff IP of the message's Received chain: the host that gave it to the first
/// relay of `trusted_domains`.
pub fn handoff(raw: &[u8], trusted_domains: &[String]) -> Option<std::net::IpAddr> {
    quorum_domain::received::handoff(&quorum_domain::received::hops(raw), trusted_domains).map(|h| h.ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(keys: &[Evidence]) -> Vec<KeyKind> {
        keys.iter().map(|k| k.kind).collect()
    }

    #[test]
    fn which_keys_and_units() {
        let raw =
            b"Received: from bot (bot [45.33.1.7]) by mx.isp.example with ESMTP; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
From: a@spam.example\r\nReply-To: drop@mail.example\r\nSubject: x\r\n\r\n\
Click http://www.pills.example/buy?id=8812 now to reset your account today\r\n";
        let f = Fingerprint::of(raw);
        let net = network(raw, &[]);
        assert_eq!(net.as_deref(), Some("45.33.1.0/24"));
        let facts = Facts {
            from: "a@spam.example",
            own_address: false,
            major_isp: false,
            fingerprint: Some(&f),
            campaign: None,
            network: net.as_deref(),
        };
        let keys = evidence(&facts);
        use KeyKind::*;
        assert_eq!(kinds(&keys), [Sender, Domain, Url, ReplyTo, Network, ShortText]);
        // No campaign: the short text is the unit of the URL and the network.
        let unit = &keys[5].key;
        assert_eq!(keys[2].unit, format!("t:{unit}"));
        assert_eq!(keys[1].unit, "s:a@spam.example");
        // Own address: no sender key; a major ISP: no domain key; a campaign is the unit.
        let own = evidence(&Facts { own_address: true, major_isp: true, campaign: Some(9), ..facts });
        assert_eq!(kinds(&own), [Campaign, Url, ReplyTo, Network, ShortText]);
        assert!(own.iter().all(|k| k.unit == "c:9"));
        // List mail: no network key, and the list is the unit under its links.
        let posted = String::from_utf8_lossy(raw).replace("Subject: x", "List-Id: Pills fans <pills.lists.example>");
        let f = Fingerprint::of(posted.as_bytes());
        let listed = evidence(&Facts { fingerprint: Some(&f), ..facts });
        assert_eq!(kinds(&listed), [Sender, Domain, Url, ReplyTo, ShortText]);
        assert_eq!(listed[2].unit, "l:pills.lists.example");
        // Too short for a short-text key: two copies from a botnet's rotating addresses are
        // one unit under the link and the network (their exact content), not one each.
        let copy = |from: &str, token: &str| {
            let raw = format!("From: {from}\r\nSubject: hi\r\n\r\nbuy {token} http://pills.example/{token}\r\n");
            let f = Fingerprint::of(raw.as_bytes());
            assert!(f.short_text.is_none() && f.content.is_some());
            evidence(&Facts { from, fingerprint: Some(&f), ..facts })
        };
        let (a, b) = (copy("x@one.example", "a8f3k2"), copy("y@two.example", "zz91q7"));
        assert_eq!(kinds(&a), [Sender, Domain, Url, Network]);
        assert!(a[2].unit.starts_with("m:") && a[2].unit == b[2].unit && a[3].unit == b[3].unit, "{a:?} {b:?}");
        assert_ne!(a[2].unit, copy("x@one.example", "cheap")[2].unit);
        // Nothing to go by: the sender.
        let empty = Fingerprint::of(b"From: x@one.example\r\n\r\n");
        assert_eq!(empty.content, None);
        let bare = evidence(&Facts { from: "x@one.example", fingerprint: Some(&empty), ..facts });
        assert_eq!(bare.last().map(|k| k.unit.as_str()), Some("s:x@one.example"));
        assert_eq!(decode(&encode(&keys)), Some(keys));
        assert_eq!(decode("not json"), None);
    }
}
