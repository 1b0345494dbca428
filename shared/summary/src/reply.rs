//! Reading a subscriber's reply to a summary.

use std::collections::HashMap;

use mail_parser::MessageParser;

use crate::ShortId;

/// What the subscriber asked for one held message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `A`: approve the sender, deliver this and every other held message from them.
    Approve,
    /// `R`, or any other non-space character (the safest reading of a typo): deliver this
    /// message only.
    Release,
    /// The box left empty: delete, block the sender, count a spam vote.
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", untagged)]
pub enum Verdict {
    Action(Action),
    /// The line is not in the reply: the message stays held and appears again next time.
    #[serde(serialize_with = "missing")]
    Missing,
}

fn missing<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("missing")
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParsedLine {
    pub id: ShortId,
    #[serde(rename = "action")]
    pub verdict: Verdict,
}

/// Most text scanned for boxes in one reply. A summary of thousands of lines quoted back
/// is a few hundred KiB. (Decoding the body comes first and is bounded by the robot
/// mailbox's message size limit, not by this.)
const MAX_TEXT: usize = 16 * 1024 * 1024;

/// The readable text of a reply: its text/plain body or, for HTML-only replies, the HTML
/// converted to text; transfer encodings (quoted-printable, base64) and charsets decoded.
pub fn reply_text(raw: &[u8]) -> String {
    let Some(message) = MessageParser::default().parse(raw) else { return String::new() };
    let mut text = message.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    if text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The IDs a summary lists, in its order.
pub fn ids_in_summary(text: &str) -> Vec<ShortId> {
    let mut seen = std::collections::HashSet::new();
    boxes(text).map(|(_, id)| id).filter(|id| seen.insert(id.clone())).collect()
}

/// One verdict per ID of the summary, in the summary's order. IDs the summary did not list
/// are ignored, whatever the reply says.
///
/// An ID can appear more than once (a client that quotes the summary twice, a subscriber who
/// pasted a line): an edited box wins over an untouched one, and where edits disagree,
/// `Release` wins — it delivers the message without approving anyone, so no reading of an
/// ambiguous reply deletes mail or approves a sender the subscriber may not have meant.
pub fn parse_reply(raw: &[u8], summary_ids: &[ShortId]) -> Vec<ParsedLine> {
    let text = reply_text(raw);
    let mut found: HashMap<&ShortId, Option<Action>> = summary_ids.iter().map(|id| (id, None)).collect();
    for (content, id) in boxes(&text) {
        // IDs the summary did not list have no entry and are skipped.
        if let Some(slot) = found.get_mut(&id) {
            let action = box_action(&content);
            *slot = Some(slot.map_or(action, |prev| combine(prev, action)));
        }
    }
    summary_ids
        .iter()
        .map(|id| ParsedLine { id: id.clone(), verdict: found[id].map_or(Verdict::Missing, Verdict::Action) })
        .collect()
}

fn box_action(content: &str) -> Action {
    match content.trim().chars().next() {
        None => Action::Delete,
        Some('a' | 'A') => Action::Approve,
        Some(_) => Action::Release,
    }
}

fn combine(a: Action, b: Action) -> Action {
    use Action::*;
    match (a, b) {
        (Delete, other) | (other, Delete) => other,
        (Approve, Approve) => Approve,
        _ => Release,
    }
}

/// Every `[x] ID` at the start of a line, after any quoting (`>`, `> >`, `|`) and
/// indentation, with non-breaking spaces (HTML replies) read as spaces.
fn boxes(text: &str) -> impl Iterator<Item = (String, ShortId)> + '_ {
    text.lines().filter_map(|line| {
        let line = line.trim_start_matches(|c: char| c == '>' || c == '|' || c.is_whitespace());
        let rest = line.strip_prefix('[')?;
        let close = rest.char_indices().take(5).find(|(_, c)| *c == ']')?.0;
        let content: String = rest[..close].chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect();
        let after = &rest[close + 1..];
        if !after.starts_with(char::is_whitespace) {
            return None;
        }
        let token = after.split_whitespace().next()?;
        Some((content, ShortId::parse(token)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: u64) -> Vec<ShortId> {
        (1..=n).map(ShortId::encode).collect()
    }

    fn plain(body: &str) -> Vec<u8> {
        format!("From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").into_bytes()
    }

    fn verdicts(raw: &[u8], ids: &[ShortId]) -> Vec<Verdict> {
        parse_reply(raw, ids).into_iter().map(|l| l.verdict).collect()
    }

    #[test]
    fn boxes_and_their_meaning() {
        let body = "> [A] 00001  Jane <j@x.org>\n> [R] 00002 x\n> [ ] 00003 y\n> [?] 00004\n>[]  00005\n";
        assert_eq!(
            verdicts(&plain(body), &ids(6)),
            [
                Verdict::Action(Action::Approve),
                Verdict::Action(Action::Release),
                Verdict::Action(Action::Delete),
                Verdict::Action(Action::Release),
                Verdict::Action(Action::Delete),
                Verdict::Missing,
            ]
        );
    }

    #[test]
    fn edited_wins_over_untouched_and_disagreement_releases() {
        let body = "[ ] 00001\n> [A] 00001\n[A] 00002\n[R] 00002\n[ ] 00003\n[ ] 00003\n";
        assert_eq!(
            verdicts(&plain(body), &ids(3)),
            [Verdict::Action(Action::Approve), Verdict::Action(Action::Release), Verdict::Action(Action::Delete)]
        );
    }

    #[test]
    fn ids_not_in_the_summary_and_text_that_only_looks_like_a_box_are_ignored() {
        let body = "[A] 00009\nsee [A] 00001 in the middle\n[A]00001 glued\n[AAAAAA] 00001\n";
        assert_eq!(verdicts(&plain(body), &ids(1)), [Verdict::Missing]);
    }

    #[test]
    fn json_shape() {
        let line = ParsedLine { id: ShortId::encode(1), verdict: Verdict::Missing };
        assert_eq!(serde_json::to_string(&line).unwrap(), r#"{"id":"00001","action":"missing"}"#);
        let line = ParsedLine { id: ShortId::encode(1), verdict: Verdict::Action(Action::Approve) };
        assert_eq!(serde_json::to_string(&line).unwrap(), r#"{"id":"00001","action":"approve"}"#);
    }

    proptest! {
        #[test]
        fn never_panics_and_never_invents_ids(raw in prop::collection::vec(any::<u8>(), 0..2000), text in ".{0,400}") {
            let known = ids(3);
            for input in [raw, plain(&text)] {
                let parsed = parse_reply(&input, &known);
                prop_assert_eq!(parsed.len(), known.len());
                for (line, id) in parsed.iter().zip(&known) {
                    prop_assert_eq!(&line.id, id);
                }
            }
        }
    }
}
