//! Hostile input: random garbage, truncated and mutated tokens, validly signed garbage payloads
//! and oversized inputs must give a typed error (or a value), never a panic, and oversized
//! inputs must be refused before any work. Deterministic (seeded), bounded (a few seconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferrocable_rails::{
    AES_256_KEY_LEN, CookieConfig, CookieJar, CookieReader, DigestPolicy, Envelope, Error,
    HmacDigest, KeyDigest, KeyGenerator, MAX_COOKIE_HEADER_LEN, MAX_TOKEN_LEN, MessageEncryptor,
    MessageVerifier, RailsVersion, SecretKeyBase, SignedIdVerifier, SignedStreamVerifier,
    VerifyOptions, channel_name, global_id, global_id_app_name, underscore_with_acronyms,
};
use hmac::{Hmac, Mac};
use serde_json::json;

/// xorshift64*: enough randomness to wander the input space, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// Text drawn mostly from the characters tokens are made of, so mutations get past the
    /// first checks often.
    fn token_text(&mut self, max_len: usize) -> String {
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_%;:{}\"[], ";
        let len = self.below(max_len + 1);
        let mut text: String = (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len())]))
            .collect();
        if self.below(8) == 0 {
            text.push(['é', '\u{2028}', '😀', '\0'][self.below(4)]);
        }
        text
    }
}

fn noon() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_768_478_400)
}

const SECRET: &str = "fuzz secret key base";

fn hex_hmac_sha256(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A token whose signature is valid for `key`, over arbitrary payload bytes: exercises
/// everything after the HMAC (base64, envelope, expiry parsing, JSON).
fn signed_payload(key: &[u8], payload: &[u8], url_safe: bool) -> String {
    let encoded = if url_safe {
        URL_SAFE_NO_PAD.encode(payload)
    } else {
        STANDARD.encode(payload)
    };
    let digest = hex_hmac_sha256(key, encoded.as_bytes());
    format!("{encoded}--{digest}")
}

fn envelope_payload(rng: &mut Rng) -> Vec<u8> {
    let exp = match rng.below(5) {
        0 => "null".to_owned(),
        1 => json!(rng.token_text(30)).to_string(),
        2 => format!(
            "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{}Z\"",
            rng.below(10_000),
            rng.below(14),
            rng.below(33),
            rng.below(26),
            rng.below(62),
            rng.below(62),
            rng.below(1_000_000)
        ),
        3 => rng.below(usize::MAX).to_string(),
        _ => "[1,{}]".to_owned(),
    };
    let inner = STANDARD.encode(rng.bytes(40));
    let message = match rng.below(3) {
        0 => json!(inner).to_string(),
        1 => json!(rng.token_text(20)).to_string(),
        _ => "17".to_owned(),
    };
    let pur = json!(rng.token_text(12)).to_string();
    match rng.below(3) {
        0 => format!(r#"{{"_rails":{{"message":{message},"exp":{exp},"pur":{pur}}}}}"#),
        1 => format!(r#"{{"_rails":{{"data":{message},"exp":{exp},"pur":{pur}}}}}"#),
        _ => format!(r#"{{"_rails":{exp}}}"#),
    }
    .into_bytes()
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = Rng(0x5EED_F00D_1234_5678);
    let generator = KeyGenerator::new(SecretKeyBase::new(SECRET));
    let policy = DigestPolicy::for_load_defaults(RailsVersion::V7_2);
    let reader = CookieReader::new(
        &generator,
        &CookieConfig::for_load_defaults(RailsVersion::V7_2),
    );
    let turbo = SignedStreamVerifier::turbo(&generator, policy);
    let signed_ids = SignedIdVerifier::new(&generator, policy, RailsVersion::V7_2);
    let turbo_key = generator.generate_key(ferrocable_rails::TURBO_SALT, 64, KeyDigest::Sha256);
    let verifier = MessageVerifier::new(turbo_key.clone(), HmacDigest::Sha256);
    let gcm_key = [7u8; AES_256_KEY_LEN];
    let gcm = MessageEncryptor::aes_256_gcm(&gcm_key);
    let cbc = MessageEncryptor::aes_256_cbc_hmac(&gcm_key, vec![9u8; 64], HmacDigest::Sha1);
    let valid_turbo = verifier.generate(&json!("room:1"), &Envelope::None);
    let valid_gcm = gcm
        .encrypt_and_sign(
            &json!({"session_id": "x", "user_id": 1}),
            &Envelope::Legacy {
                purpose: Some("cookie._app_session".into()),
                expires_at: None,
            },
            &[1u8; 12],
        )
        .unwrap();
    let valid_cbc = cbc
        .encrypt_and_sign(&json!([1, 2]), &Envelope::None, &[2u8; 16])
        .unwrap();
    let options = VerifyOptions::at(noon());

    let mut outcomes = std::collections::BTreeMap::<&'static str, usize>::new();
    let mut count = |result: Result<serde_json::Value, Error>| {
        let kind = match result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        *outcomes.entry(kind).or_default() += 1;
    };

    for round in 0..4_000 {
        // 1. Pure garbage through every entry point.
        let garbage = rng.token_text(300);
        count(verifier.verified(&garbage, &options));
        count(gcm.decrypt_and_verify(&garbage, &options));
        count(cbc.decrypt_and_verify(&garbage, &options));
        let _ = turbo.verify(&garbage, noon());
        let _ = signed_ids.verify(&garbage, "User", Some("x"), noon());
        if let Ok(jar) = CookieJar::parse(&garbage) {
            let _ = reader.signed(&jar, "a", noon());
            let _ = reader.encrypted(&jar, "a", noon());
            let _ = reader.session(&jar, "_app_session", noon());
        }
        let header = format!("a={garbage}; _app_session={}", rng.token_text(100));
        let jar = CookieJar::parse(&header).unwrap();
        let _ = reader.signed(&jar, "a", noon());
        let _ = reader.session(&jar, "_app_session", noon());

        // 2. Truncated and mutated valid tokens.
        for valid in [&valid_turbo, &valid_gcm, &valid_cbc] {
            let cut = rng.below(valid.len() + 1);
            let truncated = &valid[..cut];
            count(verifier.verified(truncated, &options));
            count(gcm.decrypt_and_verify(truncated, &options));
            count(cbc.decrypt_and_verify(truncated, &options));
            let mut mutated = valid.clone().into_bytes();
            let at = rng.below(mutated.len());
            mutated[at] = b"A-_+/=x\x00"[rng.below(8)];
            let mutated = String::from_utf8(mutated).unwrap();
            let result = match round % 3 {
                0 => verifier.verified(&mutated, &options),
                1 => gcm.decrypt_and_verify(&mutated, &options),
                _ => cbc.decrypt_and_verify(&mutated, &options),
            };
            if mutated != *valid {
                assert!(result.is_err(), "mutated token accepted: {mutated}");
            }
            count(result);
        }

        // 3. Validly signed garbage payloads: random bytes, and envelopes with random fields.
        let payload = if round % 2 == 0 {
            rng.bytes(200)
        } else {
            envelope_payload(&mut rng)
        };
        let token = signed_payload(&turbo_key, &payload, round % 4 == 1);
        count(verifier.verified(&token, &options));
        let _ = turbo.verify(&token, noon());

        // 4. Naming helpers on arbitrary text.
        let text = rng.token_text(40);
        let _ = underscore_with_acronyms(&text, &["API", "GraphQL", "", "é"]);
        let _ = channel_name(&text);
        let _ = global_id(&text, &text, &[&text, ""]);
        let _ = global_id_app_name(&text);
        let _ = RailsVersion::parse(&text);
    }
    eprintln!("outcomes: {outcomes:?}");
    // The generator must actually reach the deep paths, or this test proves little.
    for kind in [
        "ok",
        "bad_signature",
        "invalid_format",
        "not_json",
        "malformed_expiry",
        "expired",
        "wrong_purpose",
    ] {
        assert!(
            outcomes.get(kind).is_some_and(|n| *n > 0),
            "never produced {kind}: {outcomes:?}"
        );
    }
}

#[test]
fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    let key = b"k";
    let depth = (MAX_TOKEN_LEN / 2 - 200) / 2;
    let payload = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let token = signed_payload(key, payload.as_bytes(), false);
    assert!(token.len() <= MAX_TOKEN_LEN);
    let verifier = MessageVerifier::new(&key[..], HmacDigest::Sha256);
    assert_eq!(
        verifier.verified(&token, &VerifyOptions::at(noon())),
        Err(Error::NotJson)
    );
}

#[test]
fn oversized_input_is_refused_up_front() {
    let generator = KeyGenerator::new(SecretKeyBase::new(SECRET));
    let policy = DigestPolicy::Pinned(KeyDigest::Sha256);
    let huge = "A".repeat(10 * 1024 * 1024);
    let verifier = MessageVerifier::new(&b"k"[..], HmacDigest::Sha1);
    assert_eq!(
        verifier
            .verified(&huge, &VerifyOptions::at(noon()))
            .map_err(|e| e.kind()),
        Err("too_large")
    );
    let gcm = MessageEncryptor::aes_256_gcm(&[0u8; AES_256_KEY_LEN]);
    assert_eq!(
        gcm.decrypt_and_verify(&huge, &VerifyOptions::at(noon()))
            .map_err(|e| e.kind()),
        Err("too_large")
    );
    assert_eq!(
        SignedStreamVerifier::turbo(&generator, policy)
            .verify(&huge, noon())
            .map_err(|e| e.kind()),
        Err("too_large")
    );
    assert_eq!(
        CookieJar::parse(&"a=b; ".repeat(MAX_COOKIE_HEADER_LEN / 5 + 1)).map_err(|e| e.kind()),
        Err("too_large")
    );
    // A cookie value under the header limit but over the token limit.
    let reader = CookieReader::new(
        &generator,
        &CookieConfig::for_load_defaults(RailsVersion::V7_2),
    );
    let jar = CookieJar::parse(&format!("a={}", "A".repeat(MAX_TOKEN_LEN + 1))).unwrap();
    assert_eq!(
        reader.signed(&jar, "a", noon()).map_err(|e| e.kind()),
        Err("too_large")
    );
    assert_eq!(
        reader.encrypted(&jar, "a", noon()).map_err(|e| e.kind()),
        Err("too_large")
    );
}
