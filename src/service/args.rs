//! Query arguments of the list operations: shared by every surface, and the source of their
//! published JSON Schemas.

use schemars::JsonSchema;
use serde::Deserialize;

use super::page::Page;
use crate::domain::error::Result;

/// No arguments: anything given is refused.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageArgs {
    /// Page number, from 1.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 25).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<i64>,
}

impl PageArgs {
    pub fn page(&self) -> Result<Page> {
        Page::new(self.page, self.limit)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPageArgs {
    /// Only items in this status.
    pub status: Option<String>,
    #[schemars(range(min = 1, max = 1_000_000))]
    pub page: Option<i64>,
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<i64>,
}

impl StatusPageArgs {
    pub fn page(&self) -> Result<Page> {
        Page::new(self.page, self.limit)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberArgs {
    /// `lead`, `trialing`, `customer`, `churned` or `banned`.
    #[schemars(extend("enum" = ["lead", "trialing", "customer", "churned", "banned", null]))]
    pub status: Option<String>,
    /// Case-insensitive match on name, username or Telegram id (at most 100 characters).
    #[schemars(length(max = 100))]
    pub search: Option<String>,
    #[schemars(range(min = 1, max = 1_000_000))]
    pub page: Option<i64>,
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<i64>,
}
