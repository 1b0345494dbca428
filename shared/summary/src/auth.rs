//! Who may answer a summary (SPEC 2.3): a reply counts only if it is addressed to the
//! summary's own reply address, whose HMAC token Quorum issued, and comes from the
//! subscriber the summary was sent to. Anything else is rejected and logged: a spammer must
//! not be able to approve itself by writing to the robot mailbox.

use mail_parser::{Address, MessageParser};
use quorum_domain::{EmailAddress, Keys};

const PURPOSE: &str = "summary";

/// `<local>+<summary id>.<token>@<domain>`: the Reply-To of one summary.
pub fn reply_address(keys: &Keys, summary_id: i64, local: &str, domain: &str) -> String {
    format!("{local}+{summary_id}.{}@{domain}", keys.token(PURPOSE, &summary_id.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the reply is not addressed to a summary reply address")]
    NoToken,
    #[error("the reply address carries a token Quorum did not issue")]
    BadToken,
    #[error("summary {0} is unknown")]
    UnknownSummary(i64),
    #[error("the reply comes from {from}, not from the subscriber the summary was sent to")]
    WrongSender { from: String },
    #[error("the reply was sent automatically ({0}), not by the subscriber")]
    Automatic(String),
}

/// Checks a reply; returns the id of the summary it answers.
///
/// `owner_of` gives the address a summary was sent to. See [`verified_summary`] and
/// [`check_sender`] for the two halves, for callers that look the owner up themselves.
pub fn authenticate(
    raw: &[u8],
    keys: &Keys,
    owner_of: impl FnOnce(i64) -> Option<EmailAddress>,
) -> Result<i64, AuthError> {
    let summary_id = verified_summary(raw, keys)?;
    let owner = owner_of(summary_id).ok_or(AuthError::UnknownSummary(summary_id))?;
    check_sender(raw, &owner)?;
    Ok(summary_id)
}

/// The summary a reply is addressed to, if the address carries a token Quorum issued. The
/// token is looked for in every recipient header a robot mailbox may leave (To, Cc,
/// Delivered-To, X-Original-To).
pub fn verified_summary(raw: &[u8], keys: &Keys) -> Result<i64, AuthError> {
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
    tokens
        .into_iter()
        .find(|(id, token)| keys.verify_token(PURPOSE, &id.to_string(), token))
        .map(|(id, _)| id)
        .ok_or(AuthError::BadToken)
}

/// The reply's `From` must be the summary's owner (compared case-insensitively), and the
/// reply must not be an automatic one (RFC 3834 `Auto-Submitted`, `Precedence: bulk`,
/// vacation responders' `X-Autoreply`): a responder quoting the summary back would read as
/// "delete every message and block every sender".
pub fn check_sender(raw: &[u8], owner: &EmailAddress) -> Result<(), AuthError> {
    if let Some(why) = MessageParser::default().parse_headers(raw).as_ref().and_then(quorum_domain::inspect::automatic)
    {
        return Err(AuthError::Automatic(why));
    }
    let from = MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_string))
        .and_then(|a| EmailAddress::parse(&a).ok());
    match from {
        Some(from) if from == *owner => Ok(()),
        other => {
            Err(AuthError::WrongSender { from: other.map_or_else(|| "(no valid From)".into(), |f| f.to_string()) })
        }
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

/// `(summary id, token)` from `local+<id>.<token>@domain`.
fn token_of(address: &str) -> Option<(i64, &str)> {
    let local = address.trim_matches(['<', '>']).split('@').next()?;
    let tag = local.split_once('+')?.1;
    let (id, token) = tag.split_once('.')?;
    Some((id.parse().ok()?, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_master(&[3u8; 32]).unwrap()
    }

    fn alice() -> Option<EmailAddress> {
        EmailAddress::parse("alice@example.org").ok()
    }

    fn reply(from: &str, to: &str) -> Vec<u8> {
        format!("From: {from}\r\nTo: {to}\r\nSubject: Re: summary\r\n\r\n> [A] 00001\r\n").into_bytes()
    }

    #[test]
    fn the_subscriber_answering_its_summary_is_accepted() {
        let to = reply_address(&keys(), 42, "summary", "quorum.example");
        assert!(to.starts_with("summary+42.") && to.ends_with("@quorum.example"));
        assert_eq!(authenticate(&reply("Alice <ALICE@Example.org>", &to), &keys(), |_| alice()), Ok(42));
    }

    #[test]
    fn right_token_wrong_sender_is_rejected() {
        let to = reply_address(&keys(), 42, "summary", "quorum.example");
        assert_eq!(
            authenticate(&reply("spammer@evil.example", &to), &keys(), |_| alice()),
            Err(AuthError::WrongSender { from: "spammer@evil.example".into() })
        );
        assert!(matches!(authenticate(b"To: x\r\n\r\n", &keys(), |_| alice()), Err(AuthError::NoToken)));
    }

    #[test]
    fn right_sender_wrong_token_is_rejected() {
        let forged = "summary+42.AAAAAAAAAAAAAAAAAAAAAA@quorum.example";
        assert_eq!(authenticate(&reply("alice@example.org", forged), &keys(), |_| alice()), Err(AuthError::BadToken));
        // A token for another summary does not carry over.
        let other = reply_address(&keys(), 43, "summary", "quorum.example").replace("+43.", "+42.");
        assert_eq!(authenticate(&reply("alice@example.org", &other), &keys(), |_| alice()), Err(AuthError::BadToken));
        let elsewhere = reply_address(&Keys::from_master(&[4u8; 32]).unwrap(), 42, "summary", "quorum.example");
        assert_eq!(
            authenticate(&reply("alice@example.org", &elsewhere), &keys(), |_| alice()),
            Err(AuthError::BadToken)
        );
        assert_eq!(
            authenticate(&reply("alice@example.org", "robot@quorum.example"), &keys(), |_| alice()),
            Err(AuthError::NoToken)
        );
    }

    #[test]
    fn automatic_replies_are_refused() {
        let to = reply_address(&keys(), 42, "summary", "quorum.example");
        for header in ["Auto-Submitted: auto-replied", "Precedence: bulk", "X-Autoreply: yes"] {
            let raw = format!("{header}\r\nFrom: alice@example.org\r\nTo: {to}\r\n\r\n> [ ] 00001\r\n");
            assert!(
                matches!(authenticate(raw.as_bytes(), &keys(), |_| alice()), Err(AuthError::Automatic(_))),
                "{header}"
            );
        }
        let raw = format!("Auto-Submitted: no\r\nFrom: alice@example.org\r\nTo: {to}\r\n\r\n");
        assert_eq!(authenticate(raw.as_bytes(), &keys(), |_| alice()), Ok(42));
    }

    #[test]
    fn token_found_in_delivered_to_and_unknown_summaries_refused() {
        let to = reply_address(&keys(), 7, "summary", "quorum.example");
        let raw = format!("Delivered-To: {to}\r\nFrom: alice@example.org\r\nTo: robot@quorum.example\r\n\r\n");
        assert_eq!(authenticate(raw.as_bytes(), &keys(), |_| alice()), Ok(7));
        assert_eq!(authenticate(raw.as_bytes(), &keys(), |_| None), Err(AuthError::UnknownSummary(7)));
    }
}
