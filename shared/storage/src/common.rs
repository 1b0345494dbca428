//! The one implementation of [`crate::Database`], stamped out for each database.
//!
//! SQLite and PostgreSQL run the same statements ([`crate::sql`]); what differs is how a
//! connection is opened, which migrations folder applies, and how rows being leased are
//! locked. So each database has its own type (`Sqlite`, `Postgres`) with its own connection
//! setup, and this macro writes their `Database` implementation from a single body instead
//! of two copies that could drift apart.

/// A subscriber's vote on a message's sender and, if the message belongs to a campaign, on
/// the campaign: both statements on the open transaction `$tx`.
macro_rules! insert_vote {
    ($tx:ident, $subscriber:expr, $message:expr, $sender:expr, $vote:expr, $now:expr) => {{
        let new = sqlx::query($crate::sql::RECORD_VOTE)
            .bind($subscriber)
            .bind($message)
            .bind($sender.as_str())
            .bind($sender.domain())
            .bind($vote.as_str())
            .bind($now.0)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            > 0;
        sqlx::query($crate::sql::RECORD_CAMPAIGN_VOTE)
            .bind($subscriber)
            .bind($message)
            .bind($vote.as_str())
            .bind($now.0)
            .execute(&mut *$tx)
            .await?;
        new
    }};
}

/// Counts what became of message `$message` under its reputation keys, on the open
/// connection or transaction `$on` (a `&mut` or a pool).
macro_rules! reputation_event {
    ($on:expr, $message:expr, $event:expr, $now:expr) => {
        sqlx::query($event.sql()).bind($message).bind(quorum_reputation::mass($now.0)).execute($on).await?
    };
}

/// Rows per multi-row statement. SQLite allows 32,766 parameters, but looks each one up by
/// a linear scan when sqlx binds it (`sqlite3_bind_parameter_name`): a statement's binding
/// costs the square of its parameters, which at 500 rows was a tenth of a poll's commit.
pub(crate) const ROWS: usize = 64;

/// Messages per multi-row insert: 15 parameters each, so 240 a statement (64 rows would be
/// 960, and binding costs their square, see [`ROWS`]).
pub(crate) const MESSAGE_ROWS: usize = 16;

/// A poll's arrivals under their reputation keys, on the poll's open transaction `$tx`,
/// whatever their number in a few statements: `$arrivals` are (stored message or `None`
/// for an Inbox delivery from an approved sender, status, keys). A stored message's keys are
/// kept for what later becomes of it, and counted unless the same message was stored
/// before (its keys conflict: nothing counts twice); an Inbox delivery is counted as one.
macro_rules! arrivals {
    ($tx:ident, $subscriber:expr, $arrivals:expr, $now:expr) => {{
        let (subscriber, arrivals, now): (
            i64,
            &[(Option<i64>, &str, &[quorum_reputation::Key])],
            quorum_domain::Timestamp,
        ) = ($subscriber, $arrivals, $now);
        let stored: Vec<(i64, &quorum_reputation::Key)> =
            arrivals.iter().filter_map(|(m, _, keys)| m.map(|m| keys.iter().map(move |k| (m, k)))).flatten().collect();
        let mut new = std::collections::HashSet::new();
        for chunk in stored.chunks($crate::common::ROWS) {
            let sql = $crate::sql::message_reputation(chunk.len());
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for (m, k) in chunk {
                q = q.bind(*m).bind(k.kind.as_str()).bind(k.name.as_str());
            }
            new.extend(q.fetch_all(&mut *$tx).await?);
        }
        // Per key: its messages, probes' copies, forgeries and Inbox deliveries, as masses.
        let mass = quorum_reputation::mass(now.0);
        let mut tally: std::collections::BTreeMap<&quorum_reputation::Key, [f64; 4]> =
            std::collections::BTreeMap::new();
        // Each new message once (the same bytes twice in one poll are one message).
        let mut counted = std::collections::HashSet::new();
        for (m, status, keys) in arrivals {
            if m.is_some_and(|m| !new.contains(&m) || !counted.insert(m)) {
                continue;
            }
            // Every arrival is a message; some are also one of the other three.
            let also = ["probe_spam", "deleted_forged", "inbox"].iter().position(|s| s == status);
            for k in keys.iter() {
                let t = tally.entry(k).or_default();
                t[0] += mass;
                if let Some(i) = also {
                    t[i + 1] += mass;
                }
            }
        }
        let tally: Vec<(&quorum_reputation::Key, [f64; 4])> = tally.into_iter().collect();
        for chunk in tally.chunks($crate::common::ROWS) {
            let sql = $crate::sql::reputation_arrival(chunk.len());
            let mut q = sqlx::query(&sql).bind(mass).bind(now.0).bind(subscriber);
            for (k, [messages, probe, forged, inbox]) in chunk {
                q = q
                    .bind(k.kind.as_str())
                    .bind(k.name.as_str())
                    .bind(*messages)
                    .bind(*probe)
                    .bind(*forged)
                    .bind(*inbox);
            }
            q.execute(&mut *$tx).await?;
            let sql = $crate::sql::reputation_recipients(chunk.len());
            let mut q = sqlx::query(&sql).bind(mass).bind(subscriber);
            for (k, _) in chunk {
                q = q.bind(k.kind.as_str()).bind(k.name.as_str());
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// `impl_database!(Type, "migrations folder", "row locking clause")`: `Type` has a `pool`
/// field of the database's pool type.
macro_rules! impl_database {
    ($name:ident, $migrations:literal, $lock_rows:literal) => {
        impl $name {
            /// A one-row claim on a subscriber (`$1`) at two times (`$2`, `$3`): true when
            /// this call made it.
            async fn claim(
                &self,
                sql: &str,
                subscriber_id: i64,
                a: quorum_domain::Timestamp,
                b: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(sql).bind(subscriber_id).bind(a.0).bind(b.0).execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::Database for $name {
            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn migrate(&self) -> $crate::Result<()> {
                sqlx::migrate!($migrations).run(&self.pool).await?;
                Ok(())
            }

            async fn add_subscriber(
                &self,
                new: &$crate::NewSubscriber,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<$crate::SubscriberIds> {
                let mut tx = self.pool.begin().await?;
                let subscriber_id: i64 = sqlx::query_scalar($crate::sql::INSERT_SUBSCRIBER)
                    .bind(new.email.as_str())
                    .bind(new.approved_days)
                    .bind(now.0)
                    .bind(new.schedule.times())
                    .bind(new.schedule.zone())
                    .bind(new.schedule.next_after(now).0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| $crate::common::duplicate(e, &new.email))?;
                let m = &new.mailbox;
                let mailbox_id: i64 = sqlx::query_scalar($crate::sql::INSERT_MAILBOX)
                    .bind(subscriber_id)
                    .bind(&m.host)
                    .bind(i32::from(m.port))
                    .bind(m.security.as_str())
                    .bind(m.auth.as_str())
                    .bind(&m.username)
                    .bind(&m.password_enc)
                    .bind(now.0)
                    .bind(m.trusted_domains.join(","))
                    .bind(m.protocol.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::SubscriberIds { subscriber_id, mailbox_id })
            }

            async fn list_subscribers(&self) -> $crate::Result<Vec<$crate::SubscriberStatus>> {
                Ok(sqlx::query_as(&$crate::sql::list_subscribers()).fetch_all(&self.pool).await?)
            }

            async fn subscriber_by_email(
                &self,
                email: &quorum_domain::EmailAddress,
            ) -> $crate::Result<Option<$crate::SubscriberStatus>> {
                Ok(sqlx::query_as(&$crate::sql::subscriber_by_email())
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn set_subscriber_enabled(&self, subscriber_id: i64, enabled: bool) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query($crate::sql::SET_SUBSCRIBER_ENABLED)
                    .bind(subscriber_id)
                    .bind(enabled)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StorageError::NotFound(format!("subscriber {subscriber_id}")));
                }
                sqlx::query($crate::sql::SET_MAILBOX_ENABLED)
                    .bind(subscriber_id)
                    .bind(enabled)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn approve_sender(
                &self,
                subscriber_id: i64,
                sender: &quorum_domain::EmailAddress,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<()> {
                // Approved and blocked exclude each other: the latest word wins.
                let mut tx = self.pool.begin().await?;
                sqlx::query($crate::sql::APPROVE_SENDER)
                    .bind(subscriber_id)
                    .bind(sender.as_str())
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query($crate::sql::UNDISAPPROVE_SENDER)
                    .bind(subscriber_id)
                    .bind(sender.as_str())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn approved_senders(
                &self,
                subscriber_id: i64,
                seen_since: quorum_domain::Timestamp,
            ) -> $crate::Result<Vec<quorum_domain::EmailAddress>> {
                let rows: Vec<String> = sqlx::query_scalar($crate::sql::APPROVED_SENDERS)
                    .bind(subscriber_id)
                    .bind(seen_since.0)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().filter_map(|a| quorum_domain::EmailAddress::parse(a).ok()).collect())
            }

            async fn lease_due_mailboxes(
                &self,
                owner: &str,
                now: quorum_domain::Timestamp,
                lease_until: quorum_domain::Timestamp,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::LeasedMailbox>> {
                // One statement: on SQLite it takes the write lock at once (so the busy
                // timeout applies), on PostgreSQL the subquery skips rows another worker is
                // leasing at this moment.
                let lease = format!(
                    "UPDATE mailboxes SET lease_owner = $3, lease_until = $4 WHERE id IN \
                     (SELECT m.id FROM mailboxes m JOIN subscribers s ON s.id = m.subscriber_id \
                      WHERE m.enabled AND s.enabled AND m.next_poll_at <= $1 AND {} \
                      ORDER BY m.next_poll_at LIMIT $2 {}) {}",
                    $crate::sql::FREE,
                    $lock_rows,
                    $crate::sql::LEASED_RETURNING
                );
                let rows: Vec<$crate::LeasedMailboxRow> = sqlx::query_as(&lease)
                    .bind(now.0)
                    .bind(limit)
                    .bind(owner)
                    .bind(lease_until.0)
                    .fetch_all(&self.pool)
                    .await?;
                Ok($crate::models::valid_leases(rows))
            }

            async fn lease_mailbox(
                &self,
                mailbox_id: i64,
                owner: &str,
                now: quorum_domain::Timestamp,
                lease_until: quorum_domain::Timestamp,
                take_over: bool,
            ) -> $crate::Result<Option<$crate::LeasedMailbox>> {
                let lease = format!(
                    "UPDATE mailboxes SET lease_owner = $3, lease_until = $4 \
                     WHERE id = $2 AND enabled AND ($5 OR lease_until IS NULL OR lease_until < $1) {}",
                    $crate::sql::LEASED_RETURNING
                );
                let row: Option<$crate::LeasedMailboxRow> = sqlx::query_as(&lease)
                    .bind(now.0)
                    .bind(mailbox_id)
                    .bind(owner)
                    .bind(lease_until.0)
                    .bind(take_over)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map($crate::LeasedMailbox::try_from).transpose()
            }

            async fn release_leases(&self, owner: &str) -> $crate::Result<u64> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query($crate::sql::RELEASE_LEASES).bind(owner).execute(&mut *tx).await?;
                sqlx::query($crate::sql::RELEASE_WATCHES).bind(owner).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn claim_watch(
                &self,
                mailbox_id: i64,
                owner: &str,
                until: quorum_domain::Timestamp,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                let done = sqlx::query($crate::sql::CLAIM_WATCH)
                    .bind(mailbox_id)
                    .bind(owner)
                    .bind(until.0)
                    .bind(now.0)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_watch(&self, mailbox_id: i64, owner: &str) -> $crate::Result<()> {
                sqlx::query($crate::sql::RELEASE_WATCH).bind(mailbox_id).bind(owner).execute(&self.pool).await?;
                Ok(())
            }

            async fn poll_soon(&self, mailbox_id: i64, now: quorum_domain::Timestamp) -> $crate::Result<()> {
                sqlx::query($crate::sql::POLL_SOON).bind(mailbox_id).bind(now.0).execute(&self.pool).await?;
                Ok(())
            }

            async fn known_uidls(&self, mailbox_id: i64) -> $crate::Result<Vec<$crate::KnownUidl>> {
                let rows: Vec<(String, String, Option<Vec<u8>>, Option<String>, Option<i64>)> =
                    sqlx::query_as($crate::sql::KNOWN_UIDLS).bind(mailbox_id).fetch_all(&self.pool).await?;
                rows.into_iter().map($crate::KnownUidl::from_row).collect()
            }

            async fn commit_poll(
                &self,
                mailbox_id: i64,
                subscriber_id: i64,
                items: &[$crate::PollItem<'_>],
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<Vec<Option<i64>>> {
                // Every statement here writes, so SQLite takes its write lock at the first one
                // and the busy timeout applies (a transaction that read first could not wait).
                let mut tx = self.pool.begin().await?;
                // The messages in a few statements: each round holds the first occurrence
                // of every content hash not yet written (a later copy of the same bytes only
                // updates the row), in chunks of `MESSAGE_ROWS`.
                let mut stored: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
                let mut rounds: Vec<Vec<&$crate::PollItem<'_>>> = Vec::new();
                let mut seen: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
                for item in items {
                    if let $crate::PollItem::Quarantine { hash, .. } = item {
                        let round = seen.entry(&hash.0[..]).or_insert(0);
                        if rounds.len() <= *round {
                            rounds.push(Vec::new());
                        }
                        rounds[*round].push(item);
                        *round += 1;
                    }
                }
                for round in &rounds {
                    for chunk in round.chunks($crate::common::MESSAGE_ROWS) {
                        let sql = $crate::sql::insert_messages(chunk.len());
                        let mut q = sqlx::query_as::<_, (i64, Vec<u8>)>(&sql).bind(mailbox_id).bind(now.0);
                        for item in chunk {
                            let $crate::PollItem::Quarantine {
                                uidl,
                                status,
                                raw,
                                hash,
                                from,
                                from_name,
                                subject,
                                checked,
                                campaign,
                                stat_keys,
                                confirm_to,
                                imap_folder,
                                ..
                            } = item
                            else {
                                continue; // the rounds hold quarantined items only
                            };
                            q = q
                                .bind(*uidl)
                                .bind(&hash.0[..])
                                .bind(*raw)
                                .bind(raw.len() as i64)
                                .bind(from.map(|f| f.as_str()))
                                .bind(*from_name)
                                .bind(*subject)
                                .bind(*status)
                                .bind(checked.map(|c| c.evidence))
                                .bind(checked.and_then(|c| c.reason))
                                .bind(checked.map(|c| c.state()))
                                .bind(*campaign)
                                .bind(*stat_keys)
                                .bind(confirm_to.map(|c| c.as_str()))
                                .bind(*imap_folder);
                        }
                        stored.extend(q.fetch_all(&mut *tx).await?.into_iter().map(|(id, hash)| (hash, id)));
                    }
                }
                let mut ids = Vec::with_capacity(items.len());
                // What the reputation tables count, in a few statements after the loop.
                let mut arrivals: Vec<(Option<i64>, &str, &[quorum_reputation::Key])> = Vec::with_capacity(items.len());
                // Each UIDL's fate, the last one given if it came twice.
                let mut uidls = std::collections::BTreeMap::new();
                for item in items {
                    let (uidl, disposition, message_id) = match item {
                        $crate::PollItem::Quarantine { uidl, status, hash, from, reputation, .. } => {
                            let id = *stored.get(&hash.0[..]).ok_or_else(|| {
                                $crate::StorageError::Corrupt(format!(
                                    "no id came back for the bytes of message {uidl}"
                                ))
                            })?;
                            // A spam probe's mail is a spam vote on arrival, committed with it.
                            if let (&"probe_spam", Some(sender)) = (status, from) {
                                $crate::common::insert_vote!(tx, subscriber_id, id, sender, $crate::Vote::Spam, now);
                            }
                            arrivals.push((Some(id), *status, *reputation));
                            (uidl, $crate::UidlDisposition::Quarantined, Some(id))
                        }
                        $crate::PollItem::Keep { uidl, approved, campaign, reputation } => {
                            if let Some(sender) = approved {
                                arrivals.push((None, "inbox", *reputation));
                                sqlx::query($crate::sql::TOUCH_SENDER)
                                    .bind(subscriber_id)
                                    .bind(sender.as_str())
                                    .bind(now.0)
                                    .execute(&mut *tx)
                                    .await?;
                                if let Some(campaign) = campaign {
                                    sqlx::query($crate::sql::RECORD_INBOX_VOTE)
                                        .bind(subscriber_id)
                                        .bind(*campaign)
                                        .bind(now.0)
                                        .execute(&mut *tx)
                                        .await?;
                                }
                            }
                            (uidl, $crate::UidlDisposition::Kept, None)
                        }
                    };
                    uidls.insert(*uidl, (disposition, message_id));
                    ids.push(message_id);
                }
                // The UIDLs in a few statements (distinct: one statement may not write a row
                // twice), as for the reputation rows below.
                let uidls: Vec<(&str, ($crate::UidlDisposition, Option<i64>))> = uidls.into_iter().collect();
                for chunk in uidls.chunks($crate::common::ROWS) {
                    let sql = $crate::sql::insert_uidls(chunk.len());
                    let mut q = sqlx::query(&sql).bind(mailbox_id).bind(now.0);
                    for (uidl, (disposition, message_id)) in chunk {
                        q = q.bind(*uidl).bind(disposition.as_str()).bind(*message_id);
                    }
                    q.execute(&mut *tx).await?;
                }
                $crate::common::arrivals!(tx, subscriber_id, &arrivals, now);
                tx.commit().await?;
                Ok(ids)
            }

            async fn forget_uidls(&self, mailbox_id: i64, uidls: &[String]) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                for uidl in uidls {
                    sqlx::query($crate::sql::FORGET_UIDL).bind(mailbox_id).bind(uidl).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn finish_poll(&self, mailbox_id: i64, owner: &str, o: &$crate::PollOutcome) -> $crate::Result<bool> {
                let last_success = (o.status == $crate::PollStatus::Ok).then_some(o.polled_at.0);
                let done = sqlx::query($crate::sql::FINISH_POLL)
                    .bind(mailbox_id)
                    .bind(owner)
                    .bind(o.polled_at.0)
                    .bind(o.status.as_str())
                    .bind(o.error.as_deref())
                    .bind(o.next_poll_at.0)
                    .bind(o.quarantined)
                    .bind(o.kept)
                    .bind(last_success)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn queue_release(
                &self,
                mailbox_id: i64,
                which: $crate::ReleaseSelection<'_>,
                recipient: &quorum_domain::EmailAddress,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<u64> {
                let (message_id, sender) = match which {
                    $crate::ReleaseSelection::One(id) => (Some(id), None),
                    $crate::ReleaseSelection::All => (None, None),
                    $crate::ReleaseSelection::From(sender) => (None, Some(sender.as_str())),
                };
                let mut tx = self.pool.begin().await?;
                let ids: Vec<i64> = sqlx::query_scalar($crate::sql::MARK_RELEASING)
                    .bind(mailbox_id)
                    .bind(message_id)
                    .bind(sender)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut queued = 0;
                for id in ids {
                    queued += sqlx::query($crate::sql::QUEUE_RELEASE)
                        .bind(id)
                        .bind(mailbox_id)
                        .bind(recipient.as_str())
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(queued)
            }

            async fn lease_due_releases(
                &self,
                owner: &str,
                now: quorum_domain::Timestamp,
                lease_until: quorum_domain::Timestamp,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::PendingRelease>> {
                let lease = format!(
                    "UPDATE outbox SET lease_owner = $3, lease_until = $4 WHERE id IN ({} {}) {}",
                    $crate::sql::DUE_RELEASES,
                    $lock_rows,
                    $crate::sql::RELEASE_RETURNING
                );
                Ok(sqlx::query_as(&lease)
                    .bind(now.0)
                    .bind(limit)
                    .bind(owner)
                    .bind(lease_until.0)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn release_sent(
                &self,
                outbox_id: i64,
                owner: &str,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query($crate::sql::RELEASE_SENT)
                    .bind(outbox_id)
                    .bind(owner)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                // Only the lease holder's report counts; a stale one changes nothing.
                let mine = done.rows_affected() == 1;
                if mine {
                    sqlx::query($crate::sql::MARK_RELEASED).bind(outbox_id).bind(now.0).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(mine)
            }

            async fn release_failed(
                &self,
                outbox_id: i64,
                owner: &str,
                error: &str,
                next_attempt_at: quorum_domain::Timestamp,
            ) -> $crate::Result<()> {
                sqlx::query($crate::sql::RELEASE_FAILED)
                    .bind(outbox_id)
                    .bind(owner)
                    .bind(error)
                    .bind(next_attempt_at.0)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn retry_releases_now(&self, now: quorum_domain::Timestamp) -> $crate::Result<u64> {
                Ok(sqlx::query($crate::sql::RETRY_NOW).bind(now.0).execute(&self.pool).await?.rows_affected())
            }

            async fn release_refused(&self, outbox_id: i64, owner: &str) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query($crate::sql::RELEASE_REFUSED_MESSAGE).bind(outbox_id).bind(owner).execute(&mut *tx).await?;
                sqlx::query($crate::sql::DELETE_OUTBOX).bind(outbox_id).bind(owner).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_pending(&self) -> $crate::Result<Vec<$crate::OutboxEntry>> {
                Ok(sqlx::query_as($crate::sql::OUTBOX_PENDING).fetch_all(&self.pool).await?)
            }

            async fn due_summaries(
                &self,
                now: quorum_domain::Timestamp,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::SubscriberStatus>> {
                Ok(sqlx::query_as(&$crate::sql::due_summaries()).bind(now.0).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn claim_summary(
                &self,
                subscriber_id: i64,
                due: quorum_domain::Timestamp,
                next: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                self.claim($crate::sql::CLAIM_SUMMARY, subscriber_id, due, next).await
            }

            async fn pending_confirmations(&self, mailbox_id: i64) -> $crate::Result<Vec<$crate::PendingConfirmation>> {
                Ok(sqlx::query_as($crate::sql::PENDING_CONFIRMATIONS).bind(mailbox_id).fetch_all(&self.pool).await?)
            }

            async fn confirmation_done(&self, message_id: i64) -> $crate::Result<()> {
                sqlx::query($crate::sql::CONFIRMATION_DONE).bind(message_id).execute(&self.pool).await?;
                Ok(())
            }

            async fn claim_refusal_notice(
                &self,
                subscriber_id: i64,
                now: quorum_domain::Timestamp,
                not_after: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                self.claim($crate::sql::CLAIM_REFUSAL_NOTICE, subscriber_id, now, not_after).await
            }

            async fn set_next_summary(&self, subscriber_id: i64, at: quorum_domain::Timestamp) -> $crate::Result<()> {
                sqlx::query($crate::sql::SET_NEXT_SUMMARY).bind(subscriber_id).bind(at.0).execute(&self.pool).await?;
                Ok(())
            }

            async fn expire_approved_senders(&self, now: quorum_domain::Timestamp) -> $crate::Result<u64> {
                Ok(sqlx::query($crate::sql::EXPIRE_APPROVED).bind(now.0).execute(&self.pool).await?.rows_affected())
            }

            async fn purge_older_than(
                &self,
                cutoff: quorum_domain::Timestamp,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<u64> {
                let done = sqlx::query($crate::sql::PURGE_OLD)
                    .bind(cutoff.0)
                    .bind(now.0)
                    .bind(Vec::<u8>::new())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn purge_message(&self, message_id: i64, now: quorum_domain::Timestamp) -> $crate::Result<bool> {
                let done = sqlx::query($crate::sql::PURGE_ONE)
                    .bind(message_id)
                    .bind(now.0)
                    .bind(Vec::<u8>::new())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn held(&self, mailbox_id: i64) -> $crate::Result<Vec<$crate::QuarantinedMessage>> {
                Ok(sqlx::query_as($crate::sql::HELD).bind(mailbox_id).fetch_all(&self.pool).await?)
            }

            async fn reject_message(
                &self,
                subscriber_id: i64,
                mailbox_id: i64,
                message_id: i64,
                sender: Option<&quorum_domain::EmailAddress>,
                status: &str,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query($crate::sql::DELETE_HELD)
                    .bind(mailbox_id)
                    .bind(message_id)
                    .bind(status)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                if let Some(sender) = sender {
                    sqlx::query($crate::sql::DISAPPROVE_SENDER)
                        .bind(subscriber_id)
                        .bind(sender.as_str())
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query($crate::sql::UNAPPROVE_SENDER)
                        .bind(subscriber_id)
                        .bind(sender.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn disapproved_senders(
                &self,
                subscriber_id: i64,
            ) -> $crate::Result<Vec<quorum_domain::EmailAddress>> {
                let rows: Vec<String> = sqlx::query_scalar($crate::sql::DISAPPROVED_SENDERS)
                    .bind(subscriber_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().filter_map(|a| quorum_domain::EmailAddress::parse(a).ok()).collect())
            }

            async fn record_vote(
                &self,
                subscriber_id: i64,
                message_id: i64,
                sender: &quorum_domain::EmailAddress,
                vote: $crate::Vote,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                if $crate::common::insert_vote!(tx, subscriber_id, message_id, sender, vote, now) {
                    let event = match vote {
                        $crate::Vote::Spam => $crate::sql::ReputationEvent::Spam,
                        $crate::Vote::Approve => $crate::sql::ReputationEvent::Approval,
                    };
                    $crate::common::reputation_event!(&mut *tx, message_id, event, now);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn last_summary_at(&self, subscriber_id: i64) -> $crate::Result<Option<quorum_domain::Timestamp>> {
                let at: Option<i64> =
                    sqlx::query_scalar($crate::sql::LAST_SUMMARY).bind(subscriber_id).fetch_one(&self.pool).await?;
                Ok(at.map(quorum_domain::Timestamp))
            }

            async fn decided_since(
                &self,
                mailbox_id: i64,
                since: quorum_domain::Timestamp,
            ) -> $crate::Result<$crate::DecidedCounts> {
                let (deleted, forged, delivered): (Option<i64>, Option<i64>, Option<i64>) =
                    sqlx::query_as($crate::sql::DECIDED_SINCE)
                        .bind(mailbox_id)
                        .bind(since.0)
                        .fetch_one(&self.pool)
                        .await?;
                Ok($crate::DecidedCounts {
                    deleted: deleted.unwrap_or(0),
                    forged: forged.unwrap_or(0),
                    delivered: delivered.unwrap_or(0),
                })
            }

            async fn record_summary(
                &self,
                subscriber_id: i64,
                items: &[(String, i64)],
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<i64> {
                let mut tx = self.pool.begin().await?;
                let id: i64 = sqlx::query_scalar($crate::sql::INSERT_SUMMARY)
                    .bind(subscriber_id)
                    .bind(now.0)
                    .fetch_one(&mut *tx)
                    .await?;
                for (short_id, message_id) in items {
                    sqlx::query($crate::sql::INSERT_SUMMARY_ITEM)
                        .bind(id)
                        .bind(short_id)
                        .bind(message_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(id)
            }

            async fn summary_items(&self, summary_id: i64) -> $crate::Result<Vec<$crate::SummaryItem>> {
                Ok(sqlx::query_as($crate::sql::SUMMARY_ITEMS).bind(summary_id).fetch_all(&self.pool).await?)
            }

            async fn summary_owner(&self, summary_id: i64) -> $crate::Result<Option<$crate::SummaryOwner>> {
                let row: Option<(i64, String, i64)> =
                    sqlx::query_as($crate::sql::SUMMARY_OWNER).bind(summary_id).fetch_optional(&self.pool).await?;
                row.map(|(subscriber_id, email, mailbox_id)| {
                    quorum_domain::EmailAddress::parse(&email)
                        .map(|email| $crate::SummaryOwner { subscriber_id, email, mailbox_id })
                        .map_err(|_| $crate::StorageError::Corrupt(format!("subscriber {subscriber_id} email")))
                })
                .transpose()
            }

            async fn summary_sent(&self, summary_id: i64, now: quorum_domain::Timestamp) -> $crate::Result<()> {
                sqlx::query($crate::sql::SUMMARY_SENT).bind(summary_id).bind(now.0).execute(&self.pool).await?;
                Ok(())
            }

            async fn held_copies_decided(&self, mailbox_id: i64) -> $crate::Result<Vec<$crate::HeldCopy>> {
                Ok(sqlx::query_as($crate::sql::HELD_COPIES_DECIDED).bind(mailbox_id).fetch_all(&self.pool).await?)
            }

            async fn set_imap_folder(
                &self,
                mailbox_id: i64,
                message_ids: &[i64],
                folder: Option<&str>,
            ) -> $crate::Result<()> {
                // Bounded statements: both databases limit the parameters of one.
                for ids in message_ids.chunks(1000) {
                    let sql = $crate::sql::set_imap_folder(ids.len());
                    let mut query = sqlx::query(&sql).bind(mailbox_id).bind(folder);
                    for id in ids {
                        query = query.bind(id);
                    }
                    query.execute(&self.pool).await?;
                }
                Ok(())
            }

            async fn released_among(
                &self,
                mailbox_id: i64,
                hashes: &[quorum_domain::MessageHash],
            ) -> $crate::Result<Vec<(quorum_domain::MessageHash, i64)>> {
                let mut out = Vec::new();
                // Bounded statements: both databases limit the parameters of one.
                for chunk in hashes.chunks(1000) {
                    let sql = $crate::sql::released_among(chunk.len());
                    let mut query = sqlx::query_as::<_, (Vec<u8>, i64)>(&sql).bind(mailbox_id);
                    for hash in chunk {
                        query = query.bind(&hash.0[..]);
                    }
                    for (hash, id) in query.fetch_all(&self.pool).await? {
                        let hash = <[u8; 32]>::try_from(hash.as_slice())
                            .map_err(|_| $crate::StorageError::Corrupt(format!("content hash of message {id}")))?;
                        out.push((quorum_domain::MessageHash(hash), id));
                    }
                }
                Ok(out)
            }

            async fn released_raw(&self, mailbox_id: i64, message_id: i64) -> $crate::Result<Option<Vec<u8>>> {
                Ok(sqlx::query_scalar($crate::sql::RELEASED_RAW)
                    .bind(message_id)
                    .bind(mailbox_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn quarantined(&self, mailbox_id: i64) -> $crate::Result<Vec<$crate::QuarantinedMessage>> {
                Ok(sqlx::query_as($crate::sql::QUARANTINED).bind(mailbox_id).fetch_all(&self.pool).await?)
            }

            async fn message_raw(&self, message_id: i64) -> $crate::Result<Vec<u8>> {
                sqlx::query_scalar($crate::sql::MESSAGE_RAW)
                    .bind(message_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| $crate::StorageError::NotFound(format!("message {message_id}")))
            }

            async fn providers(&self) -> $crate::Result<Vec<quorum_domain::Provider>> {
                let rows: Vec<$crate::models::ProviderRow> =
                    sqlx::query_as($crate::sql::PROVIDERS).fetch_all(&self.pool).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn upsert_provider(&self, p: &quorum_domain::Provider) -> $crate::Result<()> {
                sqlx::query($crate::sql::UPSERT_PROVIDER)
                    .bind(&p.domain)
                    .bind(p.major_isp)
                    .bind(p.ptr_supported)
                    .bind(p.ptr_required)
                    .bind(p.ptr_domains.join(","))
                    .bind(p.ns_matches.join(","))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn remove_provider(&self, domain: &str) -> $crate::Result<bool> {
                let done = sqlx::query($crate::sql::DELETE_PROVIDER)
                    .bind(domain.trim().to_ascii_lowercase())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn forged_since(
                &self,
                mailbox_id: i64,
                since: quorum_domain::Timestamp,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::QuarantinedMessage>> {
                Ok(sqlx::query_as($crate::sql::FORGED_SINCE)
                    .bind(mailbox_id)
                    .bind(since.0)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn incomplete_checks(&self, subscriber_id: i64) -> $crate::Result<Vec<$crate::Recheck>> {
                Ok(sqlx::query_as($crate::sql::INCOMPLETE_CHECKS).bind(subscriber_id).fetch_all(&self.pool).await?)
            }

            async fn record_recheck(
                &self,
                message_id: i64,
                check: &$crate::CheckRecord<'_>,
                forged: bool,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query($crate::sql::RECORD_RECHECK)
                    .bind(message_id)
                    .bind(check.evidence)
                    .bind(check.reason)
                    .bind(check.state())
                    .bind(if forged { "deleted_forged" } else { "held" })
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                let done = done.rows_affected() > 0;
                if done && forged {
                    $crate::common::reputation_event!(&mut *tx, message_id, $crate::sql::ReputationEvent::Forged, now);
                }
                tx.commit().await?;
                Ok(done)
            }

            async fn set_confirmations(&self, subscriber_id: i64, enabled: bool) -> $crate::Result<()> {
                let done = sqlx::query($crate::sql::SET_CONFIRMATIONS)
                    .bind(subscriber_id)
                    .bind(enabled)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StorageError::NotFound(format!("subscriber {subscriber_id}")));
                }
                Ok(())
            }

            async fn claim_confirmation(
                &self,
                subscriber_id: i64,
                message_id: i64,
                sender: &quorum_domain::EmailAddress,
                now: quorum_domain::Timestamp,
                hourly_cap: i64,
            ) -> $crate::Result<bool> {
                let done = sqlx::query($crate::sql::CLAIM_CONFIRMATION)
                    .bind(message_id)
                    .bind(subscriber_id)
                    .bind(sender.as_str())
                    .bind(now.0)
                    .bind(now.0 - 86_400)
                    .bind(now.0 - 3_600)
                    .bind(hourly_cap)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn unclaim_confirmation(&self, message_id: i64) -> $crate::Result<()> {
                sqlx::query($crate::sql::UNCLAIM_CONFIRMATION).bind(message_id).execute(&self.pool).await?;
                Ok(())
            }

            async fn confirmation(&self, message_id: i64) -> $crate::Result<Option<$crate::Confirmation>> {
                Ok(sqlx::query_as($crate::sql::CONFIRMATION).bind(message_id).fetch_optional(&self.pool).await?)
            }

            async fn confirmation_answered(
                &self,
                message_id: i64,
                outcome: &str,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query($crate::sql::CONFIRMATION_ANSWERED)
                    .bind(message_id)
                    .bind(outcome)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                // A bounced confirmation: the sender does not exist (seed 001's invalid
                // recipients, as Quorum meets them).
                if done.rows_affected() > 0 && outcome == "bounced" {
                    $crate::common::reputation_event!(
                        &mut *tx,
                        message_id,
                        $crate::sql::ReputationEvent::Nonexistent,
                        now
                    );
                }
                tx.commit().await?;
                Ok(())
            }

            async fn mark_deleted(
                &self,
                mailbox_id: i64,
                message_id: i64,
                status: &str,
                reason: &str,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query($crate::sql::MARK_DELETED)
                    .bind(message_id)
                    .bind(mailbox_id)
                    .bind(reason)
                    .bind(now.0)
                    .bind(status)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                if done && status == "deleted_forged" {
                    $crate::common::reputation_event!(&mut *tx, message_id, $crate::sql::ReputationEvent::Forged, now);
                }
                tx.commit().await?;
                Ok(done)
            }

            async fn record_shown(&self, shown: &[(i64, f64)]) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                // One statement per 500 lines, whatever the summary's length.
                for chunk in shown.chunks(500) {
                    let sql = $crate::sql::record_shown(chunk.len());
                    let mut query = sqlx::query(&sql);
                    for (id, logit) in chunk {
                        query = query.bind(*id).bind(*logit);
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn votes_after(&self, after: $crate::VoteCursor, limit: i64) -> $crate::Result<Vec<$crate::VoteRow>> {
                Ok(sqlx::query_as($crate::sql::VOTES_AFTER)
                    .bind(after.created_at)
                    .bind(after.subscriber_id)
                    .bind(after.message_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn deletions_after(
                &self,
                after: $crate::DeletionCursor,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::DeletionRow>> {
                Ok(sqlx::query_as($crate::sql::DELETIONS_AFTER)
                    .bind(after.decided_at)
                    .bind(after.message_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn spam_probes(&self) -> $crate::Result<Vec<i64>> {
                Ok(sqlx::query_scalar($crate::sql::SPAM_PROBES).fetch_all(&self.pool).await?)
            }

            async fn spam_probe_emails(&self) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar($crate::sql::SPAM_PROBE_EMAILS).fetch_all(&self.pool).await?)
            }

            async fn set_spam_probe(&self, subscriber_id: i64, probe: bool) -> $crate::Result<()> {
                let done = sqlx::query($crate::sql::SET_SPAM_PROBE)
                    .bind(subscriber_id)
                    .bind(probe)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StorageError::NotFound(format!("subscriber {subscriber_id}")));
                }
                Ok(())
            }

            async fn write_statistics(&self, update: &$crate::StatisticsUpdate) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                for t in &update.trust {
                    sqlx::query($crate::sql::UPSERT_TRUST)
                        .bind(t.subscriber_id)
                        .bind(&t.status)
                        .bind(&t.reason)
                        .bind(t.approvals)
                        .bind(t.spam)
                        .bind(t.computed_at)
                        .execute(&mut *tx)
                        .await?;
                }
                for (user, rows) in &update.correlations {
                    sqlx::query($crate::sql::CLEAR_CORRELATIONS).bind(user).execute(&mut *tx).await?;
                    for c in rows {
                        sqlx::query($crate::sql::INSERT_CORRELATION)
                            .bind(c.user_id)
                            .bind(c.cuser_id)
                            .bind(c.rms_error)
                            .bind(c.confidence)
                            .bind(c.max_rms_error)
                            .bind(c.domains)
                            .bind(c.computed_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                for k in &update.keys {
                    sqlx::query($crate::sql::UPSERT_KEY_STATS)
                        .bind(&k.kind)
                        .bind(&k.name)
                        .bind(k.logit)
                        .bind(k.spam_units)
                        .bind(k.ham_units)
                        .bind(k.computed_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn trust_rows(&self) -> $crate::Result<Vec<$crate::TrustRow>> {
                Ok(sqlx::query_as($crate::sql::TRUST_ROWS).fetch_all(&self.pool).await?)
            }

            async fn correlation_rows(
                &self,
                max_rms_error: f64,
                user: Option<i64>,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::CorrelationLine>> {
                Ok(sqlx::query_as($crate::sql::CORRELATION_ROWS)
                    .bind(max_rms_error)
                    .bind(user.unwrap_or(-1))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn key_rows(&self, kind: &str, limit: i64) -> $crate::Result<Vec<$crate::KeyRow>> {
                Ok(sqlx::query_as($crate::sql::KEY_ROWS).bind(kind).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn spam_since(
                &self,
                since: quorum_domain::Timestamp,
            ) -> $crate::Result<Vec<quorum_reputation::campaigns::Spam>> {
                let mut rows: Vec<(i64, i64, i64, Option<String>, Option<String>, String)> =
                    sqlx::query_as($crate::sql::SPAM_SINCE).bind(since.0).fetch_all(&self.pool).await?;
                let mut keys: Vec<(i64, String, String)> =
                    sqlx::query_as($crate::sql::SPAM_KEYS_SINCE).bind(since.0).fetch_all(&self.pool).await?;
                rows.sort_unstable_by_key(|r| r.0);
                keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let mut spam: Vec<quorum_reputation::campaigns::Spam> = rows
                    .into_iter()
                    .map(|(id, recipient, at, subject, from, status)| quorum_reputation::campaigns::Spam {
                        id,
                        recipient,
                        at,
                        subject,
                        from,
                        status,
                        keys: Vec::new(),
                    })
                    .collect();
                // Both in message order: one merge pass.
                let mut i = 0;
                for (message, kind, name) in keys {
                    while spam.get(i).is_some_and(|m| m.id < message) {
                        i += 1;
                    }
                    let Some(m) = spam.get_mut(i).filter(|m| m.id == message) else { continue };
                    match kind.parse() {
                        Ok(kind) => m.keys.push(quorum_reputation::Key { kind, name }),
                        Err(e) => tracing::warn!(message, "reputation key skipped: {e}"),
                    }
                }
                Ok(spam)
            }

            async fn reputation_of(
                &self,
                keys: &[quorum_reputation::Key],
            ) -> $crate::Result<Vec<(quorum_reputation::Key, $crate::ReputationRow)>> {
                let mut out = Vec::with_capacity(keys.len());
                // Bounded statements: SQLite allows 32,766 parameters, and smaller is faster to plan.
                for chunk in keys.chunks(500) {
                    let sql = $crate::sql::reputation_of(chunk.len());
                    let mut q = sqlx::query_as(&sql);
                    for k in chunk {
                        q = q.bind(k.kind.as_str()).bind(k.name.as_str());
                    }
                    let rows: Vec<_> = q.fetch_all(&self.pool).await?;
                    out.extend(rows.into_iter().filter_map($crate::ReputationRow::keyed));
                }
                Ok(out)
            }

            async fn reputation_rows(
                &self,
                kind: quorum_reputation::Kind,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::ReputationRow>> {
                let rows = sqlx::query_as($crate::sql::REPUTATION)
                    .bind(kind.as_str())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().filter_map($crate::ReputationRow::keyed).map(|(_, row)| row).collect())
            }

            async fn campaign_candidates(&self, band_keys: &[i64]) -> $crate::Result<Vec<(i64, Vec<u8>)>> {
                let mut found: Vec<(i64, Vec<u8>)> = Vec::new();
                // Bounded statements: SQLite allows 32,766 parameters, and smaller is faster to plan.
                for keys in band_keys.chunks(512) {
                    let sql = $crate::sql::campaign_candidates(keys.len());
                    let mut query = sqlx::query_as::<_, (i64, Vec<u8>)>(&sql);
                    for key in keys {
                        query = query.bind(*key);
                    }
                    found.extend(query.fetch_all(&self.pool).await?);
                }
                found.sort_unstable_by_key(|(id, _)| *id);
                found.dedup_by_key(|(id, _)| *id);
                Ok(found)
            }

            async fn store_campaigns(
                &self,
                new: &[$crate::NewCampaign],
                seen: &[i64],
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<Vec<i64>> {
                let mut tx = self.pool.begin().await?;
                let mut ids = Vec::with_capacity(new.len());
                for c in new {
                    let id: i64 = sqlx::query_scalar($crate::sql::INSERT_CAMPAIGN)
                        .bind(&c.signature)
                        .bind(c.words)
                        .bind(now.0)
                        .fetch_one(&mut *tx)
                        .await?;
                    for key in &c.band_keys {
                        sqlx::query($crate::sql::INSERT_CAMPAIGN_BAND).bind(*key).bind(id).execute(&mut *tx).await?;
                    }
                    ids.push(id);
                }
                for id in seen {
                    sqlx::query($crate::sql::TOUCH_CAMPAIGN).bind(*id).bind(now.0).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(ids)
            }

            async fn campaign_votes_after(
                &self,
                after: &$crate::CampaignVoteCursor,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::CampaignVoteRow>> {
                Ok(sqlx::query_as($crate::sql::CAMPAIGN_VOTES_AFTER)
                    .bind(after.created_at)
                    .bind(after.subscriber_id)
                    .bind(after.campaign_id)
                    .bind(&after.verdict)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn subscriber(&self, subscriber_id: i64) -> $crate::Result<Option<$crate::SubscriberStatus>> {
                Ok(sqlx::query_as(&$crate::sql::subscriber_by_id())
                    .bind(subscriber_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn worker_totals(&self) -> $crate::Result<$crate::WorkerTotals> {
                let (mailboxes, enabled, failing, oldest_poll_at, outbox_backlog, unclassified): (
                    i64,
                    i64,
                    i64,
                    Option<i64>,
                    i64,
                    i64,
                ) = sqlx::query_as($crate::sql::WORKER_TOTALS).fetch_one(&self.pool).await?;
                Ok($crate::WorkerTotals { mailboxes, enabled, failing, unclassified, oldest_poll_at, outbox_backlog })
            }

            async fn failing_mailboxes(&self, limit: i64) -> $crate::Result<Vec<$crate::SubscriberStatus>> {
                Ok(sqlx::query_as(&$crate::sql::failing_mailboxes()).bind(limit).fetch_all(&self.pool).await?)
            }

            async fn set_web_password(&self, subscriber_id: i64, hash: &str) -> $crate::Result<()> {
                let done = sqlx::query($crate::sql::SET_WEB_PASSWORD)
                    .bind(subscriber_id)
                    .bind(hash)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StorageError::NotFound(format!("subscriber {subscriber_id}")));
                }
                Ok(())
            }

            async fn web_login(
                &self,
                email: &quorum_domain::EmailAddress,
            ) -> $crate::Result<Option<(i64, Option<String>)>> {
                Ok(sqlx::query_as($crate::sql::WEB_LOGIN).bind(email.as_str()).fetch_optional(&self.pool).await?)
            }

            async fn web_password(&self, subscriber_id: i64) -> $crate::Result<Option<Option<String>>> {
                Ok(sqlx::query_scalar($crate::sql::WEB_PASSWORD).bind(subscriber_id).fetch_optional(&self.pool).await?)
            }

            async fn subscriber_settings(
                &self,
                subscriber_id: i64,
            ) -> $crate::Result<Option<$crate::SubscriberSettings>> {
                Ok(sqlx::query_as($crate::sql::SUBSCRIBER_SETTINGS)
                    .bind(subscriber_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn mailbox_of(&self, subscriber_id: i64) -> $crate::Result<Option<$crate::LeasedMailbox>> {
                let row: Option<$crate::LeasedMailboxRow> =
                    sqlx::query_as($crate::sql::MAILBOX_OF).bind(subscriber_id).fetch_optional(&self.pool).await?;
                row.map($crate::LeasedMailbox::try_from).transpose()
            }

            async fn update_mailbox(
                &self,
                subscriber_id: i64,
                m: &$crate::MailboxSettings,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<()> {
                let done = sqlx::query($crate::sql::UPDATE_MAILBOX)
                    .bind(subscriber_id)
                    .bind(&m.host)
                    .bind(i32::from(m.port))
                    .bind(m.security.as_str())
                    .bind(m.auth.as_str())
                    .bind(&m.username)
                    .bind(&m.password_enc)
                    .bind(now.0)
                    .bind(m.protocol.as_str())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StorageError::NotFound(format!("subscriber {subscriber_id}")));
                }
                Ok(())
            }

            async fn remove_subscriber(&self, subscriber_id: i64) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                let mailbox_id: i64 = sqlx::query_scalar("SELECT id FROM mailboxes WHERE subscriber_id = $1")
                    .bind(subscriber_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| $crate::StorageError::NotFound(format!("subscriber {subscriber_id}")))?;
                let pending: i64 =
                    sqlx::query_scalar($crate::sql::PENDING_RELEASES).bind(mailbox_id).fetch_one(&mut *tx).await?;
                if pending > 0 {
                    return Err($crate::StorageError::Conflict(format!(
                        "{pending} releases of subscriber {subscriber_id} are not delivered yet"
                    )));
                }
                for statement in $crate::sql::REMOVE_SUBSCRIBER {
                    sqlx::query(statement).bind(subscriber_id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn update_subscriber_settings(
                &self,
                subscriber_id: i64,
                approved_days: i64,
                schedule: &quorum_domain::schedule::SummarySchedule,
                confirmations: bool,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<()> {
                let done = sqlx::query($crate::sql::UPDATE_SUBSCRIBER_SETTINGS)
                    .bind(subscriber_id)
                    .bind(approved_days)
                    .bind(schedule.times())
                    .bind(schedule.zone())
                    .bind(schedule.next_after(now).0)
                    .bind(confirmations)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StorageError::NotFound(format!("subscriber {subscriber_id}")));
                }
                Ok(())
            }

            async fn set_mailbox_password(&self, subscriber_id: i64, password_enc: &[u8]) -> $crate::Result<()> {
                sqlx::query($crate::sql::SET_MAILBOX_PASSWORD)
                    .bind(subscriber_id)
                    .bind(password_enc)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn add_operator(
                &self,
                email: &quorum_domain::EmailAddress,
                hash: &str,
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<i64> {
                sqlx::query_scalar($crate::sql::INSERT_OPERATOR)
                    .bind(email.as_str())
                    .bind(hash)
                    .bind(now.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| match &e {
                        sqlx::Error::Database(db) if db.is_unique_violation() => {
                            $crate::StorageError::Duplicate(format!("operator {email}"))
                        }
                        _ => $crate::StorageError::Sqlx(e),
                    })
            }

            async fn operator_login(
                &self,
                email: &quorum_domain::EmailAddress,
            ) -> $crate::Result<Option<(i64, String)>> {
                Ok(sqlx::query_as($crate::sql::OPERATOR_LOGIN).bind(email.as_str()).fetch_optional(&self.pool).await?)
            }

            async fn operator_email(&self, operator_id: i64) -> $crate::Result<Option<String>> {
                Ok(sqlx::query_scalar($crate::sql::OPERATOR_EMAIL).bind(operator_id).fetch_optional(&self.pool).await?)
            }

            async fn create_session(
                &self,
                token_hash: &[u8],
                principal: $crate::Principal,
                now: quorum_domain::Timestamp,
                expires: quorum_domain::Timestamp,
            ) -> $crate::Result<()> {
                let (subscriber, operator) = match principal {
                    $crate::Principal::Subscriber(id) => (Some(id), None),
                    $crate::Principal::Operator(id) => (None, Some(id)),
                };
                let mut tx = self.pool.begin().await?;
                sqlx::query($crate::sql::DELETE_EXPIRED_SESSIONS).bind(now.0).execute(&mut *tx).await?;
                sqlx::query($crate::sql::INSERT_SESSION)
                    .bind(token_hash)
                    .bind(subscriber)
                    .bind(operator)
                    .bind(now.0)
                    .bind(expires.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn session(
                &self,
                token_hash: &[u8],
                now: quorum_domain::Timestamp,
            ) -> $crate::Result<Option<$crate::Principal>> {
                let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as($crate::sql::SESSION)
                    .bind(token_hash)
                    .bind(now.0)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some((Some(s), None)) => Some($crate::Principal::Subscriber(s)),
                    Some((None, Some(o))) => Some($crate::Principal::Operator(o)),
                    _ => None,
                })
            }

            async fn delete_session(&self, token_hash: &[u8]) -> $crate::Result<()> {
                sqlx::query($crate::sql::DELETE_SESSION).bind(token_hash).execute(&self.pool).await?;
                Ok(())
            }

            async fn delete_subscriber_sessions(&self, subscriber_id: i64) -> $crate::Result<()> {
                sqlx::query($crate::sql::DELETE_SUBSCRIBER_SESSIONS).bind(subscriber_id).execute(&self.pool).await?;
                Ok(())
            }

            async fn message_in_mailbox(
                &self,
                mailbox_id: i64,
                message_id: i64,
            ) -> $crate::Result<Option<$crate::QuarantinedMessage>> {
                Ok(sqlx::query_as($crate::sql::MESSAGE_IN_MAILBOX)
                    .bind(message_id)
                    .bind(mailbox_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn message_counts(&self, mailbox_id: Option<i64>) -> $crate::Result<Vec<(String, i64)>> {
                Ok(match mailbox_id {
                    Some(m) => {
                        sqlx::query_as($crate::sql::MAILBOX_MESSAGE_COUNTS).bind(m).fetch_all(&self.pool).await?
                    }
                    None => sqlx::query_as($crate::sql::MESSAGE_COUNTS).fetch_all(&self.pool).await?,
                })
            }

            async fn daily_counts(&self, since: quorum_domain::Timestamp) -> $crate::Result<Vec<(i64, String, i64)>> {
                Ok(sqlx::query_as($crate::sql::DAILY_COUNTS).bind(since.0).fetch_all(&self.pool).await?)
            }

            async fn all_approved_senders(&self, subscriber_id: i64) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar($crate::sql::ALL_APPROVED_SENDERS)
                    .bind(subscriber_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn remove_approved_sender(
                &self,
                subscriber_id: i64,
                sender: &quorum_domain::EmailAddress,
            ) -> $crate::Result<bool> {
                let done = sqlx::query($crate::sql::UNAPPROVE_SENDER)
                    .bind(subscriber_id)
                    .bind(sender.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn expire_campaigns(&self, not_seen_since: quorum_domain::Timestamp) -> $crate::Result<u64> {
                Ok(sqlx::query($crate::sql::EXPIRE_CAMPAIGNS)
                    .bind(not_seen_since.0)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}

pub(crate) use arrivals;
pub(crate) use impl_database;
pub(crate) use insert_vote;
pub(crate) use reputation_event;

pub(crate) fn duplicate(e: sqlx::Error, email: &quorum_domain::EmailAddress) -> crate::StorageError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            crate::StorageError::Duplicate(format!("subscriber {email}"))
        }
        _ => crate::StorageError::Sqlx(e),
    }
}
