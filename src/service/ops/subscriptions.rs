//! Subscriptions and payments.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{ProjectId, SubscriptionId};
use crate::domain::kinds::{PaymentStatus, SubscriptionStatus};
use crate::service::Call;
use crate::service::core::args::{Limit, PageNo};
use crate::service::core::op::{DynOp, Effect, One, Operation, Paged, Spec};
use crate::service::core::page::Page;
use crate::store::now_ms;
use crate::store::projects::Project;
use crate::store::subscriptions::{self as store, Subscription};

pub static OPS: &[&dyn DynOp] = &[&CancelSubscription, &ListRecentPayments];

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRef {
    pub subscription_id: SubscriptionId,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentArgs {
    pub project_id: ProjectId,
    /// Only payments in this status.
    pub status: Option<PaymentStatus>,
    /// Page number, from 1.
    pub page: Option<PageNo>,
    /// Items per page, 1 to 100 (default 25).
    pub limit: Option<Limit>,
}

pub struct CancelSubscription;
impl Operation for CancelSubscription {
    type Args = SubscriptionRef;
    type Output = One<store::Subscription>;
    const SPEC: Spec = Spec {
        name: "cancel_subscription",
        event: "cancel_subscription",
        ability: Some(Ability::SubscriptionUpdate),
        path: "/v1/subscriptions/{subscription_id}/cancel",
        subject_type: "project-subscription",
        subject_arg: Some("subscription_id"),
        effect: Effect::Destructive,
        summary: "Cancel a subscription.",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: SubscriptionRef) -> Result<Self::Output> {
        let sub = c.load::<Subscription>(&args.subscription_id).await?;
        if matches!(sub.status, SubscriptionStatus::Canceled | SubscriptionStatus::Expired) {
            return Err(Error::Conflict(format!("the subscription is already {}", sub.status)));
        }
        store::cancel(c.conn(), &sub.id, now_ms()).await?;
        c.changes(json!({"status": {"from": sub.status, "to": SubscriptionStatus::Canceled}}));
        let after = c.load::<Subscription>(&sub.id).await?;
        One::ok(after)
    }
}

pub struct ListRecentPayments;
impl Operation for ListRecentPayments {
    type Args = PaymentArgs;
    type Output = Paged<store::Payment>;
    const SPEC: Spec = Spec {
        name: "list_recent_payments",
        event: "list_recent_payments",
        ability: Some(Ability::SubscriptionViewAny),
        path: "/v1/projects/{project_id}/payments",
        subject_type: "payment",
        summary: "A project's payments, newest first.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: PaymentArgs) -> Result<Self::Output> {
        let project = c.load::<Project>(&args.project_id).await?;
        let page = Page::of(args.page, args.limit);
        let (rows, total) =
            store::payments_of_project(c.conn(), &project.id, args.status, page.limit, page.offset()).await?;
        Paged::ok(rows, page.meta(total))
    }
}
