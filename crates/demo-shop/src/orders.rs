//! The demo orders, the approval request built for a refund, and the texts
//! that the shop shows for a refund's outcome.

use serde_json::{Value, json};

use crate::countersign::{Approver, Consumed};

/// Lifetime of a refund approval request at Countersign.
pub const APPROVAL_LIFETIME_SECONDS: u64 = 300;

/// Role that the approver of a refund must hold at the identity provider.
pub const REQUIRED_ROLE: &str = "MANAGER";

pub struct Item {
    pub name: &'static str,
    pub quantity: u32,
    pub unit_price_cents: u64,
}

pub struct Order {
    pub id: &'static str,
    pub currency: &'static str,
    pub items: &'static [Item],
}

pub const ORDERS: [Order; 3] = [
    Order {
        id: "1001",
        currency: "EUR",
        items: &[Item {
            name: "Coffee beans",
            quantity: 2,
            unit_price_cents: 2495,
        }],
    },
    Order {
        id: "1002",
        currency: "EUR",
        items: &[Item {
            name: "Espresso machine",
            quantity: 1,
            unit_price_cents: 18900,
        }],
    },
    Order {
        id: "1003",
        currency: "EUR",
        items: &[
            Item {
                name: "Milk frother",
                quantity: 1,
                unit_price_cents: 2900,
            },
            Item {
                name: "Ceramic mug",
                quantity: 2,
                unit_price_cents: 850,
            },
        ],
    },
];

pub fn find_order(id: &str) -> Option<&'static Order> {
    ORDERS.iter().find(|order| order.id == id)
}

/// The cashier who requests the refund, as identified by the shop's login.
pub struct Requester<'a> {
    pub sub: &'a str,
    pub name: &'a str,
}

impl Order {
    pub fn total_cents(&self) -> u64 {
        self.items
            .iter()
            .map(|item| u64::from(item.quantity) * item.unit_price_cents)
            .sum()
    }

    /// Total as a decimal string, for example `49.90`.
    pub fn amount(&self) -> String {
        format_cents(self.total_cents())
    }

    /// Items as `2 × Coffee beans`.
    pub fn item_lines(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|item| format!("{} × {}", item.quantity, item.name))
            .collect()
    }

    /// One-line summary that the approver reads, for example
    /// `Refund order 1001: 49.90 EUR (2 × Coffee beans)`.
    pub fn refund_summary(&self) -> String {
        format!(
            "Refund order {}: {} {} ({})",
            self.id,
            self.amount(),
            self.currency,
            self.item_lines().join(", ")
        )
    }
}

/// Builds the payload that Countersign hashes: `action`, `details` and
/// `requester`. The shop keeps it and sends it again when it consumes the
/// approval, so the approval covers exactly this refund.
pub fn refund_payload(order: &Order, requester: &Requester<'_>) -> Value {
    json!({
        "action": "refund",
        "details": {
            "order": order.id,
            "amount": order.amount(),
            "currency": order.currency,
            "items": order.item_lines(),
        },
        "requester": {"sub": requester.sub, "name": requester.name},
    })
}

/// Builds the body of `POST /api/v1/approvals` from a payload of [`refund_payload`].
pub fn approval_request(order: &Order, payload: &Value, shop_origin: &str) -> Value {
    json!({
        "action": payload["action"],
        "summary": order.refund_summary(),
        "details": payload["details"],
        "requester": payload["requester"],
        "required_role": REQUIRED_ROLE,
        "origin": shop_origin,
        "lifetime_seconds": APPROVAL_LIFETIME_SECONDS,
    })
}

pub fn format_cents(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Describes an approver as `Maria Manager (manager)`, from the consume response.
pub fn describe_approver(approver: Option<&Approver>) -> String {
    let Some(approver) = approver else {
        return "an unknown approver".to_owned();
    };
    match (approver.name.as_deref(), approver.username.as_deref()) {
        (Some(name), Some(username)) => format!("{name} ({username})"),
        (Some(name), None) => name.to_owned(),
        (None, Some(username)) => username.to_owned(),
        (None, None) => format!("subject {}", approver.sub),
    }
}

pub fn executed_message(order_id: &str, consumed: &Consumed) -> String {
    format!(
        "Refund of order {order_id} executed, approved by {}",
        describe_approver(consumed.approver.as_ref())
    )
}

pub fn refused_message(order_id: &str, reason: &str) -> String {
    format!("Refund of order {order_id} refused: {reason}")
}

/// Reason text for a consumed approval that was not approved, for example
/// `rejected by Maria Manager (manager): customer kept the goods`.
pub fn decision_reason(consumed: &Consumed) -> String {
    let approver = describe_approver(consumed.approver.as_ref());
    let verb = match consumed.decision.as_str() {
        "rejected" => "rejected".to_owned(),
        other => format!("decision {other}"),
    };
    match consumed.reason.as_deref().map(str::trim) {
        Some(reason) if !reason.is_empty() => format!("{verb} by {approver}: {reason}"),
        _ => format!("{verb} by {approver}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str) -> &'static Order {
        find_order(id).unwrap()
    }

    fn manager() -> Approver {
        Approver {
            sub: "manager-sub".to_owned(),
            name: Some("Maria Manager".to_owned()),
            username: Some("manager".to_owned()),
        }
    }

    fn consumed(decision: &str, reason: Option<&str>) -> Consumed {
        Consumed {
            decision: decision.to_owned(),
            reason: reason.map(str::to_owned),
            approver: Some(manager()),
        }
    }

    #[test]
    fn order_totals() {
        assert_eq!(order("1001").amount(), "49.90");
        assert_eq!(order("1002").amount(), "189.00");
        assert_eq!(order("1003").amount(), "46.00");
    }

    #[test]
    fn unknown_order_not_found() {
        assert!(find_order("9999").is_none());
        assert!(find_order("").is_none());
    }

    #[test]
    fn summary_names_amount_and_items() {
        assert_eq!(
            order("1001").refund_summary(),
            "Refund order 1001: 49.90 EUR (2 × Coffee beans)"
        );
        assert_eq!(
            order("1003").refund_summary(),
            "Refund order 1003: 46.00 EUR (1 × Milk frother, 2 × Ceramic mug)"
        );
    }

    #[test]
    fn payload_has_only_hashed_fields() {
        let requester = Requester {
            sub: "cashier-sub",
            name: "Carla Cashier",
        };
        let payload = refund_payload(order("1001"), &requester);

        assert_eq!(
            payload,
            json!({
                "action": "refund",
                "details": {"order": "1001", "amount": "49.90", "currency": "EUR", "items": ["2 × Coffee beans"]},
                "requester": {"sub": "cashier-sub", "name": "Carla Cashier"},
            })
        );
    }

    #[test]
    fn approval_request_carries_payload_and_policy() {
        let requester = Requester {
            sub: "cashier-sub",
            name: "Carla Cashier",
        };
        let payload = refund_payload(order("1001"), &requester);
        let request = approval_request(order("1001"), &payload, "http://localhost:18400");

        assert_eq!(request["action"], payload["action"]);
        assert_eq!(request["details"], payload["details"]);
        assert_eq!(request["requester"], payload["requester"]);
        assert_eq!(
            request["summary"],
            "Refund order 1001: 49.90 EUR (2 × Coffee beans)"
        );
        assert_eq!(request["required_role"], "MANAGER");
        assert_eq!(request["origin"], "http://localhost:18400");
        assert_eq!(request["lifetime_seconds"], 300);
    }

    #[test]
    fn cents_formatted() {
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(4990), "49.90");
        assert_eq!(format_cents(123_456), "1234.56");
    }

    #[test]
    fn executed_message_names_approver() {
        assert_eq!(
            executed_message("1001", &consumed("approved", None)),
            "Refund of order 1001 executed, approved by Maria Manager (manager)"
        );
    }

    #[test]
    fn rejection_message_has_reason() {
        let reason = decision_reason(&consumed("rejected", Some("customer kept the goods")));
        assert_eq!(
            refused_message("1001", &reason),
            "Refund of order 1001 refused: rejected by Maria Manager (manager): customer kept the goods"
        );
    }

    #[test]
    fn rejection_message_without_reason() {
        assert_eq!(
            decision_reason(&consumed("rejected", None)),
            "rejected by Maria Manager (manager)"
        );
        assert_eq!(
            decision_reason(&consumed("rejected", Some("  "))),
            "rejected by Maria Manager (manager)"
        );
    }

    #[test]
    fn approver_description_fallbacks() {
        let no_username = Approver {
            username: None,
            ..manager()
        };
        let no_name = Approver {
            name: None,
            ..manager()
        };
        let neither = Approver {
            name: None,
            username: None,
            ..manager()
        };

        assert_eq!(describe_approver(Some(&no_username)), "Maria Manager");
        assert_eq!(describe_approver(Some(&no_name)), "manager");
        assert_eq!(describe_approver(Some(&neither)), "subject manager-sub");
        assert_eq!(describe_approver(None), "an unknown approver");
    }
}
