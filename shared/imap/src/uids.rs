//! UID sets as IMAP writes them (RFC 3501 `sequence-set`): runs of consecutive UIDs as
//! `first:last`, the rest by commas. A mailbox's UIDs mostly come in runs, so a command on
//! thousands of messages stays a short line.

/// The set of `uids` (any order, duplicates allowed), or `None` when there are none: IMAP
/// has no empty set.
pub fn set(uids: &[u32]) -> Option<String> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&sorted[i].to_string());
        if j > i {
            out.push(':');
            out.push_str(&sorted[j].to_string());
        }
        i = j + 1;
    }
    (!out.is_empty()).then_some(out)
}

/// Reads a set written by [`set`] back into its UIDs (the tests' inverse).
#[cfg(test)]
fn parse(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|part| match part.split_once(':') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<u32>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn runs_are_ranges() {
        assert_eq!(set(&[]), None);
        assert_eq!(set(&[7]).as_deref(), Some("7"));
        assert_eq!(set(&[5, 3, 4, 9, 1, 10, 4]).as_deref(), Some("1,3:5,9:10"));
        assert_eq!(set(&[u32::MAX, u32::MAX - 1]).as_deref(), Some("4294967294:4294967295"));
    }

    proptest! {
        #[test]
        fn a_set_holds_exactly_its_uids(uids in prop::collection::vec(1u32..200, 1..100)) {
            let mut want = uids.clone();
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(parse(&set(&uids).unwrap()), want);
        }
    }
}
