//! What the worker needs to know about a raw message before deciding where it goes.
//!
//! Only the header block is parsed: the decision (SPEC 2.1) depends on `From` and the release
//! marker alone, and a 30 MB attachment must not be decoded to find them. Real mail is often
//! malformed; nothing here fails: a message without a usable `From` simply has no sender
//! and is quarantined.

use std::{collections::HashSet, fmt};

use mail_parser::MessageParser;
use sha2::{Digest, Sha256};

use crate::{EmailAddress, Keys, ReleaseMarker};

/// SHA-256 of a message's raw bytes: with the UIDL, the key that keeps a message from being
/// quarantined twice (SPEC 2.1) even if the server renumbers its UIDLs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageHash(pub [u8; 32]);

impl MessageHash {
    pub fn of(raw: &[u8]) -> Self {
        Self(Sha256::digest(raw).into())
    }
}

impl fmt::Debug for MessageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageHash({})", hex::encode(&self.0[..8]))
    }
}

/// Longest subject kept for display; longer ones are cut at a character boundary.
const MAX_SUBJECT_CHARS: usize = 500;

#[derive(Debug, Clone)]
pub struct InspectedMessage {
    pub hash: MessageHash,
    pub size: usize,
    /// The first address of `From`, if it is a valid address.
    pub from: Option<EmailAddress>,
    /// The display name of that address, decoded (RFC 2047).
    pub from_name: Option<String>,
    pub subject: Option<String>,
    release_marker: Option<String>,
}

/// Where a freshly retrieved message goes (SPEC 2.1, steps 1, 3 and 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Quorum delivered it back itself: leave it in the Inbox.
    Released(ReleaseMarker),
    /// From an approved sender: leave it and refresh that sender's last-seen time.
    Approved(EmailAddress),
    /// Everything else: store it, then delete it from the mailbox.
    Quarantine,
}

impl InspectedMessage {
    pub fn parse(raw: &[u8]) -> Self {
        let hash = MessageHash::of(raw);
        let parsed = MessageParser::new().parse_headers(raw);
        let (from, from_name, subject, release_marker) = match &parsed {
            Some(m) => {
                let first = m.from().and_then(|a| a.first());
                (
                    first.and_then(|a| a.address()).and_then(|a| EmailAddress::parse(a).ok()),
                    first.and_then(|a| a.name()).map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
                    m.subject().map(shorten_subject),
                    m.header_raw(ReleaseMarker::HEADER).map(|v| v.trim().to_string()),
                )
            }
            None => (None, None, None, None),
        };
        Self { hash, size: raw.len(), from, from_name, subject, release_marker }
    }

    /// What is known of a message whose headers could not be read: its bytes' hash and size.
    pub fn unread(raw: &[u8]) -> Self {
        Self {
            hash: MessageHash::of(raw),
            size: raw.len(),
            from: None,
            from_name: None,
            subject: None,
            release_marker: None,
        }
    }

    /// Decides what to do with the message in mailbox `mailbox_id`, given the subscriber's
    /// currently approved (unexpired) senders.
    pub fn disposition(&self, mailbox_id: i64, keys: &Keys, approved: &HashSet<EmailAddress>) -> Disposition {
        if let Some(marker) = self.release_marker.as_deref().and_then(|v| ReleaseMarker::verify(v, keys))
            && marker.mailbox_id == mailbox_id
        {
            return Disposition::Released(marker);
        }
        match &self.from {
            Some(from) if approved.contains(from) => Disposition::Approved(from.clone()),
            _ => Disposition::Quarantine,
        }
    }
}

fn shorten_subject(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX_SUBJECT_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// A stored message without the mbox `From ` separator line some files start with (the
/// corpus, `quorum simulate` folders, files given to `quorum explain`).
pub fn without_mbox_line(bytes: &[u8]) -> &[u8] {
    match bytes.strip_prefix(b"From ") {
        Some(rest) => rest.splitn(2, |b| *b == b'\n').nth(1).unwrap_or_default(),
        None => bytes,
    }
}

/// Why a message was sent automatically rather than by a person (RFC 3834
/// `Auto-Submitted`, `Precedence: bulk/junk/list/auto_reply`, vacation responders'
/// `X-Autoreply` and the like), or `None`. A reply that a machine wrote must never act as the
/// person: not on a summary, not on a confirmation.
pub fn automatic(message: &mail_parser::Message<'_>) -> Option<String> {
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if let Some(v) = header("Auto-Submitted").filter(|v| v != "no") {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = header("Precedence").filter(|v| ["bulk", "junk", "list", "auto_reply"].contains(&v.as_str())) {
        return Some(format!("Precedence: {v}"));
    }
    ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"]
        .iter()
        .find(|h| header(h).is_some())
        .map(|h| format!("{h} header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_master(&[1u8; 32]).unwrap()
    }

    fn approved(list: &[&str]) -> HashSet<EmailAddress> {
        list.iter().map(|a| EmailAddress::parse(a).unwrap()).collect()
    }

    #[test]
    fn reads_sender_and_decoded_subject() {
        let raw =
            b"From: =?UTF-8?Q?J=C3=BCrgen?= <Juergen@Example.ORG>\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nbody\r\n";
        let m = InspectedMessage::parse(raw);
        assert_eq!(m.from.as_ref().unwrap().as_str(), "juergen@example.org");
        assert_eq!(m.from_name.as_deref(), Some("Jürgen"));
        assert_eq!(m.subject.as_deref(), Some("Grüße"));
        assert_eq!(m.size, raw.len());
    }

    #[test]
    fn approved_sender_stays_unknown_is_quarantined() {
        let raw = b"From: jane@example.org\r\n\r\nhi\r\n";
        let m = InspectedMessage::parse(raw);
        let jane = approved(&["Jane@example.org"]);
        assert_eq!(
            m.disposition(1, &keys(), &jane),
            Disposition::Approved(EmailAddress::parse("jane@example.org").unwrap())
        );
        assert_eq!(m.disposition(1, &keys(), &approved(&["bob@example.org"])), Disposition::Quarantine);
    }

    #[test]
    fn verified_release_marker_for_this_mailbox_stays() {
        let k = keys();
        let marker = ReleaseMarker::release(5, 77, crate::Timestamp(1));
        let raw =
            format!("{}: {}\r\nFrom: spam@example.com\r\n\r\nx\r\n", ReleaseMarker::HEADER, marker.header_value(&k));
        let m = InspectedMessage::parse(raw.as_bytes());
        assert_eq!(m.disposition(5, &k, &HashSet::new()), Disposition::Released(marker));
        // The same marker in another subscriber's mailbox proves nothing there.
        assert_eq!(m.disposition(6, &k, &HashSet::new()), Disposition::Quarantine);
        // A forged marker proves nothing either.
        let forged = b"X-Quorum-Release: 5.77.1.AAAAAAAAAAAAAAAAAAAAAA\r\nFrom: a@b.c\r\n\r\n";
        assert_eq!(InspectedMessage::parse(forged).disposition(5, &k, &HashSet::new()), Disposition::Quarantine);
    }

    #[test]
    fn broken_messages_are_quarantined_not_rejected() {
        let cases: [&[u8]; 5] = [
            b"",
            b"no headers at all, just text",
            b"From: \xff\xfe\xfd <\xff@\xfe>\r\nSubject: \xc3\x28\r\n\r\n\xff",
            b"Subject: no sender\r\n\r\nbody",
            b"From: undisclosed-recipients:;\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
        ];
        for raw in cases {
            let m = InspectedMessage::parse(raw);
            assert_eq!(m.disposition(1, &keys(), &approved(&["a@b.c"])), Disposition::Quarantine, "{raw:?}");
        }
    }

    #[test]
    fn long_subjects_are_shortened_on_one_line() {
        let raw = format!("From: a@b.c\r\nSubject: {}\r\n  folded\r\n\r\n", "word ".repeat(300));
        let s = InspectedMessage::parse(raw.as_bytes()).subject.unwrap();
        assert_eq!(s.chars().count(), MAX_SUBJECT_CHARS + 1);
        assert!(s.ends_with('…') && !s.contains('\n'));
    }

    #[test]
    fn hash_is_of_the_exact_bytes() {
        assert_ne!(MessageHash::of(b"a\r\n"), MessageHash::of(b"a\n"));
        assert_eq!(MessageHash::of(b"x"), MessageHash::of(b"x"));
    }
}
