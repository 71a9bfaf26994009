//! Command-line and environment configuration of the demo shop.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use secrecy::SecretString;
use url::Url;

/// Demo point-of-sale app whose refunds need a manager's approval through
/// Countersign. Demo only: sessions and orders live in memory.
#[derive(Debug, Parser)]
#[command(name = "demo-shop", version)]
pub struct Config {
    /// Socket address to listen on.
    #[arg(long, env = "SHOP_LISTEN", default_value = "127.0.0.1:18400")]
    pub listen: SocketAddr,

    /// URL under which browsers reach the shop. Its origin is the origin of
    /// the approval requests and of the same-origin checks.
    #[arg(
        long,
        env = "SHOP_PUBLIC_URL",
        default_value = "http://localhost:18400"
    )]
    pub public_url: Url,

    /// OpenID Connect issuer of the shop's own login (discovery is fetched from it).
    #[arg(
        long,
        env = "SHOP_OIDC_ISSUER",
        default_value = "http://localhost:18080/realms/countersign-demo"
    )]
    pub oidc_issuer: Url,

    /// OpenID Connect client id of the shop.
    #[arg(long, env = "SHOP_OIDC_CLIENT_ID", default_value = "demo-shop")]
    pub oidc_client_id: String,

    /// OpenID Connect client secret of the shop.
    #[arg(long, env = "SHOP_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: SecretString,

    /// Base URL of the Countersign service.
    #[arg(
        long,
        env = "SHOP_COUNTERSIGN_URL",
        default_value = "http://127.0.0.1:18300"
    )]
    pub countersign_url: Url,

    /// API key of the shop at Countersign.
    #[arg(long, env = "SHOP_COUNTERSIGN_API_KEY", hide_env_values = true)]
    pub countersign_api_key: SecretString,

    /// Path of the built browser SDK, served as /static/countersign.js.
    #[arg(long, env = "SHOP_SDK_PATH", default_value = "sdk/dist/countersign.js")]
    pub sdk_path: PathBuf,
}
