//! The POP3 client against the real Dovecot: every transport, every login method, and
//! messages coming back byte for byte; and against a scripted server, pipelining only where
//! the server advertises it.

use quorum_domain::Security;
use quorum_pop3::{Client, Credentials, Pop3Error};
use quorum_tests::MailStack;

#[tokio::test]
async fn all_transports_and_login_methods() {
    let stack = MailStack::get();
    let user = stack.new_user("transports");
    for security in [Security::Plain, Security::StartTls, Security::Tls] {
        let logins = [
            Credentials::User { user: &user.email, password: &user.password },
            Credentials::Plain { user: &user.email, password: &user.password },
            Credentials::Apop { user: &user.email, password: &user.password },
            Credentials::Auto { user: &user.email, password: &user.password },
        ];
        for credentials in logins {
            let mut client = Client::connect(&stack.connect_options(security)).await.unwrap();
            let caps = client.capabilities().await.unwrap();
            assert!(caps.has("UIDL") && caps.has("PIPELINING"));
            assert_eq!(caps.has("STLS"), security == Security::Plain, "STLS offered only before TLS");
            client.login(credentials).await.unwrap_or_else(|e| panic!("{security:?}: {e}"));
            assert_eq!(client.stat().await.unwrap(), (0, 0));
            client.quit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn wrong_password_and_untrusted_certificate_are_clear_errors() {
    let stack = MailStack::get();
    let user = stack.new_user("wrongpw");
    let mut client = Client::connect(&stack.connect_options(Security::Plain)).await.unwrap();
    let err = client.login(Credentials::User { user: &user.email, password: "nope" }).await.unwrap_err();
    assert!(err.is_auth_failure() && !err.is_transient(), "{err}");

    let mut options = stack.connect_options(Security::Tls);
    options.endpoint.tls = quorum_pop3::TlsSettings::default().client_config().unwrap();
    let err = Client::connect(&options).await.err().expect("self-signed certificate must not be trusted by default");
    assert!(matches!(err, Pop3Error::Tls(_)), "{err}");
}

#[tokio::test]
async fn messages_come_back_byte_for_byte_pipelined() {
    let stack = MailStack::get();
    let user = stack.new_user("bytes");
    // Dovecot stores LF and serves CRLF; these bodies already use CRLF so that what we
    // wrote is exactly what POP3 must return.
    let messages: Vec<Vec<u8>> = vec![
        b"From: a@example.org\r\nSubject: dots\r\n\r\n.\r\n..\r\n.leading\r\n. \r\nend\r\n".to_vec(),
        b"From: b@example.org\r\nSubject: 8bit\r\n\r\n\xc3\xa4\xff\xfe\x80 raw bytes\r\n".to_vec(),
        b"From: c@example.org\r\nSubject: no final newline\r\n\r\nlast line".to_vec(),
        [b"From: d@example.org\r\nSubject: big\r\n\r\n".to_vec(), b"0123456789abcdef\r\n".repeat(200_000)].concat(),
    ];
    for m in &messages {
        stack.maildir_drop(&user, m);
    }
    let mut client = stack.login(&user).await;
    let list = client.list().await.unwrap();
    let requests: Vec<(u32, u64)> = list.iter().map(|&(n, size)| (n, size)).collect();
    let got = client.retr_many(&requests).await;
    assert!(got.broken.is_none());
    let got = got.messages;
    assert_eq!(got.len(), messages.len());
    for ((m, got), (_, size)) in messages.iter().zip(got).zip(&list) {
        let got = got.unwrap();
        let mut expected = m.clone();
        if !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n"); // RFC 1939: the server ends the last line
        }
        assert_eq!(got, expected);
        // Dovecot's LIST counts the stored message, before the CRLF it adds to an
        // unterminated last line.
        assert_eq!(m.len() as u64, *size, "LIST size is the message's size");
    }
    // A size cap turns an oversized message into an error in its slot; the session goes on.
    drop(client);
    let mut options = stack.connect_options(Security::Plain);
    options.max_message_size = 1000;
    let mut client = Client::connect(&options).await.unwrap();
    client.capabilities().await.unwrap();
    client.login(Credentials::User { user: &user.email, password: &user.password }).await.unwrap();
    let got = client.retr_many(&[(4, 0), (1, 0)]).await.messages;
    assert!(matches!(got[0], Err(Pop3Error::TooLarge { limit: 1000, .. })), "{:?}", got[0].as_ref().err());
    assert_eq!(got[1].as_ref().unwrap(), &messages[0]);
    assert!(matches!(client.retr(99).await, Err(Pop3Error::Refused { command: "RETR", .. })));
    client.quit().await.unwrap();
}

#[tokio::test]
async fn locked_maildrop_is_transient() {
    let stack = MailStack::get();
    let user = stack.new_user("locked");
    stack.maildir_drop(&user, b"From: a@example.org\r\n\r\nx\r\n");
    let mut first = stack.login(&user).await;
    first.stat().await.unwrap();
    let mut second = Client::connect(&stack.connect_options(Security::Plain)).await.unwrap();
    let err = second.login(Credentials::User { user: &user.email, password: &user.password }).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!err.is_auth_failure());
    first.quit().await.unwrap();
}

#[tokio::test]
async fn dele_takes_effect_only_at_quit_and_rset_undoes_it() {
    let stack = MailStack::get();
    let user = stack.new_user("dele");
    stack.maildir_drop(&user, b"From: a@example.org\r\n\r\none\r\n");
    stack.maildir_drop(&user, b"From: b@example.org\r\n\r\ntwo\r\n");
    let mut client = stack.login(&user).await;
    assert!(client.dele_many(&[1, 2]).await.unwrap().iter().all(Result::is_ok));
    client.rset().await.unwrap();
    client.quit().await.unwrap();
    assert_eq!(stack.retr_all(&user).await.len(), 2, "RSET undid both deletions");

    let mut client = stack.login(&user).await;
    let results = client.dele_many(&[1, 7]).await.unwrap();
    assert!(results[0].is_ok() && results[1].is_err(), "a refused DELE is reported in its slot");
    drop(client); // connection lost before QUIT: nothing is deleted
    assert_eq!(stack.retr_all(&user).await.len(), 2);

    let mut client = stack.login(&user).await;
    client.dele_many(&[1]).await.unwrap();
    client.quit().await.unwrap();
    let left = stack.retr_all(&user).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].1.ends_with(b"two\r\n"));
}

/// A scripted POP3 server for one connection: it greets, then for each step reads that
/// many command lines and only then writes the step's answer. A client that waited for an
/// answer before its next command stalls a step of two lines: the server then gives up
/// after a second and closes. With `one_at_a_time`, it also notes every command that came
/// before the previous one's answer had been written (the client pipelined). Returns the
/// port and the task, which ends with the commands read and the commands that came early.
async fn scripted_pop3(
    steps: Vec<(usize, &'static str)>,
    one_at_a_time: bool,
) -> (u16, tokio::task::JoinHandle<(Vec<String>, Vec<String>)>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut read = tokio::io::BufReader::new(read);
        write.write_all(b"+OK scripted\r\n").await.unwrap();
        let (mut seen, mut early) = (Vec::new(), Vec::new());
        for (lines, answer) in steps {
            for _ in 0..lines {
                let mut line = String::new();
                let wait = std::time::Duration::from_secs(1);
                match tokio::time::timeout(wait, read.read_line(&mut line)).await {
                    Ok(Ok(n)) if n > 0 => seen.push(line.trim_end().to_string()),
                    _ => return (seen, early),
                }
            }
            if one_at_a_time && !read.buffer().is_empty() {
                early.push(String::from_utf8_lossy(read.buffer()).trim_end().to_string());
            }
            write.write_all(answer.as_bytes()).await.unwrap();
        }
        (seen, early)
    });
    (port, server)
}

fn scripted_options(port: u16) -> quorum_pop3::ConnectOptions {
    let mut options = MailStack::get().connect_options(Security::Plain);
    options.endpoint.port = port;
    options
}

/// Where the server advertises PIPELINING, USER and PASS go in one round trip, and UIDL
/// and LIST in another; a refused USER is the error, and the session stays in step.
/// Without PIPELINING, one command at a time.
#[tokio::test]
async fn login_and_listing_are_pipelined_only_where_the_server_allows() {
    const CAPA: &str = "+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n";
    const LISTINGS: &str = "+OK\r\n1 first\r\n2 second\r\n.\r\n+OK\r\n1 120\r\n2 3400\r\n.\r\n";
    let (port, server) =
        scripted_pop3(vec![(1, CAPA), (2, "+OK\r\n+OK logged in\r\n"), (2, LISTINGS), (1, "+OK bye\r\n")], false).await;
    let mut client = Client::connect(&scripted_options(port)).await.unwrap();
    client.capabilities().await.unwrap();
    client.login(Credentials::User { user: "u@example.org", password: "pw" }).await.unwrap();
    let (uidls, sizes) = client.uidl_and_list().await.unwrap();
    assert_eq!(uidls, [(1, "first".to_string()), (2, "second".to_string())]);
    assert_eq!(sizes, [(1, 120), (2, 3400)]);
    client.quit().await.unwrap();
    let (seen, _) = server.await.unwrap();
    assert_eq!(seen, ["CAPA", "USER u@example.org", "PASS pw", "UIDL", "LIST", "QUIT"]);

    // A refused user name: USER's refusal is the error; PASS's answer was read, so the
    // next command gets its own answer.
    let (port, server) =
        scripted_pop3(vec![(1, CAPA), (2, "-ERR [AUTH] who?\r\n-ERR\r\n"), (1, "+OK 0 0\r\n")], false).await;
    let mut client = Client::connect(&scripted_options(port)).await.unwrap();
    client.capabilities().await.unwrap();
    let err = client.login(Credentials::User { user: "nobody@example.org", password: "pw" }).await.unwrap_err();
    assert!(matches!(err, Pop3Error::Refused { command: "USER", .. }) && err.is_auth_failure(), "{err}");
    assert_eq!(client.stat().await.unwrap(), (0, 0));
    drop(client);
    server.await.unwrap();

    // No PIPELINING: every command waits for the answer to the one before.
    let plain_capa = "+OK\r\nUSER\r\nUIDL\r\n.\r\n";
    let one_by_one = vec![
        (1, plain_capa),
        (1, "+OK\r\n"),
        (1, "+OK logged in\r\n"),
        (1, "+OK\r\n1 first\r\n.\r\n"),
        (1, "+OK\r\n1 120\r\n.\r\n"),
        (1, "+OK bye\r\n"),
    ];
    let (port, server) = scripted_pop3(one_by_one, true).await;
    let mut client = Client::connect(&scripted_options(port)).await.unwrap();
    client.capabilities().await.unwrap();
    client.login(Credentials::User { user: "u@example.org", password: "pw" }).await.unwrap();
    assert_eq!(client.uidl_and_list().await.unwrap(), (vec![(1, "first".to_string())], vec![(1, 120)]));
    client.quit().await.unwrap();
    let (seen, early) = server.await.unwrap();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(early.is_empty(), "commands sent before the answer to the one before: {early:?}");
}
