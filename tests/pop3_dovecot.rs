//! The POP3 client against the real Dovecot: every transport, every login method, and
//! messages coming back byte for byte.

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
