//! One poll of one mailbox (SPEC 2.1).
//!
//! Order of events, and why nothing can be lost or doubled:
//! 1. UIDL lists the server's messages; those already handled are skipped, except ones
//!    whose bytes are already quarantined (a previous poll crashed before DELE or QUIT):
//!    those are only deleted again.
//! 2. New messages are retrieved in batches (pipelined) and each batch is committed in one
//!    transaction: bytes, UIDL and disposition together.
//! 3. Only then are the quarantined ones deleted (DELE), and QUIT makes that final.
//!
//! A crash before 2 commits leaves the messages on the server, new again next time. A crash
//! between 2 and QUIT leaves them on the server *and* in the quarantine, marked by UIDL, so
//! the next poll only deletes them. The content hash catches a server that renumbers its
//! UIDLs: the same bytes get the new UIDL but no second copy.

use std::collections::{HashMap, HashSet};

use quorum_domain::{Disposition, InspectedMessage, Keys, Timestamp};
use quorum_pop3::{Client, ConnectOptions, Credentials, Pop3Error};
use quorum_storage::{Database, LeasedMailbox, PollItem, StorageError, UidlDisposition};

use crate::fail_point;

/// Bytes of messages retrieved before they are committed: bounds memory per mailbox and
/// the work a crash can make us redo, while keeping transactions few.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("the stored POP3 password cannot be decrypted (was the master key changed?)")]
    Password,
    #[error("login failed: {0}. Check the user name and password")]
    Login(Pop3Error),
    #[error("mailbox busy, will retry: {0}")]
    Busy(Pop3Error),
    #[error("{0}")]
    Pop3(Pop3Error),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl PollError {
    pub fn is_busy(&self) -> bool {
        matches!(self, PollError::Busy(_))
    }
}

impl From<Pop3Error> for PollError {
    fn from(e: Pop3Error) -> Self {
        if e.is_transient() {
            PollError::Busy(e)
        } else if e.is_auth_failure() {
            PollError::Login(e)
        } else {
            PollError::Pop3(e)
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct PollReport {
    pub quarantined: i64,
    pub kept: i64,
    /// Messages left on the server with the reason (too large, refused by the server).
    pub skipped: Vec<String>,
}

pub async fn poll_mailbox<DB: Database>(
    db: &DB,
    keys: &Keys,
    options: &ConnectOptions,
    mailbox: &LeasedMailbox,
) -> Result<PollReport, PollError> {
    let password = keys
        .decrypt_password(&mailbox.settings.password_enc, mailbox.email.as_str())
        .map_err(|_| PollError::Password)?;
    let mut client = Client::connect(options).await?;
    client.capabilities().await?;
    client.login(Credentials::new(mailbox.settings.auth, &mailbox.settings.username, password.expose())).await?;

    let on_server = client.uidl().await?;
    let sizes: HashMap<u32, u64> = client.list().await?.into_iter().collect();
    let known: HashMap<String, UidlDisposition> =
        db.known_uidls(mailbox.mailbox_id).await?.into_iter().map(|k| (k.uidl, k.disposition)).collect();

    let present: HashSet<&str> = on_server.iter().map(|(_, u)| u.as_str()).collect();
    let gone: Vec<String> = known.keys().filter(|u| !present.contains(u.as_str())).cloned().collect();
    if !gone.is_empty() {
        db.forget_uidls(mailbox.mailbox_id, &gone).await?;
    }

    let mut report = PollReport::default();
    let mut to_delete: Vec<u32> = Vec::new();
    let mut new: Vec<(u32, &str, u64)> = Vec::new();
    for (n, uidl) in &on_server {
        match known.get(uidl) {
            Some(UidlDisposition::Quarantined) => to_delete.push(*n),
            Some(UidlDisposition::Kept) => {}
            None => {
                let size = sizes.get(n).copied().unwrap_or(0);
                if size > options.max_message_size {
                    report.skipped.push(format!(
                        "message {uidl} ({size} bytes) is over the {} byte limit and stays in the mailbox",
                        options.max_message_size
                    ));
                } else {
                    new.push((*n, uidl, size));
                }
            }
        }
    }

    let now = Timestamp::now();
    let approved: HashSet<_> = db
        .approved_senders(
            mailbox.subscriber_id,
            now.minus(std::time::Duration::from_secs(mailbox.approved_days.max(0) as u64 * 86_400)),
        )
        .await?
        .into_iter()
        .collect();

    for batch in batches(&new) {
        let requests: Vec<(u32, u64)> = batch.iter().map(|(n, _, size)| (*n, *size)).collect();
        let retrieved = client.retr_many(&requests).await?;
        fail_point("after-retr");
        let inspected: Vec<_> = retrieved
            .into_iter()
            .zip(batch)
            .filter_map(|(result, (n, uidl, _))| match result {
                Ok(raw) => {
                    let info = InspectedMessage::parse(&raw);
                    Some((*n, *uidl, raw, info))
                }
                Err(e) => {
                    report.skipped.push(format!("message {uidl} stays in the mailbox: {e}"));
                    None
                }
            })
            .collect();
        let mut items = Vec::with_capacity(inspected.len());
        for (n, uidl, raw, info) in &inspected {
            match info.disposition(mailbox.mailbox_id, keys, &approved) {
                Disposition::Quarantine => {
                    to_delete.push(*n);
                    report.quarantined += 1;
                    items.push(PollItem::Quarantine {
                        uidl,
                        raw,
                        hash: info.hash,
                        from: info.from.as_ref(),
                        from_name: info.from_name.as_deref(),
                        subject: info.subject.as_deref(),
                    });
                }
                Disposition::Approved(_) => {
                    report.kept += 1;
                    items.push(PollItem::Keep { uidl, approved: info.from.as_ref() });
                }
                Disposition::Released(_) => {
                    report.kept += 1;
                    items.push(PollItem::Keep { uidl, approved: None });
                }
            }
        }
        db.commit_poll(mailbox.mailbox_id, &items, now).await?;
        fail_point("after-commit");
    }

    // Only committed messages are deleted (durability rule, SPEC 2.1).
    to_delete.sort_unstable();
    for (n, result) in to_delete.iter().zip(client.dele_many(&to_delete).await?) {
        if let Err(e) = result {
            report.skipped.push(format!("DELE of message {n} failed, it will be deleted next time: {e}"));
        }
    }
    fail_point("after-dele");
    client.quit().await?;
    Ok(report)
}

/// Splits the new messages into runs of at most [`BATCH_BYTES`] (at least one message).
fn batches<T>(new: &[(u32, T, u64)]) -> impl Iterator<Item = &[(u32, T, u64)]> {
    let mut rest = new;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut total = 0u64;
        let mut len = 0;
        while len < rest.len() && (len == 0 || total + rest[len].2 <= BATCH_BYTES) {
            total += rest[len].2;
            len += 1;
        }
        let (batch, tail) = rest.split_at(len);
        rest = tail;
        Some(batch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_byte_budget_and_never_stall() {
        let m = |size| (1u32, (), size);
        let new = vec![m(10), m(BATCH_BYTES), m(BATCH_BYTES * 3), m(5), m(6)];
        let sizes: Vec<Vec<u64>> = batches(&new).map(|b| b.iter().map(|x| x.2).collect()).collect();
        assert_eq!(sizes, vec![vec![10], vec![BATCH_BYTES], vec![BATCH_BYTES * 3], vec![5, 6]]);
        assert_eq!(batches::<()>(&[]).count(), 0);
    }
}
