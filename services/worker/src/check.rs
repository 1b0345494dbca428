//! `check-mailbox` and the signup form: connect, log in, and for POP3 CAPA, STAT and UIDL,
//! for IMAP Quorum's folders and the Inbox; say exactly which step failed and what the
//! subscriber can do about it.

use std::fmt;

use quorum_domain::AuthMethod;
use quorum_imap::{Endpoint, ImapError, Session};
use quorum_pop3::{Client, ConnectOptions, Credentials};

use crate::maildrop::{DELETED_FOLDER, Failure, HELD_FOLDER, MailError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStep {
    Connect,
    Capabilities,
    Login,
    Stat,
    Uidl,
    /// IMAP: making `Quorum/Held` and `Quorum/Deleted`.
    Folders,
    /// IMAP: opening the Inbox.
    Select,
}

impl fmt::Display for CheckStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStep::Connect => "connect",
            CheckStep::Capabilities => "CAPA",
            CheckStep::Login => "login",
            CheckStep::Stat => "STAT",
            CheckStep::Uidl => "UIDL",
            CheckStep::Folders => "creating Quorum's folders",
            CheckStep::Select => "opening the Inbox",
        })
    }
}

#[derive(Debug)]
pub struct CheckReport {
    /// POP3's greeting; empty for IMAP.
    pub greeting: String,
    pub capabilities: Vec<String>,
    pub messages: u32,
    /// The mailbox's size (POP3 STAT; IMAP does not say without listing every message).
    pub octets: Option<u64>,
    /// IMAP: the folders held and deleted mail go to, by the server's names.
    pub folders: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub struct CheckFailure {
    pub step: CheckStep,
    pub error: MailError,
    pub advice: &'static str,
}

impl fmt::Display for CheckFailure {
    /// `login failed: <the server's words>. <what to do>` (one full stop, whether or not
    /// the server's words end with one).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let error = self.error.to_string();
        write!(f, "{} failed: {}. {}", self.step, error.trim_end_matches('.'), self.advice)
    }
}

fn fail<E: Into<MailError>>(step: CheckStep) -> impl FnOnce(E) -> CheckFailure {
    move |error| {
        let error = error.into();
        let pop3 = matches!(error, MailError::Pop3(_));
        let advice = match (error.kind(), step) {
            (Failure::Timeout, CheckStep::Connect) if pop3 => {
                "Is the host name and port right, and does your provider allow POP3 from outside its network?"
            }
            (Failure::Timeout, CheckStep::Connect) => {
                "Is the host name and port right, and does your provider allow IMAP from outside its network?"
            }
            (Failure::Unreachable, _) => "Check the host name and port; the server refused or could not be reached.",
            (Failure::Tls(why), _) => tls_advice(why),
            (Failure::Unsupported, CheckStep::Connect) => "Choose implicit TLS or plain for this server.",
            (_, CheckStep::Login) if error.is_transient() => {
                "Another program is reading this mailbox right now; close it or try again in a minute."
            }
            (_, CheckStep::Login) => "Check the user name (often the full address) and the password.",
            (_, CheckStep::Uidl) => "Quorum needs UIDL to recognise messages; this provider cannot be used.",
            (_, CheckStep::Folders) => {
                "Quorum keeps held mail in a folder Quorum/Held of your mailbox; the server did not let it be made. \
                 Check that the mailbox is not full and allows folders, or choose POP3."
            }
            (Failure::Timeout, _) => "The server stopped answering; try again later.",
            _ if pop3 => {
                "Try again later; if it keeps failing, ask your provider whether POP3 is enabled for your account."
            }
            _ => "Try again later; if it keeps failing, ask your provider whether IMAP is enabled for your account.",
        };
        CheckFailure { step, error, advice }
    }
}

/// What to do about a failed TLS handshake, by its cause (rustls's words): a certificate
/// no trusted CA signed, a certificate for another name, or no TLS on that port at all.
fn tls_advice(why: &str) -> &'static str {
    if ["UnknownIssuer", "BadSignature", "UnknownRevocationStatus", "self-signed", "unknown issuer"]
        .iter()
        .any(|s| why.contains(s))
    {
        "The server's certificate is not signed by a CA this machine trusts (self-signed or a private CA): \
         add that CA's certificate (PEM) to [worker] tls_ca_files, or use the provider's public host name."
    } else if why.contains("NotValidForName") || why.contains("not valid for name") {
        "The server's certificate is for another host name: use the name the provider documents for POP3 \
         (often pop.<provider>), not an alias or an IP address."
    } else if why.contains("corrupt message") || why.contains("InvalidContentType") || why.contains("wrong version") {
        "The server does not speak TLS on this port: use --security starttls or plain (usually port 110), \
         or port 995 for implicit TLS."
    } else if why.contains("Expired") || why.contains("NotValidYet") {
        "The server's certificate has expired or is not valid yet (or this machine's clock is wrong); \
         tell the provider, or check the clock."
    } else {
        "Check the security setting: port 995 usually means implicit TLS, 110 plain or STARTTLS."
    }
}

/// Runs the whole check and closes the session with QUIT (nothing is deleted).
pub async fn check_mailbox(
    options: &ConnectOptions,
    credentials: Credentials<'_>,
) -> Result<CheckReport, CheckFailure> {
    let mut client = Client::connect(options).await.map_err(fail(CheckStep::Connect))?;
    let capabilities = client.capabilities().await.map_err(fail(CheckStep::Capabilities))?.lines().to_vec();
    client.login(credentials).await.map_err(fail(CheckStep::Login))?;
    let (messages, octets) = client.stat().await.map_err(fail(CheckStep::Stat))?;
    client.uidl().await.map_err(fail(CheckStep::Uidl))?;
    let greeting = client.greeting().to_string();
    // Everything asked has been answered; a failed QUIT changes nothing for the subscriber.
    let _ = client.quit().await;
    Ok(CheckReport { greeting, capabilities, messages, octets: Some(octets), folders: Vec::new() })
}

/// The IMAP check: log in, make (or find) Quorum's folders, open the Inbox. Nothing is moved.
pub async fn check_imap_mailbox(
    endpoint: &Endpoint,
    method: AuthMethod,
    user: &str,
    password: &str,
) -> Result<CheckReport, CheckFailure> {
    let mut session = Session::connect(endpoint, method, user, password).await.map_err(|e| {
        let step = if matches!(e, ImapError::Auth(_)) { CheckStep::Login } else { CheckStep::Connect };
        fail(step)(e)
    })?;
    let caps = *session.capabilities();
    let capabilities =
        [("IDLE", caps.idle), ("MOVE", caps.moves), ("UIDPLUS", caps.uidplus), ("CONDSTORE", caps.condstore)]
            .into_iter()
            .filter(|(_, has)| *has)
            .map(|(name, _)| name.to_string())
            .collect();
    let mut folders = Vec::new();
    for path in [HELD_FOLDER, DELETED_FOLDER] {
        folders.push(session.folder(&path).await.map_err(fail(CheckStep::Folders))?);
    }
    let inbox = session.select("INBOX").await.map_err(fail(CheckStep::Select))?;
    let _ = session.logout().await;
    Ok(CheckReport { greeting: String::new(), capabilities, messages: inbox.exists, octets: None, folders })
}
