//! The robot mailbox: Quorum's own POP3 mailbox, where subscribers' replies to summaries
//! arrive, and bounces of and replies to confirmations (applied by
//! [`crate::answer_confirmation`], then deleted). Each reply to a summary is applied ([`crate::apply_reply`]) and its receipt mailed, then it is
//! deleted; a reply that fails authentication is logged and deleted (it can never become
//! valid), and its sender, when that is a subscriber writing in good faith, is told why
//! ([`crate::send_refusal_notice`], at most once a day); anything that is not addressed to a summary at all is logged and left for the
//! operator. Applying is idempotent, so a crash before DELE only re-applies no-ops.

use quorum_config::RobotSettings;
use quorum_domain::{Keys, Timestamp};
use quorum_mailer::Mailer;
use quorum_pop3::{Client, ConnectOptions, Credentials, Pop3Error};
use quorum_storage::Database;
use quorum_summary::{AuthError, ReplyPolicy, notice_address};

use crate::{ReplyError, answer_confirmation, apply_reply, send_receipt, send_refusal_notice};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RobotReport {
    pub applied: usize,
    /// Bounces of, and replies to, confirmations (SPEC 2.4).
    pub confirmations: usize,
    pub rejected: usize,
    /// Refused replies whose sender was told why.
    pub notices: usize,
    /// Not replies to a summary: left in the robot mailbox.
    pub left: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    #[error("robot mailbox: {0}")]
    Pop3(#[from] Pop3Error),
    #[error("robot mailbox: {0}")]
    Storage(#[from] quorum_storage::StorageError),
}

/// One pass over the robot mailbox.
pub async fn poll_robot<DB: Database>(
    db: &DB,
    keys: &Keys,
    mailer: &Mailer,
    robot: &RobotSettings,
    policy: &ReplyPolicy,
    options: &ConnectOptions,
) -> Result<RobotReport, RobotError> {
    let mut client = Client::connect(options).await?;
    client.capabilities().await?;
    client.login(Credentials::new(robot.auth, &robot.user, robot.password.expose())).await?;
    let listing = client.list().await?;
    let mut report = RobotReport::default();
    let mut done = Vec::new();
    let mut receipts = Vec::new();
    let mut notices = Vec::new();
    let mut failure = None;
    for (n, size) in listing {
        let retrieved = client.retr_many(&[(n, size)]).await;
        if let Some(e) = retrieved.broken {
            failure = Some(RobotError::from(e));
            break;
        }
        let raw = match retrieved.messages.into_iter().next() {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                tracing::warn!(message = n, error = %e, "robot mailbox: cannot read a message; left");
                report.left += 1;
                continue;
            }
            None => continue,
        };
        let now = Timestamp::now();
        if let Some(message_id) = quorum_challenge::answered_confirmation(&raw, keys, now, policy.max_age_secs) {
            match answer_confirmation(db, message_id, &raw, now).await {
                Ok(answered) => {
                    tracing::info!(message = message_id, ?answered, "robot mailbox: answer to a confirmation");
                    report.confirmations += 1;
                    done.push(n);
                    continue;
                }
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
        }
        match apply_reply(db, keys, policy, &raw, now).await {
            Ok(applied) => {
                receipts.push((applied, now));
                report.applied += 1;
                done.push(n);
            }
            Err(ReplyError::Rejected(AuthError::NoToken)) => {
                tracing::warn!(message = n, "robot mailbox: not a reply to a summary; left for the operator");
                report.left += 1;
            }
            Err(ReplyError::Rejected(e)) => {
                tracing::warn!(message = n, reason = %e, "robot mailbox: reply rejected and deleted");
                report.rejected += 1;
                done.push(n);
                if let Some(to) = notice_address(&raw, &e, policy) {
                    notices.push((to, e, now));
                }
            }
            // A storage fault: this reply stays for the next pass; what is done is deleted.
            Err(ReplyError::Storage(e)) => {
                failure = Some(e.into());
                break;
            }
        }
    }
    // Close the POP3 session first (a slow SMTP server must not outlast its idle timeout),
    // then mail the receipts.
    let closed = match client.dele_many(&done).await {
        Ok(_) => client.quit().await,
        Err(e) => Err(e),
    };
    for (applied, now) in &receipts {
        if let Err(e) = send_receipt(mailer, keys, applied, *now).await {
            tracing::warn!(subscriber = %applied.subscriber, error = %e, "receipt not sent");
        }
    }
    for (to, refusal, now) in &notices {
        match send_refusal_notice(db, mailer, keys, to, refusal, *now).await {
            Ok(sent) => report.notices += usize::from(sent),
            Err(e) => tracing::warn!(error = %e, "refusal notice not sent"),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    closed?;
    Ok(report)
}
