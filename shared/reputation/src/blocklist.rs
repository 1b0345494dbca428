//! Blocklist export (the reputation issue): the sources and domains of a window's spam as
//! lines an operator pastes into the mail server (seed 000's lists), as strict as
//! deletion. A block refuses mail before anyone sees it, so an entry must never cost a
//! legitimate message:
//!
//! - **Enough reports.** A host or domain is listed with at least `min_reports` spam
//!   messages in the window (each copy a probe, the statistics or a recipient condemned).
//! - **No ham, ever.** Nothing with an approval or a delivery from an approved sender in
//!   its reputation row (any, not only trusted users': a missed listing costs a little
//!   spam, a wrong one costs mail).
//! - **No provider.** A host that delivered mail from a domain in the provider table is
//!   taken for the provider's relay unless the forgery checks proved that mail forged (the
//!   checks can prove a forgery, but seldom that a host is *not* a relay: a host wrongly
//!   left off costs a little spam). It is never listed, nor are the provider table's
//!   domains: their relays carry their users' mail, and a spammer's account there is the
//!   provider's to close.
//! - **Networks only when they are the spammer's.** Single hosts (/32, IPv6 /128) are
//!   merged into their /24 (IPv6 /48) only when it holds [`MERGE_SOURCES`] or more listed
//!   hosts and its own row has no ham: a botnet's block, not a provider's shared range.
//!
//! Every entry comes with a comment line naming its group (reports, recipients, an example
//! subject), in the format's comment syntax.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::{Key, Kind, campaigns::Spam};

/// Listed hosts in one /24 (IPv6 /48) that make the network the entry.
pub const MERGE_SOURCES: usize = 3;

/// What a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One CIDR block per line.
    Cidr,
    /// A Postfix `cidr:` table for `check_client_access`: `block REJECT text`.
    Postfix,
    /// An rspamd multimap map of IP addresses and networks.
    Rspamd,
    /// One domain per line (sender domains and linked domains).
    Domains,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cidr" => Ok(Format::Cidr),
            "postfix" => Ok(Format::Postfix),
            "rspamd" => Ok(Format::Rspamd),
            "domains" => Ok(Format::Domains),
            other => Err(format!("unknown blocklist format `{other}`; expected cidr, postfix, rspamd or domains")),
        }
    }
}

/// One entry and the group it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// An address, a network in CIDR notation or a domain.
    pub entry: String,
    pub reports: usize,
    pub recipients: usize,
    pub subject: Option<String>,
    /// Hosts merged into a network entry.
    pub sources: usize,
}

/// What the database says of the candidates.
pub trait Standing {
    /// The key has ham: an approval or an approved sender's delivery.
    fn has_ham(&self, key: &Key) -> bool;
    /// The domain is the provider table's (or under one of its domains).
    fn provider(&self, domain: &str) -> bool;
}

/// The spam of the window per key of `kinds`: messages, recipients, an example subject.
fn tally<'a>(spam: &'a [Spam], kinds: &[Kind]) -> BTreeMap<Key, (usize, HashSet<i64>, Option<&'a str>)> {
    let mut out: BTreeMap<Key, (usize, HashSet<i64>, Option<&str>)> = BTreeMap::new();
    for m in spam {
        for k in m.keys.iter().filter(|k| kinds.contains(&k.kind)) {
            let t = out.entry(k.clone()).or_default();
            t.0 += 1;
            t.1.insert(m.recipient);
            t.2 = t.2.or(m.subject.as_deref());
        }
    }
    out
}

fn by_reports(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| b.reports.cmp(&a.reports).then_with(|| a.entry.cmp(&b.entry)));
    entries
}

/// Hosts and networks to block (module docs).
pub fn networks(spam: &[Spam], min_reports: usize, standing: &impl Standing) -> Vec<Entry> {
    // Hosts that relayed a provider's mail, and each host's network.
    let mut relays = HashSet::new();
    let mut network_of: HashMap<&str, &str> = HashMap::new();
    for m in spam {
        let ip = m.keys.iter().find(|k| k.kind == Kind::Ip).map(|k| k.name.as_str());
        let network = m.keys.iter().find(|k| k.kind == Kind::Network).map(|k| k.name.as_str());
        if let (Some(ip), Some(network)) = (ip, network) {
            network_of.insert(ip, network);
        }
        // Mail the checks proved forged claims the provider falsely: its host is a forger.
        let provider = m.status != "deleted_forged"
            && m.keys.iter().any(|k| k.kind == Kind::SenderDomain && standing.provider(&k.name));
        if let (Some(ip), true) = (ip, provider) {
            relays.insert(ip);
        }
    }
    let hosts: Vec<Entry> = tally(spam, &[Kind::Ip])
        .into_iter()
        .filter(|(k, (n, ..))| *n >= min_reports.max(1) && !relays.contains(k.name.as_str()) && !standing.has_ham(k))
        .map(|(k, (reports, recipients, subject))| Entry {
            entry: k.name,
            reports,
            recipients: recipients.len(),
            subject: subject.map(str::to_string),
            sources: 1,
        })
        .collect();
    // Networks with enough listed hosts and no ham of their own replace their hosts.
    let mut per_network: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for h in &hosts {
        if let Some(n) = network_of.get(h.entry.as_str()) {
            per_network.entry(n).or_default().push(h);
        }
    }
    let networks = tally(spam, &[Kind::Network]);
    let mut merged: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for (network, members) in per_network {
        let key = Key { kind: Kind::Network, name: network.to_string() };
        if members.len() < MERGE_SOURCES || standing.has_ham(&key) {
            continue;
        }
        merged.extend(members.iter().map(|h| h.entry.as_str()));
        let (reports, recipients, subject) = &networks[&key];
        out.push(Entry {
            entry: network.to_string(),
            reports: *reports,
            recipients: recipients.len(),
            subject: subject.map(str::to_string),
            sources: members.len(),
        });
    }
    out.extend(hosts.iter().filter(|h| !merged.contains(h.entry.as_str())).cloned().map(|mut h| {
        h.entry = match h.entry.contains(':') {
            true => format!("{}/128", h.entry),
            false => format!("{}/32", h.entry),
        };
        h
    }));
    by_reports(out)
}

/// Sender and linked domains to block (module docs).
pub fn domains(spam: &[Spam], min_reports: usize, standing: &impl Standing) -> Vec<Entry> {
    // A domain with ham under either kind (it sends, it is linked) is never listed.
    let has_ham = |name: &str| {
        [Kind::SenderDomain, Kind::UrlDomain].into_iter().any(|kind| standing.has_ham(&Key { kind, name: name.into() }))
    };
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    for (k, (reports, recipients, subject)) in tally(spam, &[Kind::SenderDomain, Kind::UrlDomain]) {
        if reports < min_reports.max(1) || standing.provider(&k.name) || has_ham(&k.name) {
            continue;
        }
        // A domain both sends and is linked: one line, the larger count.
        let e = out.entry(k.name.clone()).or_insert_with(|| Entry {
            entry: k.name,
            reports: 0,
            recipients: 0,
            subject: subject.map(str::to_string),
            sources: 1,
        });
        e.reports = e.reports.max(reports);
        e.recipients = e.recipients.max(recipients.len());
    }
    by_reports(out.into_values().collect())
}

/// The export's text: each entry after a comment line naming its group.
pub fn render(format: Format, entries: &[Entry], window: &str) -> String {
    let mut out = format!("# Quorum blocklist: {} entries from the spam of {window}\n", entries.len());
    for e in entries {
        let subject = e.subject.as_deref().map(|s| s.replace(char::is_control, " ")).unwrap_or_default();
        let hosts = if e.sources > 1 { format!(" from {} hosts", e.sources) } else { String::new() };
        out.push_str(&format!(
            "# {} spam messages to {} recipients{hosts}, e.g. \"{subject}\"\n",
            e.reports, e.recipients
        ));
        match format {
            Format::Postfix => {
                out.push_str(&format!("{}\tREJECT spam source ({} reports to Quorum)\n", e.entry, e.reports))
            }
            Format::Cidr | Format::Rspamd | Format::Domains => {
                out.push_str(&e.entry);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Db {
        ham: HashSet<Key>,
        providers: Vec<&'static str>,
    }

    impl Standing for Db {
        fn has_ham(&self, key: &Key) -> bool {
            self.ham.contains(key)
        }
        fn provider(&self, domain: &str) -> bool {
            self.providers.iter().any(|p| domain == *p || domain.ends_with(&format!(".{p}")))
        }
    }

    fn key(kind: Kind, name: &str) -> Key {
        Key { kind, name: name.into() }
    }

    fn spam(id: i64, ip: &str, from_domain: &str, url: Option<&str>) -> Spam {
        let network = format!("{}.0/24", ip.rsplit_once('.').unwrap().0);
        let mut keys = vec![key(Kind::Ip, ip), key(Kind::Network, &network), key(Kind::SenderDomain, from_domain)];
        keys.extend(url.map(|u| key(Kind::UrlDomain, u)));
        Spam {
            id,
            recipient: id % 5,
            at: id,
            subject: Some(format!("offer {id}")),
            from: Some(format!("x@{from_domain}")),
            status: "probe_spam".into(),
            keys,
        }
    }

    fn entries(e: &[Entry]) -> Vec<&str> {
        e.iter().map(|e| e.entry.as_str()).collect()
    }

    #[test]
    fn a_botnets_hosts_become_its_network_a_shared_ranges_stay_hosts() {
        let mut mail = Vec::new();
        // A botnet: four hosts of one /24, three reports each.
        for i in 0..12 {
            mail.push(spam(i, &format!("103.176.192.{}", 10 + i % 4), "throwaway.example", Some("pills.example")));
        }
        // A hosting range: three spamming hosts, but another host of the /24 sent approved mail.
        for i in 12..21 {
            mail.push(spam(i, &format!("81.169.146.{}", 20 + i % 3), "cheap.example", None));
        }
        // One host alone, four reports; one host with too few.
        for i in 21..25 {
            mail.push(spam(i, "192.93.19.27", "uha.example", None));
        }
        mail.push(spam(25, "198.18.0.1", "rare.example", None));
        let db = Db { ham: HashSet::from([key(Kind::Network, "81.169.146.0/24")]), providers: vec![] };
        let listed = networks(&mail, 3, &db);
        assert_eq!(
            entries(&listed),
            ["103.176.192.0/24", "192.93.19.27/32", "81.169.146.20/32", "81.169.146.21/32", "81.169.146.22/32"]
        );
        assert_eq!((listed[0].reports, listed[0].sources, listed[0].recipients), (12, 4, 5));
        // The rendered lines: each entry after its comment.
        let text = render(Format::Postfix, &listed, "the last 7 days");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# Quorum blocklist: 5 entries from the spam of the last 7 days");
        assert_eq!(lines[1], "# 12 spam messages to 5 recipients from 4 hosts, e.g. \"offer 0\"");
        assert_eq!(lines[2], "103.176.192.0/24\tREJECT spam source (12 reports to Quorum)");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 5);
        assert!(render(Format::Cidr, &listed, "x").lines().any(|l| l == "192.93.19.27/32"));
    }

    #[test]
    fn nothing_with_ham_and_no_providers_relay_or_domain() {
        let mut mail = Vec::new();
        for i in 0..4 {
            // A provider's relay carrying a spammer's account there.
            mail.push(spam(i, "209.85.220.41", "mail.bigisp.example", Some("scam.example")));
            // A forger claiming the provider: not its relay.
            let mut forged = spam(20 + i, "198.51.100.66", "bigisp.example", None);
            forged.status = "deleted_forged".into();
            mail.push(forged);
            // A host that also delivered an approved sender's mail.
            mail.push(spam(10 + i, "203.0.113.9", "shop.example", Some("shop.example")));
        }
        let db = Db {
            ham: HashSet::from([key(Kind::Ip, "203.0.113.9"), key(Kind::UrlDomain, "shop.example")]),
            providers: vec!["bigisp.example"],
        };
        assert_eq!(entries(&networks(&mail, 3, &db)), ["198.51.100.66/32"]);
        // Domains: the provider's never, the one with ham under either kind never, the
        // scam's link yes.
        assert_eq!(entries(&domains(&mail, 3, &db)), ["scam.example"]);
        assert_eq!(entries(&domains(&mail, 5, &db)), Vec::<&str>::new());
    }

    #[test]
    fn formats_are_named() {
        assert_eq!("postfix".parse::<Format>(), Ok(Format::Postfix));
        assert!("csv".parse::<Format>().unwrap_err().contains("cidr, postfix, rspamd or domains"));
    }
}
