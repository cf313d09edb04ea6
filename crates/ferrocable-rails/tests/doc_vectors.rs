//! The worked Turbo example of `docs/rails-apps.md` §1.6 (shared research notes), which §7
//! reports as matching a real Rails 7.2.2.2 for both key digests.

use std::time::SystemTime;

use ferrocable_rails::{
    DigestPolicy, Error, HmacDigest, KeyDigest, KeyGenerator, KeySource, SecretKeyBase,
    SignedStreamVerifier, TURBO_SALT, global_id, global_id_app_name, global_id_param,
};

fn generator() -> KeyGenerator {
    KeyGenerator::new(SecretKeyBase::new("0123456789abcdef".repeat(8)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const TOKEN_SHA256_KEY: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--280b6f6b8e1c2642a168d7dbdac207f45092e565ca0c120cf09051eca8a6e87a";
const TOKEN_SHA1_KEY: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--50f5571a843815c72805973a5c503c422e1558e80218b28dea4bc5f7b5f19cad";
const ROOM_ONLY_SHA256_KEY: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1RIg==--e72eae383cc939905fe6403fdffff36569a3f2e6d56e524dca1f7f4c64d43604";
const ROOM_ONLY_SHA1_KEY: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1RIg==--349f33aeea574b631e559cb19c41049a12211097b25f9cb665ee769a5c793f75";

#[test]
fn turbo_keys_match_the_documented_pbkdf2_outputs() {
    let generator = generator();
    assert_eq!(
        hex(&generator.generate_key(TURBO_SALT, 64, KeyDigest::Sha256)),
        "7abcd5758752313f1d691ad878b93c5c7e9bf71bd853e9b10c3d2861233525e898d0a04aae89abc8b5da1e1ccbd749cccb3a93a9900de3d53189b40191b5a460"
    );
    assert_eq!(
        hex(&generator.generate_key(TURBO_SALT, 64, KeyDigest::Sha1)),
        "f2162065152bf45163868492b2f081295f938a68f7a18b6d40bc9d15e94b8ea0819b3011cf2f3c1b9228b8e722f706453e0257e9da2530eee8d59875740244a1"
    );
}

#[test]
fn gid_param_and_stream_name() {
    let gid = global_id(&global_id_app_name("MyApp"), "Room", &["1"]);
    assert_eq!(gid, "gid://my-app/Room/1");
    assert_eq!(global_id_param(&gid), "Z2lkOi8vbXktYXBwL1Jvb20vMQ");
}

#[test]
fn turbo_tokens_verify_and_report_the_key_that_matched() {
    let now = SystemTime::now();
    let both = SignedStreamVerifier::turbo(
        &generator(),
        DigestPolicy::TryBoth {
            first: KeyDigest::Sha256,
        },
    );
    for (token, name, digest) in [
        (
            TOKEN_SHA256_KEY,
            "Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages",
            KeyDigest::Sha256,
        ),
        (
            TOKEN_SHA1_KEY,
            "Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages",
            KeyDigest::Sha1,
        ),
        (
            ROOM_ONLY_SHA256_KEY,
            "Z2lkOi8vbXktYXBwL1Jvb20vMQ",
            KeyDigest::Sha256,
        ),
        (
            ROOM_ONLY_SHA1_KEY,
            "Z2lkOi8vbXktYXBwL1Jvb20vMQ",
            KeyDigest::Sha1,
        ),
    ] {
        let verified = both.verify(token, now).unwrap();
        assert_eq!(verified.value, name);
        assert_eq!(verified.key, KeySource::Derived(digest), "{token}");
    }
}

#[test]
fn a_pinned_digest_rejects_the_other_key() {
    let now = SystemTime::now();
    let sha256_only =
        SignedStreamVerifier::turbo(&generator(), DigestPolicy::Pinned(KeyDigest::Sha256));
    assert!(sha256_only.verify(TOKEN_SHA256_KEY, now).is_ok());
    assert_eq!(
        sha256_only.verify(TOKEN_SHA1_KEY, now),
        Err(Error::BadSignature)
    );
    let sha1_only =
        SignedStreamVerifier::turbo(&generator(), DigestPolicy::Pinned(KeyDigest::Sha1));
    assert_eq!(
        sha1_only.verify(TOKEN_SHA256_KEY, now),
        Err(Error::BadSignature)
    );
}

#[test]
fn anycable_explicit_key_vector() {
    // anycable-go's test vector, made by Ruby Turbo with the key set to "s3Krit".
    let verifier = SignedStreamVerifier::explicit(&b"s3Krit"[..], HmacDigest::Sha256);
    let verified = verifier
        .verify(
            "ImNoYXQ6MjAyMSI=--f9ee45dbccb1da04d8ceb99cc820207804370ba0d06b46fc3b8b373af1315628",
            SystemTime::now(),
        )
        .unwrap();
    assert_eq!(verified.value, "chat:2021");
    assert_eq!(verified.key, KeySource::Explicit);
}
