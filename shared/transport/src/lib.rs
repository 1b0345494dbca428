//! Connections to mail servers, shared by the POP3 and IMAP clients: one TCP connection
//! that is plain, TLS from the start (POP3S, IMAPS) or upgraded in place after the protocol's
//! STARTTLS command ([`Transport`]), and the trust store it checks servers against
//! ([`TlsSettings`]). Every wait is bounded by the caller's timeout.

mod tls;
mod transport;

pub use quorum_domain::Security;
pub use rustls::ClientConfig as TlsConfig;
pub use tls::TlsSettings;
pub use transport::Transport;

use std::{io, sync::Arc, time::Duration};

/// Where a mailbox's server is and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// The longest wait for the server: connecting, the TLS handshake, and each response.
    pub timeout: Duration,
    /// The trust store servers are checked against ([`TlsSettings::client_config`]).
    pub tls: Arc<TlsConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("the server did not answer within {seconds} s while {during}")]
    Timeout { during: &'static str, seconds: u64 },
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
}
