use std::io;

use quorum_transport::TransportError;

use crate::proto::ResponseCode;

#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("the server did not answer within {seconds} s while {during}")]
    Timeout { during: &'static str, seconds: u64 },
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("the server closed the connection while {0}")]
    Closed(&'static str),
    #[error("the server sent something that is not POP3: {0}")]
    Protocol(String),
    #[error("the server refused {command}: {text}")]
    Refused { command: &'static str, code: Option<ResponseCode>, text: String },
    #[error("message is {size} bytes, over the configured limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("the server does not support {0}")]
    Unsupported(&'static str),
    #[error("{0} contains a line break or NUL, which POP3 cannot carry")]
    InvalidArgument(&'static str),
}

impl From<TransportError> for Pop3Error {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Connect { addr, source } => Pop3Error::Connect { addr, source },
            TransportError::Timeout { during, seconds } => Pop3Error::Timeout { during, seconds },
            TransportError::Tls(text) => Pop3Error::Tls(text),
            TransportError::Io(e) => Pop3Error::Io(e),
        }
    }
}

impl Pop3Error {
    /// True when the right reaction is "try again later" rather than "this mailbox is broken":
    /// the maildrop is locked by another session (`[IN-USE]`, or the lock wording of servers
    /// without RFC 2449 response codes), a login delay, or a temporary server fault.
    pub fn is_transient(&self) -> bool {
        match self {
            Pop3Error::Refused { code: Some(code), .. } => {
                matches!(code, ResponseCode::InUse | ResponseCode::LoginDelay | ResponseCode::SysTemp)
            }
            Pop3Error::Refused { code: None, text, .. } => {
                let t = text.to_ascii_lowercase();
                // Servers without RFC 2449 codes word a held maildrop lock like this; wider
                // guesses ("try again") would turn a wrong password into endless retries.
                (t.contains("lock") && !t.contains("account")) || t.contains("in use") || t.contains("in-use")
            }
            _ => false,
        }
    }

    /// True when the credentials were rejected.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            Pop3Error::Refused { code: Some(ResponseCode::Auth), .. } => true,
            Pop3Error::Refused { command, code: None, .. } => {
                matches!(*command, "USER" | "PASS" | "APOP" | "AUTH PLAIN") && !self.is_transient()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(command: &'static str, code: Option<ResponseCode>, text: &str) -> Pop3Error {
        Pop3Error::Refused { command, code, text: text.to_string() }
    }

    #[test]
    fn lock_errors_are_transient() {
        assert!(
            refused("PASS", Some(ResponseCode::InUse), "Mailbox is locked by another POP3 session.").is_transient()
        );
        assert!(refused("PASS", None, "unable to lock maildrop").is_transient());
        assert!(refused("PASS", Some(ResponseCode::SysTemp), "try later").is_transient());
        assert!(!refused("PASS", Some(ResponseCode::Auth), "Authentication failed.").is_transient());
        assert!(!refused("PASS", None, "account locked, too many failures").is_transient());
        assert!(!refused("PASS", None, "invalid password, try again").is_transient());
    }

    #[test]
    fn auth_failures_are_recognised() {
        assert!(refused("PASS", Some(ResponseCode::Auth), "Authentication failed.").is_auth_failure());
        assert!(refused("PASS", None, "invalid password").is_auth_failure());
        assert!(refused("USER", None, "no such user").is_auth_failure());
        assert!(!refused("PASS", None, "maildrop already locked").is_auth_failure());
        assert!(!refused("RETR", None, "no such message").is_auth_failure());
    }
}
