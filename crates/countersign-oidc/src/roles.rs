//! Role claims: where providers put a user's roles and how to read them.
//!
//! A role claim is named by a dot path into the token's JSON claims:
//!
//! | provider | path | value |
//! |---|---|---|
//! | Keycloak realm roles | `realm_access.roles` | `["MANAGER", ...]` |
//! | Keycloak client roles | `resource_access.${client_id}.roles` | `["approver"]` |
//! | generic / `oidc-provider` | `roles` | `["MANAGER"]` |
//! | group membership | `groups` | `["/MANAGER"]` |
//!
//! `${client_id}` stands for the relying party's client id. A segment may
//! itself contain dots: at each level the longest run of segments that
//! names an existing key wins, so `https://example.com/roles` finds a claim
//! with exactly that name.
//!
//! Keycloak's group membership mapper sends full group paths such as
//! `/MANAGER` by default. The leading slash is kept, so either require the
//! role `/MANAGER` or turn off "Full group path" in the mapper.
//!
//! A missing claim, or a value that is neither an array nor a string, gives
//! no roles. Non-string array elements and empty strings are skipped.

use std::collections::BTreeSet;

use serde_json::Value;

/// The placeholder in a role claim path that stands for the client id.
pub const CLIENT_ID_PLACEHOLDER: &str = "${client_id}";

/// A role claim path split into segments, with the client id filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleClaimPath {
    segments: Vec<String>,
}

impl RoleClaimPath {
    /// Splits `path` at dots and leaves the segments as they are.
    pub fn parse(path: &str) -> Self {
        Self {
            segments: path.split('.').map(str::to_owned).collect(),
        }
    }

    /// Splits `path` at dots, then replaces `${client_id}` in each segment.
    ///
    /// The split comes first, so a client id that contains dots stays one
    /// segment.
    pub fn for_client(path: &str, client_id: &str) -> Self {
        let segments = path
            .split('.')
            .map(|segment| segment.replace(CLIENT_ID_PLACEHOLDER, client_id))
            .collect();
        Self { segments }
    }

    /// Returns the segments of the path.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

/// Collects the roles found at `paths` in `claims`, with each path used
/// literally.
///
/// A path that still contains `${client_id}` finds nothing. Use
/// [`extract_roles_for_client`] to fill in the client id.
pub fn extract_roles(claims: &Value, paths: &[String]) -> BTreeSet<String> {
    let parsed: Vec<RoleClaimPath> = paths
        .iter()
        .map(|path| RoleClaimPath::parse(path))
        .collect();
    extract_roles_at(claims, &parsed)
}

/// Collects the roles found at `paths` in `claims`, with `${client_id}`
/// replaced by `client_id`.
pub fn extract_roles_for_client(
    claims: &Value,
    paths: &[String],
    client_id: &str,
) -> BTreeSet<String> {
    let parsed: Vec<RoleClaimPath> = paths
        .iter()
        .map(|path| RoleClaimPath::for_client(path, client_id))
        .collect();
    extract_roles_at(claims, &parsed)
}

/// Collects the roles found at already parsed `paths` in `claims`.
pub fn extract_roles_at(claims: &Value, paths: &[RoleClaimPath]) -> BTreeSet<String> {
    let mut roles = BTreeSet::new();

    for path in paths {
        match lookup(claims, path.segments()) {
            Some(Value::Array(items)) => {
                let names = items
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|name| !name.is_empty());
                roles.extend(names.map(str::to_owned));
            }
            Some(Value::String(name)) if !name.is_empty() => {
                roles.insert(name.clone());
            }
            _ => {}
        }
    }

    roles
}

/// Follows `segments` through nested objects, trying the longest key first.
fn lookup<'a>(value: &'a Value, segments: &[String]) -> Option<&'a Value> {
    if segments.is_empty() {
        return Some(value);
    }

    let object = value.as_object()?;
    for key_segments in (1..=segments.len()).rev() {
        let (head, rest) = segments.split_at(key_segments);
        let Some(child) = object.get(&head.join(".")) else {
            continue;
        };
        if let Some(found) = lookup(child, rest) {
            return Some(found);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|path| (*path).to_owned()).collect()
    }

    #[test]
    fn realm_roles_path() {
        let claims = json!({"realm_access": {"roles": ["MANAGER", "offline_access"]}});

        let roles = extract_roles(&claims, &paths(&["realm_access.roles"]));

        assert_eq!(roles, set(&["MANAGER", "offline_access"]));
    }

    #[test]
    fn client_roles_path() {
        let claims = json!({"resource_access": {
            "countersign": {"roles": ["approver"]},
            "account": {"roles": ["manage-account"]},
        }});

        let roles = extract_roles(&claims, &paths(&["resource_access.countersign.roles"]));

        assert_eq!(roles, set(&["approver"]));
    }

    #[test]
    fn client_id_placeholder_is_replaced() {
        let claims = json!({"resource_access": {"countersign": {"roles": ["approver"]}}});
        let configured = paths(&["resource_access.${client_id}.roles"]);

        let resolved = extract_roles_for_client(&claims, &configured, "countersign");
        let literal = extract_roles(&claims, &configured);

        assert_eq!(resolved, set(&["approver"]));
        assert!(literal.is_empty(), "{literal:?}");
    }

    #[test]
    fn client_id_with_dots_stays_one_segment() {
        let claims = json!({"resource_access": {"shop.example": {"roles": ["approver"]}}});

        let roles = extract_roles_for_client(
            &claims,
            &paths(&["resource_access.${client_id}.roles"]),
            "shop.example",
        );

        assert_eq!(roles, set(&["approver"]));
    }

    #[test]
    fn top_level_roles_claim() {
        let claims = json!({"roles": ["MANAGER"]});

        assert_eq!(
            extract_roles(&claims, &paths(&["roles"])),
            set(&["MANAGER"])
        );
    }

    #[test]
    fn groups_keep_their_slash() {
        let claims = json!({"groups": ["/MANAGER", "/staff/cashiers"]});

        assert_eq!(
            extract_roles(&claims, &paths(&["groups"])),
            set(&["/MANAGER", "/staff/cashiers"])
        );
    }

    #[test]
    fn claim_name_with_dots() {
        let claims = json!({"https://example.com/roles": ["MANAGER"]});

        assert_eq!(
            extract_roles(&claims, &paths(&["https://example.com/roles"])),
            set(&["MANAGER"])
        );
    }

    #[test]
    fn single_string_is_one_role() {
        let claims = json!({"role": "MANAGER", "empty": ""});

        assert_eq!(
            extract_roles(&claims, &paths(&["role", "empty"])),
            set(&["MANAGER"])
        );
    }

    #[test]
    fn paths_are_combined() {
        let claims = json!({
            "realm_access": {"roles": ["MANAGER"]},
            "resource_access": {"countersign": {"roles": ["approver"]}},
            "groups": ["/staff"],
        });
        let configured = paths(&[
            "realm_access.roles",
            "resource_access.${client_id}.roles",
            "roles",
            "groups",
        ]);

        let roles = extract_roles_for_client(&claims, &configured, "countersign");

        assert_eq!(roles, set(&["MANAGER", "approver", "/staff"]));
    }

    #[test]
    fn missing_or_odd_values_give_no_roles() {
        let cases = [
            json!({}),
            json!({"realm_access": null}),
            json!({"realm_access": "MANAGER"}),
            json!({"realm_access": {"roles": null}}),
            json!({"realm_access": {"roles": 7}}),
            json!({"realm_access": {"roles": {"MANAGER": true}}}),
            json!({"realm_access": {"roles": [1, true, null, ["MANAGER"], {"name": "MANAGER"}, ""]}}),
            json!(["not", "an", "object"]),
            json!(null),
        ];

        for claims in cases {
            let roles = extract_roles(&claims, &paths(&["realm_access.roles"]));
            assert!(roles.is_empty(), "{claims}: {roles:?}");
        }
    }

    #[test]
    fn mixed_array_keeps_strings() {
        let claims = json!({"roles": ["MANAGER", 3, null, "CASHIER"]});

        assert_eq!(
            extract_roles(&claims, &paths(&["roles"])),
            set(&["CASHIER", "MANAGER"])
        );
    }

    #[test]
    fn empty_path_list_gives_no_roles() {
        let claims = json!({"roles": ["MANAGER"]});

        assert!(extract_roles(&claims, &[]).is_empty());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    /// Claims whose keys come from a small alphabet with dots, so that
    /// random paths often name existing keys, including dotted ones.
    fn claims() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-c./]{0,4}".prop_map(Value::String),
        ];
        let tree = leaf.prop_recursive(4, 64, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-c.]{1,3}", inner, 0..5)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
            ]
        });
        prop::collection::btree_map("[a-c.]{1,3}", tree, 0..5)
            .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()))
    }

    fn role_paths() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("([a-c.]|\\$\\{client_id\\}){0,6}", 0..4)
    }

    /// Collects every string value in `value` at any depth. Object keys are
    /// left out.
    fn string_values(value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::String(text) => {
                found.insert(text.clone());
            }
            Value::Array(items) => items.iter().for_each(|item| string_values(item, found)),
            Value::Object(members) => members
                .values()
                .for_each(|member| string_values(member, found)),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn roles_are_non_empty_strings_of_the_claims(
            claims in claims(),
            paths in role_paths(),
            client_id in "[a-c.]{0,3}",
        ) {
            let mut present = BTreeSet::new();
            string_values(&claims, &mut present);

            let literal = extract_roles(&claims, &paths);
            let for_client = extract_roles_for_client(&claims, &paths, &client_id);

            for role in literal.iter().chain(&for_client) {
                prop_assert!(!role.is_empty());
                prop_assert!(present.contains(role), "{role:?} is not a string in {claims}");
            }
        }

        #[test]
        fn top_level_array_gives_its_strings(
            name in "[a-z_]{1,12}",
            roles in prop::collection::vec("\\PC{0,8}", 0..6),
        ) {
            let claims = serde_json::json!({ name.clone(): roles.clone() });
            let expected: BTreeSet<String> = roles.into_iter().filter(|role| !role.is_empty()).collect();

            prop_assert_eq!(extract_roles(&claims, &[name]), expected);
        }
    }
}
