//! The campaign report (seed 000, the reputation issue): the spam of a window grouped the
//! way an operator reads it, so that a botnet or a scam is one line with its numbers
//! instead of hundreds of messages: by the sending network (/24, IPv6 /48), by Reply-To, by
//! sender pattern, by subject pattern and by linked domain. One message is in one group of
//! each grouping it has a key for; a group needs [`Options::min_messages`] messages (one
//! message is no campaign).
//!
//! **Sender pattern.** Campaigns rotate throwaway domains and keep the From local part
//! (seed 000: `cvspointsextra@placesafety.com`, `cvspointsextra@logodays.com`): the
//! pattern is the local part, its digit runs masked, at `*.` and the top-level domain
//! (`cvspointsextra@*.com`). It is a group only across several domains: one domain's mail
//! is its own table's row.
//!
//! **Subject pattern.** A subject's words, lower-cased, with what campaigns vary masked and
//! what they disguise folded: a word without letters (a price, an order number) is `#`, a
//! token of letters and two or more digits (`A7X9K2Q`, a tracking code) is `*`, and the
//! leetspeak that dodges word filters is folded to one spelling (`0`→o, `1`/`i`/`|`→l,
//! `3`→e, `4`/`@`→a, `5`/`$`→s, `7`→t, `8`→b), so that seed 000's "TooI", "SampIer" and
//! "0maha" group with "Tool", "Sampler" and "Omaha". The folded form is a grouping key,
//! not something shown: the report prints example subjects as they came.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::{Key, Kind};

/// One spam message of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Spam {
    pub id: i64,
    pub recipient: i64,
    /// Arrival, Unix seconds.
    pub at: i64,
    pub subject: Option<String>,
    pub from: Option<String>,
    /// What became of it (`probe_spam`, `deleted_statistical`, `deleted_spam`, ...).
    pub status: String,
    /// Its reputation keys ([`crate::keys`]).
    pub keys: Vec<Key>,
}

/// How messages are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    Network,
    ReplyTo,
    SenderPattern,
    SubjectPattern,
    UrlDomain,
}

impl Grouping {
    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Network => "network",
            Grouping::ReplyTo => "reply_to",
            Grouping::SenderPattern => "sender_pattern",
            Grouping::SubjectPattern => "subject_pattern",
            Grouping::UrlDomain => "url_domain",
        }
    }
}

/// Example subjects per group.
const EXAMPLES: usize = 3;

/// One group of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub by: Grouping,
    pub key: String,
    pub messages: usize,
    pub recipients: usize,
    /// Distinct subjects as they came, the most frequent first (at most three).
    pub subjects: Vec<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Messages per status: the verdicts of the probes, the statistics and the recipients.
    pub verdicts: BTreeMap<String, usize>,
    /// The messages, oldest first (drill-down).
    pub message_ids: Vec<i64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Smallest group reported.
    pub min_messages: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { min_messages: 2 }
    }
}

/// The groups of `spam` (module docs), the largest first.
pub fn report(spam: &[Spam], options: &Options) -> Vec<Group> {
    let mut groups: HashMap<(Grouping, String), Vec<&Spam>> = HashMap::new();
    for m in spam {
        let mut add = |by, key: String| groups.entry((by, key)).or_default().push(m);
        for k in &m.keys {
            match k.kind {
                Kind::Network => add(Grouping::Network, k.name.clone()),
                Kind::ReplyTo => add(Grouping::ReplyTo, k.name.clone()),
                Kind::UrlDomain => add(Grouping::UrlDomain, k.name.clone()),
                Kind::Ip | Kind::Subnet | Kind::SenderDomain => {}
            }
        }
        if let Some(p) = m.from.as_deref().and_then(sender_pattern) {
            add(Grouping::SenderPattern, p);
        }
        if let Some(p) = m.subject.as_deref().map(subject_pattern).filter(|p| !p.is_empty()) {
            add(Grouping::SubjectPattern, p);
        }
    }
    let mut out: Vec<Group> = groups
        .into_iter()
        .filter(|((by, _), members)| {
            members.len() >= options.min_messages.max(1)
                && (*by != Grouping::SenderPattern || distinct_domains(members) >= 2)
        })
        .map(|((by, key), mut members)| {
            members.sort_by_key(|m| (m.at, m.id));
            let mut subjects: Vec<(usize, &str)> = Vec::new();
            let mut verdicts = BTreeMap::new();
            for m in &members {
                *verdicts.entry(m.status.clone()).or_default() += 1;
                if let Some(s) = m.subject.as_deref() {
                    match subjects.iter_mut().find(|(_, x)| *x == s) {
                        Some(e) => e.0 += 1,
                        None => subjects.push((1, s)),
                    }
                }
            }
            // The most frequent first; among equals, the first seen.
            subjects.sort_by_key(|s| std::cmp::Reverse(s.0));
            Group {
                by,
                key,
                messages: members.len(),
                recipients: members.iter().map(|m| m.recipient).collect::<HashSet<_>>().len(),
                subjects: subjects.into_iter().take(EXAMPLES).map(|(_, s)| s.to_string()).collect(),
                first_seen: members.first().map_or(0, |m| m.at),
                last_seen: members.last().map_or(0, |m| m.at),
                verdicts,
                message_ids: members.iter().map(|m| m.id).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.by.cmp(&b.by)).then_with(|| a.key.cmp(&b.key)));
    out
}

fn distinct_domains(members: &[&Spam]) -> usize {
    members.iter().filter_map(|m| m.from.as_deref()?.rsplit_once('@').map(|(_, d)| d)).collect::<HashSet<_>>().len()
}

/// `local@*.tld` with the local part's digit runs masked (module docs); none without a
/// local part or a dotted domain.
pub fn sender_pattern(from: &str) -> Option<String> {
    let (local, domain) = from.rsplit_once('@')?;
    let (_, tld) = domain.rsplit_once('.')?;
    if local.is_empty() || tld.is_empty() {
        return None;
    }
    let mut masked = String::with_capacity(local.len());
    for c in local.to_lowercase().chars() {
        if c.is_ascii_digit() {
            if !masked.ends_with('#') {
                masked.push('#');
            }
        } else {
            masked.push(c);
        }
    }
    Some(format!("{masked}@*.{}", tld.to_lowercase()))
}

/// The subject's grouping form (module docs): folded words, masked numbers and codes,
/// separated by single spaces.
pub fn subject_pattern(subject: &str) -> String {
    let words = subject
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '@' | '$' | '|')))
        .filter(|w| !w.is_empty())
        .map(|w| {
            let letters = w.chars().filter(|c| c.is_alphabetic()).count();
            let digits = w.chars().filter(char::is_ascii_digit).count();
            if letters == 0 {
                "#".to_string()
            } else if digits >= 2 && w.chars().count() >= 5 {
                "*".to_string()
            } else {
                w.to_lowercase().chars().map(fold).collect()
            }
        });
    words.collect::<Vec<_>>().join(" ")
}

/// One spelling for the characters leetspeak swaps.
fn fold(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | 'i' | '|' => 'l',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spam(id: i64, recipient: i64, from: &str, subject: &str, keys: &[(Kind, &str)]) -> Spam {
        Spam {
            id,
            recipient,
            at: 1_000 + id,
            subject: Some(subject.into()),
            from: Some(from.into()),
            status: if id % 2 == 0 { "probe_spam" } else { "deleted_statistical" }.into(),
            keys: keys.iter().map(|&(kind, name)| Key { kind, name: name.into() }).collect(),
        }
    }

    #[test]
    fn leetspeak_folds_and_numbers_and_codes_are_masked() {
        assert_eq!(subject_pattern("Your Harbor Freight TooI Set"), subject_pattern("Your Harbor Freight Tool Set"));
        assert_eq!(subject_pattern("0maha Steaks SampIer"), "omaha steaks sampler");
        assert_eq!(subject_pattern("K0BALT 5OO reward"), subject_pattern("Kobalt SOO reward"));
        assert_eq!(subject_pattern("Donazione di 2.500.000 euro"), "donazlone dl # # # euro");
        assert_eq!(subject_pattern("Order A7X9K2Q shipped"), subject_pattern("Order B3Z8M1P shipped"));
        assert_eq!(subject_pattern("  —  "), "");
    }

    #[test]
    fn sender_patterns_mask_digits_and_the_domain() {
        assert_eq!(sender_pattern("cvspointsextra@placesafety.com").as_deref(), Some("cvspointsextra@*.com"));
        assert_eq!(sender_pattern("Free_HGH304@ba8ebfc4.COM").as_deref(), Some("free_hgh#@*.com"));
        assert_eq!(sender_pattern("nobody@localhost"), None);
        assert_eq!(sender_pattern("@x.com"), None);
    }

    #[test]
    fn a_botnet_and_a_scam_are_one_group_each() {
        use Kind::*;
        let mut mail = Vec::new();
        // Seed 000's botnet: one /24, brands in the local part, throwaway domains,
        // leetspeak subjects.
        for i in 0..6 {
            let (from, subject) = match i % 3 {
                0 => (format!("cvspointsextra@throwaway{i}.com"), "Your CVS TooI Set"),
                1 => (format!("harborfreighttoois@throwaway{i}.com"), "0maha Steaks gift"),
                _ => (format!("cvspointsextra@other{i}.com"), "Your CVS Tool Set"),
            };
            mail.push(spam(i, i % 4, &from, subject, &[(Network, "103.176.192.0/24"), (Ip, "103.176.192.9")]));
        }
        // The donation scam: one host, one Reply-To, from different senders.
        for i in 6..9 {
            let from = format!("rector{i}@uha.fr");
            mail.push(spam(
                i,
                1,
                &from,
                "Donazione di 2.500.000 euro",
                &[(ReplyTo, "jflore1942@gmail.com"), (Network, "192.93.19.0/24")],
            ));
        }
        // One message alone: no group.
        mail.push(spam(9, 2, "x@lonely.example", "Hello", &[(UrlDomain, "lonely.example")]));
        let groups = report(&mail, &Options::default());
        let find = |by, key: &str| groups.iter().find(|g| g.by == by && g.key == key);
        let botnet = find(Grouping::Network, "103.176.192.0/24").expect("the botnet's /24");
        assert_eq!((botnet.messages, botnet.recipients), (6, 4));
        assert_eq!((botnet.first_seen, botnet.last_seen), (1_000, 1_005));
        assert_eq!(botnet.verdicts, BTreeMap::from([("deleted_statistical".into(), 3), ("probe_spam".into(), 3)]));
        assert_eq!(botnet.subjects, ["Your CVS TooI Set", "0maha Steaks gift", "Your CVS Tool Set"]);
        assert_eq!(botnet.message_ids, [0, 1, 2, 3, 4, 5]);
        // Leetspeak and plain spellings are one subject; the brand local part across
        // throwaway domains is one sender.
        assert_eq!(find(Grouping::SubjectPattern, "your cvs tool set").map(|g| g.messages), Some(4));
        assert_eq!(find(Grouping::SenderPattern, "cvspointsextra@*.com").map(|g| g.messages), Some(4));
        assert_eq!(find(Grouping::SenderPattern, "harborfreighttoois@*.com").map(|g| g.messages), Some(2));
        let scam = find(Grouping::ReplyTo, "jflore1942@gmail.com").expect("the Reply-To");
        assert_eq!((scam.messages, scam.recipients, scam.subjects.len()), (3, 1, 1));
        // Different senders at one domain are not a sender pattern; one message is no group.
        assert!(groups.iter().all(|g| g.by != Grouping::SenderPattern || !g.key.ends_with("*.fr")));
        assert!(groups.iter().all(|g| g.messages >= 2 && g.key != "lonely.example"));
        // The largest first.
        assert!(groups.windows(2).all(|w| w[0].messages >= w[1].messages));
        assert_eq!(groups[0].messages, 6);
    }
}
