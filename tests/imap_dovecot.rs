//! The mail stack's IMAP service, which IMAP mailboxes will be polled and watched through:
//! after login it offers what Quorum relies on (IDLE, MOVE, UIDPLUS, CONDSTORE), on the
//! plain port with STARTTLS and on implicit TLS, and a message dropped into the Maildir
//! comes back byte for byte from `UID FETCH BODY.PEEK[]`. Spoken in raw IMAP, reading
//! literals by their announced length: this checks the server, and is the reference a
//! client crate's bytes will be compared with; async-imap, the crate chosen, is held to it.

use std::time::Duration;

use quorum_pop3::TlsSettings;
use quorum_tests::MailStack;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

/// The length a line announces for the literal after it (`... {123}\r\n`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}\r\n")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

/// Whether `buf` holds a whole response ending in the tagged status line for `tag`;
/// literals are skipped by their length, so nothing inside a message can end it early.
fn complete(buf: &[u8], tag: &str) -> bool {
    let mut at = 0;
    while let Some(lf) = buf[at..].iter().position(|&b| b == b'\n') {
        let line = &buf[at..at + lf + 1];
        if line.starts_with(format!("{tag} ").as_bytes()) {
            return true;
        }
        at += lf + 1 + literal_len(line).unwrap_or(0);
        if at > buf.len() {
            return false;
        }
    }
    false
}

/// Sends one command and returns everything up to and including its tagged status line.
async fn exchange(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), tag: &str, command: &str) -> Vec<u8> {
    stream.write_all(format!("{tag} {command}\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    while !complete(&buf, tag) {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no answer to {command}"))
            .unwrap();
        assert!(n > 0, "the server closed the connection during {command}");
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = buf.rsplit(|&b| b == b'\n').nth(1).unwrap_or_default();
    assert!(status.starts_with(format!("{tag} OK").as_bytes()), "{command}: {}", String::from_utf8_lossy(&buf));
    buf
}

/// The first literal of a response, exactly as long as announced.
fn first_literal(buf: &[u8]) -> &[u8] {
    let mut at = 0;
    while let Some(lf) = buf[at..].iter().position(|&b| b == b'\n') {
        let line = &buf[at..at + lf + 1];
        at += lf + 1;
        if let Some(n) = literal_len(line) {
            return &buf[at..at + n];
        }
    }
    panic!("no literal in {}", String::from_utf8_lossy(buf));
}

async fn greeting(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Logs in, checks the capabilities, and fetches the one message of the mailbox.
async fn session(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), email: &str, password: &str) -> Vec<u8> {
    let login = exchange(stream, "a1", &format!("LOGIN \"{email}\" \"{password}\"")).await;
    let caps = String::from_utf8_lossy(&exchange(stream, "a2", "CAPABILITY").await).into_owned();
    for cap in ["IDLE", "MOVE", "UIDPLUS", "CONDSTORE"] {
        assert!(caps.split_whitespace().any(|c| c == cap), "{cap} missing: {caps} (login said {login:?})");
    }
    fetch_only(stream).await
}

/// Logs in and fetches the one message of the mailbox.
async fn session_bytes(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), email: &str, password: &str) -> Vec<u8> {
    exchange(stream, "a1", &format!("LOGIN \"{email}\" \"{password}\"")).await;
    fetch_only(stream).await
}

async fn fetch_only(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> Vec<u8> {
    exchange(stream, "a3", "SELECT INBOX").await;
    let fetched = exchange(stream, "a4", "UID FETCH 1:* (UID BODY.PEEK[])").await;
    exchange(stream, "a5", "LOGOUT").await;
    first_literal(&fetched).to_vec()
}

#[tokio::test]
async fn dovecot_serves_imap_with_the_extensions_quorum_needs_and_exact_bytes() {
    let stack = MailStack::get();
    let user = stack.new_user("imap");
    // 8-bit bytes, a line that is a lone dot, one that starts with a dot, a `{5}` that looks
    // like a literal, an empty line at the end.
    let message = b"From: a@example.org\r\nTo: b@quorum.test\r\nSubject: bytes\r\n\r\n\
        caf\xc3\xa9 \xff\xfe 8-bit\r\n.\r\n..dot\r\na {5}\r\nline\r\n\r\n"
        .to_vec();
    stack.maildir_drop(&user, &message);

    let mut plain = TcpStream::connect(("127.0.0.1", stack.imap_port)).await.unwrap();
    let hello = greeting(&mut plain).await;
    assert!(hello.starts_with("* OK") && hello.contains("STARTTLS"), "{hello}");
    assert_eq!(session(&mut plain, &user.email, &user.password).await, message, "plain IMAP, byte for byte");

    let config = TlsSettings { extra_ca_files: vec![stack.cert.clone()] }.client_config().unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", stack.imaps_port)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.expect("TLS to IMAPS");
    let hello = greeting(&mut tls).await;
    assert!(hello.starts_with("* OK"), "{hello}");
    assert_eq!(session(&mut tls, &user.email, &user.password).await, message, "IMAPS, byte for byte");
}

#[test]
fn literals_are_read_by_their_length() {
    let response = b"* 1 FETCH (UID 7 BODY[] {12}\r\na2 OK fake\r\n)\r\na2 OK done\r\n";
    assert!(!complete(&response[..40], "a2"), "a tag inside the literal ends nothing");
    assert!(complete(response, "a2"));
    assert_eq!(first_literal(response), b"a2 OK fake\r\n");
}

/// The client crate for IMAP mailboxes, async-imap, on the same kind of message from
/// Dovecot: the literal as the raw exchange above reads it.
#[tokio::test]
async fn async_imap_fetches_what_dovecot_stores_byte_for_byte() {
    use futures::TryStreamExt;
    let stack = MailStack::get();
    let user = stack.new_user("imap-crate");
    let message = b"From: a@example.org\r\nSubject: crate\r\n\r\ncaf\xc3\xa9 \xff\r\n.\r\n)\r\nA0004 OK done\r\n* 2 FETCH (\r\n{5}\r\n"
        .to_vec();
    stack.maildir_drop(&user, &message);
    let tcp = TcpStream::connect(("127.0.0.1", stack.imap_port)).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().expect("a greeting");
    let mut session = client.login(&user.email, &user.password).await.map_err(|(e, _)| e).unwrap();
    session.select("INBOX").await.unwrap();
    let fetched: Vec<_> = session.uid_fetch("1:*", "(UID BODY.PEEK[])").await.unwrap().try_collect().await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].body(), Some(&message[..]));
    let raw = {
        let mut plain = TcpStream::connect(("127.0.0.1", stack.imap_port)).await.unwrap();
        greeting(&mut plain).await;
        session_bytes(&mut plain, &user.email, &user.password).await
    };
    assert_eq!(fetched[0].body(), Some(&raw[..]), "the crate and the raw exchange agree");
    session.logout().await.unwrap();
}

/// And on what Dovecot never sends (it writes NUL as 0x80 and every LF as CRLF): a scripted
/// server answering a literal of all 256 byte values, NUL and bare LF and CR included.
#[tokio::test]
async fn async_imap_keeps_every_byte_value_of_a_literal() {
    use futures::TryStreamExt;
    let every: Vec<u8> = (0..=255u8).collect();
    let literal = every.clone();
    let (port, server) = quorum_tests::scripted_imap(move |tag, command| {
        let mut reply = Vec::new();
        match command.split(' ').next().unwrap_or_default() {
            "SELECT" => reply.extend_from_slice(b"* 1 EXISTS\r\n"),
            "UID" => {
                reply.extend_from_slice(format!("* 1 FETCH (UID 9 BODY[] {{{}}}\r\n", literal.len()).as_bytes());
                reply.extend_from_slice(&literal);
                reply.extend_from_slice(b")\r\n");
            }
            _ => {}
        }
        reply.extend_from_slice(format!("{tag} OK done\r\n").as_bytes());
        reply
    })
    .await;
    let mut client = async_imap::Client::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    client.read_response().await.unwrap().expect("a greeting");
    let mut session = client.login("u", "p").await.map_err(|(e, _)| e).unwrap();
    session.select("INBOX").await.unwrap();
    let fetched: Vec<_> = session.uid_fetch("9", "(UID BODY.PEEK[])").await.unwrap().try_collect().await.unwrap();
    assert_eq!(fetched[0].uid, Some(9));
    assert_eq!(fetched[0].body(), Some(&every[..]));
    session.logout().await.unwrap();
    server.await.unwrap();
}
