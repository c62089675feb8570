//! What a call gives back: an operation's output (`data`, and `meta` for lists), the call's
//! result as a surface sees it, and the JSON of a value.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::error::Result;

/// A value as the JSON an audit entry or an answer holds.
pub fn to_value<T: Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| crate::domain::error::Error::Internal(e.into()))
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an operation returns on success: the `data` of the response, and `meta` for lists.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Output {
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub meta: Option<Value>,
}

impl Output {
    pub fn one<T: Serialize>(v: T) -> Result<Output> {
        Ok(Output {
            data: to_value(v)?,
            meta: None,
        })
    }

    pub fn list<T: Serialize>(items: Vec<T>, meta: Value) -> Result<Output> {
        Ok(Output {
            data: to_value(items)?,
            meta: Some(meta),
        })
    }
}

/// The result of a call as a surface sees it.
#[derive(Debug)]
pub struct Done {
    pub output: Output,
    /// The output of an earlier call with the same `Idempotency-Key`, replayed.
    pub replayed: bool,
}
