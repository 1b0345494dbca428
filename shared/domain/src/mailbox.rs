//! How Quorum reaches a subscriber's mailbox: POP3 or IMAP, and how securely.

use std::{fmt, str::FromStr};

/// Transport security of a POP3 connection. Read from configuration by [`FromStr`], so a
/// wrong value is named with the valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Security {
    /// TLS from the first byte (POP3S, usually port 995).
    Tls,
    /// Plain connection upgraded with `STLS` (RFC 2595) before logging in.
    StartTls,
    /// No encryption: only for loopback and test servers.
    Plain,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
            Security::Plain => "plain",
        }
    }

    /// The port a provider normally uses for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Tls => 995,
            Security::StartTls | Security::Plain => 110,
        }
    }
}

/// The protocol Quorum polls a mailbox with. POP3 takes a message out by deleting it on the
/// server; IMAP moves it to a folder of the mailbox (`Quorum/Held`, `Quorum/Deleted`), where
/// the provider keeps it, and a release moves it back without re-sending it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Protocol {
    #[default]
    Pop3,
    Imap,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
        }
    }

    /// The port a provider normally uses for this protocol and kind of connection.
    pub fn default_port(self, security: Security) -> u16 {
        match (self, security) {
            (Protocol::Pop3, _) => security.default_port(),
            (Protocol::Imap, Security::Tls) => 993,
            (Protocol::Imap, Security::StartTls | Security::Plain) => 143,
        }
    }
}

impl FromStr for Protocol {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pop3" | "pop" => Ok(Protocol::Pop3),
            "imap" | "imap4" => Ok(Protocol::Imap),
            _ => Err(UnknownVariant { what: "protocol", value: s.to_string(), expected: "pop3, imap" }),
        }
    }
}

impl TryFrom<String> for Protocol {
    type Error = UnknownVariant;
    fn try_from(s: String) -> Result<Self, UnknownVariant> {
        s.parse()
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{value}`; expected one of: {expected}")]
pub struct UnknownVariant {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Security {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" | "pop3s" | "implicit-tls" => Ok(Security::Tls),
            "starttls" | "stls" => Ok(Security::StartTls),
            "plain" | "none" => Ok(Security::Plain),
            _ => Err(UnknownVariant { what: "security", value: s.to_string(), expected: "tls, starttls, plain" }),
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum AuthMethod {
    /// SASL PLAIN when the server advertises it, otherwise USER/PASS.
    Auto,
    /// `USER` then `PASS`.
    User,
    /// `APOP` (RFC 1939 section 7): the password never crosses the wire.
    Apop,
    /// `AUTH PLAIN` (RFC 5034).
    Plain,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::User => "user",
            AuthMethod::Apop => "apop",
            AuthMethod::Plain => "plain",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(AuthMethod::Auto),
            "user" | "userpass" => Ok(AuthMethod::User),
            "apop" => Ok(AuthMethod::Apop),
            "plain" | "sasl-plain" => Ok(AuthMethod::Plain),
            _ => Err(UnknownVariant { what: "auth method", value: s.to_string(), expected: "auto, user, apop, plain" }),
        }
    }
}

impl TryFrom<String> for Security {
    type Error = UnknownVariant;
    fn try_from(s: String) -> Result<Self, UnknownVariant> {
        s.parse()
    }
}

impl TryFrom<String> for AuthMethod {
    type Error = UnknownVariant;
    fn try_from(s: String) -> Result<Self, UnknownVariant> {
        s.parse()
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [Security::Tls, Security::StartTls, Security::Plain] {
            assert_eq!(s.as_str().parse::<Security>().unwrap(), s);
        }
        for a in [AuthMethod::Auto, AuthMethod::User, AuthMethod::Apop, AuthMethod::Plain] {
            assert_eq!(a.as_str().parse::<AuthMethod>().unwrap(), a);
        }
        for p in [Protocol::Pop3, Protocol::Imap] {
            assert_eq!(p.as_str().parse::<Protocol>().unwrap(), p);
        }
        assert_eq!(Protocol::Imap.default_port(Security::Tls), 993);
        assert_eq!(Protocol::Pop3.default_port(Security::StartTls), 110);
    }

    #[test]
    fn unknown_is_explained() {
        let e = "ssl3".parse::<Security>().unwrap_err().to_string();
        assert!(e.contains("ssl3") && e.contains("starttls"), "{e}");
    }
}
