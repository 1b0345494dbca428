//! Support for the end-to-end tests: the real mail stack started by `tests/setup.sh`
//! (Dovecot POP3 + LMTP, Postfix SMTP, on loopback), fresh databases, and the `quorum`
//! binary. Nothing here fakes a server.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub mod dns;
pub mod seed;

use quorum_domain::Security;
use quorum_pop3::{Client, ConnectOptions, Credentials, Endpoint, TlsSettings};

/// What `tests/setup.sh` started, read from its env file.
pub struct MailStack {
    pub pop3_port: u16,
    pub pop3s_port: u16,
    /// IMAP with STARTTLS, and implicit-TLS IMAPS.
    pub imap_port: u16,
    pub imaps_port: u16,
    /// Loopback addresses whose IMAP on `imap_port` advertises no MOVE, and neither MOVE nor
    /// UIDPLUS: servers without the extensions Quorum prefers.
    pub imap_without_move: String,
    pub imap_without_move_or_uidplus: String,
    pub smtp_port: u16,
    /// A Postfix listener refusing the clients listed in `blocklist_map` (a `cidr:` table);
    /// it accepts XCLIENT from loopback, so a test can speak as any client address.
    pub blocklist_port: u16,
    pub blocklist_map: PathBuf,
    /// The stack's Postfix configuration directory (for `postmap -c`).
    pub postfix_conf: PathBuf,
    pub cert: PathBuf,
    pub mail_dir: PathBuf,
    pub domain: String,
    pub pg_url: String,
    /// ChromeDriver for the browser tests (installed by tests/setup.sh with Chromium).
    pub chromedriver: Option<PathBuf>,
    /// Dovecot's own log: every login and logout, with its session id.
    pub dovecot_log: PathBuf,
    script: PathBuf,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub password: String,
}

impl MailStack {
    pub fn get() -> &'static MailStack {
        static STACK: OnceLock<MailStack> = OnceLock::new();
        STACK.get_or_init(|| {
            let dir = std::env::var("QUORUM_MAILSTACK_DIR").unwrap_or_else(|_| "/tmp/quorum-mailstack".into());
            let file = Path::new(&dir).join("env");
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!("{}: {e}. Start the test servers with tests/setup.sh (tests/run.sh does)", file.display())
            });
            let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
            let get = |k: &str| vars.get(k).unwrap_or_else(|| panic!("{k} missing in {}", file.display())).to_string();
            MailStack {
                pop3_port: get("QUORUM_TEST_POP3_PORT").parse().unwrap(),
                pop3s_port: get("QUORUM_TEST_POP3S_PORT").parse().unwrap(),
                imap_port: get("QUORUM_TEST_IMAP_PORT").parse().unwrap(),
                imaps_port: get("QUORUM_TEST_IMAPS_PORT").parse().unwrap(),
                imap_without_move: get("QUORUM_TEST_IMAP_WITHOUT_MOVE"),
                imap_without_move_or_uidplus: get("QUORUM_TEST_IMAP_WITHOUT_MOVE_OR_UIDPLUS"),
                smtp_port: get("QUORUM_TEST_SMTP_PORT").parse().unwrap(),
                blocklist_port: get("QUORUM_TEST_BLOCKLIST_PORT").parse().unwrap(),
                blocklist_map: get("QUORUM_TEST_BLOCKLIST_MAP").into(),
                postfix_conf: Path::new(&dir).join("postfix"),
                cert: get("QUORUM_TEST_TLS_CERT").into(),
                mail_dir: get("QUORUM_TEST_MAIL_DIR").into(),
                domain: get("QUORUM_TEST_DOMAIN"),
                pg_url: get("QUORUM_TEST_PG_URL"),
                chromedriver: vars.get("QUORUM_TEST_CHROMEDRIVER").map(PathBuf::from),
                dovecot_log: Path::new(&dir).join("log/dovecot.log"),
                script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mail-stack.sh"),
            }
        })
    }

    /// A new Dovecot user with an empty mailbox; the name is unique to this test run.
    pub fn new_user(&self, tag: &str) -> TestUser {
        self.new_users(tag, 1).pop().expect("one user")
    }

    /// `n` new Dovecot users at once (one rewrite of the users file: adding hundreds one
    /// by one would wait a second each for Dovecot to see the change).
    pub fn new_users(&self, tag: &str, n: usize) -> Vec<TestUser> {
        let users: Vec<TestUser> = (0..n)
            .map(|_| TestUser {
                email: format!("{tag}-{}@{}", unique(), self.domain),
                password: format!("pw-{}", unique()),
            })
            .collect();
        // In chunks: the script hands its arguments on to other commands, and the kernel
        // bounds an argument list.
        for chunk in users.chunks(1000) {
            let args = chunk.iter().flat_map(|u| [u.email.as_str(), u.password.as_str()]);
            let status = Command::new(&self.script).arg("add-user").args(args).status().expect("running mail-stack.sh");
            assert!(status.success(), "mail-stack.sh add-user ({} users, {tag}) failed", chunk.len());
        }
        users
    }

    /// Submits a message to Postfix, which delivers it to Dovecot over LMTP.
    pub async fn smtp_send(&self, to: &TestUser, from: &str, raw: &[u8]) {
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(self.smtp_port).build();
        let envelope = Envelope::new(Some(from.parse().unwrap()), vec![to.email.parse().unwrap()]).unwrap();
        transport.send_raw(&envelope, raw).await.expect("Postfix accepted the message");
    }

    /// Puts a message straight into the user's Maildir, byte for byte (Postfix would add
    /// headers; some tests need exactly the bytes they wrote, or many messages quickly).
    pub fn maildir_drop(&self, user: &TestUser, raw: &[u8]) {
        let root = self.mail_dir.join(&user.email);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let name = format!("{}.{}.quorum-test", unique(), std::process::id());
        let tmp = root.join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap();
        // Only what this call touched (not `-R`: Dovecot may be moving files of a mailbox
        // a worker is polling, and a file gone mid-walk fails the whole chown).
        let status = Command::new("chown")
            .arg("quorum-vmail:quorum-vmail")
            .args([root.clone(), root.join("tmp"), root.join("new"), root.join("cur"), tmp.clone()])
            .status()
            .unwrap();
        assert!(status.success(), "chown of the test Maildir failed");
        std::fs::rename(&tmp, root.join("new").join(&name)).unwrap();
    }

    /// Files in the user's Maildir whose text contains `needle`, read from disk: no POP3
    /// session that would compete with a worker's for the mailbox lock.
    pub fn in_maildir(&self, user: &TestUser, needle: &str) -> usize {
        let root = self.mail_dir.join(&user.email);
        ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(root.join(d)).ok())
            .flatten()
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .filter(|bytes| String::from_utf8_lossy(bytes).contains(needle))
            .count()
    }

    /// The stack's server on `port` at 127.0.0.1, its certificate trusted.
    pub fn endpoint(&self, port: u16, security: Security) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port,
            security,
            timeout: Duration::from_secs(30),
            tls: TlsSettings { extra_ca_files: vec![self.cert.clone()] }.client_config().unwrap(),
        }
    }

    /// POP3 (with STLS for [`Security::StartTls`]) or POP3S.
    pub fn connect_options(&self, security: Security) -> ConnectOptions {
        let port = if security == Security::Tls { self.pop3s_port } else { self.pop3_port };
        ConnectOptions { endpoint: self.endpoint(port, security), max_message_size: u64::MAX }
    }

    /// The subscriber's own mail client on IMAP (plain async-imap, Inbox selected): what
    /// another program does to the mailbox while Quorum polls it.
    pub async fn other_imap_client(&self, user: &TestUser) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.imap_port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().expect("a greeting");
        let mut session = client.login(&user.email, &user.password).await.map_err(|(e, _)| e).unwrap();
        session.select("INBOX").await.unwrap();
        session
    }

    /// A logged-in POP3 session (plain, for reading what the mailbox holds).
    pub async fn login(&self, user: &TestUser) -> Client {
        let mut client = Client::connect(&self.connect_options(Security::Plain)).await.expect("connect to Dovecot");
        client.capabilities().await.unwrap();
        client.login(Credentials::User { user: &user.email, password: &user.password }).await.expect("login");
        client
    }

    /// Every message in the mailbox as a plain RETR returns it, with its UIDL.
    pub async fn retr_all(&self, user: &TestUser) -> Vec<(String, Vec<u8>)> {
        let mut client = self.login(user).await;
        let uidls = client.uidl().await.unwrap();
        let mut out = Vec::new();
        for (n, uidl) in uidls {
            out.push((uidl, client.retr(n).await.unwrap()));
        }
        client.quit().await.unwrap();
        out
    }

    /// Waits until a message in the mailbox contains `text` (Postfix delivers
    /// asynchronously); returns that message.
    pub async fn wait_for_message_containing(&self, user: &TestUser, text: &str) -> String {
        for _ in 0..200 {
            let found =
                self.retr_all(user).await.into_iter().map(|(_, raw)| String::from_utf8_lossy(&raw).into_owned());
            if let Some(message) = found.into_iter().find(|m| m.contains(text)) {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no message containing {text:?} reached {} within 20 s", user.email);
    }

    /// Waits until the mailbox holds `count` messages (Postfix delivers asynchronously).
    pub async fn wait_for_messages(&self, user: &TestUser, count: u32) {
        for _ in 0..200 {
            let mut client = self.login(user).await;
            let (n, _) = client.stat().await.unwrap();
            client.quit().await.unwrap();
            if n >= count {
                assert_eq!(n, count, "more messages than sent in {}", user.email);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not receive {count} messages within 20 s", user.email);
    }
}

/// A string unique within this machine for this test run.
pub fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000_000;
    format!("{}x{}x{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh SQLite database in its own folder (the folder lives as long as the guard).
pub fn fresh_sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/quorum.db", dir.path().display());
    (dir, url)
}

/// A fresh, empty PostgreSQL database on the test server; returns its URL.
pub async fn fresh_postgres() -> String {
    use sqlx::Connection;
    let admin = &MailStack::get().pg_url;
    let name = format!("quorum_test_{}", unique());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}. Start it with tests/setup.sh"));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (base, _) = admin.rsplit_once('/').expect("database URL with a path");
    format!("{base}/{name}")
}

/// The `quorum` binary built next to the test executables (`tests/run.sh` builds it).
pub fn quorum_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>/deps/<test>");
    let bin = dir.join("quorum");
    assert!(bin.exists(), "{} not found: build it first (cargo build -p quorum; tests/run.sh does)", bin.display());
    bin
}

/// A `quorum` command on the given database, with a fixed test master key and the test
/// CA trusted.
pub fn quorum(db_url: &str, key: &str) -> Command {
    let stack = MailStack::get();
    let mut cmd = Command::new(quorum_bin());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("QUORUM_DATABASE_URL", db_url)
        .env("QUORUM_SECRET_KEY", key)
        .env("QUORUM_WORKER__TLS_CA_FILES", &stack.cert)
        .env("QUORUM_LOG", "warn");
    cmd
}

/// `quorum` with the settings a service needs to send mail through the stack's Postfix and,
/// given a robot mailbox, to read it (summary replies and confirmation answers go there).
pub fn quorum_service(db_url: &str, key: &str, robot: Option<&TestUser>) -> Command {
    let stack = MailStack::get();
    let mut cmd = quorum(db_url, key);
    cmd.env("QUORUM_SMTP__PORT", stack.smtp_port.to_string())
        .env("QUORUM_SMTP__ENVELOPE_FROM", "quorum@quorum.test")
        .env("QUORUM_SUMMARY__REPLY_DOMAIN", "quorum.test");
    if let Some(robot) = robot {
        cmd.env("QUORUM_SUMMARY__REPLY_LOCAL", robot.email.split('@').next().unwrap())
            .env("QUORUM_ROBOT__HOST", "127.0.0.1")
            .env("QUORUM_ROBOT__PORT", stack.pop3_port.to_string())
            .env("QUORUM_ROBOT__SECURITY", "plain")
            .env("QUORUM_ROBOT__USER", &robot.email)
            .env("QUORUM_ROBOT__PASSWORD", &robot.password);
    }
    cmd
}

/// Runs a command with `stdin` on its standard input (a password, say): whether it
/// succeeded, and all it printed.
pub fn run_with_input(mut cmd: Command, stdin: &str) -> (bool, String) {
    use std::{io::Write, process::Stdio};
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Runs a command with nothing on standard input: whether it succeeded, and all it printed.
pub fn run(mut cmd: Command) -> (bool, String) {
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Reads a corpus message (the team kit's `../shared/corpus`), without its mbox `From ` line.
pub fn corpus_message(path: &Path) -> Vec<u8> {
    quorum_domain::inspect::without_mbox_line(&std::fs::read(path).unwrap()).to_vec()
}

/// Every corpus file of `dir` ([`corpus_dir`]): spam, ham, hard ham, each group in name order.
pub fn corpus_paths(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for group in ["spam", "ham", "hard-ham"] {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(group)).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        files.extend(names);
    }
    files
}

/// A small deterministic generator (xorshift64*) for the corpus tests' variations: the same
/// every run, so a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough below `n` (at least 1).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The corpus folder, if the team kit is next to the repository.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/spamassassin-dev");
    dir.is_dir().then_some(dir)
}

/// The corpus folder for the test `test`; without it (a fresh clone, no team kit beside the
/// repository) `None`, after the test says in its output that it is skipped and why. The
/// test then returns: it checks nothing, and passes.
pub fn corpus_or_skip(test: &str) -> Option<PathBuf> {
    let dir = corpus_dir();
    if dir.is_none() {
        eprintln!(
            "SKIPPED {test}: it needs the labelled corpus at ../shared/corpus/spamassassin-dev beside the \
             repository, which this checkout does not have"
        );
    }
    dir
}

/// A scripted IMAP server on loopback for one connection: it greets, then answers each
/// command line with `answer(tag, command)` (which includes the tagged status), and ends
/// after LOGOUT. For what a real server will not do (refuse a listing, send NUL bytes).
/// Returns its port and the task, which ends with the connection.
pub async fn scripted_imap(
    answer: impl Fn(&str, &str) -> Vec<u8> + Send + 'static,
) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        write.write_all(b"* OK scripted\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
            if write.write_all(&answer(tag, command)).await.is_err() || command.starts_with("LOGOUT") {
                break;
            }
        }
    });
    (port, server)
}

/// Where [`faulty_proxy`] breaks the first connection through it.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// After forwarding this many bytes from the server: the connection dies mid-answer.
    AfterServerBytes(usize),
    /// When the client sends a command starting with this verb (after its tag, for IMAP),
    /// before the server sees it.
    BeforeClientSends(&'static str),
}

/// A TCP proxy on loopback in front of a real server that breaks the *first* connection as
/// `cut` says and passes later ones through untouched: a server fault at a chosen moment.
/// Needs a multi-threaded runtime when the test blocks on a child process.
pub async fn faulty_proxy(target_port: u16, cut: Cut) -> u16 {
    faulty_proxy_to("127.0.0.1", target_port, cut).await
}

/// [`faulty_proxy`] in front of a server on another loopback address (the mail stack's
/// listeners without some IMAP extensions).
pub async fn faulty_proxy_to(target_host: &str, target_port: u16, cut: Cut) -> u16 {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };
    let target_host = target_host.to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let server = TcpStream::connect((target_host.as_str(), target_port)).await.unwrap();
            let cut = std::mem::take(&mut first).then_some(cut);
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let upstream = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = cr.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        if let Some(Cut::BeforeClientSends(verb)) = cut {
                            let after_tag = buf[..n].splitn(2, |&b| b == b' ').nth(1).unwrap_or_default();
                            if buf[..n].starts_with(verb.as_bytes()) || after_tag.starts_with(verb.as_bytes()) {
                                return;
                            }
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let downstream = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut sent = 0usize;
                    loop {
                        let n = sr.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        let n = match cut {
                            Some(Cut::AfterServerBytes(limit)) => n.min(limit - sent),
                            _ => n,
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                        if matches!(cut, Some(Cut::AfterServerBytes(limit)) if sent >= limit) {
                            return;
                        }
                    }
                };
                // Whichever side ends first ends the connection, both halves dropped.
                tokio::select! { _ = upstream => {}, _ = downstream => {} }
            });
        }
    });
    port
}

/// A "POP3 server" that greets and then never answers again: a stalled provider.
pub async fn stalled_server() -> u16 {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = conn.write_all(b"+OK stalled server ready\r\n").await;
                let mut sink = [0u8; 1024];
                while conn.read(&mut sink).await.is_ok_and(|n| n > 0) {}
            });
        }
    });
    port
}

/// A subscriber whose mailbox is the given Dovecot user (plain POP3, USER/PASS), with the
/// password encrypted by `keys`, for benchmarks that fill the database directly.
pub fn dovecot_subscriber(user: &TestUser, keys: &quorum_domain::Keys) -> quorum_storage::NewSubscriber {
    dovecot_subscriber_at(user, keys, "127.0.0.1", MailStack::get().pop3_port)
}

/// A subscriber of a plain POP3 server at `host:port` (benchmarks that never poll it).
pub fn dovecot_subscriber_at(
    user: &TestUser,
    keys: &quorum_domain::Keys,
    host: &str,
    port: u16,
) -> quorum_storage::NewSubscriber {
    use quorum_domain::{AuthMethod, EmailAddress, schedule::SummarySchedule, secrets::Password};
    let email = EmailAddress::parse(&user.email).unwrap();
    let password_enc = keys.encrypt_password(&Password::new(user.password.clone()), email.as_str());
    quorum_storage::NewSubscriber {
        email,
        approved_days: 90,
        schedule: SummarySchedule::parse(SummarySchedule::DEFAULT_TIMES, "UTC").unwrap(),
        mailbox: quorum_storage::MailboxSettings {
            protocol: quorum_domain::Protocol::Pop3,
            host: host.into(),
            port,
            security: Security::Plain,
            auth: AuthMethod::User,
            username: user.email.clone(),
            password_enc,
            trusted_domains: Vec::new(),
        },
    }
}

/// `--name N` from a benchmark's command line, or `default`.
pub fn bench_arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Spam of one botnet /24 for a new spam probe `probe@web.test` (keys: the mailbox's
/// password key): three hosts, two messages each, one subject in leetspeak and plain,
/// committed as the probe's poll commits it.
pub async fn botnet_spam(db: &impl quorum_storage::Database, keys: &quorum_domain::Keys) {
    use quorum_domain::{EmailAddress, MessageHash, Timestamp};
    let probe = TestUser { email: "probe@web.test".into(), password: "x".into() };
    let ids = db.add_subscriber(&dovecot_subscriber(&probe, keys), Timestamp::now()).await.unwrap();
    let from = EmailAddress::parse("cvspointsextra@throwaway.example").unwrap();
    let raws: Vec<Vec<u8>> =
        (0..6).map(|i| format!("Subject: Your TooI Set\r\n\r\noffer {i}\r\n").into_bytes()).collect();
    let reputation: Vec<Vec<quorum_reputation::Key>> = (0..6)
        .map(|i| {
            let ip: std::net::IpAddr = format!("103.176.192.{}", 9 + i % 3).parse().unwrap();
            quorum_reputation::keys(&quorum_reputation::Facts {
                handoff: Some(ip),
                from: Some(from.as_str()),
                fingerprint: None,
            })
        })
        .collect();
    let uidls: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    let items: Vec<quorum_storage::PollItem> = (0..6)
        .map(|i| quorum_storage::PollItem::Quarantine {
            uidl: &uidls[i],
            status: "probe_spam",
            raw: &raws[i],
            hash: MessageHash::of(&raws[i]),
            from: Some(&from),
            from_name: None,
            subject: Some(if i % 2 == 0 { "Your TooI Set" } else { "Your Tool Set" }),
            checked: None,
            campaign: None,
            stat_keys: None,
            confirm_to: None,
            reputation: &reputation[i],
            imap_folder: None,
        })
        .collect();
    db.commit_poll(ids.mailbox_id, ids.subscriber_id, &items, Timestamp::now()).await.unwrap();
}
