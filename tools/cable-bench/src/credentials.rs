//! What each connection authenticates with: an HS256 token in the query string (the reference
//! app's JWT connection), or a `Cookie` header read from a file (`run --cookies`, R4C).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// Signs the HS256 token of connection `i`: user `i + 1` of restaurant 1, valid one day.
fn token(secret: &str, i: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let exp = now + 86_400;
    let claims = json!({"user_id": i + 1, "restaurant_id": 1, "exp": exp});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// One credential for each of connections `first..first + count`: its token (signed with
/// `secret`), or line `i mod n` of the cookie file (the whole `Cookie` header value).
pub(crate) fn for_connections(
    cookies_file: Option<&str>,
    secret: &str,
    first: u64,
    count: u64,
) -> Result<Vec<String>, String> {
    let Some(path) = cookies_file else {
        return Ok((0..count).map(|j| token(secret, first + j)).collect());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return Err(format!("{path} holds no cookies"));
    }
    Ok((0..count)
        .map(|j| lines[((first + j) % lines.len() as u64) as usize].to_string())
        .collect())
}
