use quorum_transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the server did not answer within {seconds} s while {during}")]
    Timeout { during: &'static str, seconds: u64 },
    #[error("the server refused {command}: {text}")]
    Refused { command: &'static str, text: String },
    #[error("the server rejected the login: {0}")]
    Auth(String),
    #[error("the server closed the connection while {0}")]
    Closed(&'static str),
    #[error("the server sent something that is not IMAP while {during}: {text}")]
    Protocol { during: &'static str, text: String },
    #[error("the server does not support {0}")]
    Unsupported(&'static str),
    #[error("{0} cannot be sent in IMAP")]
    InvalidArgument(&'static str),
    #[error("the session broke earlier (a timeout or a lost connection) and must be reopened")]
    Broken,
}

impl ImapError {
    /// From async-imap's error for the command `command`.
    pub(crate) fn from_imap(command: &'static str, e: async_imap::error::Error) -> Self {
        use async_imap::error::Error;
        match e {
            Error::No(text) | Error::Bad(text) => ImapError::Refused { command, text },
            Error::ConnectionLost => ImapError::Closed(command),
            Error::Io(e) => ImapError::Transport(TransportError::Io(e)),
            Error::Validate(_) => ImapError::InvalidArgument("a name with a line break or NUL"),
            other => ImapError::Protocol { during: command, text: other.to_string() },
        }
    }

    /// True when the right reaction is "try again later" rather than "this mailbox is broken":
    /// the network or the server failed, not the account (RFC 5530's `[UNAVAILABLE]` and
    /// `[INUSE]` name the server-side cases).
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Transport(TransportError::Tls(_)) => false,
            ImapError::Transport(_) | ImapError::Timeout { .. } | ImapError::Closed(_) | ImapError::Broken => true,
            ImapError::Refused { text, .. } | ImapError::Auth(text) => {
                text.contains("[UNAVAILABLE]") || text.contains("[INUSE]")
            }
            _ => false,
        }
    }

    /// True when the credentials were rejected.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, ImapError::Auth(_)) && !self.is_transient()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_password_is_not_retried_and_an_unavailable_server_is() {
        let auth = ImapError::Auth("[AUTHENTICATIONFAILED] Authentication failed.".into());
        assert!(auth.is_auth_failure() && !auth.is_transient());
        let unavailable = ImapError::Auth("[UNAVAILABLE] Temporary authentication failure.".into());
        assert!(!unavailable.is_auth_failure() && unavailable.is_transient());
        assert!(ImapError::Timeout { during: "x", seconds: 1 }.is_transient());
        assert!(!ImapError::Refused { command: "SELECT", text: "Mailbox doesn't exist".into() }.is_transient());
    }
}
