//! Quorum's IMAP mailboxes (IMAP4rev1 with IDLE, MOVE, UIDPLUS and CONDSTORE where the
//! server offers them).
//!
//! Why async-imap under it: a FETCH literal is read into one buffer sized by the length the
//! server announced and handed back as a slice, so a message comes out byte for byte,
//! NUL and bare CR or LF included (tests/imap_dovecot.rs holds it to a raw exchange). What
//! it leaves to us, and this crate adds: a timeout on every wait (async-imap has one only
//! for IDLE), folder names built with the server's hierarchy delimiter, the fallback for
//! servers without MOVE, and UID sets written compactly.
//!
//! [`uids`] is pure (property tested); [`session`] is the connection.

pub mod session;
pub mod uids;

mod error;

pub use error::ImapError;
pub use quorum_transport::Endpoint;
pub use session::{Capabilities, Fetched, Listed, Selected, Session};
