//! One connection to a mail server, plain or TLS, upgradable in place.

use std::{
    fmt, io,
    pin::Pin,
    task::{Context, Poll},
};

use quorum_domain::Security;
use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::{Endpoint, TransportError};

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between handing the TCP stream to the TLS handshake and getting it back; a failed
    /// handshake leaves the connection here, where all I/O fails.
    Upgrading,
}

impl Transport {
    /// Connects to the endpoint, TLS from the start for [`Security::Tls`]. Mail protocols
    /// are a ping-pong of short lines: Nagle's algorithm would only add delay.
    pub async fn connect(endpoint: &Endpoint) -> Result<Self, TransportError> {
        let Endpoint { host, port, timeout, .. } = endpoint;
        // Host and port apart, so an IPv6 literal (`::1`) is not mistaken for host:port.
        let tcp = tokio::time::timeout(*timeout, TcpStream::connect((host.as_str(), *port)))
            .await
            .map_err(|_| TransportError::Timeout { during: "connecting", seconds: timeout.as_secs() })?
            .map_err(|source| TransportError::Connect { addr: format!("{host}:{port}"), source })?;
        tcp.set_nodelay(true)?;
        Ok(match endpoint.security {
            Security::Tls => Transport::Tls(Box::new(handshake(tcp, endpoint).await?)),
            Security::StartTls | Security::Plain => Transport::Plain(tcp),
        })
    }

    /// Upgrades a plain connection to TLS in place, after the protocol's STARTTLS command
    /// was accepted. The caller must have checked that the server sent nothing after its
    /// answer: such bytes would be injected plaintext.
    pub async fn start_tls(&mut self, endpoint: &Endpoint) -> Result<(), TransportError> {
        let Transport::Plain(tcp) = std::mem::replace(self, Transport::Upgrading) else {
            return Err(TransportError::Tls("STARTTLS on a connection that is not plain".into()));
        };
        *self = Transport::Tls(Box::new(handshake(tcp, endpoint).await?));
        Ok(())
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }
}

async fn handshake(tcp: TcpStream, endpoint: &Endpoint) -> Result<TlsStream<TcpStream>, TransportError> {
    let Endpoint { host, timeout, tls, .. } = endpoint;
    let name = ServerName::try_from(host.clone())
        .map_err(|_| TransportError::Tls(format!("`{host}` is not a valid TLS server name")))?;
    tokio::time::timeout(*timeout, TlsConnector::from(tls.clone()).connect(name, tcp))
        .await
        .map_err(|_| TransportError::Timeout { during: "the TLS handshake", seconds: timeout.as_secs() })?
        .map_err(|e| TransportError::Tls(e.to_string()))
}

fn upgrade_failed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the STARTTLS upgrade failed")
}

/// The IMAP client requires `Debug` of its stream; a connection shows what it is, never
/// what it carries.
impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Plain(_) => "Transport::Plain",
            Transport::Tls(_) => "Transport::Tls",
            Transport::Upgrading => "Transport::Upgrading",
        })
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Upgrading => Poll::Ready(Err(upgrade_failed())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Upgrading => Poll::Ready(Err(upgrade_failed())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s).poll_flush(cx),
            Transport::Upgrading => Poll::Ready(Err(upgrade_failed())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Upgrading => Poll::Ready(Err(upgrade_failed())),
        }
    }
}
