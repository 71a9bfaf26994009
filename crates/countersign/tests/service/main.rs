//! One integration-test binary: it boots the real server on 127.0.0.1 with
//! a temporary SQLite file, and for the popup a mock IdP on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod mock_idp;
mod popup;
mod support;
