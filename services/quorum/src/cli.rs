//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "quorum",
    version,
    about = "Quorum: a collaborative challenge-response mail quarantine for POP3 mailboxes",
    long_about = "Quorum polls subscribers' POP3 mailboxes, leaves mail from approved senders in the \
                  Inbox and moves everything else into a quarantine.\n\n\
                  Settings come from --config (TOML) and QUORUM_* environment variables \
                  (QUORUM_DATABASE_URL, QUORUM_LISTEN, QUORUM_SECRET_KEY_FILE, \
                  QUORUM_WORKER__CONCURRENCY, ...); with neither, Quorum uses SQLite in ./data/."
)]
pub struct Cli {
    /// TOML configuration file (see deploy/quorum.example.toml).
    #[arg(long, global = true, env = "QUORUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log as JSON lines instead of text (log level: QUORUM_LOG, e.g. `info,quorum_worker=debug`).
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in this process: web, worker and scheduler (migrates the database
    /// first).
    Serve,
    /// Run only the mailbox worker.
    Worker,
    /// Run only the web service (health and metrics).
    Web,
    /// Run only the scheduler: summaries at each subscriber's local times, retention.
    Scheduler {
        /// One pass (send what is due now, purge what is too old), then exit.
        #[arg(long)]
        once: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to PATH while the service runs
    /// (`VACUUM INTO`), and the master key file beside it as PATH.key (without it the
    /// stored POP3 passwords cannot be read). On PostgreSQL: use pg_dump.
    Backup {
        /// Where the copy goes; must not exist yet.
        path: std::path::PathBuf,
    },
    /// Move this installation from its SQLite database to an empty PostgreSQL database:
    /// every row of every table, read from one snapshot and written in one transaction (all
    /// or nothing). Stop every Quorum service first (what they write after the snapshot
    /// would stay behind), then point `database_url` at the new database on every node and
    /// keep the same master key. The SQLite file is left as it was.
    MoveToPostgres {
        /// The PostgreSQL database to fill, e.g. postgres://quorum@db.example/quorum (read
        /// from QUORUM_TARGET_URL if not given, so a password stays out of the process list).
        #[arg(env = "QUORUM_TARGET_URL", hide_env_values = true)]
        url: String,
    },
    /// Manage subscribers (the web signup does the same for subscribers themselves).
    #[command(subcommand)]
    Subscriber(SubscriberCommand),
    /// Check a POP3 mailbox: connect, CAPA, login, STAT, UIDL; say exactly what failed.
    /// The password is read from standard input or QUORUM_POP3_PASSWORD. Exit status 2
    /// when the mailbox cannot be used.
    CheckMailbox(CheckMailboxArgs),
    /// The outbox of released mail waiting for the SMTP server.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Summaries.
    #[command(subcommand)]
    Summary(SummaryCommand),
    /// The robot mailbox, where replies to summaries and answers to confirmations arrive
    /// ([robot] settings).
    #[command(subcommand)]
    Robot(RobotCommand),
    /// Read replies to summaries (for operators: "why did my reply do nothing?").
    #[command(subcommand)]
    Reply(ReplyCommand),
    /// The anti-forgery provider table (SPEC 3): which mail domains send only through
    /// their own relays, and how those relays are named.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Classify raw messages against the current database without changing anything: every
    /// forgery check's result, the statistics' evidence, the campaign fingerprint and the
    /// verdict ("why was this deleted / held?"). The Received chain is read as for a mailbox
    /// with learned trusted domains.
    Explain {
        /// Raw message files (an mbox `From ` first line is allowed).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Judge as for this subscriber (their votes, trust and prior); default: a subscriber
        /// with no votes of their own.
        #[arg(long)]
        subscriber: Option<String>,
        /// One JSON object per file instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The collaborative statistics (SPEC 4), refreshed from the votes first.
    #[command(subcommand)]
    Stats(StatsCommand),
    /// Reports for operators.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Block lists for the mail server, from the spam Quorum saw.
    #[command(subcommand)]
    Blocklist(BlocklistCommand),
    /// Operator accounts for the web dashboard (`/admin`).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Replay a labelled corpus through the real statistics for a simulated population of
    /// subscribers, spam probes and Sybil accounts; JSON report on standard output, progress
    /// on standard error. Deterministic for a seed.
    Simulate(SimulateArgs),
    /// Poll one subscriber's mailbox now and print the outcome.
    Poll {
        /// The subscriber's email address.
        email: String,
        /// Poll even if a worker's lease holds the mailbox: only after a crash, when no
        /// worker can be polling it (two sessions at once could both fetch its mail).
        #[arg(long)]
        take_over: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The spam of a window grouped the way seed 000 reads it: by sending network (/24,
    /// IPv6 /48), Reply-To, sender pattern (the From local part across throwaway domains),
    /// subject pattern (leetspeak folded, numbers and codes masked) and linked domain; each
    /// group with its messages, recipients, example subjects, first and last arrival and
    /// what was decided (probes' copies, the statistics' deletions, empty boxes, ...).
    Campaigns {
        /// The window: this long back from now (`30m`, `12h`, `7d`, `2w`).
        #[arg(long, default_value = "12h", value_parser = quorum_domain::parse_age)]
        since: std::time::Duration,
        /// Smallest group reported.
        #[arg(long, default_value_t = 2)]
        min_messages: usize,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlocklistCommand {
    /// The hosts, networks or domains of a window's spam, as strict as deletion: at least
    /// `--min-reports` spam messages, nothing with an approval or an approved sender's
    /// delivery, no relay of and no domain in the provider table; hosts merged into their
    /// /24 (IPv6 /48) only when it holds three or more listed hosts and no ham. Each entry
    /// follows a comment naming its group. `cidr`: CIDR blocks; `postfix`: a `cidr:` table
    /// for `check_client_access` (REJECT); `rspamd`: a multimap map of addresses and
    /// networks; `domains`: sender and linked domains.
    Export {
        #[arg(long)]
        format: quorum_reputation::blocklist::Format,
        /// The window: this long back from now (`12h`, `7d`, `2w`).
        #[arg(long, default_value = "7d", value_parser = quorum_domain::parse_age)]
        since: std::time::Duration,
        /// Spam messages an entry needs in the window.
        #[arg(long, default_value_t = 3)]
        min_reports: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an operator account; the password (at least 10 characters) is read from
    /// standard input or QUORUM_ADMIN_PASSWORD, never from the command line.
    Create {
        /// The operator's email address (their login).
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Each user's trust status and its reason.
    Trust,
    /// The correlation table: target user, compared user, RMS error, confidence and
    /// MaxRMSError (the seed's table), best first.
    Correlation {
        /// Only rows up to this MaxRMSError.
        #[arg(long, default_value_t = 1.0)]
        max_rms_error: f64,
        /// Only this target user (email).
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Evidence keys of one kind by what their votes say (log-likelihood ratio with every
    /// counted user at full weight, strongest spam evidence first) and how many of their
    /// units (senders, campaigns, voters) the votes call spam or not. `stats domains` is the
    /// domain table.
    #[command(visible_alias = "domains")]
    Keys {
        /// sender, domain, campaign, url, reply_to, network, short_text or attachment.
        #[arg(long, default_value = "domain")]
        kind: quorum_stats::KeyKind,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// A reputation table (seed 001): per handoff IP, network (/24, IPv6 /48), IPv6 subnet
    /// (/64), sender domain, linked domain or Reply-To address, its messages, distinct
    /// recipients, spam votes, approvals, probes' copies, non-existent senders (bounced
    /// confirmations) and forgeries, decayed with a 30-day half-life, and its status by the
    /// thresholds in `[reputation]`; the most reported first.
    Reputation {
        /// ip, network, subnet, sender_domain, url_domain or reply_to.
        #[arg(long, default_value = "ip")]
        kind: quorum_reputation::Kind,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Folder with one sub-folder per label: `spam` is spam, every other one is ham; one raw
    /// message per file (an mbox `From ` first line is allowed).
    pub corpus: std::path::PathBuf,
    /// Simulated subscribers.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// The corpus's messages are spread evenly over this many days, in Date order.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Each ham sender is known to this many users; each of its messages goes to each.
    #[arg(long, default_value_t = 3)]
    pub ham_circle: usize,
    /// Share of users each spam message reaches.
    #[arg(long, default_value_t = 0.02)]
    pub reach: f64,
    /// Spam probes (honeypots: every message they receive is a spam vote on arrival).
    #[arg(long, default_value_t = 10)]
    pub probes: usize,
    /// Chance that a spam message reaches each probe.
    #[arg(long, default_value_t = 0.5)]
    pub probe_reach: f64,
    /// Chance that a user answers a summary.
    #[arg(long, default_value_t = 0.8)]
    pub reply_rate: f64,
    /// Chance that an answer is wrong (ham left blank, spam approved).
    #[arg(long, default_value_t = 0.01)]
    pub error_rate: f64,
    /// Accounts that receive spam (5x the reach), approve the senders of 10% of spam domains
    /// and leave the rest blank.
    #[arg(long, default_value_t = 0)]
    pub sybils: usize,
    /// What counts as one piece of evidence against a domain: `senders` (each distinct
    /// sender address once) or `votes` (every vote, as in seed 002).
    #[arg(long, default_value = "senders")]
    pub evidence: String,
    /// How evidence is combined: `likelihood` (one prior plus each key's likelihood ratio)
    /// or `seed` (seed 002's witness formula, for comparison).
    #[arg(long, default_value = "likelihood")]
    pub combination: String,
    /// Campaign fingerprints are evidence by default (copies of one message, or near-copies,
    /// form a campaign); this flag is kept from before and changes nothing.
    #[arg(long, hide = true)]
    pub fingerprints: bool,
    /// Without campaign fingerprints as evidence.
    #[arg(long)]
    pub no_fingerprints: bool,
    /// Spam copies keep their corpus sender domain instead of a throwaway domain per copy
    /// (spam a mailing list relayed always keeps it: the list sent one message to all).
    #[arg(long)]
    pub no_rotating_domains: bool,
    /// Spam copies are sent alike, instead of each personalised per recipient (a greeting
    /// with a name, tokens, tracking query strings, reflowed text) and fingerprinted on its
    /// own.
    #[arg(long)]
    pub no_personalised_copies: bool,
    /// Personalised copies keep their links' hosts instead of a random sub-domain each.
    #[arg(long)]
    pub no_varying_subdomains: bool,
    /// Spam keeps the handoff network of its corpus Received chain instead of three /24s of
    /// a shared botnet pool per campaign.
    #[arg(long)]
    pub no_botnet_networks: bool,
    /// Delete only when P(spammer) exceeds this.
    #[arg(long, default_value_t = 1.0 - 1e-6)]
    pub delete_above: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Print the table.
    List,
    /// Add a provider, or replace its row.
    Add {
        /// The mail domain (e.g. web.de).
        domain: String,
        /// A large provider whose domain statistics must not condemn lightly.
        #[arg(long)]
        major_isp: bool,
        /// Its relays have PTR records under --ptr-domains: a failed check is evidence.
        #[arg(long)]
        ptr_supported: bool,
        /// Webmail-only: direct mail not from its relays is forged and deleted (implies
        /// --ptr-supported).
        #[arg(long)]
        ptr_required: bool,
        /// Domains its relays' PTR names end in, comma-separated (default: the domain).
        #[arg(long, default_value = "")]
        ptr_domains: String,
        /// Domains the reverse zones' name servers must be in, comma-separated (default:
        /// none; the PTR must then resolve back to the relay's address).
        #[arg(long, default_value = "")]
        ns_matches: String,
    },
    /// Remove a provider's row.
    Remove { domain: String },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List releases the SMTP server has not accepted yet, with attempts and last error.
    List,
    /// Deliver every release that is due now, once, and report.
    Flush {
        /// First make every waiting release due, ignoring its backoff (after fixing the
        /// SMTP server).
        #[arg(long)]
        retry_now: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RobotCommand {
    /// Poll the robot mailbox once: apply every reply and every answer to a confirmation,
    /// mail receipts, deliver releases.
    Poll,
}

#[derive(Debug, Subcommand)]
pub enum SummaryCommand {
    /// Send a subscriber their current summary now (also to resend a lost one: replies to
    /// the old and the new summary both work). Nothing is sent when nothing is held and
    /// nothing happened since the last summary.
    Send { email: String },
}

#[derive(Debug, Subcommand)]
pub enum ReplyCommand {
    /// Parse a reply against the summary it answers and print one JSON object per summary
    /// line: {"id": "...", "action": "approve" | "release" | "delete" | "missing"}.
    /// Changes nothing. Whether the reply would be accepted (token and sender) is reported
    /// on standard error, not enforced.
    Parse {
        /// The summary as sent (raw message).
        summary: PathBuf,
        /// The reply (raw message).
        reply: PathBuf,
    },
    /// Apply a reply (raw message) as the robot mailbox would: authenticate it, carry out
    /// its answers, deliver what it releases and mail the receipt.
    Apply { reply: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum SubscriberCommand {
    /// Add a subscriber and its POP3 mailbox, after trying it as the signup does (log in,
    /// STAT, UIDL). The password is read from standard input (first line) or from
    /// QUORUM_POP3_PASSWORD, never from the command line.
    Add {
        /// The subscriber's email address (summaries go there).
        email: String,
        #[command(flatten)]
        mailbox: MailboxArgs,
        /// Approved senders expire after this many days without mail.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
        approved_days: i64,
        /// Local times of the summaries, HH:MM separated by commas.
        #[arg(long, default_value = "07:00,19:00")]
        summary_times: String,
        /// The subscriber's time zone (IANA name, e.g. Europe/Berlin).
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// Domains whose Received headers the mailbox's provider writes, comma-separated
        /// (e.g. `earthlink.net`); the forgery checks believe only those. Default: learned
        /// from each message's Received chain.
        #[arg(long, default_value = "")]
        trusted_domains: String,
        /// Send no confirmations to this subscriber's unknown senders.
        #[arg(long)]
        no_confirmations: bool,
        /// Store the mailbox without trying it first.
        #[arg(long)]
        no_check: bool,
    },
    /// Change a subscriber's POP3 settings; what is not given stays. The new settings are
    /// tried first, with the stored password unless --password asks for a new one.
    Set {
        email: String,
        /// pop3 or imap.
        #[arg(long)]
        protocol: Option<String>,
        /// Mail server host name.
        #[arg(long)]
        host: Option<String>,
        /// Port (default when --protocol or --security changes: that protocol's usual port).
        #[arg(long)]
        port: Option<u16>,
        /// tls, starttls, or plain.
        #[arg(long)]
        security: Option<String>,
        /// Login name.
        #[arg(long)]
        user: Option<String>,
        /// auto, user, apop, or plain.
        #[arg(long)]
        auth: Option<String>,
        /// Read a new POP3 password from standard input or QUORUM_POP3_PASSWORD.
        #[arg(long)]
        password: bool,
        /// Store the settings without trying them first.
        #[arg(long)]
        no_check: bool,
    },
    /// Remove a subscriber and everything Quorum keeps of them (mailbox settings, held
    /// mail, votes, summaries, sessions). What is held is released to the mailbox first.
    Remove {
        email: String,
        /// Drop what is held instead of releasing it.
        #[arg(long)]
        discard: bool,
    },
    /// Turn confirmations to unknown senders on or off for a subscriber.
    Confirmations { email: String, setting: OnOff },
    /// Flag a subscriber as a spam probe (honeypot: everything it receives is a spam vote
    /// at once, and it is the basis of trust), or unflag it.
    Probe { email: String, setting: OnOff },
    /// List subscribers with the state of their mailbox.
    List,
    /// Release every held message back to the subscriber's mailbox, then stop polling it.
    Disable { email: String },
    /// Resume polling a subscriber's mailbox.
    Enable { email: String },
    /// Approve a sender for a subscriber: its mail stays in the Inbox.
    Approve { email: String, sender: String },
    /// List a subscriber's quarantined messages.
    Quarantine { email: String },
    /// Deliver held messages back to the subscriber's mailbox (by SMTP, with the original
    /// bytes): one message, or all held ones.
    Release {
        email: String,
        /// The message id (from `subscriber quarantine`); all held messages if omitted.
        message: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct MailboxArgs {
    /// pop3 (held mail is deleted on the server) or imap (held mail is moved to the folder
    /// Quorum/Held of the mailbox, deleted mail to Quorum/Deleted).
    #[arg(long, default_value = "pop3")]
    pub protocol: String,
    /// Mail server host name.
    #[arg(long)]
    pub host: String,
    /// Port (default: 995 for POP3 with tls, 110 otherwise; 993 for IMAP with tls, 143
    /// otherwise).
    #[arg(long)]
    pub port: Option<u16>,
    /// tls (implicit TLS: POP3S, IMAPS), starttls, or plain.
    #[arg(long, default_value = "tls")]
    pub security: String,
    /// Login name (often the full address).
    #[arg(long)]
    pub user: String,
    /// auto (SASL PLAIN if offered, else USER/PASS), user, apop, or plain.
    #[arg(long, default_value = "auto")]
    pub auth: String,
}

#[derive(Debug, Args)]
pub struct CheckMailboxArgs {
    #[command(flatten)]
    pub mailbox: MailboxArgs,
}
