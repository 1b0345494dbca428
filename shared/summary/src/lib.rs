//! The twice-daily summary as the subscriber sees it, and their reply to it (SPEC 2.3).
//!
//! A summary line is `[ ] K7F3Q  Jane Doe <jane@example.org>  "Subject"  (not spam: 97%)`:
//! a box, then a short ID naming one held message. The subscriber types `A` (approve the
//! sender and deliver), `R` (deliver this one), or leaves the box as it is (delete and
//! block), and replies quoting the summary. [`parse_reply`] reads that reply back as real
//! mail clients write it: quoted with `> ` (nested too) or not at all, top-posted, HTML only,
//! quoted-printable or base64, format=flowed, re-wrapped.

mod auth;
mod compose;
mod reply;
mod short_id;

pub use auth::{
    AuthError, ReplyPolicy, authenticate, check_sender, dmarc_result, notice_address, recipient, reply_address,
    sole_sender, verified_summary,
};
pub use compose::{Composed, Counts, FORGED_LINES, ForgedLine, HeldLine, compose};
pub use reply::{Action, ParsedLine, Verdict, ids_in_summary, parse_reply, reply_text};
pub use short_id::ShortId;
