//! Entity ids are UUID v7, stored and shown hyphenated. In arguments each kind of id is its own
//! type whose deserialisation parses it, so a malformed id never reaches an operation.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::error::Error;

pub fn new_id() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

/// Parses an id from a path or argument; a malformed id is simply not found (SPEC §4).
pub fn parse_id(s: &str) -> Result<String, Error> {
    Uuid::parse_str(s)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| Error::NotFound)
}

/// The message an id's deserialiser fails with; the service answers it with `RESOURCE_NOT_FOUND`
/// (a malformed id is an id that does not exist), never with a validation error that would tell
/// a prober which ids are well formed.
pub const MALFORMED_ID: &str = "malformed id";

/// Which entity an [`Id`] names.
pub trait IdKind: 'static {
    const NAME: &'static str;
    /// Where a caller finds such an id, for the argument's description.
    const FOUND_IN: &'static str;
}

/// An id of one kind of entity, parsed (UUID, hyphenated lower case) when deserialised.
pub struct Id<K: IdKind> {
    value: String,
    kind: PhantomData<K>,
}

impl<K: IdKind> Id<K> {
    pub fn parse(s: &str) -> Result<Self, Error> {
        parse_id(s).map(|value| Id {
            value,
            kind: PhantomData,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// An id as the database gives it back: written there only ever as a parsed id (or one made
    /// by [`new_id`]), so it is taken as it is.
    pub fn from_stored(value: String) -> Self {
        Id {
            value,
            kind: PhantomData,
        }
    }

    /// A new id of this kind.
    pub fn generate() -> Self {
        Id::from_stored(new_id())
    }
}

/// An id reads as the text it is, wherever text is wanted (a query's bind, a comparison).
impl<K: IdKind> std::ops::Deref for Id<K> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.value
    }
}

impl<K: IdKind> PartialEq<str> for Id<K> {
    fn eq(&self, other: &str) -> bool {
        self.value == other
    }
}

impl<K: IdKind> PartialEq<&str> for Id<K> {
    fn eq(&self, other: &&str) -> bool {
        self.value == *other
    }
}

impl<K: IdKind> PartialEq<String> for Id<K> {
    fn eq(&self, other: &String) -> bool {
        &self.value == other
    }
}

impl<K: IdKind> From<Id<K>> for String {
    fn from(id: Id<K>) -> String {
        id.value
    }
}

impl<K: IdKind> From<&Id<K>> for String {
    fn from(id: &Id<K>) -> String {
        id.value.clone()
    }
}

impl<K: IdKind> Clone for Id<K> {
    fn clone(&self) -> Self {
        Id {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: IdKind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", K::NAME, self.value)
    }
}

impl<K: IdKind> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<K: IdKind> Serialize for Id<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl<'de, K: IdKind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Cow::<'de, str>::deserialize(d).map_err(|_| serde::de::Error::custom(MALFORMED_ID))?;
        Id::parse(&raw).map_err(|_| serde::de::Error::custom(MALFORMED_ID))
    }
}

impl<K: IdKind> JsonSchema for Id<K> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("{}Id", K::NAME).into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let description = format!("The {} id (a UUID), as {}.", K::NAME.to_lowercase(), K::FOUND_IN);
        json_schema!({"type": "string", "format": "uuid", "description": description})
    }
}

/// The marker types that tell ids apart.
pub mod marker {
    use super::IdKind;

    macro_rules! markers {
        ($( $kind:ident => $name:literal, $found:literal; )*) => {
            $(
                #[derive(Debug)]
                pub enum $kind {}
                impl IdKind for $kind {
                    const NAME: &'static str = $name;
                    const FOUND_IN: &'static str = $found;
                }
            )*
        };
    }

    markers! {
        Team => "Team", "returned by get_token_info (team_id) or list_teams";
        Project => "Project", "returned by list_projects";
        Resource => "Resource", "returned by list_resources";
        Plan => "Plan", "returned by list_plans";
        Member => "Member", "returned by list_subscribers";
        Subscription => "Subscription", "returned by get_member (subscriptions)";
        Job => "Job", "returned by bulk_generate_access_codes";
        User => "User", "returned by get_token_info (owner.id)";
        AccessCode => "AccessCode", "returned by list_access_codes";
    }
}

pub type TeamId = Id<marker::Team>;
pub type ProjectId = Id<marker::Project>;
pub type ResourceId = Id<marker::Resource>;
pub type PlanId = Id<marker::Plan>;
pub type MemberId = Id<marker::Member>;
pub type SubscriptionId = Id<marker::Subscription>;
pub type JobId = Id<marker::Job>;
pub type UserId = Id<marker::User>;
pub type AccessCodeId = Id<marker::AccessCode>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_on_deserialisation_and_refuse_anything_else() {
        let id = new_id();
        let parsed: ProjectId = serde_json::from_value(serde_json::json!(id.to_uppercase())).unwrap();
        assert_eq!(parsed.as_str(), id, "normalised to lower case");
        for bad in [
            serde_json::json!("not-a-uuid"),
            serde_json::json!(42),
            serde_json::json!(null),
        ] {
            let err = serde_json::from_value::<ProjectId>(bad).unwrap_err();
            assert_eq!(err.to_string(), MALFORMED_ID);
        }
    }
}
