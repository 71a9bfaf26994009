//! Countersign: a second person's OpenID Connect sign-off for one action.
//!
//! The service stores approval requests created by a host backend, lets an
//! approver sign in at the IdP inside a popup and decide, and lets the host
//! backend consume the decision exactly once for the payload it was made for.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod approvals;
pub mod audit;
pub mod check;
pub mod codes;
pub mod config;
pub mod http;
pub mod i18n;
pub mod server;
pub mod signin;
pub mod storage;
