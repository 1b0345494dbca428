//! Commands that read files and change nothing, and the provider table editor.

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

#[test]
fn providers_list_add_remove() {
    let (_dir, url) = quorum_tests::fresh_sqlite();
    let key = "cd".repeat(32);
    let run = |args: &[&str]| {
        let out = quorum_tests::quorum(&url, &key).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = run(&["providers", "list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.lines().any(|l| l.starts_with("yahoo.com ") && l.contains("ptr_required=yes")), "{out}");
    let seeded = out.lines().count();

    let (code, out) = run(&["providers", "add", "Web.DE", "--ptr-required", "--ns-matches", "cinetic.de"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ptr_supported=yes") && out.contains("ptr_required=yes") && out.contains("ns_matches=cinetic.de")
    );
    let (_, out) = run(&["providers", "list"]);
    assert_eq!(out.lines().count(), seeded, "web.de replaced, not duplicated");
    let web_de = out.lines().find(|l| l.starts_with("web.de ")).unwrap();
    assert!(web_de.contains("ptr_required=yes") && web_de.contains("ptr_domains=web.de"), "{web_de}");

    let (code, out) = run(&["providers", "add", "not a domain"]);
    assert_ne!(code, Some(0));
    assert!(out.contains("is not a domain name"), "{out}");
    assert_eq!(run(&["providers", "remove", "web.de"]).0, Some(0));
    let (code, out) = run(&["providers", "remove", "web.de"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no provider row for web.de"), "{out}");
    assert_eq!(run(&["providers", "list"]).1.lines().count(), seeded - 1);
}

#[tokio::test]
async fn backup_writes_a_consistent_copy_and_the_key_beside_it() {
    use quorum_storage::Database;
    let dir = tempfile::tempdir().unwrap();
    let quorum = |args: &[&str]| {
        Command::new(quorum_bin())
            .current_dir(dir.path())
            .env_clear()
            .env("QUORUM_POP3_PASSWORD", "pw")
            .args(args)
            .output()
            .unwrap()
    };
    let add = ["subscriber", "add", "jane@example.org", "--host", "pop.example.org", "--user", "jane", "--no-check"];
    assert!(quorum(&add).status.success());
    let out = quorum(&["backup", "copy/quorum-backup.db"]);
    assert!(!out.status.success(), "the folder must exist: nothing is created silently");
    std::fs::create_dir(dir.path().join("copy")).unwrap();
    let out = quorum(&["backup", "copy/quorum-backup.db"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("master key copied"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The copy opens on its own and holds the subscriber; the key is the same key.
    let copy =
        quorum_storage::Sqlite::connect(&format!("sqlite://{}", dir.path().join("copy/quorum-backup.db").display()))
            .await
            .unwrap();
    let emails: Vec<String> = copy.list_subscribers().await.unwrap().into_iter().map(|s| s.email).collect();
    assert_eq!(emails, ["jane@example.org"]);
    let key = std::fs::read(dir.path().join("data/secret.key")).unwrap();
    assert_eq!(std::fs::read(dir.path().join("copy/quorum-backup.db.key")).unwrap(), key);
    // Never over an existing file.
    let out = quorum(&["backup", "copy/quorum-backup.db"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("exists already"));
}
