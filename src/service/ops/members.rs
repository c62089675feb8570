//! Members (subscribers) and the status rules of SPEC §5: ban → banned; unban → churned (only
//! from banned); kick → churned (a banned member stays banned); each a no-op when already there.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::projects::validate_name;
use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{MemberId, ProjectId};
use crate::domain::kinds::MemberStatus;
use crate::service::Call;
use crate::service::core::args::{Limit, PageNo};
use crate::service::core::op::{DynOp, Effect, One, Operation, Paged, Spec};
use crate::service::core::page::Page;
use crate::store::members::{self as store, Member};
use crate::store::projects::Project;
use crate::store::{now_ms, subscriptions};

pub static OPS: &[&dyn DynOp] = &[&ListSubscribers, &GetMember, &BanMember, &UnbanMember, &KickMember];

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberArgs {
    pub project_id: ProjectId,
    /// Only members in this status.
    pub status: Option<MemberStatus>,
    /// Case-insensitive match on name, username or Telegram id (at most 100 characters).
    #[schemars(length(max = 100))]
    pub search: Option<String>,
    /// Page number, from 1.
    pub page: Option<PageNo>,
    /// Items per page, 1 to 100 (default 25).
    pub limit: Option<Limit>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRef {
    pub member_id: MemberId,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberReason {
    pub member_id: MemberId,
    /// Why, for the record (at most 500 characters).
    pub reason: Option<String>,
}

pub struct ListSubscribers;
impl Operation for ListSubscribers {
    type Args = SubscriberArgs;
    type Output = Paged<Member>;
    const SPEC: Spec = Spec {
        name: "list_subscribers",
        event: "list_subscribers",
        ability: Some(Ability::MemberViewAny),
        path: "/v1/projects/{project_id}/members",
        subject_type: "project-user",
        summary: "A project's members, by status or search.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: SubscriberArgs) -> Result<Self::Output> {
        let project = c.load::<Project>(&args.project_id).await?;
        if args.search.as_ref().is_some_and(|s| s.chars().count() > 100) {
            return Err(Error::field("search", "must be at most 100 characters"));
        }
        let search = args.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let page = Page::of(args.page, args.limit);
        let (rows, total) =
            store::page_of_project(c.conn(), &project.id, args.status, search, page.limit, page.offset()).await?;
        Paged::ok(rows, page.meta(total))
    }
}

/// A member with their subscriptions, as `get_member` shows them.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MemberDetail {
    #[serde(flatten)]
    pub member: Member,
    pub subscriptions: Vec<subscriptions::Subscription>,
}

pub struct GetMember;
impl Operation for GetMember {
    type Args = MemberRef;
    type Output = One<MemberDetail>;
    const SPEC: Spec = Spec {
        name: "get_member",
        event: "get_member",
        ability: Some(Ability::MemberView),
        path: "/v1/members/{member_id}",
        subject_type: "project-user",
        subject_arg: Some("member_id"),
        summary: "One member with their subscriptions.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: MemberRef) -> Result<Self::Output> {
        let member = c.load::<Member>(&args.member_id).await?;
        let subs = subscriptions::of_member(c.conn(), &member.id).await?;
        One::ok(MemberDetail {
            member,
            subscriptions: subs,
        })
    }
}

/// Which way a status-changing operation moves a member.
#[derive(Clone, Copy)]
enum Move {
    Ban,
    Unban,
    Kick,
}

impl Move {
    /// Where the member ends up, or `None` when the move is a no-op from `from`.
    fn target(self, from: MemberStatus) -> Option<MemberStatus> {
        use MemberStatus::{Banned, Churned};
        match self {
            Move::Ban => (from != Banned).then_some(Banned),
            Move::Unban => (from == Banned).then_some(Churned),
            Move::Kick => (!matches!(from, Banned | Churned)).then_some(Churned),
        }
    }
}

async fn move_member(c: &mut Call, mv: Move, id: &MemberId, reason: Option<&str>) -> Result<One<Member>> {
    let before = c.load::<Member>(id).await?;
    let reason = reason.map(|r| validate_name("reason", r, 500)).transpose()?;
    if let Some(target) = mv.target(before.status) {
        let now = now_ms();
        store::set_status(c.conn(), &before.id, target, reason.as_deref(), now).await?;
        let mut changes = json!({"status": {"from": before.status, "to": target}});
        if matches!(mv, Move::Ban | Move::Kick) {
            let ended = subscriptions::cancel_live_of_member(c.conn(), &before.id, now).await?;
            if ended > 0 {
                changes["subscriptions_canceled"] = json!(ended);
            }
        }
        c.changes(changes);
    }
    One::ok(c.load::<Member>(&before.id).await?)
}

pub struct BanMember;
impl Operation for BanMember {
    type Args = MemberReason;
    type Output = One<Member>;
    const SPEC: Spec = Spec {
        name: "ban_member",
        event: "ban_member",
        ability: Some(Ability::MemberUpdate),
        path: "/v1/members/{member_id}/ban",
        subject_type: "project-user",
        subject_arg: Some("member_id"),
        effect: Effect::Destructive,
        summary: "Ban a member (status banned).",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: MemberReason) -> Result<Self::Output> {
        move_member(c, Move::Ban, &args.member_id, args.reason.as_deref()).await
    }
}

pub struct UnbanMember;
impl Operation for UnbanMember {
    type Args = MemberRef;
    type Output = One<Member>;
    const SPEC: Spec = Spec {
        name: "unban_member",
        event: "unban_member",
        ability: Some(Ability::MemberUpdate),
        path: "/v1/members/{member_id}/unban",
        subject_type: "project-user",
        subject_arg: Some("member_id"),
        summary: "Lift a ban (status churned).",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: MemberRef) -> Result<Self::Output> {
        move_member(c, Move::Unban, &args.member_id, None).await
    }
}

pub struct KickMember;
impl Operation for KickMember {
    type Args = MemberReason;
    type Output = One<Member>;
    const SPEC: Spec = Spec {
        name: "kick_member",
        event: "kick_member",
        ability: Some(Ability::MemberUpdate),
        path: "/v1/members/{member_id}/kick",
        subject_type: "project-user",
        subject_arg: Some("member_id"),
        effect: Effect::Destructive,
        summary: "Remove a member from the chats (status churned).",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: MemberReason) -> Result<Self::Output> {
        move_member(c, Move::Kick, &args.member_id, args.reason.as_deref()).await
    }
}
