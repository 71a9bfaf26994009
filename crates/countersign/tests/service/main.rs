//! One integration-test binary: it boots the real server on 127.0.0.1 with
//! a temporary SQLite file. The popup tests add a programmable OpenID
//! Connect provider on 127.0.0.1, which a test can make hostile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod bad_input;
mod config_check;
mod flow;
mod hardening;
mod hostile_idp;
mod hostile_idp_cases;
mod openapi;
mod popup;
mod popup_locale;
mod remote;
mod support;
mod tampering;
