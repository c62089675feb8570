//! Rate-limit buckets shared by every replica on PostgreSQL (SPEC §8).
//!
//! Each bucket is one row holding its GCRA state: the theoretical arrival time (`tat`, in
//! microseconds of the database's clock, the one clock every replica shares). A call is allowed
//! when, after it, the bucket is no further ahead of now than the burst allows; one
//! `INSERT … ON CONFLICT DO UPDATE` takes the row lock, decides and records it, so two replicas
//! racing for the last slot cannot both get it. The table is UNLOGGED: no WAL, no fsync per
//! request; a crash of PostgreSQL empties it, which forgives at most one minute of traffic.
//! A lock-out after failed authentications is a row too, whose `tat` is the time it ends.

use sqlx::AnyPool;

/// Creates the table when missing. Not a migration: the table exists only on PostgreSQL (SQLite
/// keeps buckets in memory) and holds nothing worth keeping. Replicas starting together would
/// race in `CREATE TABLE IF NOT EXISTS` (one of them fails on the catalog's unique index), so the
/// creation holds an advisory lock.
pub async fn create(pool: &AnyPool) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7236051822)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE UNLOGGED TABLE IF NOT EXISTS rate_limits (\
         key TEXT PRIMARY KEY, tat BIGINT NOT NULL, ok BOOLEAN NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A bucket's shape: one call per `interval_us`, at most `burst_us / interval_us` at once.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    pub interval_us: i64,
    pub burst_us: i64,
}

impl Quota {
    /// `n` calls a minute, all `n` at once if the bucket is full; `None` when `n` is 0 (off).
    pub fn per_minute(n: u32) -> Option<Quota> {
        (n > 0).then(|| {
            let interval_us = 60_000_000 / i64::from(n);
            Quota {
                interval_us,
                burst_us: interval_us * i64::from(n),
            }
        })
    }
}

/// Microseconds to wait, from the database's clock: `blocked` while a lock-out of `block_key`
/// lasts (then the bucket was not touched), `refused` when the bucket is empty.
#[derive(Debug, Default)]
pub struct Verdict {
    pub blocked: Option<i64>,
    pub refused: Option<i64>,
}

/// Takes one call from the bucket `key` (when given), unless `block_key` (when given) is locked
/// out: one statement, one round trip.
pub async fn take(pool: &AnyPool, key: Option<(&str, Quota)>, block_key: Option<&str>) -> sqlx::Result<Verdict> {
    let (key, quota) = match key {
        Some((k, q)) => (Some(k), q),
        None => (
            None,
            Quota {
                interval_us: 0,
                burst_us: 0,
            },
        ),
    };
    // `excluded.tat` is now + interval, so `GREATEST(r.tat + interval, excluded.tat)` is the
    // bucket's state after this call, and minus now it must stay within the burst.
    let (blocked, refused): (Option<i64>, Option<i64>) = sqlx::query_as(
        "WITH clock AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT AS now), \
         blocked AS (SELECT r.tat - clock.now AS wait FROM rate_limits r, clock \
                     WHERE r.key = $4 AND r.tat > clock.now), \
         hit AS (INSERT INTO rate_limits AS r (key, tat, ok) \
                 SELECT $1, clock.now + $2, TRUE FROM clock \
                 WHERE $1 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blocked) \
                 ON CONFLICT (key) DO UPDATE SET \
                   ok = GREATEST(r.tat + $2, excluded.tat) - excluded.tat + $2 <= $3, \
                   tat = CASE WHEN GREATEST(r.tat + $2, excluded.tat) - excluded.tat + $2 <= $3 \
                         THEN GREATEST(r.tat + $2, excluded.tat) ELSE r.tat END \
                 RETURNING CASE WHEN ok THEN NULL \
                   ELSE GREATEST(tat, (SELECT now FROM clock)) + $2 - (SELECT now FROM clock) - $3 END AS wait) \
         SELECT (SELECT wait FROM blocked), (SELECT wait FROM hit)",
    )
    .bind(key)
    .bind(quota.interval_us)
    .bind(quota.burst_us)
    .bind(block_key)
    .fetch_one(pool)
    .await?;
    Ok(Verdict { blocked, refused })
}

/// Gives one call of `quota` back to the bucket `key` (a call taken and then not counted). A
/// bucket whose state falls into the past is full, however far into it.
pub async fn give_back(pool: &AnyPool, key: &str, quota: Quota) -> sqlx::Result<()> {
    sqlx::query("UPDATE rate_limits SET tat = tat - $2 WHERE key = $1")
        .bind(key)
        .bind(quota.interval_us)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Locks `block_key` out for `for_us` from now (or longer, if it already is).
pub async fn block(pool: &AnyPool, block_key: &str, for_us: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO rate_limits AS r (key, tat, ok) \
         VALUES ($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT + $2, FALSE) \
         ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, excluded.tat)",
    )
    .bind(block_key)
    .bind(for_us)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Deletes the rows that no longer limit anything (a bucket whose state is in the past is full;
/// a lock-out in the past is over). Returns how many.
pub async fn sweep(pool: &AnyPool) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM rate_limits WHERE tat < (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT")
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}
