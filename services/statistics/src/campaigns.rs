//! Campaign membership in the database: a message joins the campaign whose stored signature
//! it matches ([`quorum_fingerprint::best_match`] over the campaigns sharing one of its band
//! keys), or founds a new one. One lookup, one transaction per batch of messages: no query
//! per message.

use quorum_domain::Timestamp;
use quorum_fingerprint::{Fingerprint, best_match, signature_from_bytes};
use quorum_storage::{Database, NewCampaign, StorageError};

/// The campaign of each fingerprint (`None`: none, or too little text for one), storing
/// new campaigns and marking found ones as seen. Messages of one batch that match each
/// other share the campaign the first of them founded.
pub async fn assign<DB: Database>(
    db: &DB,
    fingerprints: &[Option<&Fingerprint>],
    now: Timestamp,
) -> Result<Vec<Option<i64>>, StorageError> {
    let ready: Vec<Option<&Fingerprint>> = fingerprints.iter().map(|f| f.filter(|f| f.campaign_ready())).collect();
    let keys: Vec<i64> = ready.iter().flatten().flat_map(|f| band_keys(f)).collect();
    if keys.is_empty() {
        return Ok(vec![None; fingerprints.len()]);
    }
    let stored = signatures(db.campaign_candidates(&keys).await?);
    // Resolve in order; a campaign founded earlier in the batch is known to later messages
    // by a placeholder id, -1 for the first, until it is stored.
    let mut founded: Vec<&Fingerprint> = Vec::new();
    let mut seen: Vec<i64> = Vec::new();
    let mut found: Vec<Option<i64>> = Vec::with_capacity(ready.len());
    for f in &ready {
        let Some(f) = f else {
            found.push(None);
            continue;
        };
        let placeholders = founded.iter().enumerate().map(|(k, f)| (-(k as i64) - 1, f.signature.as_slice()));
        let candidates = stored.iter().map(|(id, s)| (*id, s.as_slice())).chain(placeholders);
        let id = match best_match(f, candidates) {
            Some(id) => id,
            None => {
                founded.push(f);
                -(founded.len() as i64)
            }
        };
        if id > 0 {
            seen.push(id);
        }
        found.push(Some(id));
    }
    seen.sort_unstable();
    seen.dedup();
    let new: Vec<NewCampaign> = founded
        .iter()
        .map(|f| NewCampaign { signature: f.signature_bytes(), words: i64::from(f.words), band_keys: band_keys(f) })
        .collect();
    let ids = db.store_campaigns(&new, &seen, now).await?;
    Ok(found.into_iter().map(|id| id.map(|id| if id < 0 { ids[(-id - 1) as usize] } else { id })).collect())
}

/// The campaign a message would join, without storing anything (`quorum explain`).
pub async fn find<DB: Database>(db: &DB, fingerprint: &Fingerprint) -> Result<Option<i64>, StorageError> {
    if !fingerprint.campaign_ready() {
        return Ok(None);
    }
    let stored = signatures(db.campaign_candidates(&band_keys(fingerprint)).await?);
    Ok(best_match(fingerprint, stored.iter().map(|(id, s)| (*id, s.as_slice()))))
}

/// Band keys as stored (the 64-bit hashes reinterpreted as signed integers).
fn band_keys(f: &Fingerprint) -> Vec<i64> {
    f.band_keys().into_iter().map(|k| k as i64).collect()
}

fn signatures(rows: Vec<(i64, Vec<u8>)>) -> Vec<(i64, Vec<u64>)> {
    rows.into_iter().filter_map(|(id, bytes)| signature_from_bytes(&bytes).map(|s| (id, s))).collect()
}
