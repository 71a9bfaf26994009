//! SQLite storage with runtime-checked queries.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::{
    ConsumeChange, ConsumeOutcome, DecideChange, DecideOutcome, InsertOutcome, LoginOutcome,
    LoginTransaction, Storage, StorageError,
};
use crate::approvals::{
    Approval, ApprovalId, Approver, Decision, DecisionRecord, PayloadHash, RemoteCode, Requester,
};
use crate::audit::{AuditEvent, AuditRecord};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Login transactions are kept this long after they expire, then deleted.
const LOGIN_RETENTION_SECONDS: i64 = 86_400;

const APPROVAL_COLUMNS: &str = "id, api_key_name, action, summary, details, requester_sub, \
    requester_name, required_role, origin, payload_hash, events_token_hash, remote_code, status, \
    created_at, expires_at, decided_at, approver_sub, approver_name, approver_username, reason, \
    consumed_at";

#[derive(Debug, Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    /// Opens (and creates if missing) the database file. Migrations are not
    /// applied here: call [`Storage::migrate`].
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|error| {
                StorageError::Database(format!("cannot open {}: {error}", path.display()))
            })?;
        Ok(Self { pool })
    }

    /// Opens a private in-memory database, for tests. One connection, since
    /// every in-memory connection would be a database of its own.
    pub async fn in_memory() -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(database_error)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(database_error)?;
        Ok(Self { pool })
    }

    /// Returns the connection pool, for tests that need to change the schema.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StorageError> {
        // IMMEDIATE takes the write lock at once, so a transaction that reads
        // after its first write never has to upgrade its lock and fail busy.
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(database_error)
    }
}

fn database_error(error: sqlx::Error) -> StorageError {
    StorageError::Database(error.to_string())
}

/// Returns whether an insert failed on the unique index of `remote_code`.
/// SQLite names the column in the message: "UNIQUE constraint failed:
/// approvals.remote_code".
fn is_remote_code_conflict(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|error| {
        error.is_unique_violation() && error.message().contains("approvals.remote_code")
    })
}

fn audit_error(error: sqlx::Error) -> StorageError {
    StorageError::AuditUnavailable(error.to_string())
}

async fn insert_audit(
    connection: &mut SqliteConnection,
    event: &AuditEvent,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO audit_log (recorded_at, event, approval_id, actor, code, details) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(event.at.unix_timestamp())
    .bind(event.kind.as_str())
    .bind(event.approval_id.as_ref().map(ApprovalId::as_str))
    .bind(event.actor.as_deref())
    .bind(event.code.as_deref())
    .bind(event.details.to_string())
    .execute(connection)
    .await
    .map_err(audit_error)?;
    Ok(())
}

async fn select_approval(
    connection: &mut SqliteConnection,
    id: &ApprovalId,
) -> Result<Option<Approval>, StorageError> {
    let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.as_str())
        .fetch_optional(connection)
        .await
        .map_err(database_error)?;
    row.map(|row| approval_from_row(&row)).transpose()
}

fn timestamp(seconds: i64) -> Result<OffsetDateTime, StorageError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|error| {
        StorageError::Database(format!("stored time {seconds} is invalid: {error}"))
    })
}

fn optional_timestamp(seconds: Option<i64>) -> Result<Option<OffsetDateTime>, StorageError> {
    seconds.map(timestamp).transpose()
}

fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StorageError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name).map_err(database_error)
}

fn approver_from_row(row: &SqliteRow) -> Result<Option<Approver>, StorageError> {
    let sub: Option<String> = column(row, "approver_sub")?;
    Ok(match sub {
        Some(sub) => Some(Approver {
            sub,
            name: column(row, "approver_name")?,
            username: column(row, "approver_username")?,
        }),
        None => None,
    })
}

fn approval_from_row(row: &SqliteRow) -> Result<Approval, StorageError> {
    let details: String = column(row, "details")?;
    let details = serde_json::from_str(&details)
        .map_err(|error| StorageError::Database(format!("stored details are not JSON: {error}")))?;

    let status: String = column(row, "status")?;
    let decision = match status.as_str() {
        "pending" => None,
        "approved" => Some(Decision::Approved),
        "rejected" => Some(Decision::Rejected),
        other => {
            return Err(StorageError::Database(format!(
                "stored status `{other}` is unknown"
            )));
        }
    };
    let decision = match decision {
        Some(decision) => {
            let decided_at = optional_timestamp(column(row, "decided_at")?)?;
            let approver = approver_from_row(row)?;
            match (decided_at, approver) {
                (Some(decided_at), Some(approver)) => Some(DecisionRecord {
                    decision,
                    approver,
                    reason: column(row, "reason")?,
                    decided_at,
                }),
                _ => {
                    return Err(StorageError::Database(
                        "a decided approval has no decision time or approver".to_owned(),
                    ));
                }
            }
        }
        None => None,
    };

    Ok(Approval {
        id: ApprovalId::from_stored(column(row, "id")?),
        api_key_name: column(row, "api_key_name")?,
        action: column(row, "action")?,
        summary: column(row, "summary")?,
        details,
        requester: Requester {
            sub: column(row, "requester_sub")?,
            name: column(row, "requester_name")?,
        },
        required_role: column(row, "required_role")?,
        origin: column(row, "origin")?,
        payload_hash: PayloadHash::from_stored(column(row, "payload_hash")?),
        events_token_hash: column(row, "events_token_hash")?,
        remote_code: column::<Option<String>>(row, "remote_code")?.map(RemoteCode::from_stored),
        created_at: timestamp(column(row, "created_at")?)?,
        expires_at: timestamp(column(row, "expires_at")?)?,
        decision,
        consumed_at: optional_timestamp(column(row, "consumed_at")?)?,
    })
}

fn login_from_row(row: &SqliteRow) -> Result<LoginTransaction, StorageError> {
    Ok(LoginTransaction {
        key_hash: column(row, "key_hash")?,
        approval_id: ApprovalId::from_stored(column(row, "approval_id")?),
        state: column(row, "state")?,
        nonce: column(row, "nonce")?,
        pkce_verifier: column(row, "pkce_verifier")?,
        csrf_token: column(row, "csrf_token")?,
        created_at: timestamp(column(row, "created_at")?)?,
        expires_at: timestamp(column(row, "expires_at")?)?,
        outcome: column(row, "outcome")?,
        approver: approver_from_row(row)?,
    })
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditRecord, StorageError> {
    let details: String = column(row, "details")?;
    Ok(AuditRecord {
        id: column(row, "id")?,
        recorded_at: timestamp(column(row, "recorded_at")?)?,
        event: column(row, "event")?,
        approval_id: column(row, "approval_id")?,
        actor: column(row, "actor")?,
        code: column(row, "code")?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
    })
}

const LOGIN_COLUMNS: &str = "key_hash, approval_id, state, nonce, pkce_verifier, csrf_token, \
    created_at, expires_at, outcome, approver_sub, approver_name, approver_username";

impl Storage for SqliteStorage {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(async move {
            MIGRATOR
                .run(&self.pool)
                .await
                .map_err(|error| StorageError::Database(format!("migration failed: {error}")))
        })
    }

    fn insert_approval<'a>(
        &'a self,
        approval: &'a Approval,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<InsertOutcome, StorageError>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO approvals (id, api_key_name, action, summary, details, requester_sub, \
                 requester_name, required_role, origin, payload_hash, events_token_hash, \
                 remote_code, status, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            )
            .bind(approval.id.as_str())
            .bind(&approval.api_key_name)
            .bind(&approval.action)
            .bind(&approval.summary)
            .bind(approval.details.to_string())
            .bind(&approval.requester.sub)
            .bind(&approval.requester.name)
            .bind(&approval.required_role)
            .bind(&approval.origin)
            .bind(approval.payload_hash.as_str())
            .bind(&approval.events_token_hash)
            .bind(approval.remote_code.as_ref().map(RemoteCode::as_str))
            .bind(approval.created_at.unix_timestamp())
            .bind(approval.expires_at.unix_timestamp())
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(error) if is_remote_code_conflict(&error) => {
                    return Ok(InsertOutcome::RemoteCodeTaken);
                }
                Err(error) => return Err(database_error(error)),
            }
            insert_audit(&mut tx, audit).await?;
            tx.commit().await.map_err(database_error)?;
            Ok(InsertOutcome::Inserted)
        })
    }

    fn approval<'a>(
        &'a self,
        id: &'a ApprovalId,
    ) -> BoxFuture<'a, Result<Option<Approval>, StorageError>> {
        Box::pin(async move {
            let mut connection = self.pool.acquire().await.map_err(database_error)?;
            select_approval(&mut connection, id).await
        })
    }

    fn approval_by_remote_code<'a>(
        &'a self,
        code: &'a RemoteCode,
    ) -> BoxFuture<'a, Result<Option<Approval>, StorageError>> {
        Box::pin(async move {
            let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE remote_code = ?");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(code.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(database_error)?;
            row.map(|row| approval_from_row(&row)).transpose()
        })
    }

    fn decide<'a>(
        &'a self,
        change: &'a DecideChange,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<DecideOutcome, StorageError>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let now = change.now.unix_timestamp();

            // One statement decides, so two approvers racing cannot both win.
            let updated = sqlx::query(
                "UPDATE approvals SET status = ?, decided_at = ?, approver_sub = ?, \
                 approver_name = ?, approver_username = ?, reason = ? \
                 WHERE id = ? AND status = 'pending' AND expires_at > ?",
            )
            .bind(change.decision.as_str())
            .bind(now)
            .bind(&change.approver.sub)
            .bind(change.approver.name.as_deref())
            .bind(change.approver.username.as_deref())
            .bind(change.reason.as_deref())
            .bind(change.id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(database_error)?
            .rows_affected();

            let current = select_approval(&mut tx, &change.id).await?;
            let Some(current) = current else {
                return Ok(DecideOutcome::NotFound);
            };
            if updated == 0 {
                return Ok(if current.decision.is_some() {
                    DecideOutcome::AlreadyDecided(Box::new(current))
                } else {
                    DecideOutcome::Expired
                });
            }

            insert_audit(&mut tx, audit).await?;
            tx.commit().await.map_err(database_error)?;
            Ok(DecideOutcome::Decided(Box::new(current)))
        })
    }

    fn consume<'a>(
        &'a self,
        change: &'a ConsumeChange,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<ConsumeOutcome, StorageError>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let now = change.now.unix_timestamp();

            // One statement checks owner, payload, decision, expiry and
            // single use together; a second consume finds consumed_at set.
            let updated = sqlx::query(
                "UPDATE approvals SET consumed_at = ? \
                 WHERE id = ? AND api_key_name = ? AND payload_hash = ? \
                 AND consumed_at IS NULL AND status IN ('approved', 'rejected') \
                 AND expires_at > ?",
            )
            .bind(now)
            .bind(change.id.as_str())
            .bind(&change.api_key_name)
            .bind(change.payload_hash.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(database_error)?
            .rows_affected();

            let Some(current) = select_approval(&mut tx, &change.id).await? else {
                return Ok(ConsumeOutcome::NotFound);
            };
            if updated == 1 {
                insert_audit(&mut tx, audit).await?;
                tx.commit().await.map_err(database_error)?;
                return Ok(ConsumeOutcome::Consumed(Box::new(current)));
            }

            // Nothing changed. The order of these checks sets the returned
            // code, and the payload is compared first.
            Ok(if current.api_key_name != change.api_key_name {
                ConsumeOutcome::Forbidden
            } else if current.payload_hash != change.payload_hash {
                ConsumeOutcome::PayloadMismatch
            } else if current.consumed_at.is_some() {
                ConsumeOutcome::AlreadyConsumed
            } else if current.is_expired(change.now) {
                ConsumeOutcome::Expired
            } else {
                ConsumeOutcome::Pending
            })
        })
    }

    fn append_audit<'a>(
        &'a self,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let mut connection = self.pool.acquire().await.map_err(database_error)?;
            insert_audit(&mut connection, audit).await
        })
    }

    fn audit_events<'a>(
        &'a self,
        id: &'a ApprovalId,
    ) -> BoxFuture<'a, Result<Vec<AuditRecord>, StorageError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, recorded_at, event, approval_id, actor, code, details \
                 FROM audit_log WHERE approval_id = ? ORDER BY id",
            )
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(database_error)?;
            rows.iter().map(audit_from_row).collect()
        })
    }

    fn insert_login<'a>(
        &'a self,
        login: &'a LoginTransaction,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM login_transactions WHERE expires_at < ?")
                .bind(login.created_at.unix_timestamp() - LOGIN_RETENTION_SECONDS)
                .execute(&mut *tx)
                .await
                .map_err(database_error)?;
            sqlx::query(
                "INSERT INTO login_transactions (key_hash, approval_id, state, nonce, \
                 pkce_verifier, csrf_token, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&login.key_hash)
            .bind(login.approval_id.as_str())
            .bind(&login.state)
            .bind(&login.nonce)
            .bind(&login.pkce_verifier)
            .bind(&login.csrf_token)
            .bind(login.created_at.unix_timestamp())
            .bind(login.expires_at.unix_timestamp())
            .execute(&mut *tx)
            .await
            .map_err(database_error)?;
            insert_audit(&mut tx, audit).await?;
            tx.commit().await.map_err(database_error)
        })
    }

    fn login<'a>(
        &'a self,
        key_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<LoginTransaction>, StorageError>> {
        Box::pin(async move {
            let sql = format!("SELECT {LOGIN_COLUMNS} FROM login_transactions WHERE key_hash = ?");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(database_error)?;
            row.map(|row| login_from_row(&row)).transpose()
        })
    }

    fn login_by_state<'a>(
        &'a self,
        state: &'a str,
    ) -> BoxFuture<'a, Result<Option<LoginTransaction>, StorageError>> {
        Box::pin(async move {
            let sql = format!("SELECT {LOGIN_COLUMNS} FROM login_transactions WHERE state = ?");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(state)
                .fetch_optional(&self.pool)
                .await
                .map_err(database_error)?;
            row.map(|row| login_from_row(&row)).transpose()
        })
    }

    fn record_login_outcome<'a>(
        &'a self,
        outcome: &'a LoginOutcome,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let approver = outcome.approver.as_ref();
            let updated = sqlx::query(
                "UPDATE login_transactions SET outcome = ?, approver_sub = ?, approver_name = ?, \
                 approver_username = ? WHERE key_hash = ? AND outcome IS NULL",
            )
            .bind(&outcome.outcome)
            .bind(approver.map(|a| a.sub.as_str()))
            .bind(approver.and_then(|a| a.name.as_deref()))
            .bind(approver.and_then(|a| a.username.as_deref()))
            .bind(&outcome.key_hash)
            .execute(&mut *tx)
            .await
            .map_err(database_error)?
            .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            insert_audit(&mut tx, audit).await?;
            tx.commit().await.map_err(database_error)?;
            Ok(true)
        })
    }

    fn delete_login<'a>(&'a self, key_hash: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM login_transactions WHERE key_hash = ?")
                .bind(key_hash)
                .execute(&self.pool)
                .await
                .map_err(database_error)?;
            Ok(())
        })
    }
}
