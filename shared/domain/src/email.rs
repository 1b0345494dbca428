//! Email addresses as Quorum compares them.

use std::fmt;

/// A syntactically plausible email address, lower-cased.
///
/// Quorum compares addresses case-insensitively (the local part is case-sensitive in theory,
/// but no provider a subscriber uses treats it so, and a sender writing `Jane@Example.org` once
/// and `jane@example.org` the next time must match the same approved entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("`{0}` is not an email address: it needs exactly one `@` with text on both sides")]
    Shape(String),
    #[error("`{0}` is not an email address: it contains spaces, control characters or brackets")]
    Characters(String),
    #[error("email address is longer than 254 characters")]
    TooLong,
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let s = input.trim();
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| EmailError::Shape(s.to_string()))?;
        let domain_ok =
            (domain.contains('.') || domain == "localhost") && !domain.starts_with('.') && !domain.ends_with('.');
        if local.is_empty() || local.contains('@') || !domain_ok {
            return Err(EmailError::Shape(s.to_string()));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '(' | ')' | ',' | ';')) {
            return Err(EmailError::Characters(s.to_string()));
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_cases_and_trims() {
        let e = EmailAddress::parse("  Jane.Doe@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "jane.doe@example.org");
        assert_eq!(e.domain(), "example.org");
    }

    #[test]
    fn rejects_non_addresses() {
        for bad in [
            "",
            "jane",
            "@example.org",
            "jane@",
            "jane@example",
            "ja ne@example.org",
            "<j@example.org>",
            "j@.org",
            "j@org.",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn accepts_localhost_and_plus_tags() {
        assert!(EmailAddress::parse("root@localhost").is_ok());
        assert_eq!(EmailAddress::parse("a+tag@b.c").unwrap().as_str(), "a+tag@b.c");
    }

    #[test]
    fn rejects_overlong() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }
}
