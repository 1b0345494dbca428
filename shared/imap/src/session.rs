//! One IMAP session on tokio, over [`quorum_transport::Transport`].
//!
//! Every wait for the server is bounded by [`ConnectOptions::timeout`], per response rather
//! than per command, so a large FETCH on a slow but live link still arrives while a silent
//! server is given up on. A timeout or a lost connection leaves the protocol state unknown
//! (half a response may be unread), so the session is then [`ImapError::Broken`] for every
//! later call: the caller opens a new one.

use std::{future::Future, time::Duration};

use async_imap::{
    Authenticator, Client,
    extensions::idle::IdleResponse,
    imap_proto::{AttributeValue, MailboxDatum, Response, Status},
    types::{NameAttribute, UnsolicitedResponse},
};
use futures::{Stream, StreamExt};
use quorum_domain::{AuthMethod, Security};
use quorum_transport::{Endpoint, Transport};

use crate::{ImapError, uids};

/// What the server offers beyond IMAP4rev1, as far as Quorum uses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// RFC 2177: new mail is announced on an open connection.
    pub idle: bool,
    /// RFC 6851: `UID MOVE`; without it a move is COPY, `\Deleted` and EXPUNGE.
    pub moves: bool,
    /// RFC 4315: `UID EXPUNGE` removes only the messages named.
    pub uidplus: bool,
    /// RFC 7162: per-message modification sequences.
    pub condstore: bool,
}

/// A mailbox as SELECT reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// UIDs are only comparable within one UIDVALIDITY (RFC 3501 section 2.3.1.1): when it
    /// changes, every UID remembered for the mailbox means nothing.
    pub uid_validity: u32,
    pub uid_next: Option<u32>,
    pub exists: u32,
}

/// One message of the selected mailbox, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub uid: u32,
    /// RFC822.SIZE: the message's size in octets as the server would send it.
    pub size: u32,
    /// Its keywords (flags without a backslash), e.g. the one Quorum sets on released mail.
    pub keywords: Vec<String>,
    /// Read by the subscriber (Quorum only peeks: it never sets this).
    pub seen: bool,
    /// Marked `\Deleted` by some client and not yet expunged.
    pub deleted: bool,
}

/// One message's bytes, exactly as the server stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uid: u32,
    pub bytes: Vec<u8>,
}

pub struct Session {
    inner: async_imap::Session<Transport>,
    capabilities: Capabilities,
    timeout: Duration,
    /// The server's hierarchy delimiter once asked (`None` inside: a flat namespace).
    delimiter: Option<Option<char>>,
    broken: bool,
    /// A new message was announced during another command ([`Session::idle`] reports it).
    announced: bool,
}

/// One untagged FETCH answer, as far as Quorum reads it.
#[derive(Default)]
struct FetchItem {
    uid: Option<u32>,
    size: Option<u32>,
    flags: Vec<String>,
    body: Option<Vec<u8>>,
}

/// SASL PLAIN (RFC 4616): one response, `authzid NUL authcid NUL password`.
struct Plain<'a> {
    user: &'a str,
    password: &'a str,
}

impl Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        [b"\0", self.user.as_bytes(), b"\0", self.password.as_bytes()].concat()
    }
}

/// `fut` within `timeout`, its error named after `command`.
async fn within<T>(
    timeout: Duration,
    command: &'static str,
    fut: impl Future<Output = async_imap::error::Result<T>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ImapError::Timeout { during: command, seconds: timeout.as_secs() })?
        .map_err(|e| ImapError::from_imap(command, e))
}

/// Every item of a response stream, each within `timeout`.
async fn drain<T>(
    timeout: Duration,
    command: &'static str,
    stream: impl Stream<Item = async_imap::error::Result<T>>,
) -> Result<Vec<T>, ImapError> {
    let mut stream = std::pin::pin!(stream);
    let mut out = Vec::new();
    while let Some(item) = tokio::time::timeout(timeout, stream.next())
        .await
        .map_err(|_| ImapError::Timeout { during: command, seconds: timeout.as_secs() })?
    {
        out.push(item.map_err(|e| ImapError::from_imap(command, e))?);
    }
    Ok(out)
}

impl Session {
    /// Connects, reads the greeting, upgrades with STARTTLS for [`Security::StartTls`], and
    /// logs in: `AUTHENTICATE PLAIN` for [`AuthMethod::Plain`], `LOGIN` otherwise (every
    /// IMAP server has it, and it carries the same secret as PLAIN).
    pub async fn connect(opts: &Endpoint, method: AuthMethod, user: &str, password: &str) -> Result<Self, ImapError> {
        let transport = Transport::connect(opts).await?;
        let mut client = Client::new(transport);
        greeting(&mut client, opts.timeout).await?;
        if opts.security == Security::StartTls {
            within(opts.timeout, "STARTTLS", client.run_command_and_check_ok("STARTTLS", None)).await?;
            // async-imap's buffer goes with the client: anything the server sent after its
            // answer (plaintext an attacker could inject) is dropped, never read as TLS.
            let mut transport = client.into_inner();
            transport.start_tls(opts).await?;
            client = Client::new(transport);
        }
        if user.contains(['\r', '\n', '\0']) || password.contains(['\r', '\n', '\0']) {
            return Err(ImapError::InvalidArgument("a user name or password with a line break or NUL"));
        }
        let login = async {
            match method {
                AuthMethod::Plain => client.authenticate("PLAIN", Plain { user, password }).await,
                _ => client.login(user, password).await,
            }
        };
        let mut inner = tokio::time::timeout(opts.timeout, login)
            .await
            .map_err(|_| ImapError::Timeout { during: "logging in", seconds: opts.timeout.as_secs() })?
            .map_err(|(e, _)| match e {
                async_imap::error::Error::No(text) => ImapError::Auth(text),
                other => ImapError::from_imap("LOGIN", other),
            })?;
        // RFC 3501: capabilities may change at login; ask after it.
        let caps = within(opts.timeout, "CAPABILITY", inner.capabilities()).await?;
        let capabilities = Capabilities {
            idle: caps.has_str("IDLE"),
            moves: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
            condstore: caps.has_str("CONDSTORE"),
        };
        Ok(Session { inner, capabilities, timeout: opts.timeout, delimiter: None, broken: false, announced: false })
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Runs one step of the session; a timeout or a lost connection breaks it for good.
    async fn step<T>(&mut self, f: impl AsyncFnOnce(&mut Self) -> Result<T, ImapError>) -> Result<T, ImapError> {
        if self.broken {
            return Err(ImapError::Broken);
        }
        let result = f(self).await;
        if let Err(e) = &result {
            self.broken = matches!(
                e,
                ImapError::Timeout { .. } | ImapError::Closed(_) | ImapError::Transport(_) | ImapError::Protocol { .. }
            );
        }
        result
    }

    /// The folder at `path` (e.g. `["Quorum", "Held"]`) under the server's own name for it,
    /// created and subscribed if it is not there yet (subscribed so that the subscriber's
    /// mail client shows it).
    pub async fn folder(&mut self, path: &[&str]) -> Result<String, ImapError> {
        for part in path {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_graphic() || b == b' ') || part.contains(['%', '*'])
            {
                return Err(ImapError::InvalidArgument("a folder name outside printable ASCII"));
            }
        }
        self.step(async |s| {
            let delimiter = s.delimiter().await?;
            let name = match delimiter {
                Some(d) if path.iter().any(|p| p.contains(d)) => {
                    return Err(ImapError::InvalidArgument("a folder name holding the server's delimiter"));
                }
                Some(d) => path.join(&d.to_string()),
                // A flat namespace has no hierarchy: one folder named after the whole path.
                None => path.join(" "),
            };
            if !s.exists(&name).await? {
                if let Err(e) = within(s.timeout, "CREATE", s.inner.create(&name)).await {
                    // Created meanwhile by another session (RFC 5530 `[ALREADYEXISTS]`):
                    // what matters is that it exists now.
                    if !s.exists(&name).await? {
                        return Err(e);
                    }
                }
                within(s.timeout, "SUBSCRIBE", s.inner.subscribe(&name)).await?;
            }
            Ok(name)
        })
        .await
    }

    async fn delimiter(&mut self) -> Result<Option<char>, ImapError> {
        if let Some(d) = self.delimiter {
            return Ok(d);
        }
        // LIST "" "": the hierarchy delimiter without listing any mailbox (RFC 3501 6.3.8).
        let stream = within(self.timeout, "LIST", self.inner.list(None, Some(&quoted("")))).await?;
        let names = drain(self.timeout, "LIST", stream).await?;
        let d = names.first().and_then(|n| n.delimiter()).and_then(|d| d.chars().next());
        self.delimiter = Some(d);
        Ok(d)
    }

    async fn exists(&mut self, name: &str) -> Result<bool, ImapError> {
        // async-imap sends the pattern as given, so it is quoted here.
        let stream = within(self.timeout, "LIST", self.inner.list(None, Some(&quoted(name)))).await?;
        let names = drain(self.timeout, "LIST", stream).await?;
        Ok(names.iter().any(|n| n.name() == name && !n.attributes().contains(&NameAttribute::NoSelect)))
    }

    /// Selects a mailbox for the calls below.
    pub async fn select(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        self.step(async |s| {
            let m = within(s.timeout, "SELECT", s.inner.select(mailbox)).await?;
            let uid_validity = m.uid_validity.ok_or_else(|| ImapError::Protocol {
                during: "SELECT",
                text: "no UIDVALIDITY in the answer (RFC 3501 requires it)".into(),
            })?;
            Ok(Selected { uid_validity, uid_next: m.uid_next, exists: m.exists })
        })
        .await
    }

    /// Every message of the selected mailbox: UID, size, keywords; no bytes.
    pub async fn list(&mut self) -> Result<Vec<Listed>, ImapError> {
        self.step(async |s| {
            let mut listed = Vec::new();
            for item in s.uid_fetch("UID FETCH 1:* (UID RFC822.SIZE FLAGS)").await? {
                // An unsolicited FETCH (another client changed a flag) has no RFC822.SIZE.
                let (Some(uid), Some(size)) = (item.uid, item.size) else { continue };
                let has = |flag: &str| item.flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
                let (seen, deleted) = (has("\\Seen"), has("\\Deleted"));
                let keywords = item.flags.into_iter().filter(|f| !f.starts_with('\\')).collect();
                listed.push(Listed { uid, size, keywords, seen, deleted });
            }
            listed.sort_by_key(|l| l.uid);
            Ok(listed)
        })
        .await
    }

    /// The bytes of the messages `uids` of the selected mailbox, in one pipelined command,
    /// without setting `\Seen` (BODY.PEEK). A UID expunged meanwhile is simply absent.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<Fetched>, ImapError> {
        let Some(set) = uids::set(uids) else { return Ok(Vec::new()) };
        self.step(async |s| {
            let items = s.uid_fetch(&format!("UID FETCH {set} (UID BODY.PEEK[])")).await?;
            let mut out: Vec<Fetched> = items
                .into_iter()
                .filter_map(|i| Some(Fetched { uid: i.uid?, bytes: i.body? }))
                .filter(|f| uids.contains(&f.uid))
                .collect();
            out.sort_by_key(|f| f.uid);
            out.dedup_by_key(|f| f.uid);
            Ok(out)
        })
        .await
    }

    /// Sends a UID FETCH and reads its answers up to its tagged status, each within the
    /// timeout. Read here rather than through async-imap's FETCH stream, which ends at the
    /// tagged line without looking at it: a refused FETCH must not pass for an empty
    /// mailbox. A new message announced meanwhile is remembered for [`Session::idle`].
    async fn uid_fetch(&mut self, command: &str) -> Result<Vec<FetchItem>, ImapError> {
        const DURING: &str = "UID FETCH";
        let tag = within(self.timeout, DURING, self.inner.run_command(command)).await?;
        let mut items = Vec::new();
        loop {
            let response = tokio::time::timeout(self.timeout, self.inner.read_response())
                .await
                .map_err(|_| ImapError::Timeout { during: DURING, seconds: self.timeout.as_secs() })?
                .map_err(|e| ImapError::Transport(e.into()))?
                .ok_or(ImapError::Closed(DURING))?;
            match response.parsed() {
                Response::Fetch(_, attributes) => {
                    let mut item = FetchItem::default();
                    for a in attributes {
                        match a {
                            AttributeValue::Uid(uid) => item.uid = Some(*uid),
                            AttributeValue::Rfc822Size(size) => item.size = Some(*size),
                            AttributeValue::Flags(flags) => item.flags = flags.iter().map(|f| f.to_string()).collect(),
                            AttributeValue::BodySection { data: Some(data), .. } => item.body = Some(data.to_vec()),
                            _ => {}
                        }
                    }
                    items.push(item);
                }
                Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_)) => self.announced = true,
                Response::Done { tag: done, status, outcome } if *done == tag => {
                    return match status {
                        Status::Ok => Ok(items),
                        _ => Err(ImapError::Refused {
                            command: DURING,
                            text: outcome.information.as_deref().unwrap_or("refused").to_string(),
                        }),
                    };
                }
                _ => {}
            }
        }
    }

    /// Moves the messages `uids` of the selected mailbox to `mailbox`, keeping their bytes
    /// and flags. With MOVE, one atomic command: each message is in exactly one of the two.
    /// Without, COPY then [`Session::expunge`]: a crash between them leaves a message in
    /// both, never in neither (the caller recognises the copy it already made by its bytes
    /// and only expunges the original the next time).
    pub async fn move_to(&mut self, uids: &[u32], mailbox: &str) -> Result<(), ImapError> {
        let Some(set) = uids::set(uids) else { return Ok(()) };
        self.step(async |s| {
            if s.capabilities.moves {
                return within(s.timeout, "UID MOVE", s.inner.uid_mv(&set, mailbox)).await;
            }
            within(s.timeout, "UID COPY", s.inner.uid_copy(&set, mailbox)).await?;
            s.mark_and_expunge(&set).await
        })
        .await
    }

    /// Removes the messages `uids` from the selected mailbox: `\Deleted`, then expunged.
    /// Without UIDPLUS the expunge is a plain EXPUNGE, which also removes whatever other
    /// messages a client had marked `\Deleted`, as that client asked.
    pub async fn expunge(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        let Some(set) = uids::set(uids) else { return Ok(()) };
        self.step(async |s| s.mark_and_expunge(&set).await).await
    }

    async fn mark_and_expunge(&mut self, set: &str) -> Result<(), ImapError> {
        // Each step's tagged answer is checked (async-imap's STORE and EXPUNGE streams end at
        // it without looking): a refused step must not pass for done.
        let store = format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)");
        within(self.timeout, "UID STORE", self.inner.run_command_and_check_ok(&store)).await?;
        let expunge = if self.capabilities.uidplus { format!("UID EXPUNGE {set}") } else { "EXPUNGE".into() };
        within(self.timeout, "EXPUNGE", self.inner.run_command_and_check_ok(&expunge)).await
    }

    /// Sets the keyword `keyword` (an atom such as `$QuorumReleased`) on the messages `uids`.
    pub async fn add_keyword(&mut self, uids: &[u32], keyword: &str) -> Result<(), ImapError> {
        // RFC 3501 flag-keyword = atom: no specials, no backslash (system flags are not ours).
        let atom = !keyword.is_empty() && keyword.bytes().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
        if !atom {
            return Err(ImapError::InvalidArgument("a keyword that is not an IMAP atom"));
        }
        let Some(set) = uids::set(uids) else { return Ok(()) };
        self.step(async |s| {
            let store = format!("UID STORE {set} +FLAGS.SILENT ({keyword})");
            within(s.timeout, "UID STORE", s.inner.run_command_and_check_ok(&store)).await
        })
        .await
    }

    /// Waits in IDLE (RFC 2177) for the selected mailbox to change, at most `wait`, and
    /// ends the IDLE again. True when the server announced a new message (EXISTS or
    /// RECENT); other news (a flag changed, a message expunged, by this or another client)
    /// and the end of `wait` return false. async-imap's own IDLE timeout restarts with every
    /// keepalive the server sends (`* OK Still here`), so `wait` is kept on a timer here:
    /// the caller re-issues IDLE before the server's limit (30 minutes at least).
    pub async fn idle(self, wait: Duration) -> Result<(Self, bool), ImapError> {
        if self.broken {
            return Err(ImapError::Broken);
        }
        if !self.capabilities.idle {
            return Err(ImapError::Unsupported("IDLE"));
        }
        let Session { inner, capabilities, timeout, delimiter, announced, .. } = self;
        // What the server said between commands (after the last IDLE's DONE, or during
        // other commands) went to async-imap's channel of unsolicited responses, or was
        // noted while reading a FETCH: a message announced there is news now.
        let mut announced = announced;
        while let Ok(response) = inner.unsolicited_responses.try_recv() {
            announced |= matches!(response, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
        }
        if announced {
            return Ok((Session { inner, capabilities, timeout, delimiter, broken: false, announced: false }, true));
        }
        let mut handle = inner.idle();
        within(timeout, "IDLE", handle.init()).await?;
        let news = {
            // The crate's timer is only a backstop behind ours.
            let (waiting, _interrupt) = handle.wait_with_timeout(wait + timeout);
            match tokio::time::timeout(wait, waiting).await {
                Err(_) => false,
                Ok(Ok(IdleResponse::NewData(response))) => matches!(
                    response.parsed(),
                    Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_))
                ),
                Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) => false,
                Ok(Err(e)) => return Err(ImapError::from_imap("IDLE", e)),
            }
        };
        let inner = within(timeout, "DONE", handle.done()).await?;
        Ok((Session { inner, capabilities, timeout, delimiter, broken: false, announced: false }, news))
    }

    /// Ends the session politely; a server that does not answer LOGOUT costs one timeout.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        if self.broken {
            return Ok(());
        }
        within(self.timeout, "LOGOUT", self.inner.logout()).await
    }
}

/// `s` as an IMAP quoted string (RFC 3501 section 9, `quoted`); callers have refused line
/// breaks and NUL, which a quoted string cannot hold.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Reads the greeting: `OK` to go on, `PREAUTH` is refused (Quorum logs in with the
/// subscriber's own credentials, never into whatever session a server hands out), `BYE` is
/// the server turning us away.
async fn greeting(client: &mut Client<Transport>, timeout: Duration) -> Result<(), ImapError> {
    let response = tokio::time::timeout(timeout, client.read_response())
        .await
        .map_err(|_| ImapError::Timeout { during: "reading the greeting", seconds: timeout.as_secs() })?
        .map_err(|e| ImapError::Transport(e.into()))?
        .ok_or(ImapError::Closed("reading the greeting"))?;
    match response.parsed() {
        Response::Data { status: Status::Ok, .. } => Ok(()),
        Response::Data { status, outcome } => Err(ImapError::Refused {
            command: "connection",
            text: format!("{status:?} {}", outcome.information.as_deref().unwrap_or("")),
        }),
        _ => Err(ImapError::Protocol { during: "reading the greeting", text: "not a greeting".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_escape_quotes_and_backslashes() {
        assert_eq!(quoted(""), r#""""#);
        assert_eq!(quoted(r#"Quorum.Held"#), r#""Quorum.Held""#);
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
