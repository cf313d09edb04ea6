//! What each connection authenticates with: an HS256 token in the query string (the reference
//! app's JWT connection), or a `Cookie` header read from a file (`run --cookies`, R4C).

use serde_json::json;

use crate::client::{WorkerConfig, now_us};

/// Signs the HS256 token of connection `i`: user `i + 1` of restaurant 1, valid one day.
fn token(secret: &str, i: u64) -> String {
    let exp = now_us() / 1_000_000 + 86_400;
    let claims = json!({"user_id": i + 1, "restaurant_id": 1, "exp": exp});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// One credential per connection of this worker: its token, or line `i mod n` of the cookie
/// file (the whole `Cookie` header value).
pub(crate) fn for_worker(cfg: &WorkerConfig) -> Result<Vec<String>, String> {
    let Some(path) = &cfg.cookies_file else {
        return Ok((0..cfg.count)
            .map(|j| token(&cfg.secret, cfg.first + j))
            .collect());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return Err(format!("{path} holds no cookies"));
    }
    Ok((0..cfg.count)
        .map(|j| lines[((cfg.first + j) % lines.len() as u64) as usize].to_string())
        .collect())
}
