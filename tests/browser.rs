//! The web pages in a real browser: Debian's Chromium driven through ChromeDriver
//! (fantoccini) against `quorum serve` on loopback, with Dovecot and Postfix behind it.
//! A subscriber signs up a Dovecot mailbox (the wrong password first: the error is shown
//! and the form keeps what was typed), approves a held message from the web and it arrives
//! in the Dovecot mailbox; an operator logs in, reads the correlation table and the campaign
//! report (a probe's botnet spam). Another signs up an IMAP mailbox. Screenshots
//! of the main pages and the service's log are saved under `target/tmp/screenshots/`.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use quorum_domain::{EmailAddress, Keys, Timestamp};
use quorum_storage::{CorrelationRow, Database, Sqlite, StatisticsUpdate};
use quorum_tests::{MailStack, TestUser, fresh_sqlite, quorum_service, run, unique};

/// Kills a child process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_for_http(port: u16, path: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            let out = Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{port}{path}")]).output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing answered on port {port}");
}

async fn browser(driver_port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--no-first-run", "--window-size=1100,900"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("ChromeDriver started a Chromium session")
}

/// The test's artifacts: screenshots and the service's log.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn artifact(name: &str) -> std::fs::File {
    std::fs::File::create(artifacts().join(name)).unwrap()
}

async fn screenshot(client: &Client, name: &str) {
    std::fs::write(artifacts().join(format!("{name}.png")), client.screenshot().await.unwrap()).unwrap();
}

async fn fill(client: &Client, id: &str, value: &str) {
    // Waits for the field: a click that navigates returns before the next page is loaded.
    let field = client.wait().for_element(Locator::Id(id)).await.unwrap_or_else(|e| panic!("field #{id}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn value(client: &Client, id: &str) -> String {
    client.find(Locator::Id(id)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
}

/// `quorum serve` on a fresh SQLite database (polling every second, its log saved as
/// `<log>.log`), ChromeDriver, and a Chromium session; all ended with the test.
struct Site {
    client: Client,
    base: String,
    url: String,
    key: String,
    _dir: tempfile::TempDir,
    _serve: Running,
    _driver: Running,
}

async fn site(log: &str) -> Site {
    let stack = MailStack::get();
    let driver = stack.chromedriver.clone().expect("ChromeDriver: run tests/setup.sh (it installs chromium-driver)");
    let (dir, url) = fresh_sqlite();
    let key = Keys::generate_master();
    let web_port = free_port();
    let base = format!("http://127.0.0.1:{web_port}");
    let mut serve = quorum_service(&url, &key, None);
    serve
        .env("QUORUM_LISTEN", format!("127.0.0.1:{web_port}"))
        .env("QUORUM_WEB__BASE_URL", &base)
        .env("QUORUM_WORKER__POLL_INTERVAL_SECS", "1")
        .env("QUORUM_DATA_DIR", dir.path())
        .env("QUORUM_LOG", "info")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(artifact(&format!("{log}.log")));
    let serve = Running(serve.spawn().unwrap());
    let driver_port = free_port();
    let driver = Running(
        Command::new(driver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_http(web_port, "/healthz").await;
    wait_for_http(driver_port, "/status").await;
    let client = browser(driver_port).await;
    Site { client, base, url, key, _dir: dir, _serve: serve, _driver: driver }
}

/// Drops a message from an unknown sender into `user`'s Inbox and waits until the account
/// page lists it as held; returns its subject and bytes.
async fn held_on_the_page(client: &Client, base: &str, user: &TestUser, topic: &str) -> (String, String) {
    let subject = format!("{topic} {}", unique());
    let raw = format!(
        "From: Bob <bob@friends.example>\r\nTo: {}\r\nSubject: {subject}\r\nMessage-ID: <{}@friends.example>\r\n\r\nSee you then.\r\n",
        user.email,
        unique()
    );
    MailStack::get().maildir_drop(user, raw.as_bytes());
    for _ in 0..100 {
        client.goto(&format!("{base}/account")).await.unwrap();
        if client.source().await.unwrap().contains(&subject) {
            return (subject, raw);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("the held message never appeared on the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_approve_and_the_operators_correlation_table_in_chromium() {
    let stack = MailStack::get();
    let site = site("browser-serve").await;
    let (client, base, url, key) = (&site.client, &site.base, &site.url, &site.key);

    // The landing page, then signup with the wrong mailbox password.
    let alice = stack.new_user("web-alice");
    client.goto(&format!("{base}/")).await.unwrap();
    screenshot(client, "landing").await;
    client.find(Locator::LinkText("Sign up your mailbox")).await.unwrap().click().await.unwrap();
    fill(client, "email", &alice.email).await;
    fill(client, "web_password", "alice's web password").await;
    fill(client, "host", "127.0.0.1").await;
    fill(client, "port", &stack.pop3_port.to_string()).await;
    client.find(Locator::Css("#security option[value='plain']")).await.unwrap().click().await.unwrap();
    fill(client, "username", &alice.email).await;
    fill(client, "password", "not the password").await;
    fill(client, "time_zone", "Europe/Berlin").await;
    client.find(Locator::Id("signup")).await.unwrap().click().await.unwrap();
    let errors = client.wait().for_element(Locator::Id("errors")).await.unwrap().text().await.unwrap();
    assert!(errors.contains("login failed") && errors.contains("Check the user name"), "{errors}");
    assert!(!errors.contains(".."), "{errors}");
    screenshot(client, "signup-error").await;
    // What was typed is still there, except the passwords.
    assert_eq!(value(client, "email").await, alice.email);
    assert_eq!(value(client, "port").await, stack.pop3_port.to_string());
    assert_eq!(value(client, "time_zone").await, "Europe/Berlin");
    assert_eq!(value(client, "password").await, "");
    // The right password: signed up and logged in.
    fill(client, "password", &alice.password).await;
    fill(client, "web_password", "alice's web password").await;
    client.find(Locator::Id("signup")).await.unwrap().click().await.unwrap();
    client.wait().for_url(&url::Url::parse(&format!("{base}/account")).unwrap()).await.unwrap();

    // A message from an unknown sender arrives: the worker holds it and the page lists it.
    let (subject, _) = held_on_the_page(client, base, &alice, "Lunch on Friday").await;
    assert_eq!(MailStack::get().in_maildir(&alice, &subject), 0, "taken out of the mailbox while held");
    // The welcome email stays in the Inbox (Quorum's own notices are never held).
    assert_eq!(MailStack::get().in_maildir(&alice, "Subject: Welcome to Quorum"), 1);
    assert!(!client.source().await.unwrap().contains("Welcome to Quorum"));
    screenshot(client, "account-held").await;
    // On a phone: the page fits the screen's width (no sideways scrolling), every action a
    // plain button or link (reachable by keyboard, no scripts).
    client.set_window_size(390, 844).await.unwrap();
    client.refresh().await.unwrap();
    let fits =
        client.execute("return document.documentElement.scrollWidth <= window.innerWidth;", vec![]).await.unwrap();
    assert_eq!(fits, serde_json::Value::Bool(true), "the held-mail page scrolls sideways on a phone");
    screenshot(client, "account-phone").await;
    client.set_window_size(1100, 900).await.unwrap();
    // Approve it from the web: delivered back into the Dovecot mailbox.
    let approve = format!("//tr[td[contains(., '{subject}')]]//button[@name='approve']");
    client.find(Locator::XPath(&approve)).await.unwrap().click().await.unwrap();
    let notice = client.wait().for_element(Locator::Id("notice")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("Sender approved"), "{notice}");
    screenshot(client, "account-approved").await;
    let mut arrived = 0;
    for _ in 0..100 {
        arrived = MailStack::get().in_maildir(&alice, &subject);
        if arrived > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(arrived, 1, "the approved message arrives once in alice's Dovecot mailbox");

    // The operator: created on the command line, reads the correlation table.
    let db = Sqlite::connect(url).await.unwrap();
    let bob = db
        .add_subscriber(
            &quorum_tests::dovecot_subscriber(
                &TestUser { email: "bob@web.test".into(), password: "x".into() },
                &Keys::from_master_text(key).unwrap(),
            ),
            Timestamp::now(),
        )
        .await
        .unwrap();
    quorum_tests::botnet_spam(&db, &Keys::from_master_text(key).unwrap()).await;
    let a = db.subscriber_by_email(&EmailAddress::parse(&alice.email).unwrap()).await.unwrap().unwrap();
    let row = CorrelationRow {
        user_id: a.subscriber_id,
        cuser_id: bob.subscriber_id,
        rms_error: 0.0421,
        confidence: 0.0103,
        max_rms_error: 0.0524,
        domains: 17,
        computed_at: Timestamp::now().0,
    };
    let update =
        StatisticsUpdate { trust: Vec::new(), correlations: vec![(a.subscriber_id, vec![row])], keys: Vec::new() };
    db.write_statistics(&update).await.unwrap();
    let mut admin = quorum_service(url, key, None);
    admin.env("QUORUM_ADMIN_PASSWORD", "operator password").args(["admin", "create", "ops@quorum.test"]);
    let (ok, out) = run(admin);
    assert!(ok, "{out}");
    client.find(Locator::Css("header button.link")).await.unwrap().click().await.unwrap(); // log out
    client.wait().for_url(&url::Url::parse(&format!("{base}/")).unwrap()).await.unwrap();
    client.goto(&format!("{base}/login")).await.unwrap();
    fill(client, "email", "ops@quorum.test").await;
    fill(client, "password", "operator password").await;
    client.find(Locator::Id("login")).await.unwrap().click().await.unwrap();
    client.wait().for_url(&url::Url::parse(&format!("{base}/admin")).unwrap()).await.unwrap();
    screenshot(client, "admin-dashboard").await;
    client.find(Locator::LinkText("Correlation")).await.unwrap().click().await.unwrap();
    let table = client.wait().for_element(Locator::Id("correlation")).await.unwrap().text().await.unwrap();
    assert!(table.contains(&alice.email) && table.contains("bob@web.test") && table.contains("0.0524"), "{table}");
    screenshot(client, "admin-correlation").await;
    client.find(Locator::LinkText("Campaigns")).await.unwrap().click().await.unwrap();
    let heading = client.wait().for_element(Locator::Css("main h1")).await.unwrap().text().await.unwrap();
    assert_eq!(heading, "Spam campaigns of the last 12h");
    let table = client.wait().for_element(Locator::Id("campaigns")).await.unwrap().text().await.unwrap();
    assert!(table.contains("103.176.192.0/24") && table.contains("Your TooI Set"), "{table}");
    screenshot(client, "admin-campaigns").await;
    site.client.clone().close().await.unwrap();
}

/// Signup with IMAP in Chromium: the form explains the choice, the check creates Quorum's
/// folders in the real mailbox, the welcome mail says where held mail is, and a message from
/// an unknown sender ends up in Quorum/Held, listed on the account page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_with_imap_in_chromium() {
    let stack = MailStack::get();
    let site = site("browser-imap-serve").await;
    let (client, base) = (&site.client, &site.base);
    let carol = stack.new_user("web-carol");
    client.goto(&format!("{base}/signup")).await.unwrap();
    client.find(Locator::Css("#protocol option[value='imap']")).await.unwrap().click().await.unwrap();
    let help = client.find(Locator::Id("protocol-help")).await.unwrap().text().await.unwrap();
    assert!(help.contains("Quorum/Held") && help.contains("nothing is deleted"), "{help}");
    fill(client, "email", &carol.email).await;
    fill(client, "web_password", "carol's web password").await;
    fill(client, "host", "127.0.0.1").await;
    fill(client, "port", &stack.imap_port.to_string()).await;
    client.find(Locator::Css("#security option[value='starttls']")).await.unwrap().click().await.unwrap();
    fill(client, "username", &carol.email).await;
    fill(client, "password", &carol.password).await;
    screenshot(client, "signup-imap").await;
    client.find(Locator::Id("signup")).await.unwrap().click().await.unwrap();
    client.wait().for_url(&url::Url::parse(&format!("{base}/account")).unwrap()).await.unwrap();
    // The check made the folders; the welcome mail (Postfix, into the Inbox) names them.
    let subscriptions = std::fs::read_to_string(stack.mail_dir.join(&carol.email).join("subscriptions")).unwrap();
    assert!(subscriptions.contains("Held") && subscriptions.contains("Deleted"), "{subscriptions:?}");
    stack.wait_for_message_containing(&carol, "Quorum/Held of your mailbox").await;

    let (_, raw) = held_on_the_page(client, base, &carol, "Dinner on Saturday").await;
    screenshot(client, "account-imap").await;
    let held = stack.mail_dir.join(&carol.email).join(".Quorum.Held");
    let in_held = ["new", "cur"]
        .iter()
        .filter_map(|d| std::fs::read_dir(held.join(d)).ok())
        .flatten()
        .filter(|f| std::fs::read(f.as_ref().unwrap().path()).unwrap() == raw.as_bytes())
        .count();
    assert_eq!(in_held, 1, "the message is in Quorum/Held byte for byte");
    site.client.clone().close().await.unwrap();
}
