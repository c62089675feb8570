//! The closed sets of values the domain knows (SPEC §5), written once: serde and the JSON Schema
//! take their names from here, and the database stores the same names.

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $( $variant:ident => $text:literal, )* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $( #[serde(rename = $text)] $variant, )*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $( $text => Ok($name::$variant), )*
                    other => Err(format!("unknown {} `{other}`", stringify!($name))),
                }
            }
        }

        /// Rows store the name; reading one back goes through here.
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
    };
}

string_enum! {
    /// Where a member stands with a project.
    MemberStatus {
        Lead => "lead",
        Trialing => "trialing",
        Customer => "customer",
        Churned => "churned",
        Banned => "banned",
    }
}

string_enum! {
    SubscriptionStatus {
        Trialing => "trialing",
        Active => "active",
        PastDue => "past_due",
        Canceled => "canceled",
        Expired => "expired",
    }
}

impl SubscriptionStatus {
    /// Still running: ends when the member is banned or kicked.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Trialing | SubscriptionStatus::Active | SubscriptionStatus::PastDue
        )
    }
}

string_enum! {
    PaymentStatus {
        Succeeded => "succeeded",
        Pending => "pending",
        Failed => "failed",
        Refunded => "refunded",
    }
}

string_enum! {
    AccessCodeStatus {
        Unused => "unused",
        Redeemed => "redeemed",
        Expired => "expired",
    }
}

string_enum! {
    BillingInterval {
        Week => "week",
        Month => "month",
        Year => "year",
        Lifetime => "lifetime",
    }
}

string_enum! {
    /// The kind of Telegram chat a resource is.
    ResourceKind {
        Channel => "channel",
        Group => "group",
        Supergroup => "supergroup",
    }
}

string_enum! {
    JobStatus {
        Queued => "queued",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
    }
}

string_enum! {
    /// Which surface an audit entry came through.
    ActorKind {
        Mcp => "mcp",
        ApiToken => "api_token",
        Human => "human",
        System => "system",
    }
}

string_enum! {
    /// How a call ended: refusals of the caller are `denied`, other failures `failed`.
    Outcome {
        Success => "success",
        Denied => "denied",
        Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_text() {
        for s in MemberStatus::ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, s.as_str());
            assert_eq!(serde_json::from_value::<MemberStatus>(json).unwrap(), *s);
            assert_eq!(s.as_str().parse::<MemberStatus>().unwrap(), *s);
        }
        assert!(serde_json::from_value::<MemberStatus>(serde_json::json!("vip")).is_err());
    }
}
