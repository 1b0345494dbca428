//! A POP3 session on tokio.
//!
//! Every wait for the server (connect, each read, each write) is bounded by
//! [`ConnectOptions::timeout`]: a stalled server costs one timeout, never a stuck worker.
//! The timeout is per wait rather than per command so a large message on a slow but live
//! link still arrives, while a silent server is given up on.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use quorum_transport::{Endpoint, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use quorum_domain::Security;

use crate::{
    Pop3Error,
    proto::{self, Capabilities, MultilineDecoder, StatusKind, StatusLine, StatusParse},
};

/// Longest CAPA, UIDL or LIST answer accepted (a mailbox of a million messages fits).
const MAX_LISTING: u64 = 64 * 1024 * 1024;
/// Most commands sent in one pipelined write: their bytes must fit the socket's send
/// buffer, so writing them can never wait on the server reading (RFC 2449 section 6.6).
pub const MAX_PIPELINE: usize = 64;

#[derive(Clone)]
pub struct ConnectOptions {
    pub endpoint: Endpoint,
    /// Messages larger than this are not kept (see [`Pop3Error::TooLarge`]).
    pub max_message_size: u64,
}

pub enum Credentials<'a> {
    /// USER/PASS.
    User { user: &'a str, password: &'a str },
    /// APOP: needs a timestamp in the greeting.
    Apop { user: &'a str, password: &'a str },
    /// AUTH PLAIN (SASL).
    Plain { user: &'a str, password: &'a str },
    /// SASL PLAIN when advertised, USER/PASS otherwise.
    Auto { user: &'a str, password: &'a str },
}

impl<'a> Credentials<'a> {
    pub fn new(method: quorum_domain::AuthMethod, user: &'a str, password: &'a str) -> Self {
        use quorum_domain::AuthMethod;
        match method {
            AuthMethod::Auto => Credentials::Auto { user, password },
            AuthMethod::User => Credentials::User { user, password },
            AuthMethod::Apop => Credentials::Apop { user, password },
            AuthMethod::Plain => Credentials::Plain { user, password },
        }
    }
}

/// The framed connection: a transport plus the bytes read but not yet parsed.
struct Connection {
    transport: Transport,
    buf: BytesMut,
    timeout: Duration,
}

impl Connection {
    async fn fill(&mut self, during: &'static str) -> Result<(), Pop3Error> {
        self.buf.reserve(64 * 1024);
        let read = tokio::time::timeout(self.timeout, self.transport.read_buf(&mut self.buf))
            .await
            .map_err(|_| self.timed_out(during))??;
        if read == 0 { Err(Pop3Error::Closed(during)) } else { Ok(()) }
    }

    fn timed_out(&self, during: &'static str) -> Pop3Error {
        Pop3Error::Timeout { during, seconds: self.timeout.as_secs() }
    }

    async fn send(&mut self, bytes: &[u8], during: &'static str) -> Result<(), Pop3Error> {
        let write = async {
            self.transport.write_all(bytes).await?;
            self.transport.flush().await
        };
        let done = tokio::time::timeout(self.timeout, write).await;
        done.map_err(|_| self.timed_out(during))??;
        Ok(())
    }

    async fn read_status(&mut self, during: &'static str) -> Result<StatusLine, Pop3Error> {
        loop {
            match proto::parse_status_line(&self.buf).map_err(Pop3Error::Protocol)? {
                StatusParse::Line(line, len) => {
                    self.buf.advance(len);
                    return Ok(line);
                }
                StatusParse::Incomplete => self.fill(during).await?,
            }
        }
    }

    async fn read_block(
        &mut self,
        mut decoder: MultilineDecoder,
        during: &'static str,
    ) -> Result<Result<Vec<u8>, u64>, Pop3Error> {
        loop {
            let used = decoder.feed(&self.buf);
            self.buf.advance(used);
            if decoder.is_done() {
                return Ok(decoder.finish());
            }
            self.fill(during).await?;
        }
    }
}

pub struct Client {
    conn: Connection,
    greeting: String,
    capabilities: Option<Capabilities>,
    max_message_size: u64,
}

impl Client {
    /// Connects, reads the greeting and, for [`Security::StartTls`], upgrades with STLS.
    pub async fn connect(opts: &ConnectOptions) -> Result<Self, Pop3Error> {
        let transport = Transport::connect(&opts.endpoint).await?;
        let mut conn =
            Connection { transport, buf: BytesMut::with_capacity(64 * 1024), timeout: opts.endpoint.timeout };
        let greeting = conn.read_status("reading the greeting").await?;
        if greeting.kind != StatusKind::Ok {
            return Err(Pop3Error::Refused { command: "connection", code: greeting.code, text: greeting.text });
        }
        let mut client =
            Client { conn, greeting: greeting.text, capabilities: None, max_message_size: opts.max_message_size };
        if opts.endpoint.security == Security::StartTls {
            client.starttls(opts).await?;
        }
        Ok(client)
    }

    async fn starttls(&mut self, opts: &ConnectOptions) -> Result<(), Pop3Error> {
        if !self.capabilities().await?.has("STLS") {
            return Err(Pop3Error::Unsupported("STLS (STARTTLS); choose implicit TLS or another port"));
        }
        self.command("STLS", &[]).await?;
        if !self.conn.buf.is_empty() {
            // Bytes after +OK and before the handshake would be injected plaintext.
            return Err(Pop3Error::Protocol("data after the STLS response".into()));
        }
        self.conn.transport.start_tls(&opts.endpoint).await?;
        // RFC 2595: forget what was learnt before TLS; ask again.
        self.capabilities = None;
        Ok(())
    }

    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// CAPA, cached. A server without CAPA (plain RFC 1939) has no capabilities.
    pub async fn capabilities(&mut self) -> Result<&Capabilities, Pop3Error> {
        if self.capabilities.is_none() {
            self.conn.send(b"CAPA\r\n", "sending CAPA").await?;
            let status = self.conn.read_status("reading CAPA").await?;
            let caps = if status.kind == StatusKind::Ok {
                let block = self.read_listing("reading CAPA").await?;
                Capabilities::parse(&block)
            } else {
                Capabilities::default()
            };
            self.capabilities = Some(caps);
        }
        Ok(self.capabilities.as_ref().expect("just set"))
    }

    pub async fn login(&mut self, credentials: Credentials<'_>) -> Result<(), Pop3Error> {
        match credentials {
            Credentials::User { user, password } => self.login_user(user, password).await,
            Credentials::Apop { user, password } => {
                check("user name", user)?;
                let ts = proto::apop_timestamp(&self.greeting)
                    .ok_or(Pop3Error::Unsupported("APOP (no timestamp in the greeting)"))?
                    .to_string();
                let digest = proto::apop_digest(&ts, password);
                self.command("APOP", &[user, &digest]).await.map(drop)
            }
            Credentials::Plain { user, password } => self.login_sasl_plain(user, password).await,
            Credentials::Auto { user, password } => {
                if self.capabilities().await?.sasl("PLAIN") {
                    self.login_sasl_plain(user, password).await
                } else {
                    self.login_user(user, password).await
                }
            }
        }
    }

    /// USER then PASS; one round trip where the server advertised PIPELINING (RFC 2449:
    /// the client need not wait for an answer before the next command). A refused USER is
    /// the error even then, after PASS's answer is read.
    async fn login_user(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        check("user name", user)?;
        check("password", password)?;
        if self.pipeline_window() == 1 {
            self.command("USER", &[user]).await?;
            return self.command("PASS", &[password]).await.map(drop);
        }
        let mut both = proto::command("USER", &[user]);
        both.extend(proto::command("PASS", &[password]));
        self.conn.send(&both, "USER").await?;
        let user = self.read_ok("USER").await;
        let password = self.read_ok("PASS").await;
        user?;
        password.map(drop)
    }

    async fn login_sasl_plain(&mut self, user: &str, password: &str) -> Result<(), Pop3Error> {
        check("user name", user)?;
        check("password", password)?;
        self.conn.send(b"AUTH PLAIN\r\n", "sending AUTH").await?;
        let status = self.conn.read_status("reading the AUTH response").await?;
        if status.kind != StatusKind::Continue {
            return Err(refused("AUTH PLAIN", status));
        }
        let mut line = proto::sasl_plain(user, password).into_bytes();
        line.extend_from_slice(b"\r\n");
        self.conn.send(&line, "sending credentials").await?;
        let status = self.conn.read_status("reading the AUTH result").await?;
        match status.kind {
            StatusKind::Ok => Ok(()),
            _ => Err(refused("AUTH PLAIN", status)),
        }
    }

    /// STAT: number of messages and their total size in octets.
    pub async fn stat(&mut self) -> Result<(u32, u64), Pop3Error> {
        let status = self.command("STAT", &[]).await?;
        let mut words = status.text.split_whitespace().map(str::parse::<u64>);
        match (words.next(), words.next()) {
            (Some(Ok(n)), Some(Ok(size))) => Ok((n as u32, size)),
            _ => Err(Pop3Error::Protocol(format!("malformed STAT answer {:?}", status.text))),
        }
    }

    /// UIDL: message number and unique id of every message. A unique id listed twice
    /// breaks the one promise Quorum relies on to recognise messages, so it is an error.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.conn.send(b"UIDL\r\n", "UIDL").await?;
        self.read_uidl().await
    }

    /// UIDL and LIST: one round trip where the server advertised PIPELINING. Both answers
    /// are read before either error is returned, so the session stays in step.
    pub async fn uidl_and_list(&mut self) -> Result<(Vec<(u32, String)>, Vec<(u32, u64)>), Pop3Error> {
        if self.pipeline_window() == 1 {
            return Ok((self.uidl().await?, self.list().await?));
        }
        self.conn.send(b"UIDL\r\nLIST\r\n", "UIDL").await?;
        let uidls = self.read_uidl().await;
        let sizes = self.read_list().await;
        Ok((uidls?, sizes?))
    }

    async fn read_uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        match self.read_ok("UIDL").await {
            Ok(_) => {}
            // -ERR without a response code: the RFC 1939 way of saying "not supported".
            Err(Pop3Error::Refused { code: None, .. }) => {
                return Err(Pop3Error::Unsupported("UIDL, which Quorum needs to recognise messages it has seen"));
            }
            Err(e) => return Err(e),
        }
        let block = self.read_listing("reading UIDL").await?;
        let listing = proto::parse_listing(&block).map_err(Pop3Error::Protocol)?;
        let mut seen = std::collections::HashSet::with_capacity(listing.len());
        if let Some((_, dup)) = listing.iter().find(|(_, uidl)| !seen.insert(uidl.as_str())) {
            return Err(Pop3Error::Protocol(format!("UIDL lists the unique id {dup:?} twice")));
        }
        Ok(listing)
    }

    /// LIST: message number and size in octets of every message.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.conn.send(b"LIST\r\n", "LIST").await?;
        self.read_list().await
    }

    async fn read_list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.read_ok("LIST").await?;
        let block = self.read_listing("reading LIST").await?;
        proto::parse_listing(&block)
            .map_err(Pop3Error::Protocol)?
            .into_iter()
            .map(|(n, size)| {
                size.parse::<u64>()
                    .map(|s| (n, s))
                    .map_err(|_| Pop3Error::Protocol(format!("malformed LIST size {size:?}")))
            })
            .collect()
    }

    /// Retrieves one message, byte for byte.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>, Pop3Error> {
        let mut got = self.retr_many(&[(n, 0)]).await;
        match got.broken {
            Some(e) => Err(e),
            None => got.messages.pop().expect("one answer per request"),
        }
    }

    /// Retrieves several messages, pipelined when the server advertises PIPELINING.
    /// `requests` holds (message number, expected size from LIST, 0 if unknown).
    /// One result per request, in order: a message the server refuses or one over the size
    /// limit is an error in its slot. If the connection breaks, the messages received
    /// before are still returned (so they can be committed) and `broken` says why.
    pub async fn retr_many(&mut self, requests: &[(u32, u64)]) -> Retrieved {
        let mut messages = Vec::with_capacity(requests.len());
        let broken = self.retr_into(requests, &mut messages).await.err();
        Retrieved { messages, broken }
    }

    async fn retr_into(
        &mut self,
        requests: &[(u32, u64)],
        results: &mut Vec<Result<Vec<u8>, Pop3Error>>,
    ) -> Result<(), Pop3Error> {
        let limit = self.max_message_size;
        for chunk in requests.chunks(self.pipeline_window()) {
            let numbers: Vec<u32> = chunk.iter().map(|(n, _)| *n).collect();
            self.conn.send(&numbered_commands("RETR", &numbers), "sending RETR").await?;
            for &(_, expected) in chunk {
                let status = self.conn.read_status("reading the RETR response").await?;
                if status.kind != StatusKind::Ok {
                    results.push(Err(refused("RETR", status)));
                    continue;
                }
                let decoder = MultilineDecoder::with_capacity(limit, expected as usize);
                let block = self.conn.read_block(decoder, "reading a message").await?;
                results.push(block.map_err(|size| Pop3Error::TooLarge { size, limit }));
            }
        }
        Ok(())
    }

    /// Marks messages deleted (they go at QUIT), pipelined when possible. Returns one result
    /// per message.
    pub async fn dele_many(&mut self, numbers: &[u32]) -> Result<Vec<Result<(), Pop3Error>>, Pop3Error> {
        let mut results = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(self.pipeline_window()) {
            self.conn.send(&numbered_commands("DELE", chunk), "sending DELE").await?;
            for _ in chunk {
                let status = self.conn.read_status("reading the DELE response").await?;
                results.push(if status.kind == StatusKind::Ok { Ok(()) } else { Err(refused("DELE", status)) });
            }
        }
        Ok(results)
    }

    /// How many commands to send before reading answers: all of a window when the server
    /// advertised PIPELINING, otherwise one at a time.
    fn pipeline_window(&self) -> usize {
        if self.capabilities.as_ref().is_some_and(|c| c.has("PIPELINING")) { MAX_PIPELINE } else { 1 }
    }

    /// RSET: undo every DELE of this session.
    pub async fn rset(&mut self) -> Result<(), Pop3Error> {
        self.command("RSET", &[]).await.map(drop)
    }

    /// QUIT: the server now removes the messages marked deleted (RFC 1939 UPDATE state).
    /// Only a positive answer means they are gone.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT", &[]).await?;
        // The TLS close_notify is a courtesy: bounded like every other wait, result ignored.
        let _ = tokio::time::timeout(self.conn.timeout, self.conn.transport.shutdown()).await;
        Ok(())
    }

    /// Sends a command and requires `+OK`.
    async fn command(&mut self, verb: &'static str, args: &[&str]) -> Result<StatusLine, Pop3Error> {
        self.conn.send(&proto::command(verb, args), verb).await?;
        self.read_ok(verb).await
    }

    /// The next status line, an error unless it is `+OK`.
    async fn read_ok(&mut self, verb: &'static str) -> Result<StatusLine, Pop3Error> {
        let status = self.conn.read_status(verb).await?;
        match status.kind {
            StatusKind::Ok => Ok(status),
            _ => Err(refused(verb, status)),
        }
    }

    async fn read_listing(&mut self, during: &'static str) -> Result<Vec<u8>, Pop3Error> {
        self.conn
            .read_block(MultilineDecoder::new(MAX_LISTING), during)
            .await?
            .map_err(|size| Pop3Error::TooLarge { size, limit: MAX_LISTING })
    }
}

/// The outcome of [`Client::retr_many`].
pub struct Retrieved {
    /// One result per request answered before the connection broke (all, if it did not).
    pub messages: Vec<Result<Vec<u8>, Pop3Error>>,
    /// Why the connection broke, if it did; the remaining requests got no answer.
    pub broken: Option<Pop3Error>,
}

/// `VERB n` lines for a pipelined write.
fn numbered_commands(verb: &str, numbers: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(numbers.len() * 16);
    for n in numbers {
        out.extend_from_slice(&proto::command(verb, &[&n.to_string()]));
    }
    out
}

fn refused(command: &'static str, status: StatusLine) -> Pop3Error {
    Pop3Error::Refused { command, code: status.code, text: status.text }
}

fn check(what: &'static str, arg: &str) -> Result<(), Pop3Error> {
    if proto::check_argument(arg) { Ok(()) } else { Err(Pop3Error::InvalidArgument(what)) }
}
