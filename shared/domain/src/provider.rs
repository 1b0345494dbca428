//! The anti-forgery provider table (SPEC 3; the `dns` table of seed 002).
//!
//! A row describes a mail domain whose genuine mail leaves through the provider's own
//! relays. The reverse-DNS rule then asks: does the host that handed the message to the
//! subscriber's provider belong to the claimed provider? Its PTR must end in one of the
//! provider's relay domains, and the reverse zone must be served by the provider's name
//! servers (a spammer controls the PTR of its own address, so it can claim
//! `mail.web.de`; it does not control which name servers its reverse zone is delegated to).
//! Where the name servers are not known, forward confirmation (PTR → address → same IP)
//! proves the same thing: the forward zone of `web.de` is not the spammer's.

use std::fmt;

/// One row of the provider table, validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Provider {
    /// The mail domain people have addresses at (`web.de`).
    pub domain: String,
    /// A large provider with a real subscriber base: statistics must be stricter before
    /// condemning the whole domain (most of its users are not spammers).
    pub major_isp: bool,
    /// Its relays have PTR records in `ptr_domains`: a failed check is evidence.
    pub ptr_supported: bool,
    /// Webmail-only free mail: every genuine message leaves through its relays, so a failed
    /// check proves forgery (seed 002: "free email users always email from the free email
    /// provider's SMTP relays").
    pub ptr_required: bool,
    /// Domains the relays' PTR names end in; empty means `domain` itself (hotmail.com's
    /// relays are named under outlook.com, gmail.com's under google.com).
    pub ptr_domains: Vec<String>,
    /// Domains the reverse zone's NS names must be in (`cinetic.de` for web.de in 2004);
    /// empty means the PTR must instead be forward-confirmed.
    pub ns_matches: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error("`{0}` is not a domain name")]
    BadDomain(String),
    #[error("{0}: a provider whose PTR is required must support PTR")]
    RequiredWithoutSupport(String),
}

impl Provider {
    /// A row, with every domain checked and lower-cased. `ptr_required` implies
    /// `ptr_supported`; asking for one without the other is refused rather than guessed.
    pub fn new(
        domain: &str,
        major_isp: bool,
        ptr_supported: bool,
        ptr_required: bool,
        ptr_domains: &str,
        ns_matches: &str,
    ) -> Result<Self, ProviderError> {
        let domain = parse_domain(domain)?;
        if ptr_required && !ptr_supported {
            return Err(ProviderError::RequiredWithoutSupport(domain));
        }
        Ok(Provider {
            ptr_domains: parse_list(ptr_domains)?,
            ns_matches: parse_list(ns_matches)?,
            domain,
            major_isp,
            ptr_supported,
            ptr_required,
        })
    }

    /// Where the provider's relays are named: `ptr_domains`, or the mail domain itself.
    pub fn relay_domains(&self) -> Vec<&str> {
        if self.ptr_domains.is_empty() {
            vec![self.domain.as_str()]
        } else {
            self.ptr_domains.iter().map(String::as_str).collect()
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "{:<20} major_isp={:<3} ptr_supported={:<3} ptr_required={:<3} ptr_domains={} ns_matches={}",
            self.domain,
            flag(self.major_isp),
            flag(self.ptr_supported),
            flag(self.ptr_required),
            self.relay_domains().join(","),
            if self.ns_matches.is_empty() { "-".to_string() } else { self.ns_matches.join(",") },
        )
    }
}

/// Comma- or space-separated domains, as stored and as typed on the command line.
pub fn parse_list(list: &str) -> Result<Vec<String>, ProviderError> {
    list.split([',', ' ']).filter(|s| !s.trim().is_empty()).map(parse_domain).collect()
}

fn parse_domain(s: &str) -> Result<String, ProviderError> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if d.len() > 253 || !d.contains('.') || !d.split('.').all(label_ok) {
        return Err(ProviderError::BadDomain(s.to_string()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_row_for_web_de() {
        // mysql> insert into dns values ('web.de','1','1','1','cinetic.de');
        let p = Provider::new("Web.DE.", true, true, true, "", "cinetic.de").unwrap();
        assert_eq!(p.domain, "web.de");
        assert_eq!(p.relay_domains(), vec!["web.de"]);
        assert_eq!(p.ns_matches, vec!["cinetic.de"]);
    }

    #[test]
    fn lists_and_bad_input() {
        let p = Provider::new("hotmail.com", true, true, true, "outlook.com, hotmail.com", "").unwrap();
        assert_eq!(p.relay_domains(), vec!["outlook.com", "hotmail.com"]);
        assert!(p.ns_matches.is_empty());
        assert_eq!(
            Provider::new("localhost", true, true, true, "", ""),
            Err(ProviderError::BadDomain("localhost".into()))
        );
        assert!(Provider::new("a..b", true, true, false, "", "").is_err());
        assert!(Provider::new("web.de", true, true, false, "", "bad_domain.de").is_err());
        assert_eq!(
            Provider::new("web.de", true, false, true, "", ""),
            Err(ProviderError::RequiredWithoutSupport("web.de".into()))
        );
    }
}
