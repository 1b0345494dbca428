//! Quorum's domain: the types every service shares and the decisions that need no I/O.
//!
//! Values are validated once, when they enter the system (`EmailAddress::parse`,
//! `Security::from_str`, ...), so the rest of the code can trust them.

pub mod email;
pub mod inspect;
pub mod mailbox;
pub mod provider;
pub mod received;
pub mod release;
pub mod schedule;
pub mod secrets;
pub mod time;

pub use email::EmailAddress;
pub use inspect::{Disposition, InspectedMessage, MessageHash};
pub use mailbox::{AuthMethod, Protocol, Security};
pub use provider::Provider;
pub use secrets::{Keys, ReleaseMarker, SecretError, TokenError};
pub use time::{Timestamp, parse_age};
