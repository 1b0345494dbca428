//! Replies as real mail clients write them (fixtures in `fixtures/replies/`), against the
//! summary they answer (`fixtures/summary.eml`). Every reply answers: line 1 `A`, line 2
//! `R`, line 3 left empty, line 4 a typo (`?` or `x`), line 5 removed.

use std::path::Path;

use quorum_summary::{Action, ShortId, Verdict, ids_in_summary, parse_reply, reply_text};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
}

fn summary_ids() -> Vec<ShortId> {
    ids_in_summary(&reply_text(&fixture("summary.eml")))
}

const EXPECTED: [Verdict; 5] = [
    Verdict::Action(Action::Approve),
    Verdict::Action(Action::Release),
    Verdict::Action(Action::Delete),
    Verdict::Action(Action::Release),
    Verdict::Missing,
];

fn check(name: &str, expected: &[Verdict]) {
    let ids = summary_ids();
    let parsed = parse_reply(&fixture(&format!("replies/{name}.eml")), &ids);
    let got: Vec<Verdict> = parsed.iter().map(|l| l.verdict).collect();
    assert_eq!(got, expected, "{name}");
    assert_eq!(parsed.iter().map(|l| l.id.clone()).collect::<Vec<_>>(), ids);
}

#[test]
fn the_summary_lists_five_ids() {
    let ids: Vec<String> = summary_ids().iter().map(|i| i.to_string()).collect();
    assert_eq!(ids, ["00001", "00002", "00003", "00004", "00005"]);
}

#[test]
fn thunderbird_quoted_format_flowed() {
    check("thunderbird", &EXPECTED);
}

#[test]
fn outlook_top_posted_html_quoted_printable_no_quoting() {
    check("outlook", &EXPECTED);
}

#[test]
fn gmail_multipart_alternative() {
    check("gmail", &EXPECTED);
}

#[test]
fn apple_mail_base64_utf8() {
    check("apple-mail", &EXPECTED);
}

#[test]
fn mutt_nested_quoting() {
    check("mutt", &EXPECTED);
}

#[test]
fn client_rewrapped_long_lines() {
    check("rewrapped", &EXPECTED);
}

#[test]
fn lower_case_answers() {
    check("lowercase", &EXPECTED);
}

#[test]
fn reply_larger_than_64_kib() {
    assert!(fixture("replies/large.eml").len() > 64 * 1024);
    check("large", &EXPECTED);
}

#[test]
fn only_some_boxes_edited() {
    let d = Verdict::Action(Action::Delete);
    check("partial", &[Verdict::Action(Action::Approve), d, d, d, Verdict::Missing]);
}

#[test]
fn the_same_reply_twice_gives_the_same_answer() {
    let ids = summary_ids();
    let raw = fixture("replies/gmail.eml");
    assert_eq!(parse_reply(&raw, &ids), parse_reply(&raw, &ids));
}

#[test]
fn crlf_and_lf_replies_read_alike() {
    let ids = summary_ids();
    let crlf = fixture("replies/mutt.eml");
    let lf: Vec<u8> = String::from_utf8(crlf.clone()).unwrap().replace("\r\n", "\n").into_bytes();
    assert_eq!(parse_reply(&crlf, &ids), parse_reply(&lf, &ids));
}
