//! `?page=` (from 1) and `?limit=` (1–100, default 25), and the list `meta`.

use super::args::{Limit, PageArgs, PageNo};
use super::output::PageMeta;

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

impl PageArgs {
    pub fn page(&self) -> Page {
        Page::of(self.page, self.limit)
    }
}

impl Page {
    /// The page the arguments ask for (their types have checked the ranges).
    pub fn of(page: Option<PageNo>, limit: Option<Limit>) -> Page {
        Page {
            page: page.map_or(1, PageNo::get),
            limit: limit.map_or(25, Limit::get),
        }
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.limit
    }

    pub fn meta(&self, total: i64) -> PageMeta {
        PageMeta {
            page: self.page,
            limit: self.limit,
            total,
            has_more: self.offset() + self.limit < total,
        }
    }
}
