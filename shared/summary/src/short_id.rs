//! Short IDs: five characters a subscriber can see at a glance and a parser can find in any
//! quoting. Crockford's base 32 alphabet: digits and capitals without I, L, O and U, so no
//! two characters look alike. 32^5 = 33.5 million IDs: unique within any one summary.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LEN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ShortId(String);

impl ShortId {
    /// The ID of the `n`-th number (e.g. a held message's database id), modulo 32^5.
    pub fn encode(n: u64) -> Self {
        let mut n = n % (ALPHABET.len() as u64).pow(LEN as u32);
        let mut out = [b'0'; LEN];
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(n % 32) as usize];
            n /= 32;
        }
        Self(String::from_utf8(out.to_vec()).expect("ASCII"))
    }

    /// Parses an ID as a subscriber's mail client may have changed it (lower case).
    pub fn parse(s: &str) -> Option<Self> {
        let upper = s.to_ascii_uppercase();
        (upper.len() == LEN && upper.bytes().all(|b| ALPHABET.contains(&b))).then_some(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_distinct_ids_in_the_alphabet() {
        let ids: std::collections::HashSet<_> = (0..10_000u64).map(ShortId::encode).collect();
        assert_eq!(ids.len(), 10_000);
        assert_eq!(ShortId::encode(0).as_str(), "00000");
        assert_eq!(ShortId::encode(32u64.pow(5) - 1).as_str(), "ZZZZZ");
        assert!(ids.iter().all(|id| ShortId::parse(id.as_str()).as_ref() == Some(id)));
    }

    #[test]
    fn parse_accepts_lower_case_and_rejects_look_alikes() {
        assert_eq!(ShortId::parse("k7f3q").unwrap().as_str(), "K7F3Q");
        assert_eq!(ShortId::parse("K7F3O"), None);
        assert_eq!(ShortId::parse("K7F3"), None);
        assert_eq!(ShortId::parse("K7F3QQ"), None);
    }
}
