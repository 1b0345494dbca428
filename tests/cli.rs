//! Commands that read files and change nothing.

use std::{path::Path, process::Command};

use quorum_tests::quorum_bin;

#[test]
fn reply_parse_prints_one_json_line_per_summary_line_and_touches_nothing() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/summary/fixtures");
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(quorum_bin())
        .current_dir(cwd.path())
        .env_clear()
        .env("QUORUM_SECRET_KEY", "ab".repeat(32))
        .args(["reply", "parse"])
        .arg(fixtures.join("summary.eml"))
        .arg(fixtures.join("replies/thunderbird.eml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            r#"{"id":"00001","action":"approve"}"#,
            r#"{"id":"00002","action":"release"}"#,
            r#"{"id":"00003","action":"delete"}"#,
            r#"{"id":"00004","action":"release"}"#,
            r#"{"id":"00005","action":"missing"}"#,
        ]
    );
    // The fixture's reply address carries no token Quorum issued: reported, not enforced.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("would be rejected") && stderr.contains("token"), "{stderr}");
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "no database or key file was created");
}

#[test]
fn reply_parse_refuses_a_file_that_is_not_a_summary() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/summary/fixtures");
    let cwd = tempfile::tempdir().unwrap();
    let not_a_summary = cwd.path().join("note.eml");
    std::fs::write(&not_a_summary, "From: a@example.org\r\nSubject: hi\r\n\r\nNo boxes here.\r\n").unwrap();
    let out = Command::new(quorum_bin())
        .current_dir(cwd.path())
        .env_clear()
        .args(["reply", "parse"])
        .arg(&not_a_summary)
        .arg(fixtures.join("replies/large.eml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lists no held messages"));
}
