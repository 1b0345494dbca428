//! What each subcommand does. Storage is chosen by the URL scheme, then everything runs
//! generically over [`Database`].

use std::{
    io::{BufRead, Write},
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use quorum_config::Settings;
use quorum_domain::{AuthMethod, EmailAddress, Protocol, Provider, Security, Timestamp, secrets::Password};
use quorum_forgery::Checker;
use quorum_pop3::{ConnectOptions, Credentials, Endpoint, TlsSettings};
use quorum_statistics::Statistics;
use quorum_storage::{Database, NewSubscriber, Postgres, ReleaseSelection, Sqlite};
use quorum_web::AppState;
use quorum_worker::{Confirmer, Deliverer, ImapReach, Worker, check_imap_mailbox, check_mailbox};
use tokio::sync::watch;

use crate::cli::{
    AdminCommand, BlocklistCommand, CheckMailboxArgs, Cli, Command, MailboxArgs, OnOff, OutboxCommand,
    ProvidersCommand, ReplyCommand, ReportCommand, RobotCommand, SimulateArgs, StatsCommand, SubscriberCommand,
    SummaryCommand,
};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    // These need no database.
    match cli.command {
        Command::CheckMailbox(args) => return check(&settings, args).await,
        Command::Simulate(args) => return simulate(args).await,
        Command::Reply(ReplyCommand::Parse { summary, reply }) => return parse_reply(&settings, &summary, &reply),
        Command::MoveToPostgres { url } => return move_to_postgres(&settings, &url).await,
        _ => {}
    }
    if settings.is_postgres() {
        let db = Postgres::connect(&settings.database_url).await.context("connecting to PostgreSQL")?;
        dispatch(db, settings, cli.command).await
    } else {
        let db = Sqlite::connect(&settings.database_url).await.context("opening the SQLite database")?;
        dispatch(db, settings, cli.command).await
    }
}

async fn dispatch<DB: Database>(db: DB, settings: Settings, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Backup { path } => return backup(&settings, &path).await,
        Command::Migrate => {
            db.migrate().await?;
            println!("database is up to date");
        }
        Command::Serve => serve(db, settings, Services { worker: true, web: true, scheduler: true }).await?,
        Command::Worker => serve(db, settings, Services { worker: true, ..Services::NONE }).await?,
        Command::Web => serve(db, settings, Services { web: true, ..Services::NONE }).await?,
        Command::Scheduler { once: false } => {
            serve(db, settings, Services { scheduler: true, ..Services::NONE }).await?
        }
        Command::Scheduler { once: true } => {
            db.migrate().await?;
            let r = scheduler(&db, &settings, classifiers(&settings)?)?.run_once(Timestamp::now()).await?;
            println!(
                "{} summaries sent, {} with nothing to send, {} failed (retried in 5 minutes); \
                 {} held messages purged; {} approved senders and {} campaigns expired",
                r.sent, r.nothing_to_send, r.failed, r.purged, r.expired_senders, r.expired_campaigns
            );
        }
        Command::Outbox(cmd) => {
            db.migrate().await?;
            return outbox(db, &settings, cmd).await;
        }
        Command::Subscriber(cmd) => {
            db.migrate().await?;
            return subscriber(db, &settings, cmd).await;
        }
        Command::CheckMailbox(_)
        | Command::Simulate(_)
        | Command::MoveToPostgres { .. }
        | Command::Reply(ReplyCommand::Parse { .. }) => {
            unreachable!("handled before opening the database")
        }
        Command::Reply(ReplyCommand::Apply { reply }) => {
            db.migrate().await?;
            return apply_reply(db, &settings, &reply).await;
        }
        Command::Robot(RobotCommand::Poll) => {
            db.migrate().await?;
            return robot_poll(db, &settings).await;
        }
        Command::Summary(SummaryCommand::Send { email }) => {
            db.migrate().await?;
            return send_summary(db, &settings, &email).await;
        }
        Command::Poll { email, take_over } => {
            db.migrate().await?;
            return poll_now(db, &settings, &email, take_over).await;
        }
        Command::Providers(cmd) => {
            db.migrate().await?;
            return providers(db, cmd).await;
        }
        Command::Stats(cmd) => {
            db.migrate().await?;
            return stats(db, &settings, cmd).await;
        }
        Command::Report(ReportCommand::Campaigns { since, min_messages, json }) => {
            db.migrate().await?;
            return campaigns(db, since, min_messages, json).await;
        }
        Command::Blocklist(BlocklistCommand::Export { format, since, min_reports }) => {
            db.migrate().await?;
            let from = Timestamp::now().minus(since);
            print!("{}", quorum_web::reports::blocklist(&db, format, from, min_reports).await?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Admin(AdminCommand::Create { email }) => {
            db.migrate().await?;
            let email = EmailAddress::parse(&email)?;
            let password = read_secret("QUORUM_ADMIN_PASSWORD", "operator password")?;
            if password.expose().chars().count() < quorum_web::auth::MIN_PASSWORD_LEN {
                bail!("the operator password needs at least {} characters", quorum_web::auth::MIN_PASSWORD_LEN);
            }
            let id =
                db.add_operator(&email, &quorum_web::auth::hash_password(password.expose()), Timestamp::now()).await?;
            println!("operator {email} created (id {id}); log in at /login");
        }
        Command::Explain { files, subscriber, json } => return explain(db, &settings, &files, subscriber, json).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// `quorum explain`: the worker's classification of each file, read-only.
async fn explain<DB: Database>(
    db: DB,
    settings: &Settings,
    files: &[std::path::PathBuf],
    subscriber: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let checker = Checker::new(&settings.dns)?;
    let statistics = Statistics::new(&settings.statistics);
    statistics.load(&db, Timestamp::now()).await?;
    let providers = quorum_forgery::Providers::new(db.providers().await?);
    let (subscriber_id, own) = match subscriber {
        Some(email) => {
            let s = find(&db, &email).await?;
            (s.subscriber_id, quorum_domain::EmailAddress::parse(&s.email).ok())
        }
        // No subscriber has this id: judged with no votes of its own.
        None => (-1, None),
    };
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let raw = quorum_domain::inspect::without_mbox_line(&bytes);
        let info = quorum_domain::InspectedMessage::parse(raw);
        let fingerprint = quorum_fingerprint::Fingerprint::of(raw);
        let evidence = checker.check(raw, &providers, &[]).await;
        let campaign = match statistics.fingerprints() && !evidence.is_forged() {
            true => quorum_statistics::campaigns::find(&db, &fingerprint).await?,
            false => None,
        };
        let network = evidence.handoff.map(quorum_domain::received::network);
        let judgement = match &info.from {
            Some(from) => {
                let keys = statistics.evidence(&quorum_statistics::keys::Facts {
                    from: from.as_str(),
                    own_address: own.as_ref() == Some(from),
                    major_isp: providers.get(from.domain()).is_some_and(|p| p.major_isp),
                    fingerprint: Some(&fingerprint),
                    campaign,
                    network: network.as_deref(),
                });
                Some(statistics.judge(subscriber_id, &keys).await)
            }
            None => None,
        };
        let (verdict, reason) = if evidence.is_forged() {
            ("deleted_forged", evidence.reason())
        } else if let Some(j) = judgement.as_ref().filter(|j| j.delete()) {
            ("deleted_statistical", Some(Statistics::reason(j)))
        } else {
            ("held", evidence.reason())
        };
        if json {
            let report = serde_json::json!({
                "file": file.display().to_string(),
                "from": info.from.as_ref().map(|f| f.as_str().to_string()),
                "subject": info.subject,
                "verdict": verdict,
                "reason": reason,
                "checks": evidence,
                "statistics": judgement.as_ref().map(|j| serde_json::json!({
                    "prior_logit": j.prior_logit,
                    "silence_logit": j.silence_logit,
                    "agreement_logit": j.agreement_logit,
                    "keys": j.terms,
                    "p_spam": j.p_spam(),
                    "not_spam": j.not_spam(),
                    "delete": j.delete(),
                    "deleted_by": j.deleted_by.map(|b| b.as_str()),
                })),
                "fingerprint": {
                    "campaign": campaign,
                    "words": fingerprint.words,
                    "profile": fingerprint.profile,
                    "url_domains": fingerprint.url_domains,
                    "reply_to": fingerprint.reply_to,
                    "network": network,
                    "band_keys": fingerprint.band_keys(),
                },
            });
            println!("{report}");
            continue;
        }
        println!("{}", file.display());
        println!("  from: {}", info.from.as_ref().map_or("(none)", |f| f.as_str()));
        println!("  verdict: {verdict}{}", reason.map(|r| format!(" ({r})")).unwrap_or_default());
        for (name, f) in [
            ("reverse DNS", &evidence.reverse_dns),
            ("forward-confirmed", &evidence.fcrdns),
            ("SPF", &evidence.spf),
            ("DKIM", &evidence.dkim),
            ("DMARC", &evidence.dmarc),
        ] {
            println!("  {name:<18} {:?}: {}", f.outcome, f.detail);
        }
        if let Some(relayed) = &evidence.indirect {
            println!("  relayed: {relayed} (path rules not applied)");
        }
        if let Some(j) = judgement {
            // Each key's contribution in log-odds, after the recipient's prior.
            println!("  prior:             {:+.2} (log-odds)", j.prior_logit);
            if j.silence_logit != 0.0 {
                // Silence of every key, or of the item keys where only population keys spoke.
                let which = match j.terms.iter().any(|t| t.logit > 0.0) {
                    true => "no item key votes:",
                    false => "no key has votes: ",
                };
                println!("  {which} {:+.2} (what silence has been worth)", j.silence_logit);
            }
            for t in &j.terms {
                println!(
                    "  {:<18} {:+.2}  {} ({} spam, {} not){}",
                    t.kind.as_str(),
                    t.logit,
                    t.key,
                    t.spam_units,
                    t.ham_units,
                    match (t.counted, t.agrees) {
                        (true, _) => "",
                        (false, true) => "; the same votes as a stronger key, an independent match: in `agreeing`",
                        (false, false) => "; the same votes as a stronger key: not added",
                    }
                );
            }
            if j.agreement_logit != 0.0 {
                println!("  agreeing:          {:+.2} (independent matches of the same votes)", j.agreement_logit);
            }
            println!(
                "  statistics: P(spam) {:.9}{}",
                j.p_spam(),
                j.deleted_by.map(|b| format!(", certain; {} said the most", b.as_str())).unwrap_or_default()
            );
        }
        println!(
            "  fingerprint: {} words, links to {}, reply-to {}",
            fingerprint.words,
            if fingerprint.url_domains.is_empty() { "-".into() } else { fingerprint.url_domains.join(", ") },
            fingerprint.reply_to.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn stats<DB: Database>(db: DB, settings: &Settings, cmd: StatsCommand) -> anyhow::Result<ExitCode> {
    // The reputation tables are kept as mail arrives: nothing to refresh for them.
    if !matches!(cmd, StatsCommand::Reputation { .. }) {
        let synced = Statistics::new(&settings.statistics).sync(&db, Timestamp::now()).await?;
        eprintln!("statistics refreshed from {} votes", synced.votes);
    }
    match cmd {
        StatsCommand::Trust => {
            println!("{:<32} {:>9} {:>6}  {:<28} reason", "user", "approvals", "spam", "status");
            for t in db.trust_rows().await? {
                println!("{:<32} {:>9} {:>6}  {:<28} {}", t.email, t.approvals, t.spam, t.status, t.reason);
            }
        }
        StatsCommand::Correlation { max_rms_error, user, limit } => {
            let user = match user {
                Some(u) => Some(find(&db, &u).await?.subscriber_id),
                None => None,
            };
            println!(
                "{:<32} {:<32} {:>10} {:>10} {:>11} {:>7}",
                "user", "compared with", "RMSError", "Confidence", "MaxRMSError", "domains"
            );
            for line in db.correlation_rows(max_rms_error, user, limit).await? {
                let c = &line.row;
                println!(
                    "{:<32} {:<32} {:>10.7} {:>10.7} {:>11.7} {:>7}",
                    line.user_email, line.cuser_email, c.rms_error, c.confidence, c.max_rms_error, c.domains
                );
            }
        }
        StatsCommand::Keys { kind, limit } => {
            println!("{:<40} {:>8} {:>12} {:>6} {:>6}", kind.as_str(), "log-odds", "P(spam)", "spam", "not");
            for k in db.key_rows(kind.as_str(), limit).await? {
                println!(
                    "{:<40} {:>+8.2} {:>12.9} {:>6} {:>6}",
                    k.name,
                    k.logit,
                    k.p_spam(),
                    k.spam_units,
                    k.ham_units
                );
            }
        }
        StatsCommand::Reputation { kind, limit } => reputation(&db, &settings.reputation, kind, limit).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `quorum report campaigns`: seed 000's report of a window's spam.
async fn campaigns<DB: Database>(
    db: DB,
    since: std::time::Duration,
    min_messages: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = quorum_web::reports::campaigns(&db, Timestamp::now().minus(since), min_messages).await?;
    if json {
        println!("{}", report.json());
        return Ok(ExitCode::SUCCESS);
    }
    let (spam, groups) = (&report.spam, &report.groups);
    let recipients = spam.iter().map(|m| m.recipient).collect::<std::collections::HashSet<_>>().len();
    println!(
        "Spam from {} to {}: {} messages to {recipients} recipients, {} groups",
        report.since,
        report.until,
        spam.len(),
        groups.len()
    );
    for g in groups {
        println!();
        println!(
            "{} {} -> {} messages to {} recipients, {} to {}",
            g.by.as_str(),
            g.key,
            g.messages,
            g.recipients,
            Timestamp(g.first_seen),
            Timestamp(g.last_seen)
        );
        let verdicts: Vec<String> = g.verdicts.iter().map(|(status, n)| format!("{status} {n}")).collect();
        println!("    {}", verdicts.join(", "));
        for subject in &g.subjects {
            println!("    \"{}\"", subject.replace(char::is_control, " "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `quorum stats reputation`: one table, each row decayed to now and rated.
async fn reputation<DB: Database>(
    db: &DB,
    thresholds: &quorum_reputation::Thresholds,
    kind: quorum_reputation::Kind,
    limit: i64,
) -> anyhow::Result<()> {
    let now = Timestamp::now().0;
    println!(
        "{:<40} {:<10} {:>9} {:>10} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}  last seen",
        kind.as_str(),
        "status",
        "messages",
        "recipients",
        "spam",
        "approvals",
        "probe",
        "invalid",
        "forged",
        "inbox"
    );
    for row in db.reputation_rows(kind, limit).await? {
        let c = row.counts.as_of(now);
        println!(
            "{:<40} {:<10} {:>9.1} {:>10.1} {:>8.1} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {}",
            row.name,
            quorum_reputation::status(kind, &c, thresholds).as_str(),
            c.messages,
            c.recipients,
            c.spam,
            c.approvals,
            c.probe,
            c.nonexistent,
            c.forged,
            c.inbox,
            Timestamp(row.last_seen)
        );
    }
    Ok(())
}

async fn providers<DB: Database>(db: DB, cmd: ProvidersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProvidersCommand::List => {
            for p in db.providers().await? {
                println!("{p}");
            }
        }
        ProvidersCommand::Add { domain, major_isp, ptr_supported, ptr_required, ptr_domains, ns_matches } => {
            let p = Provider::new(
                &domain,
                major_isp,
                ptr_supported || ptr_required,
                ptr_required,
                &ptr_domains,
                &ns_matches,
            )?;
            db.upsert_provider(&p).await?;
            println!("{p}");
        }
        ProvidersCommand::Remove { domain } => {
            if !db.remove_provider(&domain).await? {
                eprintln!("no provider row for {domain}");
                return Ok(ExitCode::from(1));
            }
            println!("removed {domain}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Which services a process runs.
struct Services {
    worker: bool,
    web: bool,
    scheduler: bool,
}

impl Services {
    const NONE: Services = Services { worker: false, web: false, scheduler: false };
}

/// What classifies mail: the forgery checks (on the `[dns]` resolvers) and the
/// collaborative statistics. One of each per process: their caches are shared.
#[derive(Clone)]
struct Classifiers {
    checker: Checker,
    statistics: Arc<Statistics>,
}

fn classifiers(settings: &Settings) -> anyhow::Result<Classifiers> {
    Ok(Classifiers {
        checker: Checker::new(&settings.dns)?,
        statistics: Arc::new(Statistics::new(&settings.statistics)),
    })
}

/// A worker that polls subscribers' mailboxes, sending confirmations if they are on.
fn polling_worker<DB: Database>(
    db: &DB,
    settings: &Settings,
    keys: Arc<quorum_domain::Keys>,
    worker_settings: quorum_config::WorkerSettings,
    classifiers: Classifiers,
) -> anyhow::Result<Worker<DB>> {
    let worker = Worker::new(db.clone(), keys.clone(), worker_settings, classifiers.checker)?
        .with_statistics(classifiers.statistics);
    if !settings.confirmations.enabled {
        return Ok(worker);
    }
    let mailer = quorum_mailer::Mailer::new(&settings.smtp)?;
    Ok(worker.with_confirmations(Confirmer::new(mailer, keys, &settings.summary, &settings.confirmations)))
}

fn summary_sender<DB: Database>(
    db: &DB,
    settings: &Settings,
    classifiers: Classifiers,
) -> anyhow::Result<quorum_scheduler::SummarySender<DB>> {
    let mailer = quorum_mailer::Mailer::new(&settings.smtp)?;
    Ok(quorum_scheduler::SummarySender::new(
        db.clone(),
        settings.keys()?,
        mailer,
        settings.summary.clone(),
        classifiers.checker,
        classifiers.statistics,
    ))
}

fn scheduler<DB: Database>(
    db: &DB,
    settings: &Settings,
    classifiers: Classifiers,
) -> anyhow::Result<quorum_scheduler::Scheduler<DB>> {
    Ok(quorum_scheduler::Scheduler::new(summary_sender(db, settings, classifiers)?))
}

/// Runs the chosen services until SIGINT or SIGTERM.
async fn serve<DB: Database>(db: DB, settings: Settings, services: Services) -> anyhow::Result<()> {
    let Services { worker, web, scheduler: schedule } = services;
    db.migrate().await.context("migrating the database")?;
    let keys = Arc::new(settings.keys()?);
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let classifiers = classifiers(&settings)?;
    if web {
        let metrics = quorum_web::install_metrics().map_err(anyhow::Error::msg)?;
        let mailer = Some(Arc::new(quorum_mailer::Mailer::new(&settings.smtp)?));
        let state = AppState::new(db.clone(), metrics, (*keys).clone(), Arc::new(settings.clone()), mailer);
        let listen = settings.listen;
        let stopped = stopped.clone();
        tasks.spawn(async move { quorum_web::serve(state, listen, stopped).await.context("web service") });
    }
    if worker {
        let delivery = deliverer(&db, &settings, keys.clone())?;
        let stopped_deliverer = stopped.clone();
        tasks.spawn(async move { delivery.run(stopped_deliverer).await.context("release delivery") });
        let worker = polling_worker(&db, &settings, keys.clone(), settings.worker.clone(), classifiers.clone())?;
        if let Some(robot) = settings.robot.clone() {
            let (worker, stopped) = (worker.clone(), stopped.clone());
            let (mailer, policy) = (quorum_mailer::Mailer::new(&settings.smtp)?, reply_policy(&settings));
            tasks.spawn(async move {
                worker.run_robot(robot, policy, mailer, stopped).await;
                Ok(())
            });
        }
        let stopped = stopped.clone();
        tasks.spawn(async move { worker.run(stopped).await.context("worker") });
    }
    if schedule {
        let scheduler = scheduler(&db, &settings, classifiers.clone())?;
        let stopped = stopped.clone();
        tasks.spawn(async move {
            scheduler.run(stopped).await;
            Ok(())
        });
    }
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        Some(result) = tasks.join_next() => {
            result??;
        }
    }
    let _ = stop.send(true);
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn read_password() -> anyhow::Result<Password> {
    read_secret("QUORUM_POP3_PASSWORD", "POP3 password")
}

/// A secret from the environment variable `var`, or else the first line of standard input.
fn read_secret(var: &str, what: &str) -> anyhow::Result<Password> {
    if let Ok(p) = std::env::var(var) {
        return Ok(Password::new(p));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).with_context(|| format!("reading the {what} from standard input"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no {what}: give it on standard input or in {var}");
    }
    Ok(Password::new(password))
}

struct MailboxSettings {
    protocol: Protocol,
    host: String,
    port: u16,
    security: Security,
    auth: AuthMethod,
    user: String,
}

fn mailbox_settings(args: &MailboxArgs) -> anyhow::Result<MailboxSettings> {
    let security: Security = args.security.parse()?;
    let protocol: Protocol = args.protocol.parse()?;
    Ok(MailboxSettings {
        protocol,
        host: args.host.clone(),
        port: args.port.unwrap_or(protocol.default_port(security)),
        security,
        auth: args.auth.parse()?,
        user: args.user.clone(),
    })
}

async fn subscriber<DB: Database>(db: DB, settings: &Settings, cmd: SubscriberCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SubscriberCommand::Add {
            email,
            mailbox,
            approved_days,
            summary_times,
            time_zone,
            trusted_domains,
            no_confirmations,
            no_check,
        } => {
            let email = EmailAddress::parse(&email)?;
            let schedule = quorum_domain::schedule::SummarySchedule::parse(&summary_times, &time_zone)?;
            let m = mailbox_settings(&mailbox)?;
            let password = read_password()?;
            let keys = settings.keys()?;
            if !no_check && !try_mailbox(settings, &m, &password).await? {
                bail!("{email} not added: Quorum could not poll that mailbox (fix the settings, or --no-check)");
            }
            let new = NewSubscriber {
                email: email.clone(),
                approved_days,
                schedule,
                mailbox: quorum_storage::MailboxSettings {
                    protocol: m.protocol,
                    host: m.host,
                    port: m.port,
                    security: m.security,
                    auth: m.auth,
                    username: m.user,
                    password_enc: keys.encrypt_password(&password, email.as_str()),
                    trusted_domains: quorum_domain::provider::parse_list(&trusted_domains)?,
                },
            };
            let ids = db.add_subscriber(&new, Timestamp::now()).await?;
            if no_confirmations {
                db.set_confirmations(ids.subscriber_id, false).await?;
            }
            println!("added {email} (subscriber {}, mailbox {})", ids.subscriber_id, ids.mailbox_id);
        }
        SubscriberCommand::Set { email, protocol, host, port, security, user, auth, password, no_check } => {
            let s = find(&db, &email).await?;
            let keys = settings.keys()?;
            let mailbox = db.mailbox_of(s.subscriber_id).await?.with_context(|| format!("{email} has no mailbox"))?;
            let old = mailbox.settings;
            let security: Security = security.map_or(Ok(old.security), |s| s.parse())?;
            let protocol: Protocol = protocol.map_or(Ok(old.protocol), |p| p.parse())?;
            // A port that was the old settings' default follows the new ones.
            let port = port.unwrap_or(if old.port == old.protocol.default_port(old.security) {
                protocol.default_port(security)
            } else {
                old.port
            });
            let m = MailboxSettings {
                protocol,
                host: host.unwrap_or(old.host),
                port,
                security,
                auth: auth.map_or(Ok(old.auth), |a| a.parse())?,
                user: user.unwrap_or(old.username),
            };
            let password = match password {
                true => read_password()?,
                false => keys.decrypt_password(&old.password_enc, &s.email)?,
            };
            if !no_check && !try_mailbox(settings, &m, &password).await? {
                bail!("{email} unchanged: Quorum could not poll that mailbox (fix the settings, or --no-check)");
            }
            let stored = quorum_storage::MailboxSettings {
                protocol: m.protocol,
                host: m.host.clone(),
                port: m.port,
                security: m.security,
                auth: m.auth,
                username: m.user.clone(),
                password_enc: keys.encrypt_password(&password, &s.email),
                trusted_domains: old.trusted_domains,
            };
            db.update_mailbox(s.subscriber_id, &stored, Timestamp::now()).await?;
            println!(
                "{email}: now {} {}:{} ({}) as {}; polled next round",
                m.protocol, m.host, m.port, m.security, m.user
            );
        }
        SubscriberCommand::Remove { email, discard } => {
            let s = find(&db, &email).await?;
            // Polling stops first: nothing new is quarantined while what is held goes back.
            db.set_subscriber_enabled(s.subscriber_id, false).await?;
            let released = match discard {
                true => 0,
                false => {
                    db.queue_release(
                        s.mailbox_id,
                        ReleaseSelection::All,
                        &EmailAddress::parse(&s.email)?,
                        Timestamp::now(),
                    )
                    .await?
                }
            };
            deliverer(&db, settings, Arc::new(settings.keys()?))?.run_once().await?;
            match db.remove_subscriber(s.subscriber_id).await {
                Ok(()) => println!(
                    "removed {email}: {released} held messages released to the mailbox{}; nothing of it is kept",
                    if discard { " (--discard: held mail dropped)" } else { "" }
                ),
                Err(quorum_storage::StorageError::Conflict(why)) => bail!(
                    "{email} not removed yet: {why} (the SMTP server did not take them: see `quorum outbox list`; \
                     polling is stopped, run this again once they are delivered)"
                ),
                Err(e) => return Err(e.into()),
            }
        }
        SubscriberCommand::List => {
            println!(
                "{:<32} {:<8} {:<28} {:<6} {:>6} {:>11} {:>6}  last error",
                "email", "enabled", "server", "status", "polls", "quarantined", "kept"
            );
            for s in db.list_subscribers().await? {
                println!(
                    "{:<32} {:<8} {:<28} {:<6} {:>6} {:>11} {:>6}  {}",
                    s.email,
                    if s.enabled { "yes" } else { "no" },
                    format!("{}:{} ({})", s.host, s.port, s.security),
                    s.last_status.as_deref().unwrap_or("-"),
                    s.polls,
                    s.quarantined_count,
                    s.kept_count,
                    s.last_error.as_deref().unwrap_or("")
                );
            }
        }
        SubscriberCommand::Disable { email } => {
            // Release first (SPEC 2.5): what is queued is delivered even after polling stops.
            let s = find(&db, &email).await?;
            let queued = db
                .queue_release(s.mailbox_id, ReleaseSelection::All, &EmailAddress::parse(&s.email)?, Timestamp::now())
                .await?;
            db.set_subscriber_enabled(s.subscriber_id, false).await?;
            let report = deliverer(&db, settings, Arc::new(settings.keys()?))?.run_once().await?;
            println!(
                "disabled {email}: {queued} held messages released ({} delivered now, {} waiting in the outbox); \
                 its mailbox is no longer polled",
                report.sent,
                db.outbox_pending().await?.len()
            );
        }
        SubscriberCommand::Release { email, message } => {
            let s = find(&db, &email).await?;
            let which = message.map_or(ReleaseSelection::All, ReleaseSelection::One);
            let queued =
                db.queue_release(s.mailbox_id, which, &EmailAddress::parse(&s.email)?, Timestamp::now()).await?;
            if queued == 0 {
                bail!(
                    "nothing to release: {}",
                    message.map_or("no held messages".into(), |m| format!("message {m} is not held"))
                );
            }
            let report = deliverer(&db, settings, Arc::new(settings.keys()?))?.run_once().await?;
            println!(
                "{queued} queued for release: {} delivered, {} failed (retried later)",
                report.sent, report.failed
            );
        }
        SubscriberCommand::Enable { email } => {
            let s = find(&db, &email).await?;
            db.set_subscriber_enabled(s.subscriber_id, true).await?;
            println!("enabled {email}");
        }
        SubscriberCommand::Approve { email, sender } => {
            let s = find(&db, &email).await?;
            let sender = EmailAddress::parse(&sender)?;
            db.approve_sender(s.subscriber_id, &sender, Timestamp::now()).await?;
            println!("{email}: mail from {sender} now stays in the Inbox");
        }
        SubscriberCommand::Confirmations { email, setting } => {
            let s = find(&db, &email).await?;
            db.set_confirmations(s.subscriber_id, setting == OnOff::On).await?;
            println!(
                "confirmations to unknown senders {} for {email}",
                if setting == OnOff::On { "on" } else { "off" }
            );
        }
        SubscriberCommand::Probe { email, setting } => {
            let s = find(&db, &email).await?;
            db.set_spam_probe(s.subscriber_id, setting == OnOff::On).await?;
            println!("{email} is {}a spam probe", if setting == OnOff::On { "" } else { "no longer " });
        }
        SubscriberCommand::Quarantine { email } => {
            let s = find(&db, &email).await?;
            for m in db.quarantined(s.mailbox_id).await? {
                println!(
                    "{:>8}  {:>9}  {:<16}  {:<40}  {}{}",
                    m.id,
                    m.size,
                    m.status,
                    m.from_address.as_deref().unwrap_or("(no sender)"),
                    m.subject.as_deref().unwrap_or("(no subject)"),
                    m.reason.as_deref().map(|r| format!("  ({r})")).unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn find<DB: Database>(db: &DB, email: &str) -> anyhow::Result<quorum_storage::SubscriberStatus> {
    db.subscriber_by_email(&EmailAddress::parse(email)?).await?.with_context(|| format!("no subscriber {email}"))
}

async fn check(settings: &Settings, args: CheckMailboxArgs) -> anyhow::Result<ExitCode> {
    let (m, password) = (mailbox_settings(&args.mailbox)?, read_password()?);
    Ok(if try_mailbox(settings, &m, &password).await? { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// Tries a mailbox as the signup does (log in; POP3: STAT, UIDL; IMAP: Quorum's folders and
/// the Inbox), printing each step and, on failure, what to do; true when Quorum can poll it.
async fn try_mailbox(settings: &Settings, m: &MailboxSettings, password: &Password) -> anyhow::Result<bool> {
    let tls = TlsSettings { extra_ca_files: settings.worker.tls_ca_files.clone() }.client_config()?;
    let options = ConnectOptions {
        endpoint: Endpoint {
            host: m.host.clone(),
            port: m.port,
            security: m.security,
            timeout: settings.worker.pop3_timeout(),
            tls,
        },
        max_message_size: settings.worker.max_message_size,
    };
    println!("checking {} {}:{} ({}) as {}", m.protocol, m.host, m.port, m.security, m.user);
    let checked = match m.protocol {
        Protocol::Pop3 => check_mailbox(&options, Credentials::new(m.auth, &m.user, password.expose())).await,
        Protocol::Imap => check_imap_mailbox(&options.endpoint, m.auth, &m.user, password.expose()).await,
    };
    match checked {
        Ok(report) => {
            if !report.greeting.is_empty() {
                println!("greeting: {}", report.greeting);
            }
            println!("capabilities: {}", report.capabilities.join(" "));
            println!("login: ok");
            match report.octets {
                Some(octets) => println!("STAT: {} messages, {octets} octets\nUIDL: ok", report.messages),
                None => println!("Inbox: {} messages", report.messages),
            }
            if !report.folders.is_empty() {
                println!("held mail goes to {}, deleted mail to {}", report.folders[0], report.folders[1..].join(", "));
            }
            println!("mailbox OK: Quorum can poll it");
            Ok(true)
        }
        Err(failure) => {
            println!("FAILED at {}: {}", failure.step, failure.error);
            println!("what to do: {}", failure.advice);
            Ok(false)
        }
    }
}

async fn poll_now<DB: Database>(db: DB, settings: &Settings, email: &str, take_over: bool) -> anyhow::Result<ExitCode> {
    let s = find(&db, email).await?;
    let mut worker_settings = settings.worker.clone();
    // A name of its own: this command must never be mistaken for a running worker.
    worker_settings.name = Some(format!("poll-{}", std::process::id()));
    let worker = polling_worker(&db, settings, Arc::new(settings.keys()?), worker_settings, classifiers(settings)?)?;
    worker.sync_statistics().await;
    let now = Timestamp::now();
    let lease_until = now.plus(Duration::from_secs(settings.worker.lease_secs));
    let Some(leased) = db.lease_mailbox(s.mailbox_id, worker.name(), now, lease_until, take_over).await? else {
        bail!(
            "{email}: the mailbox is disabled, or a worker holds its lease (polling it now, or crashed: \
             the lease expires within {} s; --take-over if no worker is running)",
            settings.worker.lease_secs
        );
    };
    let outcome = worker.poll(leased).await;
    println!(
        "{}: {} quarantined, {} left in the Inbox{}",
        outcome.status.as_str(),
        outcome.quarantined,
        outcome.kept,
        outcome.error.map(|e| format!("; {e}")).unwrap_or_default()
    );
    Ok(if outcome.status == quorum_storage::PollStatus::Error { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn parse_reply(settings: &Settings, summary: &Path, reply: &Path) -> anyhow::Result<ExitCode> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (summary, reply) = (read(summary)?, read(reply)?);
    let ids = quorum_summary::ids_in_summary(&quorum_summary::reply_text(&summary));
    if ids.is_empty() {
        bail!("the summary lists no held messages (no `[ ] ID` lines)");
    }
    let mut out = std::io::stdout().lock();
    for line in quorum_summary::parse_reply(&reply, &ids) {
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
    }
    // Authentication is reported, not enforced: the summary's recipient is its owner.
    let owner = quorum_summary::recipient(&summary);
    match settings.existing_keys()? {
        None => eprintln!("authentication: not checked (no master key configured)"),
        Some(keys) => {
            match quorum_summary::authenticate(&reply, &keys, &reply_policy(settings), Timestamp::now(), |_| {
                owner.clone()
            }) {
                Ok(id) => eprintln!("authentication: accepted (summary {id})"),
                Err(e) => eprintln!("authentication: would be rejected: {e}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn deliverer<DB: Database>(
    db: &DB,
    settings: &Settings,
    keys: Arc<quorum_domain::Keys>,
) -> anyhow::Result<Deliverer<DB>> {
    // A lease name of its own, never shared with another process's deliverer.
    let base = settings.worker.name.clone().unwrap_or_else(|| "quorum".into());
    let name = format!("{base}-deliver-{}", std::process::id());
    let imap = ImapReach {
        tls: TlsSettings { extra_ca_files: settings.worker.tls_ca_files.clone() }.client_config()?,
        timeout: settings.worker.pop3_timeout(),
    };
    Ok(Deliverer::new(db.clone(), keys, quorum_mailer::Mailer::new(&settings.smtp)?, imap, name))
}

async fn outbox<DB: Database>(db: DB, settings: &Settings, cmd: OutboxCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OutboxCommand::List => {
            println!(
                "{:>8} {:>8} {:<32} {:>8} {:>12}  last error",
                "outbox", "message", "recipient", "attempts", "next (unix)"
            );
            for e in db.outbox_pending().await? {
                println!(
                    "{:>8} {:>8} {:<32} {:>8} {:>12}  {}",
                    e.outbox_id,
                    e.message_id,
                    e.recipient,
                    e.attempts,
                    e.next_attempt_at,
                    e.last_error.as_deref().unwrap_or("")
                );
            }
        }
        OutboxCommand::Flush { retry_now } => {
            if retry_now {
                db.retry_releases_now(Timestamp::now()).await?;
            }
            let report = deliverer(&db, settings, Arc::new(settings.keys()?))?.run_once().await?;
            let waiting = db.outbox_pending().await?.len();
            println!("{} delivered, {} failed (retried later), {waiting} waiting", report.sent, report.failed);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn send_summary<DB: Database>(db: DB, settings: &Settings, email: &str) -> anyhow::Result<ExitCode> {
    let s = find(&db, email).await?;
    let sender = summary_sender(&db, settings, classifiers(settings)?)?;
    match sender.send(&s, Timestamp::now()).await? {
        Some(sent) => println!("summary {} sent to {email}: {} held messages", sent.summary_id, sent.held),
        None => println!("nothing to send to {email}: nothing held and nothing happened since the last summary"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply_reply<DB: Database>(db: DB, settings: &Settings, reply: &Path) -> anyhow::Result<ExitCode> {
    let raw = std::fs::read(reply).with_context(|| format!("reading {}", reply.display()))?;
    let keys = settings.keys()?;
    let now = Timestamp::now();
    let applied = match quorum_worker::apply_reply(&db, &keys, &reply_policy(settings), &raw, now).await {
        Ok(applied) => applied,
        Err(quorum_worker::ReplyError::Rejected(e)) => {
            println!("reply rejected, nothing changed: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let delivery = deliverer(&db, settings, Arc::new(settings.keys()?))?.run_once().await?;
    let mailer = quorum_mailer::Mailer::new(&settings.smtp)?;
    quorum_worker::send_receipt(&mailer, &keys, &applied, now).await?;
    println!(
        "reply from {} applied: {}; {} releases delivered now",
        applied.subscriber, applied.receipt, delivery.sent
    );
    Ok(ExitCode::SUCCESS)
}

/// `quorum backup PATH`: SQLite's `VACUUM INTO` writes a consistent copy in one read
/// transaction (WAL readers and writers go on meanwhile), then the key file goes beside it.
async fn backup(settings: &Settings, path: &Path) -> anyhow::Result<ExitCode> {
    if settings.is_postgres() {
        bail!(
            "the database is PostgreSQL: back it up with `pg_dump --format=custom` (restore with pg_restore), \
             and keep a copy of the master key ({}) with it",
            settings.secret_key_file.display()
        );
    }
    let key_copy = path.with_file_name(format!(
        "{}.key",
        path.file_name().context("the backup path names no file")?.to_string_lossy()
    ));
    for p in [path, key_copy.as_path()] {
        if p.exists() {
            bail!("{} exists already: choose a new path (a backup never overwrites)", p.display());
        }
    }
    let db = Sqlite::connect(&settings.database_url).await.context("opening the SQLite database")?;
    db.backup_into(path).await.context("writing the backup")?;
    let key = match (&settings.secret_key, settings.secret_key_file.exists()) {
        (Some(_), _) => "the master key is in the configuration (secret_key): keep a copy of it with the backup".into(),
        (None, true) => {
            std::fs::copy(&settings.secret_key_file, &key_copy)
                .with_context(|| format!("copying the key file to {}", key_copy.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&key_copy, std::fs::Permissions::from_mode(0o600))?;
            }
            format!("master key copied to {}", key_copy.display())
        }
        (None, false) => "no master key file yet".into(),
    };
    println!("database copied to {}; {key}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// `quorum move-to-postgres URL`: [`quorum_storage::copy::sqlite_to_postgres`].
async fn move_to_postgres(settings: &Settings, url: &str) -> anyhow::Result<ExitCode> {
    if settings.is_postgres() {
        bail!("the configured database is PostgreSQL already: move-to-postgres reads a SQLite database");
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("the target must be a postgres:// URL");
    }
    let from = Sqlite::connect(&settings.database_url).await.context("opening the SQLite database")?;
    from.migrate().await.context("bringing the SQLite database to the current migration")?;
    let to = Postgres::connect(url).await.context("connecting to the target PostgreSQL database")?;
    let copied = quorum_storage::copy::sqlite_to_postgres(&from, &to).await.context("copying into PostgreSQL")?;
    for c in &copied {
        println!("{:>10}  {}", c.rows, c.table);
    }
    println!(
        "{} rows in {} tables copied. Next: set database_url to the PostgreSQL database on every node, keep the same \
         master key ({}), and start the services.",
        copied.iter().map(|c| c.rows).sum::<u64>(),
        copied.len(),
        settings.secret_key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What a reply must satisfy ([`quorum_summary::ReplyPolicy`]): its address expires with
/// the quarantine; DMARC is checked where the robot mailbox's provider wrote its results.
fn reply_policy(settings: &Settings) -> quorum_summary::ReplyPolicy {
    quorum_summary::ReplyPolicy {
        max_age_secs: settings.summary.max_retention_days.saturating_mul(86_400),
        authserv_id: settings.robot.as_ref().and_then(|r| r.authserv_id.clone()),
    }
}

async fn robot_poll<DB: Database>(db: DB, settings: &Settings) -> anyhow::Result<ExitCode> {
    let robot = settings.robot.clone().context("no [robot] mailbox configured")?;
    let keys = settings.keys()?;
    let worker =
        Worker::new(db.clone(), Arc::new(keys.clone()), settings.worker.clone(), Checker::new(&settings.dns)?)?;
    let options = worker.connect_options_for(&robot.host, robot.port, robot.security);
    let mailer = quorum_mailer::Mailer::new(&settings.smtp)?;
    let report = quorum_worker::poll_robot(&db, &keys, &mailer, &robot, &reply_policy(settings), &options).await?;
    let delivery = deliverer(&db, settings, Arc::new(keys))?.run_once().await?;
    println!(
        "robot mailbox: {} replies applied, {} rejected, {} refusal notices, {} answers to confirmations, \
         {} left for the operator; {} releases delivered",
        report.applied, report.rejected, report.notices, report.confirmations, report.left, delivery.sent
    );
    Ok(ExitCode::SUCCESS)
}

/// `quorum simulate`: the provider table comes from a scratch database migrated like a new
/// installation's (its `major_isp` rows are judged by sender address).
async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let options = quorum_simulate::Options {
        users: args.users,
        days: args.days,
        ham_circle: args.ham_circle,
        reach: args.reach,
        probes: args.probes,
        probe_reach: args.probe_reach,
        reply_rate: args.reply_rate,
        error_rate: args.error_rate,
        sybils: args.sybils,
        evidence: args.evidence.parse().map_err(anyhow::Error::msg)?,
        combination: args.combination.parse().map_err(anyhow::Error::msg)?,
        fingerprints: !args.no_fingerprints,
        rotating_domains: !args.no_rotating_domains,
        personalised_copies: !args.no_personalised_copies,
        varying_subdomains: !args.no_varying_subdomains,
        botnet_networks: !args.no_botnet_networks,
        delete_above: args.delete_above,
        seed: args.seed,
    };
    let corpus = quorum_simulate::load_corpus(&args.corpus)?;
    let scratch = std::env::temp_dir().join(format!("quorum-simulate-{}", std::process::id()));
    let db = Sqlite::connect(&format!("sqlite://{}/providers.db", scratch.display())).await?;
    db.migrate().await?;
    let major_isp = db.providers().await?.into_iter().filter(|p| p.major_isp).map(|p| p.domain).collect();
    drop(db);
    std::fs::remove_dir_all(&scratch).ok();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{spinner} simulating [{bar:40}] {pos}/{len} events {eta}")
            .expect("a valid template"),
    );
    let report = tokio::task::spawn_blocking(move || {
        quorum_simulate::run(&options, &corpus, &major_isp, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
