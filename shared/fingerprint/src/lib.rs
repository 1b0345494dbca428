//! Campaign fingerprints: what the copies of one spam campaign share although each copy is
//! personalised (random tokens, the recipient's name, tracking query strings, reflowed
//! whitespace), computed once per message, without I/O.
//!
//! - **Content profile** (seed 001): body length bucket, content types, part count and
//!   size buckets, number of images.
//! - **Text signature**: the visible text (HTML converted to text) is normalised — case
//!   and whitespace folded, URLs reduced to their registrable domain, numbers and
//!   random-looking tokens masked — cut into overlapping 4-word shingles, and summarised by
//!   a min-hash signature of [`HASHES`] values. The share of equal positions in two
//!   signatures estimates the Jaccard similarity of their shingle sets (Broder 1997).
//! - **Link targets**: the registrable domains of the URLs in the text and of the links and
//!   images in the HTML markup (where "click here" hides them), and the Reply-To address.
//!
//! **Matching.** Two messages are copies of one campaign when their estimated similarity is
//! at least [`SAME_CAMPAIGN`] (0.6). For lookup the signature is cut into [`BANDS`] bands of
//! [`ROWS`] values: two messages share a band key with probability `1 − (1 − s^r)^b` for
//! true similarity `s` (0.99 at s = 0.6 with b = 16, r = 4; 0.0006 at s = 0.1), so a
//! campaign copy is found through an index of band keys and checked against the signature.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// Values in a min-hash signature.
pub const HASHES: usize = 64;
/// Bands of the signature used as lookup keys, and rows per band.
pub const BANDS: usize = 16;
pub const ROWS: usize = HASHES / BANDS;
/// Estimated similarity from which two messages count as one campaign.
pub const SAME_CAMPAIGN: f64 = 0.6;
/// Words of visible text a message needs to join a campaign: in shorter text a few
/// per-recipient changes move the signature, and short everyday notes ("thanks, see you
/// at 5") resemble each other without being one campaign.
pub const MIN_WORDS: u32 = 20;
/// Words per shingle.
const SHINGLE: usize = 4;

/// The seed-001 content profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Profile {
    /// ⌊log₂(body bytes)⌋.
    pub length_bucket: u8,
    /// `type/subtype` of every part, in order.
    pub content_types: Vec<String>,
    /// ⌊log₂(size)⌋ of every part.
    pub part_sizes: Vec<u8>,
    pub images: u16,
}

/// Everything fingerprinted about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub profile: Profile,
    /// Words of visible text: a signature over few words is easily moved by a campaign's
    /// per-recipient changes, so callers can demand a minimum before trusting a match.
    pub words: u32,
    /// Min-hash signature of the normalised text's shingles; empty when the text has fewer
    /// words than a shingle.
    pub signature: Vec<u64>,
    /// Registrable domains of the links, sorted, without duplicates; for mailing-list mail,
    /// without the list's own domains (its `List-*` headers and its footer): those are on
    /// every message the list relays, spam included, not the sender's links.
    pub url_domains: Vec<String>,
    /// The Reply-To address; for mailing-list mail, not when it is at one of the list's
    /// own domains: a list that sets Reply-To to itself does so on every message it
    /// relays, spam included.
    pub reply_to: Option<String>,
    /// A message too short for a campaign: the exact hash of its normalised text, when
    /// it has at least [`SHORT_TEXT_WORDS`] words and links somewhere (the link's domain is
    /// part of the text). Short mail without a link (a one-line note, "thanks, see you at
    /// 5") is what ham is made of and gets no key; the link's domain keeps a service's own
    /// short notices (password resets, sign-in codes, with their numbers masked) apart
    /// from anyone else's, which is where DCC's counts of short mail went wrong.
    pub short_text: Option<u64>,
    /// Exact hashes of the attachments and images ([`ATTACHMENT_BYTES`] or more).
    pub attachments: Vec<u64>,
    /// The exact hash of what every copy of the message keeps: its normalised text
    /// (numbers and random tokens masked), the registrable domains it links to and its
    /// attachments; none for a message with none of them or one the parser cannot read. Not a key (short notes like "thanks, see you at 5" are the same
    /// from many senders): it names what counts once under a URL or network for mail too
    /// short for a campaign, where its sender would count every copy a botnet sends from a
    /// new address as a campaign of its own.
    #[serde(default)]
    pub content: Option<u64>,
    /// Mailing-list mail: the list's identity (its `List-Id` between the angle brackets,
    /// else its `List-Post`, else the address or page its footer names), lower-cased. The
    /// list's server hands it over, and a footer the list adds is on every message it
    /// relays.
    pub list: Option<String>,
}

/// Words a short text needs for its hash to be a key.
pub const SHORT_TEXT_WORDS: usize = 5;
/// Smallest attachment that gets a key: below this, icons and signatures' logos.
pub const ATTACHMENT_BYTES: usize = 512;

impl Fingerprint {
    /// Fingerprints a raw message; malformed MIME gives what could be read.
    pub fn of(raw: &[u8]) -> Fingerprint {
        let Some(message) = MessageParser::default().parse(raw) else {
            return Fingerprint {
                profile: profile_of_bytes(raw),
                words: 0,
                signature: Vec::new(),
                url_domains: Vec::new(),
                reply_to: None,
                short_text: None,
                attachments: Vec::new(),
                content: None,
                list: None,
            };
        };
        // Parts the parser could not decode, recovered; they replace what it made of them.
        let recovered: Vec<(u32, bool, String)> = (0u32..)
            .zip(&message.parts)
            .filter_map(|(i, p)| recovered_text(p).map(|(is_html, text)| (i, is_html, text)))
            .collect();
        let decoded = |part: &u32| !recovered.iter().any(|(i, _, _)| i == part);
        let mut text: String = (0..message.text_body.len().max(1))
            .filter(|&i| message.text_body.get(i).is_none_or(decoded))
            .filter_map(|i| message.body_text(i))
            .collect::<Vec<_>>()
            .join("\n");
        let mut html: Vec<String> = message
            .html_body
            .iter()
            .filter(|&i| decoded(i))
            .filter_map(|&i| message.parts.get(i as usize))
            .filter(|p| p.is_content_type("text", "html"))
            .filter_map(|p| p.text_contents().map(str::to_string))
            .collect();
        for (_, is_html, recovered) in recovered {
            text.push('\n');
            if is_html {
                text.push_str(&mail_parser::decoders::html::html_to_text(&recovered));
                html.push(recovered);
            } else {
                text.push_str(&recovered);
            }
        }
        let (mut tokens, mut url_domains) = normalise(&text);
        // HTML mail hides its links behind "click here": their targets are in the markup.
        let hidden: Vec<String> = html_link_domains(html.iter().map(String::as_str))
            .into_iter()
            .filter(|d| !url_domains.contains(d))
            .collect();
        let words = tokens.len();
        // The short text's hash names where it links, as a visible URL does.
        tokens.extend(hidden.iter().map(|d| format!("<url:{d}>")));
        url_domains.extend(hidden);
        url_domains.sort();
        let footer = list_footer(raw);
        let list = list_id(&message).or_else(|| footer.as_ref().map(|(id, _)| id.clone()));
        let mut stamped = if list.is_some() { list_domains(&message) } else { Vec::new() };
        stamped.extend(footer.into_iter().flat_map(|(_, domains)| domains));
        url_domains.retain(|d| !stamped.contains(d));
        let reply_to = message
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| {
                a.rsplit_once('@').and_then(|(_, host)| registrable(host)).is_none_or(|d| !stamped.contains(&d))
            });
        let mut content_types = Vec::new();
        let mut part_sizes = Vec::new();
        let mut images = 0u16;
        let mut attachments = Vec::new();
        for (i, part) in message.parts.iter().enumerate() {
            if matches!(part.body, PartType::Multipart(_)) {
                continue;
            }
            let text = message.text_body.contains(&(i as u32)) || message.html_body.contains(&(i as u32));
            if !text && matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_)) {
                let contents = part.contents();
                if contents.len() >= ATTACHMENT_BYTES {
                    attachments.push(stable_hash([contents]));
                }
            }
            let ct = part
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
                .unwrap_or_else(|| "text/plain".into());
            images += u16::from(ct.starts_with("image/"));
            content_types.push(ct);
            part_sizes.push(log2_bucket(part.contents().len()));
        }
        attachments.sort_unstable();
        attachments.dedup();
        let body = raw.len().saturating_sub(message.root_part().raw_body_offset() as usize);
        let short = words >= SHORT_TEXT_WORDS && words < MIN_WORDS as usize && !url_domains.is_empty();
        Fingerprint {
            profile: Profile { length_bucket: log2_bucket(body), content_types, part_sizes, images },
            words: words.min(u32::MAX as usize) as u32,
            signature: signature(&tokens[..words]),
            short_text: short.then(|| stable_hash(tokens.iter().map(String::as_bytes))),
            content: (!tokens.is_empty() || !attachments.is_empty()).then(|| {
                let attached: Vec<[u8; 8]> = attachments.iter().map(|a| a.to_le_bytes()).collect();
                stable_hash(tokens.iter().map(String::as_bytes).chain(attached.iter().map(|a| a.as_slice())))
            }),
            url_domains,
            reply_to,
            attachments,
            list,
        }
    }

    /// Estimated Jaccard similarity of the two messages' text shingles, in [0, 1]; 0 when
    /// either has no signature.
    pub fn similarity(&self, other: &Fingerprint) -> f64 {
        if self.signature.len() != HASHES || other.signature.len() != HASHES {
            return 0.0;
        }
        equal_values(&self.signature, &other.signature) as f64 / HASHES as f64
    }

    /// Copies of one campaign.
    pub fn same_campaign(&self, other: &Fingerprint) -> bool {
        self.similarity(other) >= SAME_CAMPAIGN
    }

    /// Whether this message can belong to a campaign ([`MIN_WORDS`] and a signature).
    pub fn campaign_ready(&self) -> bool {
        self.words >= MIN_WORDS && self.signature.len() == HASHES
    }

    /// The signature as bytes for storage: [`HASHES`] little-endian `u64`s.
    pub fn signature_bytes(&self) -> Vec<u8> {
        self.signature.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// The lookup keys: one per band of the signature (band index mixed in).
    pub fn band_keys(&self) -> Vec<u64> {
        if self.signature.len() != HASHES {
            return Vec::new();
        }
        self.signature
            .chunks(ROWS)
            .enumerate()
            .map(|(band, rows)| {
                let band = (band as u64).to_le_bytes();
                let values: Vec<[u8; 8]> = rows.iter().map(|v| v.to_le_bytes()).collect();
                stable_hash(std::iter::once(&band[..]).chain(values.iter().map(|v| &v[..])))
            })
            .collect()
    }
}

/// Positions where two signatures hold the same min-hash value.
fn equal_values(a: &[u64], b: &[u64]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

/// Reads a signature stored by [`Fingerprint::signature_bytes`]; `None` if malformed.
pub fn signature_from_bytes(bytes: &[u8]) -> Option<Vec<u64>> {
    (bytes.len() == HASHES * 8)
        .then(|| bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// The campaign `fingerprint` belongs to among `candidates` (`(id, signature)`, usually
/// those sharing a band key with it): the most similar one at [`SAME_CAMPAIGN`] or above,
/// the lowest id on ties (the oldest campaign).
pub fn best_match<'a, I>(fingerprint: &Fingerprint, candidates: I) -> Option<i64>
where
    I: IntoIterator<Item = (i64, &'a [u64])>,
{
    if !fingerprint.campaign_ready() {
        return None;
    }
    let mut best: Option<(usize, i64)> = None;
    for (id, signature) in candidates {
        if signature.len() != HASHES {
            continue;
        }
        let equal = equal_values(&fingerprint.signature, signature);
        if equal as f64 / HASHES as f64 >= SAME_CAMPAIGN
            && best.is_none_or(|(e, i)| equal > e || (equal == e && id < i))
        {
            best = Some((equal, id));
        }
    }
    best.map(|(_, id)| id)
}

/// Campaigns in memory (the simulator, tests): each campaign keeps the signature of its
/// first message and is found through its band keys. The service keeps the same in its
/// database.
#[derive(Debug, Default)]
pub struct CampaignIndex {
    signatures: Vec<Vec<u64>>,
    bands: std::collections::HashMap<u64, Vec<i64>>,
}

impl CampaignIndex {
    /// The campaign of a message, a new one if none matches; `None` for a message too
    /// short to have one.
    pub fn assign(&mut self, fingerprint: &Fingerprint) -> Option<i64> {
        if !fingerprint.campaign_ready() {
            return None;
        }
        let keys = fingerprint.band_keys();
        let mut candidates: Vec<i64> = keys.iter().filter_map(|k| self.bands.get(k)).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        let found = best_match(fingerprint, candidates.iter().map(|&id| (id, self.signatures[id as usize].as_slice())));
        Some(found.unwrap_or_else(|| {
            let id = self.signatures.len() as i64;
            self.signatures.push(fingerprint.signature.clone());
            for k in keys {
                self.bands.entry(k).or_default().push(id);
            }
            id
        }))
    }

    /// Campaigns so far.
    pub fn len(&self) -> usize {
        self.signatures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }
}

fn profile_of_bytes(raw: &[u8]) -> Profile {
    Profile { length_bucket: log2_bucket(raw.len()), content_types: Vec::new(), part_sizes: Vec::new(), images: 0 }
}

fn log2_bucket(n: usize) -> u8 {
    (usize::BITS - n.leading_zeros()) as u8
}

/// The normalised tokens of a text, and the registrable domains of its URLs.
pub fn normalise(text: &str) -> (Vec<String>, Vec<String>) {
    let mut tokens = Vec::new();
    let mut domains = Vec::new();
    for raw in text.split_whitespace() {
        let lower = raw.to_lowercase();
        if let Some(domain) = url_domain(&lower) {
            tokens.push(format!("<url:{domain}>"));
            domains.push(domain);
            continue;
        }
        let word: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
        if word.is_empty() {
            continue;
        }
        tokens.push(mask(&word));
    }
    domains.sort();
    domains.dedup();
    (tokens, domains)
}

/// A text part declared base64 that mail-parser could not decode: it keeps such a part's
/// bytes undecoded (an "encoding problem"), so the sender's text is lost. A mailing list
/// that appends its footer to an encoded body causes exactly that. Recovered here, as far
/// as it can be read: the leading base64 lines decoded in the part's charset, then the rest
/// as it is. Returns whether the part is HTML, and its text.
fn recovered_text(part: &mail_parser::MessagePart<'_>) -> Option<(bool, String)> {
    let declared = part.headers.iter().find(|h| h.name == mail_parser::HeaderName::ContentTransferEncoding)?;
    let content_type = part.content_type().filter(|c| c.ctype().eq_ignore_ascii_case("text"))?;
    if !part.is_encoding_problem || !declared.value.as_text().is_some_and(|e| e.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    let raw = part.contents();
    let base64_line = |l: &[u8]| {
        let l = l.trim_ascii();
        !l.is_empty() && l.iter().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b))
    };
    let (mut end, mut lines) = (0, 0);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        match (base64_line(line), line.trim_ascii().is_empty()) {
            (true, _) => lines += 1,
            (false, true) if lines == 0 => {}
            _ => break,
        }
        end += line.len();
    }
    if lines == 0 {
        return None;
    }
    let decoded = mail_parser::decoders::base64::base64_decode(&raw[..end])?;
    let charset = content_type.attribute("charset").unwrap_or("utf-8");
    let mut text = mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes())
        .map_or_else(|| String::from_utf8_lossy(&decoded).into_owned(), |decode| decode(&decoded));
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&raw[end..]));
    let html = content_type.subtype().is_some_and(|s| s.eq_ignore_ascii_case("html"));
    Some((html, text))
}

/// The registrable domains of the `http(s)` links and images in HTML (`href` and `src`
/// attributes, quoted or not).
fn html_link_domains<'a>(parts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut domains = Vec::new();
    for html in parts {
        let lower = html.to_ascii_lowercase();
        for attribute in ["href", "src"] {
            for (at, _) in lower.match_indices(attribute) {
                let rest = lower[at + attribute.len()..].trim_start();
                let Some(value) = rest.strip_prefix('=') else { continue };
                let value = value.trim_start().trim_start_matches(['"', '\'']);
                let end = value.find(|c: char| c.is_whitespace() || "\"'>".contains(c)).unwrap_or(value.len());
                if let Some(domain) = url_domain(&value[..end]).filter(|_| value.starts_with("http")) {
                    domains.push(domain);
                }
            }
        }
    }
    domains.sort();
    domains.dedup();
    domains
}

/// A list's identity: `List-Id`'s `<id>` (RFC 2919; the whole value if it has no angle
/// brackets), else `List-Post`.
fn list_id(message: &mail_parser::Message<'_>) -> Option<String> {
    let id = |value: &str| {
        let value = value.trim();
        let inner = value.rsplit_once('<').and_then(|(_, rest)| rest.split_once('>')).map_or(value, |(id, _)| id);
        Some(inner.trim().to_ascii_lowercase()).filter(|v| !v.is_empty())
    };
    ["List-Id", "List-Post"].into_iter().filter_map(|h| message.header_raw(h)).find_map(id)
}

/// How far from the end of a message a list's footer is looked for.
const FOOTER_BYTES: usize = 2048;

/// A mailing list's footer at the end of the message, as Mailman appends it to every
/// message it relays: a rule of underscores, then a line naming "… mailing list", then the
/// list's address and its listinfo page (on that line or the next few). Returns the list's
/// identity (its address, else its page, lower-cased) and the registrable domains the
/// footer names. A footer names its list even where the list's headers are gone (mail
/// forwarded or re-sent with its original headers, as the spam a list relays often is):
/// without it, the footer's links would be the sender's, and every message the list
/// relayed one more independent campaign linking to the list's host.
fn list_footer(raw: &[u8]) -> Option<(String, Vec<String>)> {
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(FOOTER_BYTES)..]);
    let lines: Vec<&str> = tail.lines().map(str::trim).collect();
    let rule = lines.iter().rposition(|l| l.len() >= 30 && l.bytes().all(|b| b == b'_'))?;
    let mut after = lines[rule + 1..].iter().filter(|l| !l.is_empty()).take(4);
    let named = after.next()?;
    if !named.to_ascii_lowercase().contains("mailing list") {
        return None;
    }
    let footer: Vec<String> = std::iter::once(named).chain(after).map(|l| l.to_ascii_lowercase()).collect();
    let words = || {
        footer.iter().flat_map(|l| l.split_whitespace()).map(|w| w.trim_matches(|c: char| "<>()[]\"',;".contains(c)))
    };
    let address =
        words().find(|w| w.split_once('@').is_some_and(|(local, host)| !local.is_empty() && host.contains('.')));
    let page = words().find(|w| w.contains("listinfo/") && url_domain(w).is_some());
    let id = address.or(page)?.trim_start_matches("mailto:").to_string();
    Some((id, domains_named(footer.iter().map(String::as_str))))
}

/// The registrable domains a mailing list names in its own headers: its id
/// (`<ilug.linux.ie>`), its addresses (`mailto:ilug@linux.ie`) and its web pages.
fn list_domains(message: &mail_parser::Message<'_>) -> Vec<String> {
    const HEADERS: [&str; 7] =
        ["List-Id", "List-Post", "List-Help", "List-Subscribe", "List-Unsubscribe", "List-Archive", "List-Owner"];
    domains_named(HEADERS.iter().filter_map(|h| message.header_raw(*h)))
}

/// The registrable domains of every host named in `texts` (in addresses, links, list ids),
/// sorted, without duplicates.
fn domains_named<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut domains = Vec::new();
    for text in texts {
        let lower = text.to_ascii_lowercase();
        for host in lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')) {
            if let Some(domain) = registrable(host) {
                domains.push(domain);
            }
        }
    }
    domains.sort();
    domains.dedup();
    domains
}

/// A host's registrable domain: its public suffix and one label more, from the Public
/// Suffix List compiled into `psl` (`www.shop.example.co.uk` → `example.co.uk`). The last
/// two labels would make `co.uk` or `com.cn` one "domain" that every British or Chinese
/// site shares: spam and ham linking to unrelated sites would vote on one key. A host
/// that is an IPv4 address is its own key (the last two labels of `61.129.81.80` would
/// join unrelated hosts); a bare suffix (`co.uk`, `localhost`) has none.
fn registrable(host: &str) -> Option<String> {
    let host = host.trim_matches('.');
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    // Four numbers are an address, however written (`061.129.081.080` is 61.129.81.80).
    if labels.len() == 4 && labels.iter().all(|l| l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit())) {
        let octets: Option<Vec<u8>> = labels.iter().map(|l| l.parse().ok()).collect();
        return octets.map(|o| std::net::Ipv4Addr::new(o[0], o[1], o[2], o[3]).to_string());
    }
    psl::domain_str(host).filter(|d| d.contains('.')).map(str::to_string)
}

/// `http(s)://host/...` or `www.host...` → the host's registrable domain. The host is what
/// follows any `user:password@` (`http://www.bank.example@192.0.2.7/` goes to the IP) and
/// precedes a port.
fn url_domain(token: &str) -> Option<String> {
    let token = token.trim_matches(|c: char| "<>()[]\"'.,;".contains(c));
    let rest = token
        .strip_prefix("http://")
        .or_else(|| token.strip_prefix("https://"))
        .or_else(|| token.strip_prefix("www.").filter(|r| r.contains('.')))?;
    let authority = rest.split(['/', '?', '#', '>', '"', '\'', '\\']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    registrable(host.split(':').next()?)
}

/// Numbers become `#`, random-looking tokens (letters mixed with digits, or long words
/// without vowels) become `*`: what campaigns vary per recipient.
fn mask(word: &str) -> String {
    let digits = word.chars().filter(char::is_ascii_digit).count();
    if digits == word.chars().count() {
        return "#".into();
    }
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let vowels = word.chars().filter(|c| "aeiouy".contains(*c)).count();
    if (digits > 0 && letters > 0) || (word.len() >= 8 && vowels * 6 < letters) {
        return "*".into();
    }
    word.to_string()
}

/// The min-hash signature of the token shingles: for each of [`HASHES`] hash functions
/// (a base hash mixed with a per-function constant, then a 64-bit finaliser), the minimum
/// over all shingles.
fn signature(tokens: &[String]) -> Vec<u64> {
    if tokens.len() < SHINGLE {
        return Vec::new();
    }
    let mut mins = vec![u64::MAX; HASHES];
    for window in tokens.windows(SHINGLE) {
        let base = stable_hash(window.iter().map(String::as_bytes));
        for (i, min) in mins.iter_mut().enumerate() {
            let v = mix(base ^ SEEDS[i]);
            if v < *min {
                *min = v;
            }
        }
    }
    mins
}

/// FNV-1a (64-bit) over the parts, each followed by a separator byte so that `["ab", "c"]`
/// and `["a", "bc"]` differ, then [`mix`]ed. A fixed function: signatures and band keys are
/// stored in the database and must match new mail after a toolchain upgrade, which std's
/// `DefaultHasher` does not promise.
fn stable_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for &b in part.iter().chain(&[0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }
    mix(h)
}

/// splitmix64's finaliser: a bijective mix, so distinct inputs stay distinct.
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One constant per hash function (splitmix64's sequence from 0).
const SEEDS: [u64; HASHES] = {
    let mut out = [0u64; HASHES];
    let mut state = 0u64;
    let mut i = 0;
    while i < HASHES {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        out[i] = mix(state);
        i += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    const SPAM: &str = "From: Deals <deals@pharma.example>\r\nReply-To: orders@pharma.example\r\nSubject: hi\r\n\r\n\
Dear John, we have the best prices on all your favourite medicines this week. Order now at \
http://www.pharma-deals.example/?id=88812 and save up to 80 percent on every order you place \
with our licensed pharmacy. Reference code AB12CD34. Unsubscribe at http://pharma-deals.example/u?x=1\r\n";

    #[test]
    fn a_base64_body_a_list_appended_its_footer_to_is_read() {
        use base64::Engine;
        let html = "<html><body><p>Download the new version of our phone messaging program today, faster \
                    than ever and free for every reader of this list this week only</p>\
                    <a href=\"http://www.sender-shop.example/get.exe\">get it</a></body></html>";
        let encoded = base64::engine::general_purpose::STANDARD.encode(html);
        let lines: Vec<&str> = encoded.as_bytes().chunks(72).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let footer = "\r\n\r\n_______________________________________________\r\nwebmake-talk mailing list\r\n\
                      https://lists.sourceforge.example/lists/listinfo/webmake-talk\r\n";
        let message = |ctype: &str| {
            format!(
                "From: a@b.example\r\nList-Id: <webmake-talk.sourceforge.example>\r\n\
                 Content-Type: {ctype}; charset=windows-1254\r\nContent-Transfer-Encoding: base64\r\n\r\n{}{footer}",
                lines.join("\r\n")
            )
        };
        let f = Fingerprint::of(message("text/html").as_bytes());
        assert!(f.words >= MIN_WORDS, "{f:?}");
        assert_eq!(f.url_domains, ["sender-shop.example"], "the sender's link, not the list's");
        // As plain text: the decoded words, not the base64 as if it were words.
        let plain = Fingerprint::of(message("text/plain").as_bytes());
        assert!(plain.words >= MIN_WORDS && plain.similarity(&f) > 0.5, "{plain:?}");
        // A body that decodes is read as before.
        let clean = message("text/html").replace(footer, "\r\n");
        assert_eq!(Fingerprint::of(clean.as_bytes()).url_domains, f.url_domains);
    }

    #[test]
    fn a_lists_own_links_are_not_the_senders() {
        let raw = b"From: someone@eircom.example\r\nList-Id: Irish Linux Users' Group <ilug.linux.example>\r\n\
List-Unsubscribe: <https://www.linux.example/mailman/listinfo/ilug>,\r\n <mailto:ilug-request@linux.example>\r\n\
Subject: hi\r\n\r\nHas anyone tried the new kernel from http://kernel.example/pub on a laptop yet? It works \
here.\r\n_______________________________________________\r\nILUG mailing list http://www.linux.example/mailman/listinfo/ilug\r\n";
        let f = Fingerprint::of(raw);
        assert_eq!(f.list.as_deref(), Some("ilug.linux.example"));
        assert_eq!(f.url_domains, ["kernel.example"]);
        // Without list headers, the footer still names the list and its links.
        let text = std::str::from_utf8(raw).unwrap();
        let body = &text[text.find("Subject").unwrap()..];
        let plain = Fingerprint::of(format!("From: someone@eircom.example\r\n{body}").as_bytes());
        assert_eq!(plain.url_domains, ["kernel.example"]);
        assert_eq!(plain.list.as_deref(), Some("http://www.linux.example/mailman/listinfo/ilug"));
        // Without the footer either, every link is the sender's.
        let unlisted_body =
            body.replace("_______________________________________________\r\nILUG mailing list", "ILUG list");
        let unlisted = Fingerprint::of(format!("From: someone@eircom.example\r\n{unlisted_body}").as_bytes());
        assert_eq!(unlisted.url_domains, ["kernel.example", "linux.example"]);
        assert_eq!(unlisted.list, None);
        let posted = Fingerprint::of(format!("List-Post: <mailto:Ilug@linux.example>\r\n{body}").as_bytes());
        assert_eq!(posted.list.as_deref(), Some("mailto:ilug@linux.example"));
        // A Reply-To the list sets to itself is the list's; the sender's own is the sender's.
        let text = text.replacen("Subject: hi", "Reply-To: \"ilug\" <ILUG@linux.example>\r\nSubject: hi", 1);
        assert_eq!(Fingerprint::of(text.as_bytes()).reply_to, None);
        let own = text.replace("ILUG@linux.example", "offers@cheap.example");
        assert_eq!(Fingerprint::of(own.as_bytes()).reply_to.as_deref(), Some("offers@cheap.example"));
        let direct = format!("From: someone@eircom.example\r\nReply-To: ilug@linux.example\r\n{unlisted_body}");
        assert_eq!(Fingerprint::of(direct.as_bytes()).reply_to.as_deref(), Some("ilug@linux.example"));
    }

    #[test]
    fn a_mailman_footer_names_its_list_where_the_headers_are_gone() {
        // Spam a list relayed, kept with the spammer's own headers: the list's sponsor link
        // and its pages are on every such message; the spammer's link is the sender's.
        let raw =
            b"From: \"Officer Web\" <saxvv@netsurf.example>\r\nSubject: Want to see the web sites they went to?\r\n\
Content-Type: text/html\r\n\r\n<html><body><a href=\"http://spy-soft.example/buy\">See every site your \
spouse visited</a></body></html>\r\n\r\n-------------------------------------------------------\r\n\
This email is sponsored by: ThinkGeek\r\nhttp://thinkgeek.example/sf\r\n\
_______________________________________________\r\nSpamassassin-Sightings mailing list\r\n\
Spamassassin-Sightings@lists.sourceforge.example\r\n\
https://lists.sourceforge.example/lists/listinfo/spamassassin-sightings\r\n\r\n";
        let f = Fingerprint::of(raw);
        assert_eq!(f.list.as_deref(), Some("spamassassin-sightings@lists.sourceforge.example"));
        assert_eq!(f.url_domains, ["spy-soft.example", "thinkgeek.example"]);
        // A rule of underscores that is not a list's footer (a signature's line) names none.
        let signed = b"From: a@b.example\r\n\r\nSee http://shop.example/ today.\r\n\
______________________________\r\nJohn Smith, sales\r\nhttp://shop.example/\r\n";
        assert_eq!(Fingerprint::of(signed).list, None);
        // Nor does a footer cut short before the list's address or page.
        let cut = b"From: a@b.example\r\n\r\nHello.\r\n______________________________\r\nFoo mailing list\r\n";
        assert_eq!(Fingerprint::of(cut).list, None);
    }

    #[test]
    fn links_hidden_in_html_are_link_targets_and_name_the_short_text() {
        let html = |target: &str| {
            format!(
                "From: x@y.example\r\nContent-Type: text/html\r\n\r\n<p>Special offer - free trial</p>\r\n\
<p><a HREF = \"http://www.{target}/offer.htm\">CLICK HERE</a></p><img src=https://img.{target}/a.bmp>\r\n\
<a href=\"mailto:off@list.example\">not interested</a> <a href='/relative'>x</a>\r\n"
            )
        };
        let a = Fingerprint::of(html("cyber-offers.example").as_bytes());
        assert_eq!(a.url_domains, ["cyber-offers.example"]);
        assert!(a.short_text.is_some());
        // The same words linking elsewhere are another short text; the signature is the text's.
        let b = Fingerprint::of(html("bank.example").as_bytes());
        assert_eq!(b.url_domains, ["bank.example"]);
        assert_ne!(a.short_text, b.short_text);
        assert_eq!(a.signature, b.signature);
        assert_eq!(a.words, b.words);
    }

    #[test]
    fn normalisation() {
        let (tokens, domains) =
            normalise("Visit HTTP://Shop.Example.COM/x?y=1 now, Mary! Code X7Y9Z2 costs 49 dollars; qwrtzpkl");
        assert_eq!(tokens, ["visit", "<url:example.com>", "now", "mary", "code", "*", "costs", "#", "dollars", "*"]);
        assert_eq!(domains, ["example.com"]);
    }

    #[test]
    fn a_link_is_keyed_by_its_registrable_domain() {
        let domains = |text: &str| normalise(text).1;
        // A public suffix of two labels is no one's domain: two British shops are two keys.
        assert_eq!(
            domains("http://www.shop.example.co.uk/a http://pills.co.uk www.tea.com.cn/x"),
            ["example.co.uk", "pills.co.uk", "tea.com.cn"]
        );
        // The host follows any user part and precedes a port; an IP is its own key.
        assert_eq!(domains("http://www.bank.example.com@61.129.81.80:8080/login"), ["61.129.81.80"]);
        assert_eq!(domains("http://user:secret@mail.example.org/ https://10.2.81.80/"), ["10.2.81.80", "example.org"]);
        assert_eq!(domains("http://061.129.081.080/x http://999.1.1.1/ http://a..com/"), ["61.129.81.80"]);
        // A bare suffix or a single label links to nobody's domain.
        assert!(domains("http://co.uk/ http://localhost:8080/ http://intranet/").is_empty());
    }

    #[test]
    fn personalised_copies_match_and_unrelated_text_does_not() {
        let a = Fingerprint::of(SPAM.as_bytes());
        let b = Fingerprint::of(
            SPAM.replace("Dear John", "Dear   Mary")
                .replace("id=88812", "id=19993&src=list7")
                .replace("AB12CD34", "QQ98ZZ11")
                .replace(" every order", "\r\n every   order")
                .as_bytes(),
        );
        assert!(a.same_campaign(&b), "{}", a.similarity(&b));
        assert_eq!(a.url_domains, ["pharma-deals.example"]);
        assert_eq!(a.reply_to.as_deref(), Some("orders@pharma.example"));
        let other = Fingerprint::of(
            b"From: x@y.example\r\n\r\nThe meeting moved to Thursday afternoon; please bring the budget figures and the draft plan for next year.\r\n",
        );
        assert!(a.similarity(&other) < 0.1, "{}", a.similarity(&other));
        assert!(!a.band_keys().is_empty() && a.band_keys().len() == BANDS);
        // Copies share band keys; unrelated mail almost never does.
        let shared = a.band_keys().iter().filter(|k| b.band_keys().contains(k)).count();
        assert!(shared > 0);
        assert!(!other.band_keys().iter().any(|k| a.band_keys().contains(k)));
    }

    #[test]
    fn profiles_and_bad_input() {
        let mime = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello there\r\n--B\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n--B--\r\n";
        let f = Fingerprint::of(mime);
        assert_eq!(f.profile.content_types, ["text/plain", "image/gif"]);
        assert_eq!(f.profile.images, 1);
        assert!(f.signature.is_empty(), "two words are no shingle");
        assert_eq!(f.similarity(&f), 0.0);
        let broken = Fingerprint::of(b"\xff\xfe not mail at all \x00\x01");
        assert!(broken.signature.is_empty() || broken.signature.len() == HASHES);
    }

    #[test]
    fn copies_join_one_campaign_and_short_notes_none() {
        let mut index = CampaignIndex::default();
        let a = Fingerprint::of(SPAM.as_bytes());
        let b = Fingerprint::of(SPAM.replace("Dear John", "Dear Olga").replace("AB12CD34", "ZZ77YY66").as_bytes());
        let first = index.assign(&a);
        assert_eq!(first, Some(0));
        assert_eq!(index.assign(&b), first);
        let note = Fingerprint::of(b"From: x@y.example\r\n\r\nthanks, see you at five tomorrow\r\n");
        assert!(!note.campaign_ready() && index.assign(&note).is_none());
        let other = Fingerprint::of(
            format!(
                "From: x@y.example\r\n\r\n{}\r\n",
                "the quarterly report covers revenue costs and hiring plans ".repeat(4)
            )
            .as_bytes(),
        );
        assert_eq!(index.assign(&other), Some(1));
        assert_eq!(index.len(), 2);
        // Stored signatures read back; the best match wins over an older weaker one.
        assert_eq!(signature_from_bytes(&a.signature_bytes()).as_deref(), Some(a.signature.as_slice()));
        assert_eq!(signature_from_bytes(b"short"), None);
        let mut weaker = a.signature.clone();
        for v in weaker.iter_mut().take(20) {
            *v = 0;
        }
        assert_eq!(best_match(&a, [(1, weaker.as_slice()), (2, a.signature.as_slice())]), Some(2));
        assert_eq!(best_match(&a, [(1, weaker.as_slice())]), Some(1));
        assert_eq!(best_match(&note, [(1, a.signature.as_slice())]), None);
    }

    #[test]
    fn the_hash_is_fixed_across_builds() {
        // Stored band keys and signatures depend on these exact values (computed independently).
        assert_eq!(stable_hash([&b"quorum"[..]]), 0xa0da_cca3_3a1b_f1fe);
        assert_eq!(stable_hash([&b"ab"[..], b"c"]), 0x9399_8dd6_edc9_a3b3);
        assert_ne!(stable_hash([&b"ab"[..], b"c"]), stable_hash([&b"a"[..], b"bc"]));
    }

    proptest::proptest! {
        #[test]
        fn a_message_is_its_own_campaign(words in proptest::collection::vec("[a-z]{3,9}", 4..60)) {
            let raw = format!("From: a@b.example\r\n\r\n{}\r\n", words.join(" "));
            let f = Fingerprint::of(raw.as_bytes());
            proptest::prop_assert_eq!(f.similarity(&f), 1.0);
        }

        /// Hostile mail (a list message with a short linked text and two attachments, then
        /// bytes flipped, cut and repeated) never panics, and the keys keep their rules.
        #[test]
        fn mangled_mime_gives_what_could_be_read(
            edits in proptest::collection::vec((0usize..2048, proptest::num::u8::ANY), 0..24),
            cut in 0usize..2048,
            repeat in 0usize..4,
        ) {
            let blob = "QUJD".repeat(200);
            let template = format!(
                "From: a@b.example\r\nList-Id: <l.example>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\nReset your password at \
                 http://accounts.example/r?t=8812 =?utf-8?B?w6k=?= now\r\n--x\r\n\
                 Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{blob}\r\n--x\r\n\
                 Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 {blob}\r\n--x--\r\n"
            );
            let mut raw = template.into_bytes();
            for (at, byte) in edits {
                let at = at % raw.len();
                raw[at] = byte;
            }
            raw.truncate(cut.max(1).min(raw.len()));
            let raw = raw.repeat(repeat + 1);
            let f = Fingerprint::of(&raw);
            proptest::prop_assert!(f.attachments.windows(2).all(|w| w[0] < w[1]));
            proptest::prop_assert!(f.short_text.is_none() || !f.url_domains.is_empty());
        }
    }
}
