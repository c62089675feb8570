//! What the stores' queries share: the team-scoped load, optional filters, constraint errors.

use sqlx::Any;

use super::db::Conn;
use crate::domain::ids::{Id, IdKind};
use crate::domain::time::Millis;

/// A timestamp column decodes as the domain's [`Millis`].
impl sqlx::Type<Any> for Millis {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Millis {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <i64 as sqlx::Decode<'r, Any>>::decode(value).map(Millis)
    }
}

/// An id column decodes as its kind's [`Id`].
impl<K: IdKind> sqlx::Type<Any> for Id<K> {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r, K: IdKind> sqlx::Decode<'r, Any> for Id<K> {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <String as sqlx::Decode<'r, Any>>::decode(value).map(Id::from_stored)
    }
}

/// A flag column (`0`/`1` in a `BIGINT`: one type on both backends) as the row's `bool`, by
/// `#[sqlx(try_from = "Flag")]` on the field.
pub struct Flag(i64);

impl sqlx::Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <i64 as sqlx::Decode<'r, Any>>::decode(value).map(Flag)
    }
}

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
    }
}

pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// A row that belongs to one team and one project: what an operation loads by id through
/// `Call::load`, the one scoped loader.
pub trait Scoped: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin {
    /// The kind of id the row is loaded by: a plan's id never loads a project.
    type Kind: IdKind;
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    /// The project the row belongs to (a project's own id for a project).
    fn project_id(&self) -> &str;
}

/// `impl Scoped` for a row type of a store module: its table, that module's `COLUMNS`, and the
/// field that names its project.
macro_rules! scoped {
    ($row:ty, $kind:ty, $table:literal, $project:ident) => {
        impl $crate::store::Scoped for $row {
            type Kind = $kind;
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str = COLUMNS;
            fn project_id(&self) -> &str {
                &self.$project
            }
        }
    };
}
pub(super) use scoped;

/// One scoped row by id, only when it belongs to `team_id`.
pub async fn find_scoped<T: Scoped>(conn: &mut Conn, team_id: &str, id: &Id<T::Kind>) -> sqlx::Result<Option<T>> {
    find_in_team(conn, T::TABLE, T::COLUMNS, team_id, id).await
}

/// A page of a project's rows of one kind, oldest first, and their total count.
pub async fn page_in_project<T: Scoped>(
    conn: &mut Conn,
    project_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<T>, i64)> {
    Filter::default()
        .eq("project_id", project_id)
        .page(conn, T::COLUMNS, T::TABLE, "created_at, id", limit, offset)
        .await
}

/// One row of `table` by id, only when it belongs to `team_id`: every scoped load starts here.
pub async fn find_in_team<T>(
    conn: &mut Conn,
    table: &str,
    columns: &str,
    team_id: &str,
    id: &str,
) -> sqlx::Result<Option<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} WHERE id = $1 AND team_id = $2"
    )))
    .bind(id)
    .bind(team_id)
    .fetch_optional(&mut *conn)
    .await
}

/// A `WHERE` clause of text conditions with `$N` placeholders, for lists with optional filters.
#[derive(Default)]
pub struct Filter {
    sql: String,
    binds: Vec<String>,
}

impl Filter {
    pub fn eq(mut self, col: &str, value: impl Into<String>) -> Self {
        self.binds.push(value.into());
        self.sql.push_str(&format!(" AND {col} = ${}", self.binds.len()));
        self
    }

    pub fn eq_opt(self, col: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.eq(col, v),
            None => self,
        }
    }

    /// Case-insensitive substring match on any of `cols`.
    pub fn contains_any(mut self, cols: &[&str], needle: &str) -> Self {
        let escaped = needle
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        self.binds.push(format!("%{escaped}%"));
        let n = self.binds.len();
        let ors: Vec<String> = cols
            .iter()
            .map(|c| format!("LOWER({c}) LIKE ${n} ESCAPE '\\'"))
            .collect();
        self.sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
        self
    }

    /// `AND col IN (…)` when `values` is given (an empty list matches nothing).
    pub fn in_list(mut self, col: &str, values: Option<&[String]>) -> Self {
        let Some(values) = values else { return self };
        if values.is_empty() {
            self.sql.push_str(" AND 1 = 0");
            return self;
        }
        let mut slots = Vec::with_capacity(values.len());
        for v in values {
            self.binds.push(v.clone());
            slots.push(format!("${}", self.binds.len()));
        }
        self.sql.push_str(&format!(" AND {col} IN ({})", slots.join(", ")));
        self
    }

    /// `WHERE 1 = 1 AND …`
    pub fn clause(&self) -> String {
        format!("WHERE 1 = 1{}", self.sql)
    }

    /// One page of `SELECT {columns} FROM {from} WHERE … ORDER BY {order}`, and the total count.
    pub async fn page<T>(
        &self,
        conn: &mut Conn,
        columns: &str,
        from: &str,
        order: &str,
        limit: i64,
        offset: i64,
    ) -> sqlx::Result<(Vec<T>, i64)>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {from} {}",
            self.clause()
        )));
        for b in &self.binds {
            count = count.bind(b);
        }
        let total = count.fetch_one(&mut *conn).await?;
        let n = self.binds.len() + 1;
        let mut rows = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM {from} {} ORDER BY {order} LIMIT ${n} OFFSET ${}",
            self.clause(),
            n + 1
        )));
        for b in &self.binds {
            rows = rows.bind(b);
        }
        let rows = rows.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
        Ok((rows, total))
    }
}
