//! What a call gives back: an operation's typed output ([`One`] object, or a [`Paged`] list with
//! its `meta`), the same erased to JSON ([`JsonOutput`], what the surfaces, the batch writer and
//! idempotency's saved outputs hold), the call's result as a surface sees it, and the JSON of a
//! value.

use std::future::Future;
use std::pin::Pin;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::error::Result;

/// A value as the JSON an audit entry or an answer holds.
pub fn to_value<T: Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| crate::domain::error::Error::Internal(e.into()))
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An operation's answer about one object: `{"data": {…}}`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct One<T> {
    pub data: T,
}

impl<T> One<T> {
    pub fn of(data: T) -> Self {
        One { data }
    }

    /// The answer of a body that found or made `data`.
    pub fn ok(data: T) -> Result<Self> {
        Ok(One { data })
    }
}

/// One page of a list: `{"data": […], "meta": {…}}` (the meta of numbered pages by default).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Paged<T, M = PageMeta> {
    pub data: Vec<T>,
    pub meta: M,
}

impl<T, M> Paged<T, M> {
    /// The answer of a body that listed `data`.
    pub fn ok(data: Vec<T>, meta: M) -> Result<Self> {
        Ok(Paged { data, meta })
    }
}

/// The `meta` of a numbered page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PageMeta {
    pub page: i64,
    pub limit: i64,
    pub total: i64,
    pub has_more: bool,
}

/// An output erased to JSON: the `data` of the response, and `meta` for lists.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JsonOutput {
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub meta: Option<Value>,
}

impl JsonOutput {
    /// The JSON of a typed output.
    pub fn of<T: Serialize>(output: &T) -> Result<JsonOutput> {
        serde_json::from_value(to_value(output)?).map_err(|e| crate::domain::error::Error::Internal(e.into()))
    }
}

/// The result of a call as a surface sees it.
#[derive(Debug)]
pub struct Done {
    pub output: JsonOutput,
    /// The output of an earlier call with the same `Idempotency-Key`, replayed.
    pub replayed: bool,
}
