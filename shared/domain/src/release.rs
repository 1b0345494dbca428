//! The message Quorum delivers back to a subscriber (SPEC 2.5): two header lines prepended
//! to the original bytes, which are not touched — MIME must survive byte for byte.

use crate::{EmailAddress, Keys, ReleaseMarker, Timestamp};

/// `X-Quorum-Release` (so the worker leaves the message in the Inbox) and a `Received`
/// trace line, then the original message exactly as it was quarantined.
pub fn release_message(
    original: &[u8],
    marker: &ReleaseMarker,
    keys: &Keys,
    recipient: &EmailAddress,
    at: Timestamp,
) -> Vec<u8> {
    let headers = format!(
        "{}Received: by quorum (released from quarantine) for <{recipient}>; {}\r\n",
        marker.header_line(keys),
        rfc5322_date(at)
    );
    let mut out = Vec::with_capacity(headers.len() + original.len());
    out.extend_from_slice(headers.as_bytes());
    out.extend_from_slice(original);
    out
}

/// The original as it reads after re-injection: MTAs drop `Return-Path` fields from mail
/// they accept (Postfix's default `message_drop_headers`), and the final delivery writes a
/// new one on top. A released message is recognised by ending with this.
pub fn as_reinjected(original: &[u8]) -> Vec<u8> {
    let header_end = memchr::memmem::find(original, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| memchr::memmem::find(original, b"\n\n").map(|i| i + 1))
        .unwrap_or(original.len());
    let (head, body) = original.split_at(header_end);
    let mut out = Vec::with_capacity(original.len());
    let mut dropping = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            dropping = line.len() >= 12 && line[..12].eq_ignore_ascii_case(b"return-path:");
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// `Tue, 24 Nov 2026 07:00:00 +0000` (RFC 5322 section 3.3), in UTC.
pub fn rfc5322_date(at: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = at.0.rem_euclid(86_400);
    let days = at.0.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InspectedMessage, inspect::Disposition};
    use std::collections::HashSet;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(Timestamp(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(Timestamp(1_795_503_600)), "Tue, 24 Nov 2026 07:00:00 +0000");
        assert_eq!(rfc5322_date(Timestamp(951_782_400)), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn original_bytes_follow_unchanged_and_the_worker_recognises_the_result() {
        let keys = Keys::from_master(&[5u8; 32]).unwrap();
        let original =
            b"From: x@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\xff\r\n--b--\r\n";
        let marker = ReleaseMarker::release(3, 9, Timestamp(1_795_503_600));
        let rcpt = EmailAddress::parse("alice@example.org").unwrap();
        let out = release_message(original, &marker, &keys, &rcpt, Timestamp(1_795_503_600));
        assert!(out.ends_with(original));
        let head = std::str::from_utf8(&out[..out.len() - original.len()]).unwrap();
        assert!(
            head.starts_with("X-Quorum-Release: 3.9.") && head.contains("for <alice@example.org>; Tue, 24 Nov 2026")
        );
        let seen = InspectedMessage::parse(&out);
        assert_eq!(seen.disposition(3, &keys, &HashSet::new()), Disposition::Released(marker));
    }

    #[test]
    fn return_path_fields_are_what_reinjection_drops() {
        let original = b"Return-Path: <a@b.example>\r\nReceived: x\r\nReturn-Path:\r\n <c@d.example>\r\nSubject: s\r\n\r\nReturn-Path: body stays\r\n";
        assert_eq!(as_reinjected(original), b"Received: x\r\nSubject: s\r\n\r\nReturn-Path: body stays\r\n".to_vec());
        assert_eq!(as_reinjected(b"Subject: none\n\nbody"), b"Subject: none\n\nbody".to_vec());
        assert_eq!(as_reinjected(b""), b"".to_vec());
    }
}
