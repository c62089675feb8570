//! What every command shares: the database the flags name, the service on it, and printing a
//! result for a person or, with `--json`, as one JSON object.

use serde_json::Value;

use super::args::Global;
use crate::service::{Service, ServiceConfig};
use crate::store::Db;

pub(super) fn database_url(g: &Global) -> anyhow::Result<String> {
    match &g.database_url {
        Some(url) => Ok(url.clone()),
        None => Db::sqlite_url_in(&g.data_dir),
    }
}

pub(super) async fn service(g: &Global) -> anyhow::Result<Service> {
    let db = Db::connect(&database_url(g)?).await?;
    db.migrate().await?;
    Ok(Service::new(
        db,
        ServiceConfig {
            env: g.env,
            public_url: "http://127.0.0.1:8080".into(),
            secret_scanning_keys_url: crate::service::GITHUB_KEYS_URL.into(),
            oauth: Default::default(),
            approval_ttl: crate::service::DEFAULT_APPROVAL_TTL,
            holdable: crate::service::ops::catalog::can_be_held,
            metrics: false,
        },
    ))
}

pub(super) fn print(json_mode: bool, value: Value, human: impl FnOnce() -> String) {
    if json_mode {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}
