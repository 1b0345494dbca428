//! Quorum's outgoing mail, through the SMTP server in `[smtp]`. A send succeeds only when
//! the server answered 250 to the message's data.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    address::Envelope,
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use quorum_config::SmtpSettings;
use quorum_domain::{EmailAddress, Security};

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("SMTP settings: {0}")]
    Settings(String),
    #[error("SMTP: {0}")]
    Send(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    envelope_from: lettre::Address,
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings) -> Result<Self, MailerError> {
        let settings_err = |e: &dyn std::fmt::Display| MailerError::Settings(e.to_string());
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)));
        if smtp.security != Security::Plain {
            let mut tls = TlsParameters::builder(smtp.host.clone());
            for file in &smtp.tls_ca_files {
                let pem = std::fs::read(file).map_err(|e| settings_err(&format!("{}: {e}", file.display())))?;
                tls = tls.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| settings_err(&e))?);
            }
            let tls = tls.build().map_err(|e| settings_err(&e))?;
            builder = builder.tls(if smtp.security == Security::Tls { Tls::Wrapper(tls) } else { Tls::Required(tls) });
        }
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        let envelope_from = smtp.envelope_from.parse().map_err(|e| settings_err(&e))?;
        Ok(Self { transport: builder.build(), envelope_from })
    }

    /// Quorum's own address, the envelope sender of everything it sends.
    pub fn from_address(&self) -> String {
        self.envelope_from.to_string()
    }

    /// Sends a complete message (headers and body, CRLF line ends) to one recipient.
    pub async fn send(&self, to: &EmailAddress, message: &[u8]) -> Result<(), MailerError> {
        let rcpt: lettre::Address =
            to.as_str().parse().map_err(|e: lettre::address::AddressError| MailerError::Send(e.to_string()))?;
        let envelope = Envelope::new(Some(self.envelope_from.clone()), vec![rcpt])
            .map_err(|e| MailerError::Send(e.to_string()))?;
        // lettre ends DATA with CRLF.CRLF whatever the message ends with, so the message's
        // own final CRLF is left to that terminator; otherwise every message would gain an
        // empty last line.
        let data = message.strip_suffix(b"\r\n").unwrap_or(message);
        // `send_raw` returns only after the server's final reply to DATA: Ok means 250.
        self.transport.send_raw(&envelope, data).await.map(drop).map_err(|e| MailerError::Send(e.to_string()))
    }
}
