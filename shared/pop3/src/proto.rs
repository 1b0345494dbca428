//! The POP3 wire format, without I/O.
//!
//! Two kinds of frames come from a POP3 server: a status line (`+OK ...`, `-ERR ...`, or a
//! SASL continuation `+ ...`) ended by CRLF, and the multi-line block that follows a positive
//! status for RETR, UIDL, LIST, CAPA: lines ended by CRLF, each line starting with `.` stuffed
//! with one more `.`, the block ended by a line holding a single `.`.
//!
//! As in mini-redis, the session first checks that a whole frame is in its buffer and then
//! parses it; for the multi-line block, which can be many megabytes, [`MultilineDecoder`]
//! does that incrementally over whatever arrived, so each byte is looked at once.

use base64::{Engine, engine::general_purpose::STANDARD};
use md5::{Digest, Md5};

/// Longest status line accepted. RFC 2449 allows 512 octets; real servers stay well below,
/// and a limit stops a broken server from filling memory with one endless line.
pub const MAX_STATUS_LINE: usize = 8 * 1024;

/// RFC 2449 / RFC 3206 response codes that change what the client should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseCode {
    InUse,
    LoginDelay,
    SysTemp,
    SysPerm,
    Auth,
    Other(String),
}

impl ResponseCode {
    fn parse(code: &str) -> Self {
        match code.to_ascii_uppercase().as_str() {
            "IN-USE" => Self::InUse,
            "LOGIN-DELAY" => Self::LoginDelay,
            "SYS/TEMP" => Self::SysTemp,
            "SYS/PERM" => Self::SysPerm,
            "AUTH" => Self::Auth,
            other => Self::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusKind {
    Ok,
    Err,
    /// `+ <base64>`: the server waits for the next SASL step.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub kind: StatusKind,
    pub code: Option<ResponseCode>,
    /// The human-readable rest of the line (lossily decoded: servers send 8-bit text).
    pub text: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StatusParse {
    /// No complete line yet.
    Incomplete,
    /// A line of `len` bytes (with its line ending) was parsed.
    Line(StatusLine, usize),
}

/// Parses a status line at the start of `buf` if one has fully arrived.
pub fn parse_status_line(buf: &[u8]) -> Result<StatusParse, String> {
    let Some(lf) = memchr::memchr(b'\n', buf) else {
        if buf.len() > MAX_STATUS_LINE {
            return Err(format!("status line longer than {MAX_STATUS_LINE} bytes"));
        }
        return Ok(StatusParse::Incomplete);
    };
    if lf > MAX_STATUS_LINE {
        return Err(format!("status line longer than {MAX_STATUS_LINE} bytes"));
    }
    let line = &buf[..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    let (kind, rest) = if let Some(rest) = text.strip_prefix("+OK") {
        (StatusKind::Ok, rest)
    } else if let Some(rest) = text.strip_prefix("-ERR") {
        (StatusKind::Err, rest)
    } else if text == "+" || text.starts_with("+ ") {
        (StatusKind::Continue, &text[1..])
    } else {
        return Err(format!("unexpected status line {:?}", truncate(&text, 80)));
    };
    // `+OKAY` is not `+OK`: the keyword must end at a space or the end of the line.
    if !(matches!(kind, StatusKind::Continue) || rest.is_empty() || rest.starts_with(' ')) {
        return Err(format!("unexpected status line {:?}", truncate(&text, 80)));
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (code, text) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((code, after)) if !matches!(kind, StatusKind::Continue) => {
            (Some(ResponseCode::parse(code)), after.trim_start().to_string())
        }
        _ => (None, rest.to_string()),
    };
    Ok(StatusParse::Line(StatusLine { kind, code, text }, lf + 1))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line.
    LineStart,
    /// A line started with `.`, not yet known whether it is the terminator.
    Dot,
    /// A line started with `.\r`.
    DotCr,
    /// Inside a line; `prev_cr` says whether the last byte seen was `\r`.
    InLine {
        prev_cr: bool,
    },
    Done,
}

/// Incremental decoder of one multi-line block: undoes dot-stuffing and stops after the
/// terminating `.CRLF`, leaving anything after it (a pipelined next response) unconsumed.
///
/// Only CRLF ends a line (RFC 1939 section 3): a bare LF inside a message is message content,
/// so a `.` after it is not stuffing. Content beyond `limit` bytes is counted but not kept,
/// so an oversized message is still read to its end and the session stays usable.
#[derive(Debug)]
pub struct MultilineDecoder {
    state: State,
    out: Vec<u8>,
    size: u64,
    limit: u64,
}

impl MultilineDecoder {
    pub fn new(limit: u64) -> Self {
        Self::with_capacity(limit, 0)
    }

    /// `expected` is a size hint (from LIST) used to allocate once.
    pub fn with_capacity(limit: u64, expected: usize) -> Self {
        // The hint comes from the server: trust it only up to a modest allocation.
        let cap = expected.min(limit as usize).min(16 * 1024 * 1024);
        Self { state: State::LineStart, out: Vec::with_capacity(cap), size: 0, limit }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds bytes; returns how many were consumed. Once the terminator has been consumed,
    /// [`Self::is_done`] is true and no further byte is consumed.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => return i,
                State::LineStart => {
                    if input[i] == b'.' {
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        self.state = State::InLine { prev_cr: false };
                    }
                }
                State::Dot => {
                    if input[i] == b'\r' {
                        self.state = State::DotCr;
                        i += 1;
                    } else {
                        // A stuffed dot: drop it and read the line as usual.
                        self.state = State::InLine { prev_cr: false };
                    }
                }
                State::DotCr => {
                    if input[i] == b'\n' {
                        self.state = State::Done;
                        return i + 1;
                    }
                    // `.\r` followed by something else: the dot was stuffing, the CR is data.
                    self.emit(b"\r");
                    self.state = State::InLine { prev_cr: true };
                }
                State::InLine { prev_cr } => {
                    let rest = &input[i..];
                    match memchr::memchr(b'\n', rest) {
                        Some(lf) => {
                            let crlf = if lf == 0 { prev_cr } else { rest[lf - 1] == b'\r' };
                            self.emit(&rest[..=lf]);
                            i += lf + 1;
                            self.state = if crlf { State::LineStart } else { State::InLine { prev_cr: false } };
                        }
                        None => {
                            self.emit(rest);
                            i = input.len();
                            self.state = State::InLine { prev_cr: rest.last() == Some(&b'\r') };
                        }
                    }
                }
            }
        }
        i
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size <= self.limit {
            self.out.extend_from_slice(bytes);
        }
    }

    /// The unstuffed content, or the full size when it was over the limit.
    pub fn finish(self) -> Result<Vec<u8>, u64> {
        debug_assert!(self.is_done(), "finish before the terminator");
        if self.size > self.limit { Err(self.size) } else { Ok(self.out) }
    }
}

/// Dot-stuffs `content` the way a server sends it, terminator included. Used by tests and
/// benchmarks to play the server's part; content that does not end in CRLF gets one, as
/// RFC 1939 requires.
pub fn stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in content {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = prev == b'\r' && b == b'\n';
        prev = b;
    }
    if !content.is_empty() && !content.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// What the server says it can do (RFC 2449 CAPA).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    lines: Vec<String>,
}

impl Capabilities {
    pub fn parse(block: &[u8]) -> Self {
        let lines = String::from_utf8_lossy(block)
            .split("\r\n")
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Self { lines }
    }

    /// Whether a capability keyword (first word of a line) is advertised.
    pub fn has(&self, keyword: &str) -> bool {
        self.lines.iter().any(|l| l.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case(keyword)))
    }

    /// Whether `SASL` lists `mechanism`.
    pub fn sasl(&self, mechanism: &str) -> bool {
        self.lines.iter().any(|l| {
            let mut words = l.split_whitespace();
            words.next().is_some_and(|w| w.eq_ignore_ascii_case("SASL"))
                && words.any(|m| m.eq_ignore_ascii_case(mechanism))
        })
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

/// Parses the lines of a UIDL or LIST listing: `<msg number> <value>`.
pub fn parse_listing(block: &[u8]) -> Result<Vec<(u32, String)>, String> {
    String::from_utf8_lossy(block)
        .split("\r\n")
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            let n = words.next().and_then(|w| w.parse::<u32>().ok());
            match (n, words.next()) {
                (Some(n), Some(v)) => Ok((n, v.to_string())),
                _ => Err(format!("malformed listing line {:?}", truncate(line, 80))),
            }
        })
        .collect()
}

/// A command line with its CRLF. Arguments that could smuggle a second command (CR, LF,
/// NUL) are refused by the caller before they get here; see [`check_argument`].
pub fn command(verb: &str, args: &[&str]) -> Vec<u8> {
    debug_assert!(args.iter().all(|a| check_argument(a)), "unchecked POP3 argument");
    let mut line = verb.as_bytes().to_vec();
    for a in args {
        line.push(b' ');
        line.extend_from_slice(a.as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    line
}

pub fn check_argument(arg: &str) -> bool {
    !arg.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// The `<...>` timestamp of an APOP-capable greeting (RFC 1939 section 7).
pub fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let end = start + greeting[start..].find('>')?;
    let ts = &greeting[start..=end];
    ts.contains('@').then_some(ts)
}

/// `MD5(timestamp + password)` in lower-case hex.
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    let digest = Md5::new().chain_update(timestamp.as_bytes()).chain_update(password.as_bytes()).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SASL PLAIN initial response (RFC 4616): `base64(NUL user NUL password)`.
pub fn sasl_plain(user: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{user}\0{password}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(wire: &[u8], limit: u64) -> (Result<Vec<u8>, u64>, usize) {
        let mut d = MultilineDecoder::new(limit);
        let used = d.feed(wire);
        assert!(d.is_done(), "no terminator in {wire:?}");
        (d.finish(), used)
    }

    fn line(buf: &[u8]) -> StatusLine {
        match parse_status_line(buf).unwrap() {
            StatusParse::Line(l, _) => l,
            StatusParse::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"+OK Dovec").unwrap(), StatusParse::Incomplete);
        let l = line(b"+OK Dovecot ready.\r\nmore");
        assert_eq!((l.kind, l.code, l.text.as_str()), (StatusKind::Ok, None, "Dovecot ready."));
        let l = line(b"-ERR [IN-USE] Mailbox is locked\r\n");
        assert_eq!((l.kind, l.code), (StatusKind::Err, Some(ResponseCode::InUse)));
        assert_eq!(l.text, "Mailbox is locked");
        assert_eq!(line(b"+OK\r\n").text, "");
        assert_eq!(line(b"+ \r\n").kind, StatusKind::Continue);
        assert_eq!(line(b"-ERR\n").kind, StatusKind::Err);
        assert!(parse_status_line(b"* OK IMAP4rev1\r\n").is_err());
        assert!(parse_status_line(b"+OKAY\r\n").is_err());
        assert!(parse_status_line(&vec![b'+'; MAX_STATUS_LINE + 1]).is_err());
        assert_eq!(line(b"+OK \xff\xfe bytes\r\n").text, "\u{fffd}\u{fffd} bytes");
    }

    #[test]
    fn unstuffs_and_keeps_final_crlf() {
        let (out, used) = decode_all(b"..leading dot\r\nplain\r\n.\r\n+OK next", 1 << 20);
        assert_eq!(out.unwrap(), b".leading dot\r\nplain\r\n");
        assert_eq!(used, b"..leading dot\r\nplain\r\n.\r\n".len());
    }

    #[test]
    fn empty_message() {
        assert_eq!(decode_all(b".\r\n", 10).0.unwrap(), b"");
    }

    #[test]
    fn bare_lf_does_not_start_a_line() {
        // The `.` after a bare LF is content: the server did not stuff it.
        let (out, _) = decode_all(b"a\n.b\r\n.\r\n", 100);
        assert_eq!(out.unwrap(), b"a\n.b\r\n");
        let (out, _) = decode_all(b"a\n.\r\n.\r\n", 100);
        assert_eq!(out.unwrap(), b"a\n.\r\n");
    }

    #[test]
    fn dot_cr_without_lf_is_content() {
        let (out, _) = decode_all(b"..\rx\r\n.\r\n", 100);
        assert_eq!(out.unwrap(), b".\rx\r\n");
    }

    #[test]
    fn over_limit_reports_size_and_consumes_block() {
        let (out, used) = decode_all(b"0123456789\r\n.\r\nNEXT", 5);
        assert_eq!(out, Err(12));
        assert_eq!(used, 15);
    }

    #[test]
    fn byte_at_a_time() {
        let wire = b"..a\r\n.\rb\r\n\r\n.\r\n";
        let mut d = MultilineDecoder::new(100);
        for b in wire {
            d.feed(std::slice::from_ref(b));
        }
        assert_eq!(d.finish().unwrap(), b".a\r\n\rb\r\n\r\n");
    }

    #[test]
    fn capabilities() {
        let c = Capabilities::parse(
            b"CAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n",
        );
        assert!(c.has("uidl") && c.has("PIPELINING") && c.has("STLS"));
        assert!(!c.has("SASL PLAIN"));
        assert!(c.sasl("plain") && !c.sasl("CRAM-MD5"));
    }

    #[test]
    fn listings() {
        assert_eq!(parse_listing(b"1 000001a2\r\n2 zz\r\n").unwrap(), vec![(1, "000001a2".into()), (2, "zz".into())]);
        assert!(parse_listing(b"x y\r\n").is_err());
        assert!(parse_listing(b"1\r\n").is_err());
    }

    #[test]
    fn apop_rfc1939_example() {
        let ts = apop_timestamp("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>").unwrap();
        assert_eq!(ts, "<1896.697170952@dbc.mtview.ca.us>");
        assert_eq!(apop_digest(ts, "tanstaaf"), "c4c9334bac560ecc979e58001b3e22fb");
        assert_eq!(apop_timestamp("Dovecot ready."), None);
    }

    #[test]
    fn sasl_plain_rfc4616() {
        assert_eq!(sasl_plain("tim", "tanstaaftanstaaf"), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    }

    #[test]
    fn injection_is_detected() {
        assert!(check_argument("pass word"));
        assert!(!check_argument("x\r\nDELE 1"));
        assert!(!check_argument("a\0b"));
    }

    /// Message-like bytes: lines with leading dots, CR and LF in all combinations, 8-bit.
    fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b".".to_vec()),
                Just(b"..".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b"\n".to_vec()),
                Just(b".\r\n".to_vec()),
                prop::collection::vec(any::<u8>(), 0..20),
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn any_message_survives_stuffing_framing_unstuffing(
            msg in message_bytes(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            trailer in prop::collection::vec(any::<u8>(), 0..10),
        ) {
            let mut wire = stuff(&msg);
            let block_len = wire.len();
            wire.extend_from_slice(&trailer);
            // Deliver the bytes in arbitrary pieces, as TCP may.
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            points.push(0);
            points.push(wire.len());
            points.sort_unstable();
            let mut d = MultilineDecoder::new(u64::MAX);
            let mut consumed = 0;
            for pair in points.windows(2) {
                if d.is_done() { break; }
                let start = consumed.max(pair[0]);
                if start < pair[1] {
                    consumed = start + d.feed(&wire[start..pair[1]]);
                }
            }
            prop_assert!(d.is_done());
            prop_assert_eq!(consumed, block_len);
            let mut expected = msg.clone();
            if !msg.is_empty() && !msg.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(d.finish().unwrap(), expected);
        }
    }
}
