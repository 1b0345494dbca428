//! Quorum's POP3 client (RFC 1939, RFC 2449 CAPA/PIPELINING, RFC 2595 STLS, RFC 5034 SASL).
//!
//! Why our own: mail must come out of the mailbox byte for byte. The client keeps every byte
//! the server sends between the status line and the terminating `.CRLF` (after undoing the
//! dot-stuffing), including the last line's CRLF and empty messages, runs in linear time in
//! the message size, and caps message size by configuration rather than a fixed number.
//!
//! [`proto`] is the wire format alone (no I/O, property tested); [`client`] is the session on
//! tokio, with a timeout on every wait for the server.

pub mod client;
pub mod proto;

mod error;

pub use client::{Client, ConnectOptions, Credentials, Retrieved};
pub use error::Pop3Error;
pub use proto::{Capabilities, ResponseCode};
pub use quorum_transport::Endpoint;
pub use quorum_transport::{TlsConfig, TlsSettings};
