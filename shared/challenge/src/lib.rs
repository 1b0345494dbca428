//! Challenge-response (SPEC 2.4). A held message from an unknown sender whose domain vouches
//! for it (SPF or DKIM aligned) may get one confirmation: "I received your email; reply to
//! have it delivered". Its envelope sender is a VERP address naming the held message with an
//! HMAC, so what comes back tells about that one message:
//! - a delivery-status notification (RFC 3464) or a plain bounce: the sender does not
//!   exist; the held message is deleted as `deleted_nonexistent`;
//! - a person's reply: that message is delivered (the sender is *not* approved: a spammer
//!   must gain nothing by replying);
//! - an auto-reply (vacation, RFC 3834): nothing.
//!
//! The confirmation arriving back in the subscriber's own mailbox means the claimed sender
//! is an alias of the recipient (seed 002): both are deleted.

use base64::Engine;
use mail_parser::{Address, Message, MessageParser, MimeHeaders};
use quorum_domain::{EmailAddress, Keys, Timestamp, inspect::automatic};

/// HMAC purpose of confirmation tokens (distinct from summary reply tokens).
const PURPOSE: &str = "confirmation";

/// The VERP address of the confirmation for held message `message_id`, issued at `issued`:
/// `<local>+cnfm-<id>.<issued>.<mac>@<domain>` ([`Keys::timed_token`]), delivered to the
/// robot mailbox like summary replies.
pub fn verp_address(keys: &Keys, message_id: i64, issued: Timestamp, local: &str, domain: &str) -> String {
    format!("{local}+cnfm-{message_id}.{}@{domain}", keys.timed_token(PURPOSE, &message_id.to_string(), issued))
}

/// The held message a verified VERP address names, if it was issued at most `max_age_secs`
/// before `now` (the quarantine's retention: after that the message is gone anyway).
pub fn verp_message_id(address: &str, keys: &Keys, now: Timestamp, max_age_secs: i64) -> Option<i64> {
    let local = address.trim().trim_matches(['<', '>']).rsplit_once('@')?.0;
    let (id, token) = local.split_once("+cnfm-")?.1.split_once('.')?;
    let id: i64 = id.parse().ok()?;
    keys.verify_timed_token(PURPOSE, &id.to_string(), token, now, max_age_secs).ok().map(|_| id)
}

/// Which held message a message in the robot mailbox answers: a verified, unexpired VERP
/// address among its recipients (To, Cc, Delivered-To, X-Original-To).
pub fn answered_confirmation(raw: &[u8], keys: &Keys, now: Timestamp, max_age_secs: i64) -> Option<i64> {
    let message = MessageParser::default().parse_headers(raw)?;
    let mut candidates: Vec<String> = [message.to(), message.cc()].into_iter().flatten().flat_map(addresses).collect();
    for header in ["Delivered-To", "X-Original-To"] {
        candidates.extend(message.header_values(header).filter_map(|v| v.as_text()).map(str::to_string));
    }
    candidates.iter().find_map(|a| verp_message_id(a, keys, now, max_age_secs))
}

/// How long a confirmation found in a subscriber's own mailbox still shows an alias: it
/// arrives there within minutes of being sent; an old copy seen later is mail like any
/// other (and must not let a copied VERP address delete held mail).
pub const ALIAS_WINDOW_SECS: i64 = 2 * 86_400;

/// One of our confirmations, recognised by its sender (From or Return-Path is a verified
/// VERP address issued within [`ALIAS_WINDOW_SECS`]): when it arrives in a subscriber's
/// mailbox, the claimed sender of the held message was an alias of that mailbox.
pub fn own_confirmation(raw: &[u8], keys: &Keys, now: Timestamp) -> Option<i64> {
    let message = MessageParser::default().parse_headers(raw)?;
    let from = message.from().into_iter().flat_map(addresses);
    from.chain(return_path(&message)).find_map(|a| verp_message_id(&a, keys, now, ALIAS_WINDOW_SECS))
}

/// The top-most Return-Path, without its angle brackets (`Some("")`: the null sender).
fn return_path(message: &Message<'_>) -> Option<String> {
    message.header_raw("Return-Path").map(|r| r.trim().trim_matches(['<', '>']).trim().to_string())
}

fn addresses(list: &Address<'_>) -> Vec<String> {
    list.iter().filter_map(|a| a.address()).map(str::to_string).collect()
}

/// Why a held message gets no confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoConfirmation {
    /// The null sender or a mailer daemon: bounces must never be answered.
    NullSender,
    /// Mailing list or bulk mail (`List-Id`, `Precedence: bulk/list/junk`).
    ListOrBulk(String),
    /// Auto-submitted mail (RFC 3834) or a known auto-responder.
    Automatic(String),
    /// No usable From address.
    NoSender,
}

/// The header rules of SPEC 2.4 (the caller checks authentication, the per-sender and
/// global limits, and the subscriber's setting). Returns the address to confirm to.
pub fn confirmable(raw: &[u8]) -> Result<EmailAddress, NoConfirmation> {
    let message = MessageParser::default().parse_headers(raw).ok_or(NoConfirmation::NoSender)?;
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if return_path(&message).is_some_and(|r| r.is_empty()) {
        return Err(NoConfirmation::NullSender);
    }
    if let Some(list) =
        ["List-Id", "List-Post", "List-Unsubscribe", "Mailing-List"].iter().find(|h| header(h).is_some())
    {
        return Err(NoConfirmation::ListOrBulk(format!("{list} header")));
    }
    if let Some(p) = header("Precedence").filter(|p| ["bulk", "list", "junk"].contains(&p.as_str())) {
        return Err(NoConfirmation::ListOrBulk(format!("Precedence: {p}")));
    }
    if let Some(why) = automatic(&message) {
        return Err(NoConfirmation::Automatic(why));
    }
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| EmailAddress::parse(a).ok())
        .ok_or(NoConfirmation::NoSender)?;
    let local = from.as_str().split('@').next().unwrap_or_default().to_ascii_lowercase();
    if ["mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"].contains(&local.as_str()) {
        return Err(NoConfirmation::NullSender);
    }
    Ok(from)
}

/// What came back to a confirmation's VERP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The confirmation could not be delivered: the sender does not exist.
    Bounce(String),
    /// A delay warning or a success report: not a verdict.
    Report(String),
    /// An auto-responder answered: nothing to do.
    AutoReply(String),
    /// A person replied.
    Reply,
}

/// Reads a message that arrived at a confirmation's VERP address.
pub fn classify_response(raw: &[u8]) -> Response {
    let Some(message) = MessageParser::default().parse(raw) else { return Response::AutoReply("unparsable".into()) };
    if let Some(report) = delivery_status(&message) {
        let action = field(&report, "action").unwrap_or_default().to_ascii_lowercase();
        let status = field(&report, "status").unwrap_or_default();
        return match action.as_str() {
            "failed" => Response::Bounce(format!("DSN action failed, status {status}")),
            // RFC 3464 requires Action; a report without one but with a 5.x.x status failed.
            "" if status.starts_with('5') => Response::Bounce(format!("DSN status {status}")),
            other => Response::Report(format!("DSN action {other}, status {status}")),
        };
    }
    let from =
        message.from().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_ascii_lowercase();
    let local = from.split('@').next().unwrap_or_default();
    let null_sender = return_path(&message).is_some_and(|r| r.is_empty());
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let bounce_subject = [
        "undeliver",
        "returned mail",
        "delivery status notification (failure)",
        "failure notice",
        "delivery failure",
        "mail delivery failed",
        "delivery has failed",
        "non remis",
        "unzustellbar",
    ]
    .iter()
    .any(|s| subject.contains(s));
    if (null_sender || local == "mailer-daemon" || local == "postmaster") && bounce_subject {
        return Response::Bounce(format!("plain bounce: {}", message.subject().unwrap_or_default()));
    }
    if let Some(why) = automatic(&message) {
        return Response::AutoReply(why);
    }
    if null_sender || local == "mailer-daemon" || local == "postmaster" {
        return Response::AutoReply("from a mail system".into());
    }
    Response::Reply
}

/// The per-recipient part of a `message/delivery-status` report, if the message is one.
fn delivery_status(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let is_report = ct.ctype().eq_ignore_ascii_case("message")
            && ct.subtype().is_some_and(|s| {
                s.eq_ignore_ascii_case("delivery-status") || s.eq_ignore_ascii_case("global-delivery-status")
            });
        if !is_report {
            return None;
        }
        let body = part.contents();
        // Per-message fields, a blank line, then per-recipient fields: keep the latter.
        let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
        Some(text.split("\n\n").skip(1).find(|block| !block.trim().is_empty()).unwrap_or(&text).to_string())
    })
}

fn field(block: &str, name: &str) -> Option<String> {
    block.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.split(';').next_back().unwrap_or(v).trim().to_string())
    })
}

/// The confirmation message, CRLF line ends. `verp` is both its envelope sender and its
/// Reply-To; `subscriber` is named so the sender knows whose filter holds the mail.
pub fn compose(
    subscriber: &EmailAddress,
    sender: &EmailAddress,
    subject: Option<&str>,
    verp: &str,
    date: &str,
    message_id: &str,
) -> Vec<u8> {
    let subject: String =
        subject.unwrap_or("(no subject)").chars().map(|c| if c.is_control() { ' ' } else { c }).take(120).collect();
    format!(
        "From: \"{subscriber} (via Quorum)\" <{verp}>\r\n\
         To: <{sender}>\r\n\
         Reply-To: <{verp}>\r\n\
         Subject: =?utf-8?B?{}?=\r\n\
         Date: {date}\r\n\
         Message-ID: <{message_id}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         Precedence: bulk\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         {subscriber} uses a spam filter, which is holding your email with the subject above.\r\n\r\n\
         If you sent it, reply to this message (keep the reference in the address) and it will be\r\n\
         delivered. You need to do this only once for this message.\r\n\r\n\
         If you did not send it, someone used your address: please ignore this message.\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("Held: {subject}")),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);
    const DAY: i64 = 86_400;

    fn keys() -> Keys {
        Keys::from_master(&[5u8; 32]).unwrap()
    }

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn verp_addresses_round_trip_and_resist_tampering() {
        let verp = verp_address(&keys(), 42, NOW, "robot", "quorum.test");
        assert!(verp.starts_with("robot+cnfm-42.20833.") && verp.ends_with("@quorum.test"), "{verp}");
        assert!(verp.split('@').next().unwrap().len() <= 64, "a local part fits RFC 5321");
        let check = |a: &str, k: &Keys| verp_message_id(a, k, NOW, 30 * DAY);
        assert_eq!(check(&verp, &keys()), Some(42));
        assert_eq!(check(&format!("<{verp}>"), &keys()), Some(42));
        assert_eq!(check(&verp.replace("cnfm-42", "cnfm-43"), &keys()), None);
        assert_eq!(check(&verp, &Keys::from_master(&[6u8; 32]).unwrap()), None);
        assert_eq!(check("robot+17.1.abc@quorum.test", &keys()), None, "a summary address is no confirmation");
        // It expires with the quarantine.
        assert_eq!(verp_message_id(&verp, &keys(), Timestamp(NOW.0 + 31 * DAY), 30 * DAY), None);
    }

    #[test]
    fn what_gets_a_confirmation() {
        let plain = b"Return-Path: <jane@example.org>\r\nFrom: Jane <jane@example.org>\r\nSubject: hi\r\n\r\nx\r\n";
        assert_eq!(confirmable(plain), Ok(addr("jane@example.org")));
        type Expect = fn(&NoConfirmation) -> bool;
        let cases: [(&[u8], Expect); 7] = [
            (b"Return-Path: <>\r\nFrom: a@b.example\r\n\r\n", |r| *r == NoConfirmation::NullSender),
            (b"From: MAILER-DAEMON@b.example\r\n\r\n", |r| *r == NoConfirmation::NullSender),
            (b"From: a@b.example\r\nList-Id: <l.b.example>\r\n\r\n", |r| matches!(r, NoConfirmation::ListOrBulk(_))),
            (b"From: a@b.example\r\nPrecedence: bulk\r\n\r\n", |r| matches!(r, NoConfirmation::ListOrBulk(_))),
            (b"From: a@b.example\r\nList-Unsubscribe: <mailto:u@b.example>\r\n\r\n", |r| {
                matches!(r, NoConfirmation::ListOrBulk(_))
            }),
            (b"From: a@b.example\r\nAuto-Submitted: auto-generated\r\n\r\n", |r| {
                matches!(r, NoConfirmation::Automatic(_))
            }),
            (b"Subject: no from\r\n\r\n", |r| *r == NoConfirmation::NoSender),
        ];
        for (raw, expected) in cases {
            let why = confirmable(raw).unwrap_err();
            assert!(expected(&why), "{}: {why:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn responses() {
        let dsn = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example (Mail Delivery System)\r\nSubject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n\
Final-Recipient: rfc822; nobody@example.org\r\nOriginal-Recipient: rfc822;nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--B--\r\n";
        assert_eq!(classify_response(dsn), Response::Bounce("DSN action failed, status 5.1.1".into()));
        let delayed =
            String::from_utf8_lossy(dsn).replace("Action: failed", "Action: delayed").replace("5.1.1", "4.4.1");
        assert!(matches!(classify_response(delayed.as_bytes()), Response::Report(_)));
        let plain = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@old.example\r\nSubject: failure notice\r\n\r\nSorry, no mailbox here by that name.\r\n";
        assert!(matches!(classify_response(plain), Response::Bounce(_)));
        let vacation =
            b"From: jane@example.org\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nBack Monday.\r\n";
        assert!(matches!(classify_response(vacation), Response::AutoReply(_)));
        let reply = b"From: jane@example.org\r\nSubject: Re: Held: hi\r\n\r\nYes, that was me.\r\n";
        assert_eq!(classify_response(reply), Response::Reply);
    }

    #[test]
    fn the_confirmation_is_an_auto_reply_that_comes_back_to_its_verp_address() {
        let k = keys();
        let verp = verp_address(&k, 7, NOW, "robot", "quorum.test");
        let raw = compose(
            &addr("me@isp.example"),
            &addr("jane@example.org"),
            Some("Lunch?\r\nBcc: x"),
            &verp,
            "Wed, 25 Nov 2026 10:00:00 +0000",
            "c7@quorum.test",
        );
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("Auto-Submitted: auto-replied\r\n") && text.contains(&format!("Reply-To: <{verp}>\r\n")));
        let parsed = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Held: Lunch?  Bcc: x"));
        assert_eq!(own_confirmation(&raw, &k, NOW), Some(7));
        assert_eq!(own_confirmation(&raw, &k, Timestamp(NOW.0 + 3 * DAY)), None, "an old copy shows no alias");
        // It is itself never confirmed, and a reply to it names the held message.
        assert!(confirmable(&raw).is_err());
        let reply = format!("From: jane@example.org\r\nTo: {verp}\r\nSubject: Re: Held: Lunch?\r\n\r\nyes\r\n");
        assert_eq!(answered_confirmation(reply.as_bytes(), &k, NOW, 30 * DAY), Some(7));
        let delivered = format!("Delivered-To: {verp}\r\nFrom: MAILER-DAEMON@x\r\n\r\n");
        assert_eq!(answered_confirmation(delivered.as_bytes(), &k, NOW, 30 * DAY), Some(7));
    }
}
