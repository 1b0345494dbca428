//! The subscriber's mailbox as one poll sees it, POP3 or IMAP: what is in it, the bytes of
//! some of it, and taking out what Quorum quarantined. The poll ([`crate::poll`]) is the
//! same for both; only these steps differ.
//!
//! POP3 takes a message out by DELE, final at QUIT. IMAP moves it: held mail to
//! `Quorum/Held`, mail Quorum deleted to `Quorum/Deleted`, where the provider keeps it and
//! the subscriber can still find it; nothing is deleted on the server. An IMAP message is
//! known by `UIDVALIDITY:UID` of the Inbox, so when the server renumbers (a new
//! UIDVALIDITY) every message is unknown again, and the content hash keeps a second copy of
//! one already stored from being made.

use std::{
    collections::{HashMap, HashSet},
    fmt,
};

use quorum_domain::MessageHash;
use quorum_domain::Protocol;
use quorum_imap::{ImapError, Session};
use quorum_pop3::{Client, ConnectOptions, Credentials, Pop3Error};
use quorum_storage::{HeldCopy, LeasedMailbox};

/// The folders Quorum makes in an IMAP mailbox, by their levels.
pub const HELD_FOLDER: [&str; 2] = ["Quorum", "Held"];
pub const DELETED_FOLDER: [&str; 2] = ["Quorum", "Deleted"];
/// The IMAP keyword on a message Quorum moved back to the Inbox (a release), for the
/// subscriber's client and for a retried release to find it. The poll goes by the bytes
/// alone (those of a message released from this mailbox): a keyword proves nothing, and a
/// server may not keep it.
pub const RELEASED_KEYWORD: &str = "$QuorumReleased";

/// A mail server's error, POP3 or IMAP.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Pop3(#[from] Pop3Error),
    #[error(transparent)]
    Imap(#[from] ImapError),
}

impl MailError {
    /// Worth retrying soon: the server or the network, not the account.
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Pop3(e) => e.is_transient(),
            MailError::Imap(e) => e.is_transient(),
        }
    }

    /// The credentials were rejected.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            MailError::Pop3(e) => e.is_auth_failure(),
            MailError::Imap(e) => e.is_auth_failure(),
        }
    }

    /// What kind of failure, for advice that is the same for both protocols.
    pub fn kind(&self) -> Failure<'_> {
        use quorum_transport::TransportError as T;
        match self {
            MailError::Pop3(Pop3Error::Timeout { .. }) | MailError::Imap(ImapError::Timeout { .. }) => Failure::Timeout,
            MailError::Imap(ImapError::Transport(T::Timeout { .. })) => Failure::Timeout,
            MailError::Pop3(Pop3Error::Connect { .. }) | MailError::Imap(ImapError::Transport(T::Connect { .. })) => {
                Failure::Unreachable
            }
            MailError::Pop3(Pop3Error::Tls(why)) | MailError::Imap(ImapError::Transport(T::Tls(why))) => {
                Failure::Tls(why)
            }
            MailError::Pop3(Pop3Error::Unsupported(_)) | MailError::Imap(ImapError::Unsupported(_)) => {
                Failure::Unsupported
            }
            _ => Failure::Other,
        }
    }
}

/// [`MailError::kind`].
pub enum Failure<'a> {
    Timeout,
    Unreachable,
    /// rustls's words.
    Tls(&'a str),
    Unsupported,
    Other,
}

/// One message of the mailbox, by the number the session fetches it with and the name that
/// stays the same across sessions (POP3's UIDL; `UIDVALIDITY:UID` for IMAP).
pub struct Entry {
    pub id: u32,
    pub uidl: String,
    pub size: u64,
    /// IMAP: marked `\Deleted` and not yet expunged (by another client, or by Quorum's own
    /// move without MOVE that a crash cut short).
    pub deleted: bool,
}

/// A committed message to take out of the mailbox: its id in this session, where it goes,
/// and its size and content hash as the server gave them (to recognise a copy of it that an
/// interrupted move already made).
#[derive(Debug, Clone, Copy)]
pub struct Removal {
    pub id: u32,
    pub place: Place,
    pub size: u64,
    pub hash: MessageHash,
}

/// Where a quarantined message goes: only IMAP tells the two apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Held,
    Deleted,
}

/// The outcome of [`Maildrop::retrieve`].
pub struct Retrieved {
    /// One result per request answered before the connection broke (all, if it did not).
    pub messages: Vec<Result<Vec<u8>, MailError>>,
    /// Why the connection broke, if it did; the remaining requests got no answer.
    pub broken: Option<MailError>,
}

pub enum Maildrop {
    Pop3(Client),
    Imap { session: Session, validity: u32, held: String, deleted: String },
}

/// The messages in `folder` of one of these sizes, by their bytes' hash (the folder stays
/// selected): which of Quorum's copies are there, without fetching the rest.
async fn copies_in(
    session: &mut Session,
    folder: &str,
    sizes: &HashSet<u64>,
) -> Result<HashMap<MessageHash, u32>, MailError> {
    session.select(folder).await?;
    let candidates: Vec<u32> =
        session.list().await?.into_iter().filter(|l| sizes.contains(&u64::from(l.size))).map(|l| l.uid).collect();
    Ok(session.fetch(&candidates).await?.into_iter().map(|f| (MessageHash::of(&f.bytes), f.uid)).collect())
}

impl fmt::Debug for Maildrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Maildrop::Pop3(_) => "Maildrop::Pop3",
            Maildrop::Imap { .. } => "Maildrop::Imap",
        })
    }
}

impl Maildrop {
    /// Connects and logs in; for IMAP also makes Quorum's folders (once) and selects the
    /// Inbox.
    pub async fn open(options: &ConnectOptions, mailbox: &LeasedMailbox, password: &str) -> Result<Self, MailError> {
        let m = &mailbox.settings;
        match m.protocol {
            Protocol::Pop3 => {
                let mut client = Client::connect(options).await?;
                client.capabilities().await?;
                client.login(Credentials::new(m.auth, &m.username, password)).await?;
                Ok(Maildrop::Pop3(client))
            }
            Protocol::Imap => {
                let mut session = Session::connect(&options.endpoint, m.auth, &m.username, password).await?;
                let held = session.folder(&HELD_FOLDER).await?;
                let deleted = session.folder(&DELETED_FOLDER).await?;
                let validity = session.select("INBOX").await?.uid_validity;
                Ok(Maildrop::Imap { session, validity, held, deleted })
            }
        }
    }

    /// Every message in the mailbox (the Inbox, for IMAP), with IMAP's `\Deleted` mark.
    pub async fn entries(&mut self) -> Result<Vec<Entry>, MailError> {
        match self {
            Maildrop::Pop3(client) => {
                let (uidls, sizes) = client.uidl_and_list().await?;
                let sizes: HashMap<u32, u64> = sizes.into_iter().collect();
                Ok(uidls
                    .into_iter()
                    .map(|(id, uidl)| Entry { id, uidl, size: sizes.get(&id).copied().unwrap_or(0), deleted: false })
                    .collect())
            }
            Maildrop::Imap { session, validity, .. } => Ok(session
                .list()
                .await?
                .into_iter()
                .map(|l| Entry {
                    id: l.uid,
                    uidl: format!("{validity}:{}", l.uid),
                    size: u64::from(l.size),
                    deleted: l.deleted,
                })
                .collect()),
        }
    }

    /// The bytes of the messages `requests` (id, size), in one pipelined exchange.
    pub async fn retrieve(&mut self, requests: &[(u32, u64)]) -> Retrieved {
        match self {
            Maildrop::Pop3(client) => {
                let r = client.retr_many(requests).await;
                Retrieved {
                    messages: r.messages.into_iter().map(|m| m.map_err(MailError::from)).collect(),
                    broken: r.broken.map(MailError::from),
                }
            }
            Maildrop::Imap { session, .. } => {
                let uids: Vec<u32> = requests.iter().map(|(id, _)| *id).collect();
                match session.fetch(&uids).await {
                    Ok(fetched) => {
                        let mut by_uid: HashMap<u32, Vec<u8>> = fetched.into_iter().map(|f| (f.uid, f.bytes)).collect();
                        let messages = uids
                            .iter()
                            .map(|uid| {
                                by_uid.remove(uid).ok_or_else(|| {
                                    MailError::Imap(ImapError::Refused {
                                        command: "UID FETCH",
                                        text: "the message left the Inbox meanwhile".into(),
                                    })
                                })
                            })
                            .collect();
                        Retrieved { messages, broken: None }
                    }
                    Err(e) => Retrieved { messages: Vec::new(), broken: Some(e.into()) },
                }
            }
        }
    }

    /// Takes the quarantined messages out of the mailbox; only ever called after their bytes
    /// are committed. Returns what could not be taken out (it will be next time).
    ///
    /// IMAP without MOVE: a move is COPY then expunge, and a crash between the two left the
    /// original in the Inbox and its copy in the folder. So the folder is searched first for
    /// copies of these messages (by size, then by their bytes), and an original whose copy is
    /// there is only expunged: each message ends in exactly one place.
    pub async fn remove(&mut self, removals: &[Removal]) -> Result<Vec<String>, MailError> {
        let mut skipped = Vec::new();
        match self {
            Maildrop::Pop3(client) => {
                let mut ids: Vec<u32> = removals.iter().map(|r| r.id).collect();
                ids.sort_unstable();
                for (n, result) in ids.iter().zip(client.dele_many(&ids).await?) {
                    if let Err(e) = result {
                        skipped.push(format!("DELE of message {n} failed, it will be deleted next time: {e}"));
                    }
                }
            }
            Maildrop::Imap { session, validity, held, deleted } => {
                for (place, folder) in [(Place::Held, &*held), (Place::Deleted, &*deleted)] {
                    let mine: Vec<&Removal> = removals.iter().filter(|r| r.place == place).collect();
                    if mine.is_empty() {
                        continue;
                    }
                    let copied = match session.capabilities().moves {
                        true => HashMap::new(),
                        false => {
                            let sizes = mine.iter().map(|r| r.size).collect();
                            let copies = copies_in(session, folder, &sizes).await?;
                            if session.select("INBOX").await?.uid_validity != *validity {
                                skipped.push(
                                    "the server renumbered the Inbox during the poll: its messages are taken out \
                                     next time"
                                        .into(),
                                );
                                return Ok(skipped);
                            }
                            copies
                        }
                    };
                    let (done, to_move): (Vec<&Removal>, Vec<&Removal>) =
                        mine.into_iter().partition(|r| copied.contains_key(&r.hash));
                    session.expunge(&done.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
                    session.move_to(&to_move.iter().map(|r| r.id).collect::<Vec<_>>(), folder).await?;
                }
            }
        }
        Ok(skipped)
    }

    /// IMAP: moves the copies in `Quorum/Held` of messages decided since (deleted at the
    /// subscriber's word, purged) on to `Quorum/Deleted`, found by size and then by their
    /// bytes' hash. Returns the messages moved and those whose copy is no longer there (the
    /// subscriber's own client took it). The Inbox is selected again afterwards.
    pub async fn clear_held(&mut self, copies: &[HeldCopy]) -> Result<(Vec<i64>, Vec<i64>), MailError> {
        let Maildrop::Imap { session, validity, held, deleted } = self else {
            return Ok((Vec::new(), Vec::new()));
        };
        if copies.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let sizes: HashSet<u64> = copies.iter().map(|c| c.size as u64).collect();
        let by_hash = copies_in(session, held, &sizes).await?;
        let (mut uids, mut moved, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for c in copies {
            let uid = <[u8; 32]>::try_from(c.content_hash.as_slice()).ok().and_then(|h| by_hash.get(&MessageHash(h)));
            match uid {
                Some(uid) => {
                    uids.push(*uid);
                    moved.push(c.message_id);
                }
                None => gone.push(c.message_id),
            }
        }
        session.move_to(&uids, deleted).await?;
        *validity = session.select("INBOX").await?.uid_validity;
        Ok((moved, gone))
    }

    pub fn is_imap(&self) -> bool {
        matches!(self, Maildrop::Imap { .. })
    }

    /// Ends the session: QUIT makes POP3's deletions final. IMAP's moves already are, so a
    /// LOGOUT the server does not answer changes nothing and is no failure.
    pub async fn finish(self) -> Result<(), MailError> {
        match self {
            Maildrop::Pop3(client) => Ok(client.quit().await?),
            Maildrop::Imap { session, .. } => {
                let _ = session.logout().await;
                Ok(())
            }
        }
    }
}
