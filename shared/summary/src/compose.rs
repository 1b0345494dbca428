//! The summary's text (SPEC 2.3): instructions on top, counts since the last summary, then
//! one line per held message, ranked by the chance of not being spam, highest first.
//! Lines are kept to one readable line each: names and subjects are decoded already
//! (RFC 2047, at quarantine time) and here cleaned of control characters and shortened.

use quorum_domain::EmailAddress;

use crate::ShortId;

/// A held message as a summary shows it.
#[derive(Debug, Clone)]
pub struct HeldLine {
    pub message_id: i64,
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    /// Chance of not being spam, 0 to 1.
    pub not_spam: f64,
    /// Whole days until the message is purged.
    pub expires_in_days: i64,
    /// What the forgery checks found worth saying (`DMARC fails (p=none)`).
    pub note: Option<String>,
}

/// A message deleted as forged since the last summary, listed with the reason so the
/// subscriber can see what the checks did (and an operator can be asked about it).
#[derive(Debug, Clone)]
pub struct ForgedLine {
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub reason: String,
}

/// Forged deletions listed in one summary; the count in the heading covers the rest.
pub const FORGED_LINES: usize = 20;

/// Characters of a check's note or reason shown.
const NOTE_CHARS: usize = 100;

/// What happened since the last summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub deleted: i64,
    pub forged: i64,
    pub delivered: i64,
}

#[derive(Debug, Clone)]
pub struct Composed {
    pub text: String,
    /// Each line's short ID and the message it names, in the order shown.
    pub items: Vec<(ShortId, i64)>,
}

const NAME_CHARS: usize = 40;
const ADDRESS_CHARS: usize = 60;
const SUBJECT_CHARS: usize = 60;

/// The body of a summary for `subscriber`; `heading` names the moment (e.g. the local
/// date and time).
pub fn compose(
    subscriber: &EmailAddress,
    heading: &str,
    counts: Counts,
    mut lines: Vec<HeldLine>,
    forged: &[ForgedLine],
) -> Composed {
    lines.sort_by(|a, b| b.not_spam.total_cmp(&a.not_spam).then(a.message_id.cmp(&b.message_id)));
    let mut text = format!(
        "Quorum summary for {subscriber}, {heading}\r\n\r\n\
         Since the last summary: {} deleted (of which {} forged), {} delivered. {} held, listed below.\r\n\r\n\
         How to answer: reply to this message, quoting it.\r\n\
         \x20 Type A in the box to approve the sender and deliver the message.\r\n\
         \x20 Type R in the box to deliver this message only.\r\n\
         \x20 Leave the box as it is (it already holds a space) to delete the message and block its sender.\r\n\
         \x20 Lines you remove from your reply stay held and appear again next time.\r\n\r\n",
        counts.deleted,
        counts.forged,
        counts.delivered,
        lines.len()
    );
    let mut items: Vec<(ShortId, i64)> = Vec::with_capacity(lines.len());
    let mut used = std::collections::HashSet::new();
    for line in &lines {
        let id = unique_id(line.message_id, &mut used);
        let note = line.note.as_deref().map(|n| format!("; {}", shorten(n, NOTE_CHARS))).unwrap_or_default();
        text.push_str(&format!(
            "[ ] {id}  {}  \"{}\"  (not spam: {}, expires in {} d{note})\r\n",
            sender(line.from_name.as_deref(), line.from_address.as_deref()),
            shorten(line.subject.as_deref().unwrap_or("(no subject)"), SUBJECT_CHARS),
            percent(line.not_spam),
            line.expires_in_days.max(0)
        ));
        items.push((id, line.message_id));
    }
    if !forged.is_empty() {
        // No boxes here: these lines are not answers, and a reply quoting them changes nothing.
        text.push_str("\r\nDeleted as forged since the last summary:\r\n");
        for f in forged.iter().take(FORGED_LINES) {
            text.push_str(&format!(
                "    {}  \"{}\"  ({})\r\n",
                sender(f.from_name.as_deref(), f.from_address.as_deref()),
                shorten(f.subject.as_deref().unwrap_or("(no subject)"), SUBJECT_CHARS),
                shorten(&f.reason, NOTE_CHARS)
            ));
        }
        if forged.len() > FORGED_LINES {
            text.push_str(&format!("    ... and {} more\r\n", forged.len() - FORGED_LINES));
        }
    }
    Composed { text, items }
}

/// The message's own short ID, or, in the rare case that two messages of one summary map
/// to the same ID (ids 32^5 apart), the next free one.
fn unique_id(message_id: i64, used: &mut std::collections::HashSet<ShortId>) -> ShortId {
    let mut n = message_id as u64;
    loop {
        let id = ShortId::encode(n);
        if used.insert(id.clone()) {
            return id;
        }
        n = n.wrapping_add(1);
    }
}

/// The sender as shown: the address, with the display name before it only when the name
/// cannot pass for an address (a name like `friend@good.example` would make the line read
/// as a trusted sender, and `A` would approve the real one).
fn sender(name: Option<&str>, address: Option<&str>) -> String {
    let address = shorten(address.unwrap_or("(no sender)"), ADDRESS_CHARS);
    let name = name.filter(|n| !n.contains(['@', '<', '>'])).map(|n| shorten(n, NAME_CHARS));
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} <{address}>"),
        None => address,
    }
}

/// One line, at most `max` characters, with nothing a sender could use to forge part of
/// the summary: no control characters (no line breaks), straight quotes replaced so the line
/// keeps its shape, and square brackets replaced so no text of a sender's can become a box
/// when a mail client re-wraps the line in a reply.
fn shorten(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '"' => '\'',
            '[' => '(',
            ']' => ')',
            c => c,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match clean.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", clean[..cut].trim_end()),
        None => clean,
    }
}

/// Whole percent, but never "0%" or "100%": the chance is never certain either way.
fn percent(p: f64) -> String {
    let pct = (p * 100.0).round();
    if p < 0.005 {
        "<1%".into()
    } else if p > 0.995 {
        ">99%".into()
    } else {
        format!("{pct:.0}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Verdict, ids_in_summary, parse_reply};

    fn line(id: i64, p: f64, name: Option<&str>, subject: &str) -> HeldLine {
        HeldLine {
            message_id: id,
            from_name: name.map(str::to_string),
            from_address: Some(format!("s{id}@example.org")),
            subject: Some(subject.into()),
            not_spam: p,
            expires_in_days: 12,
            note: None,
        }
    }

    fn alice() -> EmailAddress {
        EmailAddress::parse("alice@example.org").unwrap()
    }

    #[test]
    fn ranked_by_chance_with_counts_and_instructions() {
        let c = compose(
            &alice(),
            "Tuesday 24 November 2026, 07:00",
            Counts { deleted: 41, forged: 12, delivered: 3 },
            vec![
                line(1, 0.03, None, "V1agra"),
                line(2, 0.97, Some("Jane Doe"), "Re: Tuesday meeting"),
                line(3, 0.5, None, "?"),
            ],
            &[],
        );
        assert!(c.text.contains("41 deleted (of which 12 forged), 3 delivered. 3 held"));
        assert!(c.text.contains("Type A in the box"));
        let ids: Vec<i64> = c.items.iter().map(|(_, m)| *m).collect();
        assert_eq!(ids, [2, 3, 1]);
        assert!(c.text.contains(
            "[ ] 00002  Jane Doe <s2@example.org>  \"Re: Tuesday meeting\"  (not spam: 97%, expires in 12 d)\r\n"
        ));
        assert!(c.text.contains("(not spam: 3%"));
    }

    #[test]
    fn long_and_odd_text_stays_on_one_line() {
        let c = compose(
            &alice(),
            "now",
            Counts::default(),
            vec![line(1, 0.0001, Some("Jürgen \"the\"\tMüller\r\nBcc: x"), &"très long sujet ".repeat(20))],
            &[],
        );
        let l = c.text.lines().find(|l| l.starts_with("[ ]")).unwrap();
        assert!(l.contains("Jürgen 'the' Müller Bcc: x <s1@example.org>"), "{l}");
        assert!(l.contains("…\"") && l.contains("(not spam: <1%"), "{l}");
        assert!(l.chars().count() < 160, "{l}");
    }

    #[test]
    fn sender_text_cannot_become_a_box_even_when_a_client_rewraps_it() {
        let mut spam = line(5, 0.1, Some("x"), "Win [A] 00005 now [A] 00005 [A] 00005 and more words to wrap");
        spam.from_address = Some("[A]00005@evil.example".into());
        let c = compose(&alice(), "now", Counts::default(), vec![spam], &[]);
        assert!(!c.text.lines().skip_while(|l| !l.starts_with("[ ] 00005")).skip(1).any(|l| l.contains('[')));
        // Re-wrap so that a new quoted line starts at every bracket, as the worst client might.
        let ids = ids_in_summary(&c.text);
        let rewrapped: String = c.text.replace('[', "\r\n> [").lines().map(|l| format!("> {l}\r\n")).collect();
        let reply = format!("From: alice@example.org\r\n\r\n> [ ] 00005\r\n{rewrapped}");
        let verdicts: Vec<Verdict> = parse_reply(reply.as_bytes(), &ids).into_iter().map(|l| l.verdict).collect();
        assert_eq!(verdicts, [Verdict::Action(Action::Delete)]);
    }

    #[test]
    fn names_that_look_like_addresses_are_not_shown() {
        let mut l = line(1, 0.5, Some("friend@good.example"), "hi");
        l.from_address = Some("spammer@evil.example".into());
        let c = compose(&alice(), "now", Counts::default(), vec![l], &[]);
        assert!(c.text.contains("[ ] 00001  spammer@evil.example  \"hi\""), "{}", c.text);
        assert!(!c.text.contains("friend@good.example"));
    }

    #[test]
    fn colliding_short_ids_get_distinct_ones() {
        let far = 1 + 32i64.pow(5);
        let c =
            compose(&alice(), "now", Counts::default(), vec![line(1, 0.5, None, "a"), line(far, 0.4, None, "b")], &[]);
        assert_ne!(c.items[0].0, c.items[1].0);
    }

    #[test]
    fn an_unedited_reply_to_a_composed_summary_deletes_everything_listed() {
        let c =
            compose(&alice(), "now", Counts::default(), vec![line(7, 0.5, None, "a"), line(9, 0.2, None, "b")], &[]);
        let ids = ids_in_summary(&c.text);
        assert_eq!(ids, c.items.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>());
        let quoted: String = c.text.lines().map(|l| format!("> {l}\r\n")).collect();
        let reply = format!("From: alice@example.org\r\n\r\n{quoted}");
        let verdicts: Vec<Verdict> = parse_reply(reply.as_bytes(), &ids).into_iter().map(|l| l.verdict).collect();
        assert_eq!(verdicts, [Verdict::Action(Action::Delete); 2]);
    }

    #[test]
    fn check_notes_and_forged_deletions_are_shown_without_boxes() {
        let mut held = line(4, 0.5, None, "Invoice");
        held.note = Some("DMARC fails (p=none)".into());
        let forged: Vec<ForgedLine> = (0..23)
            .map(|i| ForgedLine {
                from_name: Some("Carmen Shepard".into()),
                from_address: Some(format!("kzwjxg{i}@web.de")),
                subject: Some("of 9 but [A] 00004".into()),
                reason: "forged: PTR of 211.191.62.186 missing, claims web.de".into(),
            })
            .collect();
        let c = compose(&alice(), "now", Counts { deleted: 23, forged: 23, delivered: 0 }, vec![held], &forged);
        assert!(c.text.contains("(not spam: 50%, expires in 12 d; DMARC fails (p=none))\r\n"), "{}", c.text);
        assert!(c.text.contains(
            "\r\nDeleted as forged since the last summary:\r\n    Carmen Shepard <kzwjxg0@web.de>  \"of 9 but (A) 00004\"  \
             (forged: PTR of 211.191.62.186 missing, claims web.de)\r\n"
        ));
        assert!(c.text.contains("    ... and 3 more\r\n"));
        // Only the held message is an answerable line.
        assert_eq!(ids_in_summary(&c.text).len(), 1);
    }
}
