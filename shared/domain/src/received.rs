//! The trusted hop (SPEC 3): which IP address handed a message to the subscriber's
//! provider. Only the Received headers the provider wrote itself can be believed; anything
//! below them was written by machines the sender may control. Forgery checks (reverse DNS
//! of that IP against the claimed provider) start from here.
//!
//! Walking from the top (the last hop, written by the subscriber's provider): a header is
//! the provider's own while its `by` host is in the provider's domains. The first such
//! header whose connecting IP is public and whose connecting host is not itself one of the
//! provider's is the handoff. Internal relays (private addresses, the provider's own hosts)
//! are passed over. If the chain leaves the provider's domains first, there is no trusted
//! handoff and no forgery verdict can be drawn from the chain.

use std::net::IpAddr;

use mail_parser::{Host, MessageParser, Protocol};

/// One Received header, reduced to what the trusted-hop rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The connecting IP, as the receiving host recorded it.
    pub ip: Option<IpAddr>,
    /// The connecting host's name: its reverse DNS as recorded, else its HELO.
    pub from_host: Option<String>,
    /// The name the connecting host gave in HELO/EHLO (the SPF HELO identity), else the
    /// `from` name.
    pub helo: Option<String>,
    /// The receiving host.
    pub by: Option<String>,
    /// Fetched by POP3 or IMAP (fetchmail and the like): the `from` host is the mailbox's
    /// own provider, not a sender.
    pub retrieved: bool,
}

/// Where the message entered the subscriber's provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub ip: IpAddr,
    /// The name the connecting host gave or was recorded under (evidence only: it is the
    /// sender's claim).
    pub from_host: Option<String>,
    /// Its HELO name, for SPF's HELO identity.
    pub helo: Option<String>,
    /// Which Received header (0 = top-most).
    pub index: usize,
}

/// The Received headers of a raw message, top-most first.
pub fn hops(raw: &[u8]) -> Vec<Hop> {
    let Some(message) = MessageParser::new().parse_headers(raw) else { return Vec::new() };
    message
        .received_all()
        .map(|r| Hop {
            ip: r.from_ip.or(match &r.from {
                Some(Host::IpAddr(ip)) => Some(*ip),
                _ => None,
            }),
            from_host: r
                .from_iprev
                .as_deref()
                .map(str::to_string)
                .or_else(|| host_name(r.from.as_ref()))
                .or_else(|| host_name(r.helo.as_ref())),
            helo: host_name(r.helo.as_ref()).or_else(|| host_name(r.from.as_ref())),
            by: host_name(r.by.as_ref()),
            retrieved: matches!(r.with, Some(Protocol::POP3 | Protocol::IMAP)),
        })
        .collect()
}

fn host_name(host: Option<&Host<'_>>) -> Option<String> {
    match host? {
        Host::Name(name) => Some(name.trim_end_matches('.').to_ascii_lowercase()),
        Host::IpAddr(_) => None,
    }
}

/// The handoff into the provider. `provider_domains` are the subscriber's trusted
/// receiving domains. Empty means: learn them from the chain — the top-most header is the
/// provider's by definition, and so is every header written right below an internal hop
/// (a private or loopback connection, or a retrieval by POP3/IMAP such as fetchmail's),
/// whose receiving host's domain (its last two labels) then counts as the provider's too.
pub fn handoff(hops: &[Hop], provider_domains: &[String]) -> Option<Handoff> {
    let learn = provider_domains.is_empty();
    let mut domains: Vec<String> = provider_domains.to_vec();
    for (index, hop) in hops.iter().enumerate() {
        let by = hop.by.as_deref();
        let inside =
            |domains: &[String], host: Option<&str>| host.is_some_and(|h| domains.iter().any(|d| within(h, d)));
        let local_name = by.is_none_or(|b| !b.contains('.') || b.starts_with("localhost"));
        // Every hop reached here is below an internal one (a handoff would have returned).
        let trusted = inside(&domains, by) || learn || local_name;
        if !trusted {
            return None;
        }
        if learn && !local_name {
            domains.push(base_domain(by.unwrap_or_default()));
        }
        if hop.retrieved {
            if let Some(from) = hop.from_host.as_deref().filter(|_| learn) {
                domains.push(base_domain(from));
            }
            continue;
        }
        let internal = match hop.ip {
            None => true,
            Some(ip) => !is_public(ip) || inside(&domains, hop.from_host.as_deref()),
        };
        if !internal {
            return hop.ip.map(|ip| Handoff { ip, from_host: hop.from_host.clone(), helo: hop.helo.clone(), index });
        }
    }
    None
}

/// The network a sending host belongs to for reputation: its IPv4 /24 or IPv6 /48, as
/// `a.b.c.0/24` or `x:y:z::/48`. Hosts of one operator (a botnet's infected homes on one ISP
/// block, a hosting provider's servers) share it; a /24 is the unit of most DNS blocklists
/// and a /48 the smallest IPv6 allocation to a site.
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// `host` is `domain` or a name under it.
pub fn within(host: &str, domain: &str) -> bool {
    // Bytes, not characters: a host name from a Received header may hold any UTF-8, and a
    // byte offset inside a character is no place to slice a `str`.
    let (host, domain) = (host.trim_end_matches('.').as_bytes(), domain.trim_end_matches('.').as_bytes());
    host.eq_ignore_ascii_case(domain)
        || (host.len() > domain.len()
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            && host[host.len() - domain.len() - 1] == b'.')
}

/// A host's registrable domain by the Public Suffix List (`mx3.mail.example.net` →
/// `example.net`, `mx.isp.example.co.uk` → `example.co.uk`): the
/// last two labels would make `co.uk` the provider's domain, and every British host, a
/// spammer's included, one of its relays. A name the list has no domain for (no dot, a
/// bare suffix) is its own domain.
pub fn base_domain(host: &str) -> String {
    let host = host.trim_end_matches('.');
    match psl::domain_str(host) {
        Some(domain) if domain.contains('.') => domain.to_string(),
        _ => host.to_string(),
    }
}

/// Addresses a message can come from on the public Internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback() || v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        assert_eq!(network("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network("2001:db8:abcd:12::1".parse().unwrap()), "2001:db8:abcd::/48");
    }

    const SEED_FORGED_WEB_DE: &[u8] = b"Return-Path: <qwceilqxodjbd@online.sh.cn>\r\n\
Received: from 207.217.125.20 ([211.191.62.186])\r\n\tby robin (EarthLink SMTP Server) with SMTP id 1bX4fK48O3NZFjX0\r\n\tTue, 17 Aug 2004 06:43:47 -0700 (PDT)\r\n\
Received: from dns3.web.de (dns3.web.de [73.212.13.183]) by 211.191.62.186 with SMTP id d7AJB51Jv7;\r\n\tTue, 17 Aug 2004 18:38:44 +0400\r\n\
From: \"Carmen Shepard\" <kzwjxg@web.de>\r\nSubject: of 9 but\r\n\r\nbody\r\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_seed_forgery_is_traced_to_its_real_origin() {
        let h = handoff(&hops(SEED_FORGED_WEB_DE), &[]).unwrap();
        assert_eq!((h.ip, h.index), (ip("211.191.62.186"), 0));
        // The lower header is the spammer's own invention and is never reached.
        assert_eq!(hops(SEED_FORGED_WEB_DE)[1].from_host.as_deref(), Some("dns3.web.de"));
    }

    #[test]
    fn internal_relays_of_the_provider_are_passed_over() {
        let raw = b"Received: from mx2.example.net (mx2.example.net [10.1.2.3]) by store.example.net; Tue, 1 Jan 2026 00:00:00 +0000\r\n\
Received: from relay.example.net (relay.example.net [62.75.200.9]) by mx2.example.net; Tue, 1 Jan 2026 00:00:00 +0000\r\n\
Received: from mailgate.sender.org (mailgate.sender.org [81.169.146.7]) by relay.example.net; Tue, 1 Jan 2026 00:00:00 +0000\r\n\
Received: from laptop ([192.168.1.20]) by mailgate.sender.org; Tue, 1 Jan 2026 00:00:00 +0000\r\n\r\n";
        let h = handoff(&hops(raw), &[]).unwrap();
        assert_eq!((h.ip, h.from_host.as_deref(), h.index), (ip("81.169.146.7"), Some("mailgate.sender.org"), 2));
    }

    #[test]
    fn a_chain_fetched_by_fetchmail_is_followed_to_the_provider() {
        // The first headers of a corpus message: local delivery, fetchmail's IMAP retrieval,
        // then the provider (slashnull.org) receiving from a mailing-list server.
        let raw = b"Received: from localhost (localhost [127.0.0.1])\r\n\tby phobos.labs.netnoteinc.com (Postfix) with ESMTP id D03E543C36\r\n\tfor <zzzz@localhost>; Thu, 22 Aug 2002 07:36:16 -0400 (EDT)\r\n\
Received: from phobos [127.0.0.1]\r\n\tby localhost with IMAP (fetchmail-5.9.0)\r\n\tfor zzzz@localhost (single-drop); Thu, 22 Aug 2002 12:36:16 +0100 (IST)\r\n\
Received: from listman.spamassassin.taint.org (listman.spamassassin.taint.org [66.187.233.211]) by\r\n    dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id g7MBYrZ04811 for\r\n    <zzzz-exmh@spamassassin.taint.org>; Thu, 22 Aug 2002 12:34:53 +0100\r\n\
Received: from ratree.psu.ac.th ([202.28.97.6]) by mx1.spamassassin.taint.org\r\n    (8.11.6/8.11.6) with SMTP id g7MBIhl25223; Thu, 22 Aug 2002 07:18:55 -0400\r\n\r\n";
        let chain = hops(raw);
        assert!(chain[1].retrieved);
        let h = handoff(&chain, &[]).unwrap();
        assert_eq!((h.ip, h.index), (ip("66.187.233.211"), 2));
    }

    #[test]
    fn a_provider_under_a_public_suffix_is_not_the_whole_suffix() {
        // The provider receives at mx.isp.co.uk from a spammer's host under co.uk, whose own
        // header below is invented: the handoff is the spammer's host, not what it wrote.
        let raw = b"Received: from relay.bad.co.uk (relay.bad.co.uk [81.2.69.160]) by mx.isp.co.uk; Tue, 1 Jan 2026 00:00:00 +0000\r\n\
Received: from gateway.isp.co.uk (gateway.isp.co.uk [81.2.69.1]) by relay.bad.co.uk; Tue, 1 Jan 2026 00:00:00 +0000\r\n\r\n";
        let h = handoff(&hops(raw), &[]).unwrap();
        assert_eq!((h.ip, h.index), (ip("81.2.69.160"), 0));
        assert_eq!(base_domain("mx.isp.co.uk"), "isp.co.uk");
    }

    #[test]
    fn configured_provider_domains_and_a_chain_that_leaves_them() {
        let raw = b"Received: from a.other.example ([81.169.146.1]) by in.isp.example; Tue, 1 Jan 2026 00:00:00 +0000\r\n\r\n";
        assert_eq!(handoff(&hops(raw), &["isp.example".into()]).unwrap().ip, ip("81.169.146.1"));
        // A top header not written by the configured provider: nothing can be trusted.
        assert_eq!(handoff(&hops(raw), &["elsewhere.example".into()]), None);
        assert_eq!(handoff(&hops(b"From: a@b.c\r\n\r\n"), &[]), None);
    }

    #[test]
    fn names_and_addresses() {
        assert!(within("mx.web.de", "web.de") && within("WEB.DE.", "web.de"));
        assert!(!within("evilweb.de", "web.de") && !within("de", "web.de"));
        // A multi-byte character where the domain's length would cut (once a panic).
        assert!(!within("mx.wéb.de", "web.de") && within("ü.é", "é") && within("ünï.example", "example"));
        assert!(within("mail.bücher.de", "bücher.de") && !within("aé", "b") && !within("xé.é", "xé"));
        assert_eq!(base_domain("mx3.mail.example.net"), "example.net");
        assert_eq!(base_domain("robin"), "robin");
        assert!(!is_public(ip("10.0.0.1")) && !is_public(ip("100.64.0.1")) && !is_public(ip("::1")));
        assert!(is_public(ip("211.191.62.186")) && is_public(ip("2a00:1450::1")));
    }
}
