//! Check results in the form storage keeps them, and the re-check of messages whose
//! checks a DNS failure cut short (run before each summary, SPEC 2.3).

use quorum_domain::Timestamp;
use quorum_storage::{CheckRecord, Database, StorageError};

use crate::{Checker, Evidence, Providers, Verdict};

/// One message's evidence, serialised once.
#[derive(Debug, Clone)]
pub struct Checked {
    pub evidence: Evidence,
    json: String,
    reason: Option<String>,
}

impl From<Evidence> for Checked {
    fn from(evidence: Evidence) -> Self {
        let json = serde_json::to_string(&evidence).expect("evidence serialises");
        Checked { reason: evidence.reason(), evidence, json }
    }
}

impl Checked {
    pub fn record(&self) -> CheckRecord<'_> {
        CheckRecord {
            evidence: &self.json,
            reason: self.reason.as_deref(),
            incomplete: matches!(self.evidence.verdict, Verdict::Incomplete(_)),
        }
    }
}

/// What a re-check pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rechecked {
    pub checked: usize,
    pub forged: usize,
    pub still_incomplete: usize,
}

/// Checks again every held message of the subscriber whose checks did not finish, and
/// deletes those now proven forged.
pub async fn recheck_incomplete<DB: Database>(
    db: &DB,
    checker: &Checker,
    providers: &Providers,
    subscriber_id: i64,
    now: Timestamp,
) -> Result<Rechecked, StorageError> {
    let pending = db.incomplete_checks(subscriber_id).await?;
    if pending.is_empty() {
        return Ok(Rechecked::default());
    }
    let mut report = Rechecked::default();
    let checks = pending.iter().map(|m| {
        let trusted = quorum_domain::provider::parse_list(&m.trusted_domains).unwrap_or_default();
        async move { Checked::from(checker.check(&m.raw, providers, &trusted).await) }
    });
    for (m, checked) in pending.iter().zip(futures::future::join_all(checks).await) {
        let forged = checked.evidence.is_forged();
        if db.record_recheck(m.id, &checked.record(), forged, now).await? {
            report.checked += 1;
            report.forged += usize::from(forged);
            report.still_incomplete += usize::from(checked.record().incomplete);
        }
    }
    Ok(report)
}
