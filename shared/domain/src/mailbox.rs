//! How Quorum reaches a subscriber's POP3 mailbox.

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
    }

    #[test]
    fn unknown_is_explained() {
        let e = "ssl3".parse::<Security>().unwrap_err().to_string();
        assert!(e.contains("ssl3") && e.contains("starttls"), "{e}");
    }
}
