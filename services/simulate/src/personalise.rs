//! What a spam campaign changes per recipient (the statistics issue's realistic campaigns):
//! a greeting with the recipient's name, a reference token and a code, tracking query
//! strings on its links, reflowed spacing and line breaks, and, with `subdomains`, a random
//! sub-domain on every link's host (`http://www.pills.example/` →
//! `http://k3x9q.pills.example/`), as botnets send them. Copies that were all alike would
//! let any exact hash find a campaign; these make the fingerprints and the keys earn it.

/// A personalised copy of `raw` with randomness from `next`, or `None` when the message is
/// one a campaign could not have edited as text this way before encoding: no body, not
/// UTF-8, base64 or quoted-printable, or multipart (reflowing the body would break its
/// parts' headers). Such a message is sent as it is.
pub fn personalise(raw: &[u8], subdomains: bool, mut next: impl FnMut() -> u64) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(raw).ok()?;
    let lower = text.to_ascii_lowercase();
    if lower.contains("base64") || lower.contains("quoted-printable") {
        return None;
    }
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let (head, body) = text.split_once(&format!("{nl}{nl}")).filter(|(_, body)| !body.trim().is_empty())?;
    if head.to_ascii_lowercase().contains("multipart/") {
        return None;
    }
    let names = ["Mary", "Ahmed", "Li Wei", "Jürgen", "Olga"];
    let mut out = String::with_capacity(body.len() + 128);
    for (i, word) in body.split(' ').enumerate() {
        let mut w = word.to_string();
        if subdomains {
            w = with_random_subdomains(&w, &mut next);
        }
        // A tracking query string: from the link's `?` to the end of the URL (a quote,
        // bracket or line break after it stays).
        let link = w.to_ascii_lowercase().find("http");
        if let Some(q) = link.and_then(|h| w[h..].find('?').map(|q| h + q)) {
            let end = w[q..].find(['"', '\'', '<', '>', '\n', '\r', '\t']).map_or(w.len(), |e| q + e);
            let tracking = format!("id={}&r={}", next() % 100_000, token(&mut next));
            w.replace_range(q + 1..end, &tracking);
        }
        out.push_str(&w);
        // Spacing and line breaks reflowed now and then.
        out.push_str(match next() % 23 {
            0 => nl,
            1 => "  ",
            _ => " ",
        });
        if i == 3 {
            out.push_str(&format!("Ref {} ", token(&mut next)));
        }
    }
    let greeting = format!("Dear {},{nl}", names[(next() % names.len() as u64) as usize]);
    // In an HTML body the greeting goes inside <body>, where a reader sees it.
    let at = out.to_ascii_lowercase().find("<body").and_then(|b| out[b..].find('>').map(|e| b + e + 1)).unwrap_or(0);
    out.insert_str(at, &greeting);
    Some(format!("{head}{nl}{nl}{out}{nl}Your code: {}{nl}", token(&mut next)).into_bytes())
}

/// A random-looking reference token.
fn token(next: &mut impl FnMut() -> u64) -> String {
    let n = next();
    format!("{:x}{}", n % 0xffff_ffff, n % 97)
}

/// Every `http://` or `https://` link in `word` (any case) with a random label before its
/// host; a host that is an IP address has no sub-domain and keeps it.
fn with_random_subdomains(word: &str, next: &mut impl FnMut() -> u64) -> String {
    let mut out = String::with_capacity(word.len() + 16);
    let mut rest = word;
    // ASCII lower-casing keeps every byte offset, so offsets found in it cut `rest` at the
    // same (ASCII, so character) boundaries.
    while let Some(at) = rest.to_ascii_lowercase().find("http") {
        let after = &rest.as_bytes()[at..];
        let scheme = ["http://", "https://"]
            .into_iter()
            .find(|s| after.get(..s.len()).is_some_and(|b| b.eq_ignore_ascii_case(s.as_bytes())));
        let Some(scheme) = scheme else {
            out.push_str(&rest[..at + 4]);
            rest = &rest[at + 4..];
            continue;
        };
        out.push_str(&rest[..at + scheme.len()]);
        rest = &rest[at + scheme.len()..];
        // A named host gets a label of its own; `www.` is replaced, as it is only a label.
        let host_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).unwrap_or(rest.len());
        let host = &rest[..host_end];
        if host.contains('.') && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let www = host.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("www.")) && host[4..].contains('.');
            let host = if www { &host[4..] } else { host };
            let label: String = token(next).chars().take(8).collect();
            out.push_str(&format!("{label}.{host}"));
            rest = &rest[host_end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use quorum_fingerprint::Fingerprint;

    use super::*;

    const SPAM: &str = "From: deals@pills.example\nSubject: Save now\n\nDear John, our pharmacy has the \
lowest prices on every medication you need, shipped discreetly to your door within days. Visit \
http://www.pills.example/order?id=88812 today or <a href=\"https://shop.pills.example/x?u=1\">click</a> \
and save up to eighty percent on your next order with free shipping worldwide and no prescription.\n";

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0x9e37_79b9_7f4a_7c15u64;
        move || {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            n
        }
    }

    #[test]
    fn copies_differ_but_stay_one_campaign_with_the_same_links() {
        let original = Fingerprint::of(SPAM.as_bytes());
        let mut next = counter();
        let a = personalise(SPAM.as_bytes(), true, &mut next).unwrap();
        let b = personalise(SPAM.as_bytes(), true, &mut next).unwrap();
        assert_ne!(a, b);
        let text = String::from_utf8(a.clone()).unwrap();
        assert!(text.contains("Dear ") && text.contains("Your code: ") && !text.contains("id=88812"), "{text}");
        // Every link's host got a label of its own; its registrable domain is the same.
        assert!(!text.contains("www.pills.example") && !text.contains("//shop.pills.example"), "{text}");
        let copy = Fingerprint::of(&a);
        assert_eq!(copy.url_domains, original.url_domains);
        assert!(copy.same_campaign(&original), "{}", copy.similarity(&original));
        // Without sub-domains the hosts stay.
        let plain = String::from_utf8(personalise(SPAM.as_bytes(), false, &mut next).unwrap()).unwrap();
        assert!(plain.contains("http://www.pills.example/order?") && plain.contains("https://shop.pills.example/x?"));
    }

    #[test]
    fn encoded_or_binary_bodies_are_sent_as_they_are() {
        let encoded = SPAM.replace("Subject:", "Content-Transfer-Encoding: base64\nSubject:");
        assert_eq!(personalise(encoded.as_bytes(), true, counter()), None);
        assert_eq!(personalise(b"Subject: x\n\n\xff\xfe not text", true, counter()), None);
        assert_eq!(personalise(b"Subject: no body\n\n \n", true, counter()), None);
        assert_eq!(personalise(b"", true, counter()), None);
        let unchanged = "see httpd.conf and http://localhost/ or http://61.129.81.80/x";
        assert_eq!(with_random_subdomains(unchanged, &mut counter()), unchanged);
        // A link in capitals gets its label; multi-byte text around "http" is cut nowhere.
        let capital = with_random_subdomains("HTTP://WWW.PILLS.EXAMPLE/", &mut counter());
        assert!(capital.starts_with("HTTP://") && capital.ends_with(".PILLS.EXAMPLE/") && !capital.contains("WWW"));
        for odd in ["httpéé", "https：//shop.example", "ｈttp://x.example", "http"] {
            assert_eq!(with_random_subdomains(odd, &mut counter()), odd);
        }
        let odd = "Subject: x\n\nhttps：//shop.example/?a=1 httpéé http://pills.example/?x=1 fin\n";
        let copy = String::from_utf8(personalise(odd.as_bytes(), true, counter()).unwrap()).unwrap();
        assert!(copy.contains("https：//shop.example/?id=") && copy.contains("httpéé"), "{copy}");
        assert!(!copy.contains("//pills.example") && copy.contains(".pills.example/?id="), "{copy}");
        // Multipart bodies are sent as they are; CRLF mail keeps its line ends.
        let multipart =
            "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b--\n";
        assert_eq!(personalise(multipart.as_bytes(), true, counter()), None);
        let crlf = SPAM.replace('\n', "\r\n");
        let copy = String::from_utf8(personalise(crlf.as_bytes(), true, counter()).unwrap()).unwrap();
        assert!(!copy.replace("\r\n", "").contains('\n') && copy.contains("\r\nYour code: "), "{copy}");
    }
}
