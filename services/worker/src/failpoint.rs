//! Named crash points for the durability tests (SPEC 2.1: "a crash anywhere must lose
//! nothing"). Setting `QUORUM_FAILPOINT=<name>` makes the process abort — no destructors,
//! no QUIT, exactly like `kill -9` — when it reaches that step. Unset (always, outside
//! tests) it costs one cached comparison. `QUORUM_FAILPOINT=panic:<name>:<text>` makes the
//! [`panic_point`] of that name panic for a message containing `text` instead: a bug that
//! one message triggers (the poison-message rule).

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var("QUORUM_FAILPOINT").ok().filter(|v| !v.is_empty())).as_deref()
}

pub fn fail_point(name: &str) {
    if armed() == Some(name) {
        eprintln!("fail point `{name}` reached: aborting");
        std::process::abort();
    }
}

/// Panics when armed as `panic:<name>:<text>` and `raw` contains `text`.
pub fn panic_point(name: &str, raw: &[u8]) {
    let Some((point, text)) = armed().and_then(|a| a.strip_prefix("panic:")).and_then(|a| a.split_once(':')) else {
        return;
    };
    if point == name && raw.windows(text.len().max(1)).any(|w| w == text.as_bytes()) {
        panic!("fail point `{name}` reached");
    }
}

/// Runs one step of a message's classification, turning a panic into an error: one
/// message that trips a bug is held as "could not be classified", and the poll goes on.
pub fn guarded<T>(step: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| panic_text(step, payload.as_ref()))
}

/// The message of a caught panic, with the step it came from.
pub fn panic_text(step: &str, payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("{step}: {what}")
}
