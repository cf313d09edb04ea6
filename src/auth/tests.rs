//! Unit tests of [`super::AuthSettings`] with JWTs.

use super::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

const SECRET: &[u8] = b"secret_key_base_value";
const NOW: u64 = 1_800_000_000;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

fn done(outcome: Authentication) -> Result<Identity, AuthError> {
    match outcome {
        Authentication::Done(result) => result,
        Authentication::Pending(_) => panic!("no lookup configured"),
    }
}

fn wanted(names: &[&str]) -> Arc<[String]> {
    names.iter().map(|n| n.to_string()).collect()
}

fn token(alg: jsonwebtoken::Algorithm, secret: &[u8], claims: serde_json::Value) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn hafaloha() -> Arc<AuthSettings> {
    Arc::new(AuthSettings {
        verifier: Some(Verifier::hmac(Algorithm::Hs256, SECRET, 0)),
        token_param: "token".into(),
        accept_bearer_header: true,
        identifiers: vec![
            IdentifierRule {
                name: "current_user".into(),
                source: IdentifierSource::Claim("user_id".into()),
                match_query: None,
                gid: Some("gid://shimizu-order-suite/User/{}".into()),
                required: true,
            },
            IdentifierRule {
                name: "restaurant_id".into(),
                source: IdentifierSource::Claim("restaurant_id".into()),
                match_query: None,
                gid: None,
                required: true,
            },
        ],
        max_token_bytes: 4096,
        cookie: None,
        lookup: None,
        global_id_app: None,
    })
}

fn auth(settings: &Arc<AuthSettings>, query: &str) -> Result<Identity, AuthError> {
    done(settings.authenticate(
        Credentials {
            query: Some(query),
            authorization: None,
            cookie: None,
        },
        at(NOW),
        &wanted(&["role"]),
        true,
    ))
}

#[test]
fn builds_rails_connection_identifier() {
    let t = token(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        json!({"user_id": 42, "restaurant_id": 1, "role": "admin", "exp": NOW + 60}),
    );
    let id = auth(&hafaloha(), &format!("token={t}&restaurant_id=1")).unwrap();
    assert_eq!(
        &*id.connection_identifier,
        "1:Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzQy"
    );
    assert_eq!(id.values[1].as_deref(), Some("1"));
    assert_eq!(id.claim("role"), Some("admin"));
}

#[test]
fn a_false_identifier_is_dropped_from_7_0_and_blank_for_channels() {
    let s = hafaloha();
    let gid = "Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzg0";
    let t = token(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        json!({"user_id": 84, "restaurant_id": false}),
    );
    let creds = Credentials {
        query: Some(&format!("token={t}")),
        authorization: None,
        cookie: None,
    };
    // Recorded: 7.2 "action_cable/<gid>", 6.1 "action_cable/<gid>:false".
    let modern = done(s.authenticate(creds, at(NOW), &wanted(&[]), true)).unwrap();
    assert_eq!(&*modern.connection_identifier, gid);
    let rails61 = done(s.authenticate(creds, at(NOW), &wanted(&[]), false)).unwrap();
    assert_eq!(&*rails61.connection_identifier, format!("{gid}:false"));
    assert_eq!(modern.values[1], None, "false is blank for channel rules");
    // The string "false" is a present value in Ruby, and part of the identifier.
    let t = token(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        json!({"user_id": 84, "restaurant_id": "false"}),
    );
    let query = format!("token={t}");
    let creds = Credentials {
        query: Some(&query),
        authorization: None,
        cookie: None,
    };
    let id = done(s.authenticate(creds, at(NOW), &wanted(&[]), true)).unwrap();
    assert_eq!(&*id.connection_identifier, format!("{gid}:false"));
    assert_eq!(id.values[1].as_deref(), Some("false"));
}

#[test]
fn refusals() {
    let s = hafaloha();
    let good = json!({"user_id": 42, "restaurant_id": 1});
    let hs = jsonwebtoken::Algorithm::HS256;
    assert_eq!(auth(&s, "").unwrap_err(), AuthError::MissingToken);
    assert!(matches!(
        auth(&s, "token=abc").unwrap_err(),
        AuthError::Malformed(_)
    ));
    let t = token(hs, b"wrong", good.clone());
    assert_eq!(
        auth(&s, &format!("token={t}")).unwrap_err(),
        AuthError::BadSignature
    );
    let t = token(jsonwebtoken::Algorithm::HS512, SECRET, good);
    assert_eq!(
        auth(&s, &format!("token={t}")).unwrap_err(),
        AuthError::WrongAlgorithm
    );
    let t = token(
        hs,
        SECRET,
        json!({"user_id": 42, "restaurant_id": 1, "exp": NOW}),
    );
    assert_eq!(
        auth(&s, &format!("token={t}")).unwrap_err(),
        AuthError::Expired
    );
    let t = token(
        hs,
        SECRET,
        json!({"user_id": 42, "restaurant_id": 1, "nbf": NOW + 10}),
    );
    assert_eq!(
        auth(&s, &format!("token={t}")).unwrap_err(),
        AuthError::NotYetValid
    );
    let t = token(hs, SECRET, json!({"user_id": 42}));
    assert_eq!(
        auth(&s, &format!("token={t}")).unwrap_err(),
        AuthError::MissingIdentifier("restaurant_id".into())
    );
    let t = token(hs, SECRET, json!({"user_id": [1], "restaurant_id": 1}));
    assert_eq!(
        auth(&s, &format!("token={t}")).unwrap_err(),
        AuthError::InvalidClaim("user_id".into())
    );
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let long = "a".repeat(5000);
    assert_eq!(
        auth(&hafaloha(), &format!("token={long}")).unwrap_err(),
        AuthError::TokenTooLong(4096)
    );
}

#[test]
fn alg_none_is_refused() {
    // header {"alg":"none","typ":"JWT"}, payload {"user_id":1,"restaurant_id":1}, no signature
    let t = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoxLCJyZXN0YXVyYW50X2lkIjoxfQ.";
    assert!(auth(&hafaloha(), &format!("token={t}")).is_err());
}

#[test]
fn leeway_extends_expiry() {
    let mut s = hafaloha();
    Arc::get_mut(&mut s).unwrap().verifier = Some(Verifier::hmac(Algorithm::Hs256, SECRET, 30));
    let t = token(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        json!({"user_id": 1, "restaurant_id": 1, "exp": NOW - 10}),
    );
    assert!(auth(&s, &format!("token={t}")).is_ok());
}

#[test]
fn bearer_header_is_the_fallback() {
    let s = hafaloha();
    let t = token(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        json!({"user_id": 1, "restaurant_id": 1}),
    );
    let header = format!("Bearer {t}");
    let creds = Credentials {
        query: None,
        authorization: Some(&header),
        cookie: None,
    };
    assert!(done(s.authenticate(creds, at(NOW), &wanted(&[]), true)).is_ok());
    let mut no_header = hafaloha();
    Arc::get_mut(&mut no_header).unwrap().accept_bearer_header = false;
    assert_eq!(
        done(no_header.authenticate(creds, at(NOW), &wanted(&[]), true)).unwrap_err(),
        AuthError::MissingToken
    );
}

#[test]
fn match_query_requires_equal_parameter() {
    let mut s = hafaloha();
    Arc::get_mut(&mut s).unwrap().identifiers[1].match_query = Some("restaurant_id".into());
    let t = token(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        json!({"user_id": 1, "restaurant_id": 1}),
    );
    assert!(auth(&s, &format!("token={t}&restaurant_id=1")).is_ok());
    assert_eq!(
        auth(&s, &format!("token={t}&restaurant_id=2")).unwrap_err(),
        AuthError::QueryMismatch("restaurant_id".into())
    );
}

#[test]
fn query_decoding_follows_rack() {
    let q = parse_query("a=1+2&b=%3C%3e&a=3&c&d=%zz");
    assert_eq!(q["a"], "3");
    assert_eq!(q["b"], "<>");
    assert_eq!(q["c"], "");
    assert_eq!(q["d"], "%zz");
    assert_eq!(parse_query("x=1%2")["x"], "1%2");
}
