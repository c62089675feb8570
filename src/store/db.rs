//! The database: one pool for SQLite or PostgreSQL chosen by URL, the write transaction (one
//! writer on SQLite, queued in-process), the read pool, migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// A write transaction, or a read-only connection. A write transaction on SQLite also holds this
/// process's writer slot, so writers queue in order here instead of spinning in SQLite's busy
/// handler (which sleeps up to 100 ms).
pub struct Tx {
    inner: Inner,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

enum Inner {
    Write(sqlx::Transaction<'static, sqlx::Any>),
    /// A connection of the read pool, which cannot write (see [`Db::begin_read`]).
    Read(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl Tx {
    /// Commits a write transaction; for a read connection, gives it back.
    pub async fn commit(self) -> sqlx::Result<()> {
        match self.inner {
            Inner::Write(tx) => tx.commit().await,
            Inner::Read(_) => Ok(()),
        }
    }

    /// Rolls a write transaction back; for a read connection, gives it back.
    pub async fn rollback(self) -> sqlx::Result<()> {
        match self.inner {
            Inner::Write(tx) => tx.rollback().await,
            Inner::Read(_) => Ok(()),
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match &self.inner {
            Inner::Write(tx) => tx,
            Inner::Read(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        match &mut self.inner {
            Inner::Write(tx) => tx,
            Inner::Read(conn) => conn,
        }
    }
}
pub type Conn = sqlx::AnyConnection;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// SQLite's `synchronous` setting in WAL mode: `Full` syncs the WAL at every commit, so a power
/// loss cannot take a commit whose answer was sent; `Normal` syncs only at checkpoints and can
/// lose the last commits (never corrupt the file). Group commit makes `Full` cost one sync per
/// batch. PostgreSQL has its own (`synchronous_commit`, left at its default `on`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

/// Why a SQLite file could not be opened, as far as this process can tell.
const SQLITE_UNWRITABLE: &str = "cannot open the SQLite database for writing (a missing directory, a read-only file \
                                 or file system, or no permission)";

/// How long a PostgreSQL read connection may sit idle before it is pinged ahead of its next use:
/// shorter than any restart of the database (a shutdown and a startup), longer than a busy
/// server leaves a connection idle, where the ping would cost a round trip per read.
const PING_IDLE_AFTER: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Connections that cannot write: SQLite opened read-only, PostgreSQL sessions whose
    /// transactions are all `READ ONLY`. Reads and authentication run here.
    read_pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; this process's writers take turns here first.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Db {
    /// Connects by URL scheme (`sqlite://…` or `postgres://…`); anything else is an error.
    /// A SQLite file is created if missing; a PostgreSQL database never is.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        Self::connect_with(url, Synchronous::default()).await
    }

    /// [`Db::connect`] with SQLite's `synchronous` chosen.
    pub async fn connect_with(url: &str, synchronous: Synchronous) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            bail!("unsupported database URL scheme (expected sqlite:// or postgres://)");
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).context("invalid database URL")?;
        let pragmas = match synchronous {
            Synchronous::Full => {
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
            }
            Synchronous::Normal => {
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
            }
        };
        if backend == Backend::Sqlite {
            // Once on its own first: a file that cannot be opened for writing fails here, at once
            // and saying so, where the pool would retry it until its acquire timeout (30 s).
            use sqlx::Connection;
            let mut probe = sqlx::AnyConnection::connect_with(&options)
                .await
                .context(SQLITE_UNWRITABLE)?;
            probe.execute(pragmas).await.context(SQLITE_UNWRITABLE)?;
            let _ = probe.close().await;
        }
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    // A local file does not go stale: no ping before each use.
                    .test_before_acquire(false)
                    .before_acquire(|conn, _| Box::pin(still_usable(conn)))
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            conn.execute(pragmas).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
            }
        }
        .context("cannot connect to the database")?;
        // After the first connection above, which created the file and switched it to WAL.
        let read_pool = match backend {
            Backend::Sqlite => {
                let read_url = url.replace("mode=rwc", "mode=ro");
                AnyPoolOptions::new()
                    .max_connections(8)
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA busy_timeout = 10000;").await?;
                            Ok(())
                        })
                    })
                    .connect_with(AnyConnectOptions::from_str(&read_url).context("invalid database URL")?)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    // No ping before a read on a connection in use a moment ago: under load, a
                    // database restart costs each connection it broke one failed read (500), and
                    // then the connection is replaced. One that sat idle is pinged first, so a
                    // restart at a quiet time costs no call at all. The write pool pings every
                    // time, since one failed batch fails every call in it.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_IDLE_AFTER {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(AnyConnectOptions::from_str(&url).context("invalid database URL")?)
                    .await
            }
        }
        .context("cannot connect to the database")?;
        Ok(Db {
            pool,
            read_pool,
            backend,
            writer: Default::default(),
        })
    }

    /// The default embedded database: `<data_dir>/memberpass.db`.
    pub fn sqlite_url_in(data_dir: &Path) -> anyhow::Result<String> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        Ok(format!("sqlite://{}", data_dir.join("memberpass.db").display()))
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("migrations failed")?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool of connections that cannot write (see [`Db::begin_read`]).
    pub fn read_pool(&self) -> &AnyPool {
        &self.read_pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a read-then-write never fails with a stale snapshot.
    pub async fn begin_write(&self) -> sqlx::Result<Tx> {
        match self.backend {
            Backend::Sqlite => {
                let writer = self.writer.clone().lock_owned().await;
                let inner = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(Tx {
                    inner: Inner::Write(inner),
                    _writer: Some(writer),
                })
            }
            Backend::Postgres => Ok(Tx {
                inner: Inner::Write(self.pool.begin().await?),
                _writer: None,
            }),
        }
    }

    /// A connection that only reads, from the read pool: SQLite opened read-only, PostgreSQL
    /// with every transaction `READ ONLY`, so a write through it is an error whatever the code
    /// asks. No transaction is opened (each statement sees the last commit): what a read checks
    /// is in its own statement's `WHERE`, and the batch re-checks the caller under the chain's
    /// lock before its answer.
    pub async fn begin_read(&self) -> sqlx::Result<Tx> {
        Ok(Tx {
            inner: Inner::Read(self.read_pool.acquire().await?),
            _writer: None,
        })
    }

    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub async fn close(&self) {
        self.read_pool.close().await;
        self.pool.close().await;
    }
}

/// Whether a SQLite connection of the write pool may be handed out. SQLite rolls a transaction
/// back by itself on some errors (`SQLITE_FULL` on a full disk, `SQLITE_IOERR`); sqlx still counts
/// it open, its `ROLLBACK` then fails, and every later `BEGIN` on that connection is refused
/// ("non-zero transaction depth"), so the pool would fail a share of all writes for good. Such a
/// connection is closed instead (and a fresh one opened). The ping first lets the rollback queued
/// when its transaction was dropped run, so a connection whose rollback simply had not run yet is
/// kept.
async fn still_usable(conn: &mut Conn) -> sqlx::Result<bool> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let usable = !conn.is_in_transaction();
    if !usable {
        tracing::warn!("closing a database connection left in a transaction the database had rolled back");
    }
    Ok(usable)
}

/// Drops a PostgreSQL database from a thread of its own, blocking until done: for the test
/// harnesses' scratch databases, whose cleanup runs in `Drop`, which cannot await. Errors are
/// ignored (the database may already be gone).
pub fn drop_database_blocking(admin_url: String, name: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = conn.execute(sqlx::AssertSqlSafe(drop)).await;
            }
        });
    })
    .join();
}
