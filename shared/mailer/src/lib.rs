//! Quorum's outgoing mail, through the SMTP server in `[smtp]`. A send succeeds only when
//! the server answered 250 to the message's data.
//!
//! One SMTP session per message, on lettre's connection API rather than its transport:
//! lettre writes a message's data and the closing `CRLF.CRLF` in two writes, and on a
//! socket without TCP_NODELAY Nagle's algorithm holds the second until the server's
//! delayed ACK — 40 ms per message, measured. Opening the TCP connection here lets us set
//! TCP_NODELAY (plain and STARTTLS; implicit TLS still connects through lettre).

use std::time::Duration;

use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, Certificate, TlsParameters},
        extension::ClientId,
    },
};
use quorum_config::SmtpSettings;
use quorum_domain::{EmailAddress, Security};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("SMTP settings: {0}")]
    Settings(String),
    #[error("SMTP: {0}")]
    Send(String),
    /// The server refused the message for good (5xx): retrying cannot help.
    #[error("SMTP refused the message: {0}")]
    Refused(String),
}

fn send_err(e: impl std::fmt::Display) -> MailerError {
    MailerError::Send(e.to_string())
}

/// SMTP carries lines ended by CRLF only (RFC 5321 section 2.3.8). A bare CR or LF in
/// stored mail is turned into CRLF before it is sent: otherwise lettre's dot-stuffing, which
/// only looks after CRLF, could let `LF . CRLF` in a spammer's message end the DATA early at
/// a lenient relay and smuggle commands into Quorum's session. Mail fetched from Dovecot
/// already has CRLF only, so it goes out unchanged.
fn crlf_only(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = message.iter().enumerate().any(|(i, &b)| match b {
        b'\n' => i == 0 || message[i - 1] != b'\r',
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        _ => false,
    });
    if !bare {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

#[derive(Clone)]
pub struct Mailer {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    envelope_from: lettre::Address,
    timeout: Duration,
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings) -> Result<Self, MailerError> {
        let settings_err = |e: &dyn std::fmt::Display| MailerError::Settings(e.to_string());
        let tls = if smtp.security == Security::Plain {
            None
        } else {
            let mut tls = TlsParameters::builder(smtp.host.clone());
            for file in &smtp.tls_ca_files {
                let pem = std::fs::read(file).map_err(|e| settings_err(&format!("{}: {e}", file.display())))?;
                tls = tls.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| settings_err(&e))?);
            }
            Some(tls.build().map_err(|e| settings_err(&e))?)
        };
        let credentials = match (&smtp.username, &smtp.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.expose().to_string())),
            _ => None,
        };
        Ok(Self {
            host: smtp.host.clone(),
            port: smtp.port,
            security: smtp.security,
            tls,
            credentials,
            envelope_from: smtp.envelope_from.parse().map_err(|e| settings_err(&e))?,
            timeout: Duration::from_secs(smtp.timeout_secs),
        })
    }

    /// The longest one [`Mailer::send`] can take: every step is bounded by the configured
    /// timeout, the whole session by four of them.
    pub fn session_limit(&self) -> Duration {
        self.timeout * 4
    }

    /// Quorum's own address, the envelope sender of everything it sends.
    pub fn from_address(&self) -> String {
        self.envelope_from.to_string()
    }

    /// Sends a complete message (headers and body, CRLF line ends) to one recipient.
    pub async fn send(&self, to: &EmailAddress, message: &[u8]) -> Result<(), MailerError> {
        self.send_envelope(self.envelope_from.clone(), to, message).await
    }

    /// [`Mailer::send`] with another envelope sender (a confirmation's VERP address, so that
    /// its bounce names the message it asked about).
    pub async fn send_from(&self, envelope_from: &str, to: &EmailAddress, message: &[u8]) -> Result<(), MailerError> {
        self.send_envelope(envelope_from.parse().map_err(send_err)?, to, message).await
    }

    async fn send_envelope(
        &self,
        envelope_from: lettre::Address,
        to: &EmailAddress,
        message: &[u8],
    ) -> Result<(), MailerError> {
        let rcpt: lettre::Address = to.as_str().parse().map_err(send_err)?;
        let envelope = Envelope::new(Some(envelope_from), vec![rcpt]).map_err(send_err)?;
        // lettre ends DATA with CRLF.CRLF whatever the message ends with, so the message's
        // own final CRLF is left to that terminator; otherwise every message would gain an
        // empty last line.
        let data = crlf_only(message);
        let data = data.strip_suffix(b"\r\n").unwrap_or(&data);
        let session = async {
            let mut connection = self.connect().await?;
            // `send` returns only after the server's final reply to DATA: Ok means 250.
            let sent = connection
                .send(&envelope, data)
                .await
                .map_err(|e| if e.is_permanent() { MailerError::Refused(e.to_string()) } else { send_err(e) });
            let _ = connection.quit().await;
            sent.map(drop)
        };
        tokio::time::timeout(self.session_limit(), session)
            .await
            .map_err(|_| MailerError::Send(format!("no answer within {} s", self.session_limit().as_secs())))?
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, MailerError> {
        let hello = ClientId::default();
        let mut connection = match (self.security, &self.tls) {
            (Security::Tls, Some(tls)) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &hello,
                Some(tls.clone()),
                None,
            )
            .await
            .map_err(send_err)?,
            _ => {
                let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((self.host.as_str(), self.port)))
                    .await
                    .map_err(|_| MailerError::Send(format!("connecting to {}:{} timed out", self.host, self.port)))?
                    .map_err(|e| MailerError::Send(format!("cannot connect to {}:{}: {e}", self.host, self.port)))?;
                tcp.set_nodelay(true).map_err(send_err)?;
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await.map_err(send_err)?;
                if let (Security::StartTls, Some(tls)) = (self.security, &self.tls) {
                    if !connection.can_starttls() {
                        return Err(MailerError::Send("the SMTP server does not offer STARTTLS".into()));
                    }
                    connection.starttls(tls.clone(), &hello).await.map_err(send_err)?;
                }
                connection
            }
        };
        if let Some(credentials) = &self.credentials {
            connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await.map_err(send_err)?;
        }
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_crlf_line_ends_go_out() {
        assert!(matches!(crlf_only(b"a\r\nb\r\n"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(&*crlf_only(b"a\n.\r\nMAIL FROM:<x>\rb"), b"a\r\n.\r\nMAIL FROM:<x>\r\nb");
        assert_eq!(&*crlf_only(b"\n\r\r\n"), b"\r\n\r\n\r\n");
    }
}
