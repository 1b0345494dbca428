//! What the header section says about a message's path and parties: the author and
//! envelope domains, whether it came through a mailing list or a forwarder, and the
//! LiSB consistency evidence. Pure.

use mail_parser::{Address, HeaderName, HeaderValue, Message, MessageParser};
use quorum_domain::received::{Handoff, Hop, within};

use crate::evidence::{Consistency, aligned};

/// The parts of the header section the checks use.
#[derive(Debug, Clone, Default)]
pub struct Parties {
    pub from: Option<String>,
    /// Top-most Return-Path: the envelope sender the final delivery saw. `Some("")` is
    /// the null sender (`<>`).
    pub return_path: Option<String>,
    pub consistency: Consistency,
    /// Headers that show a list or a forwarder relayed the message.
    pub relayed_by: Option<String>,
}

/// Headers only mailing lists and forwarders add (RFC 2369, RFC 2919, RFC 5322 Resent-*,
/// the older Mailing-List / X-Mailing-List / X-BeenThere, ARC sets from modern
/// forwarders).
const RELAY_HEADERS: &[&str] = &[
    "list-id",
    "list-post",
    "list-unsubscribe",
    "mailing-list",
    "x-mailing-list",
    "x-beenthere",
    "x-loop",
    "resent-from",
    "resent-sender",
    "resent-to",
    "x-forwarded-to",
    "x-forwarded-for",
    "arc-seal",
];

pub fn parties(raw: &[u8]) -> Parties {
    let Some(message) = MessageParser::new().parse_headers(raw) else { return Parties::default() };
    let from = first_address(message.from());
    let return_path = return_path(&message);
    let sender = first_address(message.sender());
    let reply_to = first_address(message.reply_to());
    let domain = |a: &Option<String>| a.as_deref().and_then(|a| a.rsplit_once('@')).map(|(_, d)| d.to_string());
    let (from_domain, rp_domain) = (domain(&from), domain(&return_path));
    let reply_to_domain = domain(&reply_to);
    let both = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => Some(aligned(a, b)),
        _ => None,
    };
    let recipient = header_text(&message, "delivered-to").or_else(|| header_text(&message, "x-original-to"));
    let recipient_in_to = recipient.map(|r| {
        let r = r.trim().trim_matches(['<', '>']).to_ascii_lowercase();
        [message.to(), message.cc()]
            .into_iter()
            .flatten()
            .any(|a| a.iter().any(|x| x.address().is_some_and(|x| x.eq_ignore_ascii_case(&r))))
    });
    let precedence_list = header_text(&message, "precedence").is_some_and(|p| p.trim().eq_ignore_ascii_case("list"));
    let relayed_by = message
        .headers()
        .iter()
        .map(|h| h.name.as_str().to_ascii_lowercase())
        .find(|name| RELAY_HEADERS.contains(&name.as_str()))
        .or(precedence_list.then(|| "precedence: list".to_string()));
    Parties {
        consistency: Consistency {
            return_path_aligned: both(&from_domain, &rp_domain),
            reply_to_aligned: both(&from_domain, &reply_to_domain),
            sender_domain: domain(&sender),
            from_domain,
            return_path_domain: rp_domain,
            reply_to_domain,
            recipient_in_to,
        },
        from,
        return_path,
        relayed_by,
    }
}

/// A forwarder's mark in the chain: the header right below the handoff was written by the
/// connecting host itself, receiving the message from one of the claimed provider's relays.
/// A plain `.forward` elsewhere leaves exactly this. (Everything below the handoff is the
/// sender's to write, so a forger can imitate it; that makes the rule miss a forgery, never
/// delete a real message. An unrelated header naming the provider is not enough.)
pub fn forwarded_from(hops: &[Hop], handoff: &Handoff, relay_domains: &[&str]) -> bool {
    let Some(below) = hops.get(handoff.index + 1) else { return false };
    let written_by_handoff = match (below.by.as_deref(), handoff.from_host.as_deref()) {
        (Some(by), Some(host)) => by.eq_ignore_ascii_case(host),
        _ => false,
    };
    written_by_handoff && below.from_host.as_deref().is_some_and(|f| relay_domains.iter().any(|d| within(f, d)))
}

fn first_address(addr: Option<&Address<'_>>) -> Option<String> {
    addr?.first()?.address().map(|a| a.trim().to_ascii_lowercase())
}

fn return_path(message: &Message<'_>) -> Option<String> {
    let header = message.headers().iter().find(|h| h.name == HeaderName::ReturnPath)?;
    let text = match &header.value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::Address(a) => a.first().and_then(|a| a.address()).unwrap_or_default().to_string(),
        _ => String::new(),
    };
    Some(text.trim().trim_matches(['<', '>']).trim().to_ascii_lowercase())
}

fn header_text(message: &Message<'_>, name: &str) -> Option<String> {
    let header = message.headers().iter().find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    match &header.value {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::Address(a) => a.first().and_then(|a| a.address()).map(str::to_string),
        HeaderValue::TextList(l) => l.first().map(|t| t.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_domain::received::{handoff, hops};

    #[test]
    fn parties_and_consistency() {
        let raw = b"Return-Path: <Bounce@Mail.Example.com>\r\nDelivered-To: me@quorum.test\r\n\
From: Jane <jane@example.com>\r\nReply-To: offers@elsewhere.example\r\nTo: me@quorum.test\r\n\r\nhi\r\n";
        let p = parties(raw);
        assert_eq!(p.from.as_deref(), Some("jane@example.com"));
        assert_eq!(p.return_path.as_deref(), Some("bounce@mail.example.com"));
        let c = &p.consistency;
        assert_eq!(
            (c.return_path_aligned, c.reply_to_aligned, c.recipient_in_to),
            (Some(true), Some(false), Some(true))
        );
        assert_eq!(p.relayed_by, None);
        let null = parties(b"Return-Path: <>\r\nFrom: MAILER-DAEMON@x.example\r\nTo: other@x.example\r\nDelivered-To: me@quorum.test\r\n\r\n");
        assert_eq!(null.return_path.as_deref(), Some(""));
        assert_eq!(null.consistency.recipient_in_to, Some(false));
    }

    #[test]
    fn lists_and_forwarders() {
        let list = b"From: a@yahoo.com\r\nList-Id: <fork.xent.com>\r\n\r\n";
        assert_eq!(parties(list).relayed_by.as_deref(), Some("list-id"));
        let resent = b"Resent-From: b@forwarder.example\r\nFrom: a@yahoo.com\r\n\r\n";
        assert_eq!(parties(resent).relayed_by.as_deref(), Some("resent-from"));
        let precedence = b"From: a@yahoo.com\r\nPrecedence: list\r\n\r\n";
        assert_eq!(parties(precedence).relayed_by.as_deref(), Some("precedence: list"));
        // Bulk alone is what spam says about itself: no exemption.
        assert_eq!(parties(b"From: a@yahoo.com\r\nPrecedence: bulk\r\n\r\n").relayed_by, None);

        let forwarded = b"Received: from fwd.example.org (fwd.example.org [81.169.146.7]) by mx.quorum.test; Tue, 1 Jan 2026 00:00:00 +0000\r\n\
Received: from web1.mail.yahoo.com (web1.mail.yahoo.com [98.136.1.1]) by fwd.example.org; Tue, 1 Jan 2026 00:00:00 +0000\r\n\
Received: from [10.0.0.2] by web1.mail.yahoo.com; Tue, 1 Jan 2026 00:00:00 +0000\r\n\r\n";
        let chain = hops(forwarded);
        let h = handoff(&chain, &[]).unwrap();
        assert!(forwarded_from(&chain, &h, &["yahoo.com"]));
        assert!(!forwarded_from(&chain, &h, &["web.de"]));
        // The provider's own header below a connecting host that did not write the next
        // one down: not a forwarder's chain (a forger adding `by mail.yahoo.com` gains nothing).
        let forged = b"Received: from spam.example (spam.example [81.169.146.7]) by mx.quorum.test; Tue, 1 Jan 2026 00:00:00 +0000\r\n\
Received: from [10.0.0.2] by web1.mail.yahoo.com; Tue, 1 Jan 2026 00:00:00 +0000\r\n\r\n";
        let chain = hops(forged);
        assert!(!forwarded_from(&chain, &handoff(&chain, &[]).unwrap(), &["yahoo.com"]));
    }
}
