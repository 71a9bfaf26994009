//! Client for the Countersign host API: create an approval request and consume it.

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum CountersignError {
    /// An `application/problem+json` response with its stable `code`.
    #[error("Countersign answered HTTP {status} ({code}): {detail}")]
    Problem {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("the request to Countersign failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("Countersign sent an invalid response: {0}")]
    InvalidResponse(String),
}

#[derive(Deserialize)]
struct Problem {
    code: Option<String>,
    detail: Option<String>,
    title: Option<String>,
}

/// Response of `POST /api/v1/approvals/{id}/consume`.
#[derive(Debug, Deserialize)]
pub struct Consumed {
    pub decision: String,
    pub reason: Option<String>,
    pub approver: Option<Approver>,
}

#[derive(Debug, Deserialize)]
pub struct Approver {
    pub sub: String,
    pub name: Option<String>,
    pub username: Option<String>,
}

pub struct CountersignClient {
    http: reqwest::Client,
    base_url: Url,
    api_key: SecretString,
}

impl CountersignClient {
    pub fn new(http: reqwest::Client, base_url: Url, api_key: SecretString) -> Self {
        Self {
            http,
            base_url,
            api_key,
        }
    }

    /// Creates an approval request and returns Countersign's response unchanged,
    /// after checking that it has an `id`.
    pub async fn create_approval(
        &self,
        request: &Value,
    ) -> Result<(String, Value), CountersignError> {
        let url = self.api_url(&["approvals"])?;
        let response = self
            .http
            .post(url)
            .bearer_auth(self.api_key.expose_secret())
            .json(request)
            .send()
            .await?;
        let created: Value = Self::parse(response).await?;

        let id = created
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                CountersignError::InvalidResponse("the created approval has no id".to_owned())
            })?
            .to_owned();
        Ok((id, created))
    }

    /// Consumes an approval for the payload that it was created for.
    pub async fn consume(
        &self,
        approval_id: &str,
        payload: &Value,
    ) -> Result<Consumed, CountersignError> {
        let url = self.api_url(&["approvals", approval_id, "consume"])?;
        let response = self
            .http
            .post(url)
            .bearer_auth(self.api_key.expose_secret())
            .json(&json!({ "payload": payload }))
            .send()
            .await?;
        Self::parse(response).await
    }

    /// Builds `<base>/api/v1/<segments>`, percent-encoding each segment.
    fn api_url(&self, segments: &[&str]) -> Result<Url, CountersignError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                CountersignError::InvalidResponse(format!(
                    "SHOP_COUNTERSIGN_URL {} cannot be a base URL",
                    self.base_url
                ))
            })?
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        Ok(url)
    }

    async fn parse<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, CountersignError> {
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|error| CountersignError::InvalidResponse(error.to_string()));
        }

        let problem = response.json::<Problem>().await.ok();
        let code = problem
            .as_ref()
            .and_then(|problem| problem.code.clone())
            .unwrap_or_else(|| format!("http_{}", status.as_u16()));
        let detail = problem
            .and_then(|problem| problem.detail.or(problem.title))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no details").to_owned());
        Err(CountersignError::Problem {
            status: status.as_u16(),
            code,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> CountersignClient {
        CountersignClient::new(
            reqwest::Client::new(),
            Url::parse(base).unwrap(),
            SecretString::from("key"),
        )
    }

    #[test]
    fn api_url_joins_segments() {
        let url = client("http://127.0.0.1:18300")
            .api_url(&["approvals", "abc", "consume"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:18300/api/v1/approvals/abc/consume"
        );
    }

    #[test]
    fn api_url_keeps_base_path() {
        let url = client("http://127.0.0.1:18300/countersign/")
            .api_url(&["approvals"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:18300/countersign/api/v1/approvals"
        );
    }

    #[test]
    fn api_url_encodes_id() {
        let url = client("http://127.0.0.1:18300")
            .api_url(&["approvals", "../x?y", "consume"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:18300/api/v1/approvals/..%2Fx%3Fy/consume"
        );
    }
}
