//! Named crash points for the durability tests (SPEC 2.1: "a crash anywhere must lose
//! nothing"). Setting `QUORUM_FAILPOINT=<name>` makes the process abort — no destructors,
//! no QUIT, exactly like `kill -9` — when it reaches that step. Unset (always, outside
//! tests) it costs one cached comparison.

use std::sync::OnceLock;

pub fn fail_point(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("QUORUM_FAILPOINT").ok().filter(|v| !v.is_empty()));
    if armed.as_deref() == Some(name) {
        eprintln!("fail point `{name}` reached: aborting");
        std::process::abort();
    }
}
