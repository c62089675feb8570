//! `?page=` (from 1) and `?limit=` (1–100, default 25), and the list `meta`.

use serde_json::{Value, json};

use crate::domain::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub limit: i64,
}

impl Default for Page {
    fn default() -> Self {
        Page { page: 1, limit: 25 }
    }
}

impl Page {
    pub fn new(page: Option<i64>, limit: Option<i64>) -> Result<Page> {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(25);
        if !(1..=1_000_000).contains(&page) {
            return Err(Error::field("page", "must be a whole number from 1"));
        }
        if !(1..=100).contains(&limit) {
            return Err(Error::field("limit", "must be a whole number from 1 to 100"));
        }
        Ok(Page { page, limit })
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.limit
    }

    pub fn meta(&self, total: i64) -> Value {
        json!({
            "page": self.page,
            "limit": self.limit,
            "total": total,
            "has_more": self.offset() + self.limit < total,
        })
    }
}

impl Page {
    /// Runs a filtered list query for this page and wraps it as `{"data", "meta"}`.
    pub async fn fetch<T>(
        &self,
        conn: &mut crate::store::Conn,
        filter: crate::store::Filter,
        columns: &str,
        from: &str,
        order: &str,
    ) -> Result<super::Output>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin + serde::Serialize,
    {
        let (rows, total) = filter
            .page::<T>(conn, columns, from, order, self.limit, self.offset())
            .await?;
        super::Output::list(rows, self.meta(total))
    }
}
