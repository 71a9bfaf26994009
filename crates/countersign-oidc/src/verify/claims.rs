//! The claim checks of both tokens, on claims whose signature already verified.

use serde_json::Value;
use url::Url;

use super::{Expectations, TokenKind, VerifyError};
use crate::discovery::issuer_matches;

/// The values the claims are checked against.
pub(super) struct ClaimChecks<'a> {
    pub(super) issuer: &'a Url,
    pub(super) client_id: &'a str,
    pub(super) now: i64,
    pub(super) leeway: i64,
}

/// The facts that the ID token establishes about the sign-in.
pub(super) struct Identity {
    pub(super) subject: String,
    pub(super) auth_time: i64,
    pub(super) acr: Option<String>,
}

impl ClaimChecks<'_> {
    /// Applies the ID token rules of OpenID Connect Core 1.0, section 3.1.3.7,
    /// plus the freshness rules of this service (`auth_time`, `acr`).
    pub(super) fn id_token(
        &self,
        claims: &Value,
        expected: &Expectations,
    ) -> Result<Identity, VerifyError> {
        let token = TokenKind::IdToken;

        self.check_issuer(claims, token)?;
        self.check_id_token_audience(claims)?;
        self.check_validity_window(claims, token, true)?;
        let subject = subject(claims, token)?;

        let nonce_matches = claims
            .get("nonce")
            .and_then(Value::as_str)
            .is_some_and(|nonce| expected.nonce.matches(nonce));
        if !nonce_matches {
            return Err(VerifyError::NonceMismatch);
        }

        let auth_time =
            numeric_date(claims, "auth_time", token)?.ok_or(VerifyError::MissingAuthTime)?;
        if auth_time < expected.authenticated_after.saturating_sub(self.leeway) {
            return Err(VerifyError::StaleAuthTime {
                auth_time,
                authenticated_after: expected.authenticated_after,
            });
        }

        let acr = match claims.get("acr") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            Some(_) => {
                return Err(VerifyError::InvalidClaim {
                    token,
                    claim: "acr",
                });
            }
        };
        if acr.as_deref() == Some("0") {
            return Err(VerifyError::CookieLogin);
        }

        Ok(Identity {
            subject,
            auth_time,
            acr,
        })
    }

    /// Applies the access token rules: signature (already checked), issuer,
    /// validity window, issued to this client, and the same user as the ID token.
    pub(super) fn access_token(&self, claims: &Value, id_subject: &str) -> Result<(), VerifyError> {
        let token = TokenKind::AccessToken;

        self.check_issuer(claims, token)?;
        self.check_validity_window(claims, token, false)?;

        // Keycloak names the client in `azp`; RFC 9068 uses `client_id`;
        // `aud` names the client when an audience mapper adds it.
        let names_client =
            |claim: &str| claims.get(claim).and_then(Value::as_str) == Some(self.client_id);
        let audience = audiences(claims, token)?;
        let issued_to_client = names_client("azp")
            || names_client("client_id")
            || audience.iter().any(|entry| entry == self.client_id);
        if !issued_to_client {
            return Err(VerifyError::WrongAudience { token });
        }

        if subject(claims, token)? != id_subject {
            return Err(VerifyError::SubjectMismatch);
        }
        Ok(())
    }

    fn check_issuer(&self, claims: &Value, token: TokenKind) -> Result<(), VerifyError> {
        let found = claims.get("iss").and_then(Value::as_str);
        if found.is_some_and(|issuer| issuer_matches(self.issuer, issuer)) {
            Ok(())
        } else {
            Err(VerifyError::WrongIssuer {
                token,
                found: found.map(str::to_owned),
            })
        }
    }

    /// Checks that the ID token's `aud` contains the client id, and that
    /// `azp`, required with several audiences, equals it.
    fn check_id_token_audience(&self, claims: &Value) -> Result<(), VerifyError> {
        let token = TokenKind::IdToken;

        let audience = audiences(claims, token)?;
        if !audience.iter().any(|entry| entry == self.client_id) {
            return Err(VerifyError::WrongAudience { token });
        }

        let authorized_party = match claims.get("azp") {
            None | Some(Value::Null) => None,
            Some(Value::String(azp)) => Some(azp.as_str()),
            Some(_) => {
                return Err(VerifyError::InvalidClaim {
                    token,
                    claim: "azp",
                });
            }
        };
        let azp_required = audience.len() > 1;
        let azp_fits = match authorized_party {
            Some(azp) => azp == self.client_id,
            None => !azp_required,
        };
        if !azp_fits {
            return Err(VerifyError::WrongAuthorizedParty {
                token,
                found: authorized_party.map(str::to_owned),
            });
        }
        Ok(())
    }

    /// Checks `exp` (required), `nbf` (when present) and `iat` (required
    /// when `iat_required`), each with the leeway.
    fn check_validity_window(
        &self,
        claims: &Value,
        token: TokenKind,
        iat_required: bool,
    ) -> Result<(), VerifyError> {
        let exp = numeric_date(claims, "exp", token)?.ok_or(VerifyError::MissingClaim {
            token,
            claim: "exp",
        })?;
        if self.now >= exp.saturating_add(self.leeway) {
            return Err(VerifyError::Expired {
                token,
                exp,
                now: self.now,
            });
        }

        let latest_accepted = self.now.saturating_add(self.leeway);
        if let Some(nbf) = numeric_date(claims, "nbf", token)?
            && nbf > latest_accepted
        {
            return Err(VerifyError::NotYetValid {
                token,
                claim: "nbf",
                value: nbf,
                now: self.now,
            });
        }

        match numeric_date(claims, "iat", token)? {
            Some(iat) if iat > latest_accepted => Err(VerifyError::NotYetValid {
                token,
                claim: "iat",
                value: iat,
                now: self.now,
            }),
            None if iat_required => Err(VerifyError::MissingClaim {
                token,
                claim: "iat",
            }),
            _ => Ok(()),
        }
    }
}

/// Reads `sub`, which must be a non-empty string.
fn subject(claims: &Value, token: TokenKind) -> Result<String, VerifyError> {
    claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|subject| !subject.is_empty())
        .map(str::to_owned)
        .ok_or(VerifyError::MissingSubject { token })
}

/// Reads `aud` as a list: a single string or an array of strings (RFC 7519,
/// section 4.1.3). A missing `aud` is an empty list.
fn audiences(claims: &Value, token: TokenKind) -> Result<Vec<String>, VerifyError> {
    let invalid = VerifyError::InvalidClaim {
        token,
        claim: "aud",
    };
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(audience)) => Ok(vec![audience.clone()]),
        Some(Value::Array(entries)) => entries
            .iter()
            .map(|entry| {
                entry
                    .as_str()
                    .map(str::to_owned)
                    .ok_or(VerifyError::InvalidClaim {
                        token,
                        claim: "aud",
                    })
            })
            .collect(),
        Some(_) => Err(invalid),
    }
}

/// Reads a NumericDate claim (RFC 7519, section 2): seconds since the
/// epoch, possibly with a fraction, which is dropped.
fn numeric_date(
    claims: &Value,
    claim: &'static str,
    token: TokenKind,
) -> Result<Option<i64>, VerifyError> {
    let invalid = VerifyError::InvalidClaim { token, claim };
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(whole) = number.as_i64() {
                return Ok(Some(whole));
            }
            match number.as_f64() {
                // Below 2^53 the `as` cast is exact except that it drops the fraction.
                Some(seconds) if seconds.is_finite() && seconds.abs() < 9.0e15 => {
                    Ok(Some(seconds.floor() as i64))
                }
                _ => Err(invalid),
            }
        }
        Some(_) => Err(invalid),
    }
}
