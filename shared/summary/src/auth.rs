//! Who may answer a summary (SPEC 2.3): a reply counts only if it is addressed to the
//! summary's own reply address, whose HMAC token Quorum issued and which has not expired,
//! and comes from the subscriber the summary was sent to, alone, not refuted by DMARC.
//! Anything else is rejected and logged: a spammer must not be able to approve itself by
//! writing to the robot mailbox, nor anyone act on an old summary found in an archive.

use mail_parser::{Address, Message, MessageParser};
use quorum_domain::{EmailAddress, Keys, Timestamp, TokenError};

const PURPOSE: &str = "summary";

/// `<local>+<summary id>.<issued>.<token>@<domain>`: the Reply-To of one summary, issued at
/// `issued` ([`Keys::timed_token`]).
pub fn reply_address(keys: &Keys, summary_id: i64, issued: Timestamp, local: &str, domain: &str) -> String {
    format!("{local}+{summary_id}.{}@{domain}", keys.timed_token(PURPOSE, &summary_id.to_string(), issued))
}

/// What a reply must satisfy besides its token and its sender (from the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPolicy {
    /// A summary's reply address works this long after it was issued: while anything the
    /// summary lists can still be held (`max_retention_days`).
    pub max_age_secs: i64,
    /// The authserv-id with which the robot mailbox's provider writes its
    /// `Authentication-Results` (RFC 8601). When set and that header is on a reply, a
    /// reply whose From fails DMARC there is refused. Headers with other ids are anyone's
    /// words and are ignored.
    pub authserv_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the reply is not addressed to a summary reply address")]
    NoToken,
    #[error("the reply address carries a token Quorum did not issue")]
    BadToken,
    #[error("the reply answers summary {summary}, whose reply address expired (sent {} days ago)", .age_days)]
    Expired { summary: i64, age_days: i64 },
    #[error("summary {0} is unknown")]
    UnknownSummary(i64),
    #[error("the reply's From must be exactly one address, it has {0}")]
    NotOneSender(usize),
    #[error("the reply comes from {from}, not from the subscriber the summary was sent to")]
    WrongSender { from: String },
    #[error("the reply's From {from} fails DMARC at {authserv_id}: forged")]
    DmarcFailed { from: String, authserv_id: String },
    #[error("the reply was sent automatically ({0}), not by the subscriber")]
    Automatic(String),
}

impl AuthError {
    /// Whether a person at the reply's (single, unrefuted) From may have sent it in good
    /// faith and should hear why nothing happened: an old summary, a summary of another
    /// of their addresses, a key change. Never for forged, automatic or unaddressed mail.
    pub fn deserves_notice(&self) -> bool {
        matches!(
            self,
            AuthError::BadToken
                | AuthError::Expired { .. }
                | AuthError::UnknownSummary(_)
                | AuthError::WrongSender { .. }
        )
    }
}

/// Where to say why a reply was refused: its single From, when the refusal
/// [deserves a notice](AuthError::deserves_notice), the reply is not automatic (a notice to
/// a responder could start a loop) and DMARC at our provider does not refute the From
/// (nothing is ever sent to a forged From). The caller also checks that the address is a
/// subscriber's and limits notices to one a day.
pub fn notice_address(raw: &[u8], refusal: &AuthError, policy: &ReplyPolicy) -> Option<EmailAddress> {
    let headers = Headers::of(raw);
    match refusal.deserves_notice() && headers.automatic().is_none() && !headers.refuted(policy) {
        true => headers.sole_sender().ok(),
        false => None,
    }
}

/// Checks a reply at `now`; returns the id of the summary it answers.
///
/// `owner_of` gives the address a summary was sent to. See [`verified_summary`] and
/// [`check_sender`] for the two halves, for callers that look the owner up themselves.
pub fn authenticate(
    raw: &[u8],
    keys: &Keys,
    policy: &ReplyPolicy,
    now: Timestamp,
    owner_of: impl FnOnce(i64) -> Option<EmailAddress>,
) -> Result<i64, AuthError> {
    let summary_id = verified_summary(raw, keys, policy, now)?;
    let owner = owner_of(summary_id).ok_or(AuthError::UnknownSummary(summary_id))?;
    check_sender(raw, &owner, policy)?;
    Ok(summary_id)
}

/// The summary a reply is addressed to, if the address carries a token Quorum issued that
/// has not expired at `now`. The token is looked for in every recipient header a robot
/// mailbox may leave (To, Cc, Delivered-To, X-Original-To).
pub fn verified_summary(raw: &[u8], keys: &Keys, policy: &ReplyPolicy, now: Timestamp) -> Result<i64, AuthError> {
    let message = MessageParser::default().parse_headers(raw).ok_or(AuthError::NoToken)?;
    let mut candidates: Vec<String> = Vec::new();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        candidates.extend(addresses(list));
    }
    for header in ["Delivered-To", "X-Original-To"] {
        candidates.extend(message.header_values(header).filter_map(|v| v.as_text()).map(|t| t.trim().to_string()));
    }
    let tokens: Vec<(i64, &str)> = candidates.iter().filter_map(|addr| token_of(addr)).collect();
    if tokens.is_empty() {
        return Err(AuthError::NoToken);
    }
    let mut refused = AuthError::BadToken;
    for (id, token) in tokens {
        match keys.verify_timed_token(PURPOSE, &id.to_string(), token, now, policy.max_age_secs) {
            Ok(_) => return Ok(id),
            Err(TokenError::Expired(issued)) => {
                refused = AuthError::Expired { summary: id, age_days: (now.0 - issued.0) / 86_400 }
            }
            Err(TokenError::Forged) => {}
        }
    }
    Err(refused)
}

/// The reply's sender: the one address of its one From header. A From naming several
/// people (`alice@quorum.test, mallory@evil.example`), or several From headers, is no one
/// in particular: whoever added the second address may be the author.
pub fn sole_sender(raw: &[u8]) -> Result<EmailAddress, AuthError> {
    Headers::of(raw).sole_sender()
}

/// The reply's `From` must be exactly one address, the summary's owner (compared
/// case-insensitively); DMARC must not refute it where the robot mailbox's provider
/// checked ([`ReplyPolicy::authserv_id`]); and the reply must not be an automatic one
/// (RFC 3834 `Auto-Submitted`, `Precedence: bulk`, vacation responders' `X-Autoreply`): a
/// responder quoting the summary back would read as "delete every message and block every
/// sender".
pub fn check_sender(raw: &[u8], owner: &EmailAddress, policy: &ReplyPolicy) -> Result<(), AuthError> {
    let headers = Headers::of(raw);
    if let Some(why) = headers.automatic() {
        return Err(AuthError::Automatic(why));
    }
    let from = headers.sole_sender()?;
    if let Some(authserv_id) = policy.authserv_id.as_deref().filter(|_| headers.refuted(policy)) {
        return Err(AuthError::DmarcFailed { from: from.to_string(), authserv_id: authserv_id.to_string() });
    }
    match from == *owner {
        true => Ok(()),
        false => Err(AuthError::WrongSender { from: from.to_string() }),
    }
}

/// The `dmarc=` result of the top-most `Authentication-Results` header written by
/// `authserv_id` (RFC 8601: `authserv-id [version]; method=result ...`), lower-cased. The
/// top-most is the one the provider added on delivery; one below it came with the mail.
pub fn dmarc_result(raw: &[u8], authserv_id: &str) -> Option<String> {
    Headers::of(raw).dmarc_result(authserv_id)
}

/// A reply's headers, parsed once for every check on its sender.
struct Headers<'a> {
    raw: &'a [u8],
    message: Option<Message<'a>>,
}

impl<'a> Headers<'a> {
    fn of(raw: &'a [u8]) -> Self {
        Headers { raw, message: MessageParser::default().parse_headers(raw) }
    }

    fn automatic(&self) -> Option<String> {
        self.message.as_ref().and_then(quorum_domain::inspect::automatic)
    }

    fn sole_sender(&self) -> Result<EmailAddress, AuthError> {
        let message = self.message.as_ref().ok_or(AuthError::NotOneSender(0))?;
        let headers = message.headers().iter().filter(|h| h.name.as_str().eq_ignore_ascii_case("From")).count();
        // Every entry counts, also one without an address: "alice@x, Mallory" is two people.
        let entries: Vec<Option<&str>> =
            message.from().map(|a| a.iter().map(|a| a.address()).collect()).unwrap_or_default();
        match (headers, entries.as_slice()) {
            (1, [Some(address)]) => {
                EmailAddress::parse(address).map_err(|_| AuthError::WrongSender { from: address.to_string() })
            }
            (1, [None]) => Err(AuthError::WrongSender { from: "(no valid From)".into() }),
            _ => Err(AuthError::NotOneSender(entries.len().max(headers))),
        }
    }

    /// DMARC failed at the robot mailbox's provider ([`ReplyPolicy::authserv_id`]).
    fn refuted(&self, policy: &ReplyPolicy) -> bool {
        policy.authserv_id.as_deref().is_some_and(|id| self.dmarc_result(id).as_deref() == Some("fail"))
    }

    fn dmarc_result(&self, authserv_id: &str) -> Option<String> {
        let value = self
            .message
            .as_ref()?
            .headers()
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case("Authentication-Results"))
            .filter_map(|h| self.raw.get(h.offset_start as usize..h.offset_end as usize))
            .map(String::from_utf8_lossy)
            .find(|v| {
                let id = v.split(';').next().and_then(|id| id.split_whitespace().next());
                id.is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
            })?;
        let lower = value.to_ascii_lowercase();
        lower.split(';').skip(1).find_map(|method| {
            let result = method.trim().strip_prefix("dmarc")?.trim_start().strip_prefix('=')?;
            Some(result.trim_start().split(|c: char| !c.is_ascii_alphanumeric()).next()?.to_string())
        })
    }
}

/// The first `To` address of a message: for a summary, the subscriber it was sent to.
pub fn recipient(raw: &[u8]) -> Option<EmailAddress> {
    let message = MessageParser::default().parse_headers(raw)?;
    message.to()?.first()?.address().and_then(|a| EmailAddress::parse(a).ok())
}

fn addresses(list: &Address<'_>) -> Vec<String> {
    list.iter().filter_map(|a| a.address()).map(str::to_string).collect()
}

/// `(summary id, timed token)` from `local+<id>.<issued>.<mac>@domain`.
fn token_of(address: &str) -> Option<(i64, &str)> {
    let local = address.trim_matches(['<', '>']).split('@').next()?;
    let tag = local.split_once('+')?.1;
    let (id, token) = tag.split_once('.')?;
    Some((id.parse().ok()?, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);
    const DAY: i64 = 86_400;

    fn keys() -> Keys {
        Keys::from_master(&[3u8; 32]).unwrap()
    }

    fn policy() -> ReplyPolicy {
        ReplyPolicy { max_age_secs: 30 * DAY, authserv_id: Some("mx.quorum.example".into()) }
    }

    fn alice() -> Option<EmailAddress> {
        EmailAddress::parse("alice@example.org").ok()
    }

    fn address(id: i64) -> String {
        reply_address(&keys(), id, NOW, "summary", "quorum.example")
    }

    fn reply(from: &str, to: &str) -> Vec<u8> {
        format!("From: {from}\r\nTo: {to}\r\nSubject: Re: summary\r\n\r\n> [A] 00001\r\n").into_bytes()
    }

    fn auth(raw: &[u8]) -> Result<i64, AuthError> {
        authenticate(raw, &keys(), &policy(), NOW, |_| alice())
    }

    #[test]
    fn the_subscriber_answering_its_summary_is_accepted() {
        let to = address(42);
        assert!(to.starts_with("summary+42.20833.") && to.ends_with("@quorum.example"), "{to}");
        assert!(to.split('@').next().unwrap().len() <= 64, "a local part fits RFC 5321");
        assert_eq!(auth(&reply("Alice <ALICE@Example.org>", &to)), Ok(42));
    }

    #[test]
    fn right_token_wrong_sender_is_rejected() {
        let to = address(42);
        assert_eq!(
            auth(&reply("spammer@evil.example", &to)),
            Err(AuthError::WrongSender { from: "spammer@evil.example".into() })
        );
        assert!(matches!(auth(b"To: x\r\n\r\n"), Err(AuthError::NoToken)));
    }

    #[test]
    fn the_from_must_be_exactly_one_address() {
        let to = address(42);
        for from in ["alice@example.org, mallory@evil.example", "mallory@evil.example, alice@example.org"] {
            assert_eq!(auth(&reply(from, &to)), Err(AuthError::NotOneSender(2)), "{from}");
        }
        assert_eq!(auth(&reply("alice@example.org, Mallory", &to)), Err(AuthError::NotOneSender(2)));
        assert_eq!(auth(&reply("Friends: alice@example.org, bob@example.org;", &to)), Err(AuthError::NotOneSender(2)));
        let two_headers =
            format!("From: mallory@evil.example\r\n{}", String::from_utf8(reply("alice@example.org", &to)).unwrap());
        assert_eq!(auth(two_headers.as_bytes()), Err(AuthError::NotOneSender(2)));
        let none = format!("To: {to}\r\nSubject: Re\r\n\r\n> [A] 00001\r\n");
        assert!(matches!(auth(none.as_bytes()), Err(AuthError::NotOneSender(0))));
    }

    #[test]
    fn right_sender_wrong_token_is_rejected() {
        let forged = "summary+42.20833.AAAAAAAAAAAAAAAA@quorum.example";
        assert_eq!(auth(&reply("alice@example.org", forged)), Err(AuthError::BadToken));
        // A token for another summary does not carry over.
        let other = address(43).replace("+43.", "+42.");
        assert_eq!(auth(&reply("alice@example.org", &other)), Err(AuthError::BadToken));
        let elsewhere = reply_address(&Keys::from_master(&[4u8; 32]).unwrap(), 42, NOW, "summary", "quorum.example");
        assert_eq!(auth(&reply("alice@example.org", &elsewhere)), Err(AuthError::BadToken));
        assert_eq!(auth(&reply("alice@example.org", "robot@quorum.example")), Err(AuthError::NoToken));
    }

    #[test]
    fn a_reply_address_expires_with_the_quarantine() {
        let old = reply_address(&keys(), 42, Timestamp(NOW.0 - 31 * DAY), "summary", "quorum.example");
        assert_eq!(auth(&reply("alice@example.org", &old)), Err(AuthError::Expired { summary: 42, age_days: 31 }));
        let recent = reply_address(&keys(), 42, Timestamp(NOW.0 - 29 * DAY), "summary", "quorum.example");
        assert_eq!(auth(&reply("alice@example.org", &recent)), Ok(42));
        // The issue time cannot be moved forward.
        let moved = old.replace("+42.20802.", "+42.20833.");
        assert_eq!(auth(&reply("alice@example.org", &moved)), Err(AuthError::BadToken));
    }

    #[test]
    fn dmarc_failing_at_our_provider_refutes_the_from() {
        let to = address(42);
        let with = |header: &str| [header.as_bytes(), &reply("alice@example.org", &to)].concat();
        let fail = "Authentication-Results: mx.quorum.example;\r\n spf=fail smtp.mailfrom=evil.example;\r\n dmarc=fail (p=reject) header.from=example.org\r\n";
        assert_eq!(
            auth(&with(fail)),
            Err(AuthError::DmarcFailed { from: "alice@example.org".into(), authserv_id: "mx.quorum.example".into() })
        );
        assert_eq!(auth(&with(&fail.replace("dmarc=fail", "dmarc=pass"))), Ok(42));
        // Another server's verdict is anyone's words; without the setting nothing is checked.
        assert_eq!(auth(&with(&fail.replace("mx.quorum.example", "mx.evil.example"))), Ok(42));
        let unchecked = ReplyPolicy { authserv_id: None, ..policy() };
        assert_eq!(authenticate(&with(fail), &keys(), &unchecked, NOW, |_| alice()), Ok(42));
        // The top-most header of our provider counts, not one the sender put below it.
        let pass = fail.replace("dmarc=fail", "dmarc=pass");
        assert_eq!(auth(&[pass.as_bytes(), &with(fail)].concat()), Ok(42));
        assert_eq!(dmarc_result(&with(fail), "MX.quorum.example").as_deref(), Some("fail"));
    }

    #[test]
    fn automatic_replies_are_refused() {
        let to = address(42);
        for header in ["Auto-Submitted: auto-replied", "Precedence: bulk", "X-Autoreply: yes"] {
            let raw = format!("{header}\r\nFrom: alice@example.org\r\nTo: {to}\r\n\r\n> [ ] 00001\r\n");
            assert!(matches!(auth(raw.as_bytes()), Err(AuthError::Automatic(_))), "{header}");
        }
        let raw = format!("Auto-Submitted: no\r\nFrom: alice@example.org\r\nTo: {to}\r\n\r\n");
        assert_eq!(auth(raw.as_bytes()), Ok(42));
    }

    #[test]
    fn token_found_in_delivered_to_and_unknown_summaries_refused() {
        let to = reply_address(&keys(), 7, NOW, "summary", "quorum.example");
        let raw = format!("Delivered-To: {to}\r\nFrom: alice@example.org\r\nTo: robot@quorum.example\r\n\r\n");
        assert_eq!(auth(raw.as_bytes()), Ok(7));
        assert_eq!(authenticate(raw.as_bytes(), &keys(), &policy(), NOW, |_| None), Err(AuthError::UnknownSummary(7)));
    }

    #[test]
    fn a_notice_goes_only_to_a_sole_unrefuted_person() {
        let old = reply_address(&keys(), 42, Timestamp(NOW.0 - 40 * DAY), "summary", "quorum.example");
        let raw = reply("alice@example.org", &old);
        let refusal = auth(&raw).unwrap_err();
        assert_eq!(notice_address(&raw, &refusal, &policy()), alice());
        let two = reply("alice@example.org, mallory@evil.example", &old);
        assert_eq!(notice_address(&two, &refusal, &policy()), None);
        let automatic = [b"Auto-Submitted: auto-replied\r\n".as_slice(), &raw].concat();
        assert_eq!(notice_address(&automatic, &refusal, &policy()), None);
        let forged = [b"Authentication-Results: mx.quorum.example; dmarc=fail\r\n".as_slice(), &raw].concat();
        assert_eq!(notice_address(&forged, &refusal, &policy()), None);
        assert_eq!(notice_address(&raw, &AuthError::NoToken, &policy()), None);
    }

    #[test]
    fn who_hears_why_a_reply_was_refused() {
        assert!(AuthError::Expired { summary: 1, age_days: 40 }.deserves_notice());
        assert!(AuthError::BadToken.deserves_notice());
        for silent in [
            AuthError::NoToken,
            AuthError::NotOneSender(2),
            AuthError::Automatic("x".into()),
            AuthError::DmarcFailed { from: "a@b.example".into(), authserv_id: "mx".into() },
        ] {
            assert!(!silent.deserves_notice(), "{silent}");
        }
    }
}
