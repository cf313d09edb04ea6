//! Signed-stream channels against the vectors real Rails wrote (`fixtures/rails/`), and the
//! configuration around them.

use std::collections::BTreeMap;
use std::path::Path;

use ferrocable_protocol::json::{self, Value};
use ferrocable_rails::RailsVersion;

use super::super::{ChannelRegistry, ChannelSection, ChannelSpec, CompileContext, Rejection};
use super::*;
use crate::auth::Identity;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                      0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// `turbo_stream_from @room, :messages` (rails-apps.md §1.6; Rails 7.2 wrote the same).
const ROOM_MESSAGES_SHA256: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--280b6f6b8e1c2642a168d7dbdac207f45092e565ca0c120cf09051eca8a6e87a";
const ROOM_MESSAGES_SHA1: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--50f5571a843815c72805973a5c503c422e1558e80218b28dea4bc5f7b5f19cad";
const ROOM_SHA256: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1RIg==--e72eae383cc939905fe6403fdffff36569a3f2e6d56e524dca1f7f4c64d43604";

fn keys(edit: impl FnOnce(&mut SignedStreamsSection, &mut TurboSection)) -> SignedStreamsSettings {
    let mut shared = SignedStreamsSection {
        secret_key_base: SECRET.into(),
        ..SignedStreamsSection::default()
    };
    let mut turbo = TurboSection::default();
    edit(&mut shared, &mut turbo);
    SignedStreamsSettings::compile(&shared, &turbo, RailsVersion::V7_2).unwrap()
}

/// No identifiers, no database: only the signed-stream keys.
fn bare(keys: &SignedStreamsSettings) -> CompileContext<'_> {
    CompileContext {
        identifiers: &[],
        global_id_app: None,
        database: None,
        signed_streams: keys,
    }
}

fn channel(signed: SignedStreamSection, keys: &SignedStreamsSettings) -> ChannelSpec {
    let section = ChannelSection {
        signed_stream: Some(signed),
        ..ChannelSection::default()
    };
    ChannelSpec::compile("C", &section, &bare(keys)).unwrap()
}

fn verifier(name: &str) -> SignedStreamSection {
    SignedStreamSection {
        verifier: name.into(),
        ..SignedStreamSection::default()
    }
}

fn anyone() -> Identity {
    Identity {
        values: Box::new([]),
        claims: Box::new([]),
        connection_identifier: "".into(),
    }
}

fn params(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn turbo_params(signed: &str) -> Value {
    params(&[
        ("channel", "Turbo::StreamsChannel".into()),
        ("signed_stream_name", signed.into()),
    ])
}

#[test]
fn every_stream_vector_rails_wrote_decides_as_expected() {
    let mut checked = 0;
    for version in ["6.1.7.10", "7.2.2.2"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/rails")
            .join(version);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = json::parse(&std::fs::read(&path).unwrap(), 100).unwrap();
            let secret = file.get("secret_key_base").and_then(Value::as_str).unwrap();
            let load_defaults = file
                .get("load_defaults")
                .and_then(Value::as_str)
                .and_then(RailsVersion::parse)
                .unwrap();
            for v in file.get("streams").and_then(Value::as_array).unwrap() {
                let id = format!(
                    "{}: {}",
                    path.display(),
                    v.get("id").unwrap().as_str().unwrap()
                );
                let token = v.get("token").and_then(Value::as_str).unwrap();
                let (preset, explicit) = match v.get("kind").and_then(Value::as_str).unwrap() {
                    "explicit" => ("turbo", v.get("explicit_key").and_then(Value::as_str)),
                    kind => (kind, None),
                };
                let cases = [
                    ("expect", "both", "lenient"),
                    ("pinned_expect", "pinned", "lenient"),
                    ("strict_expect", "both", "strict"),
                ];
                for (field, key_digest, base64) in cases {
                    let Some(expect) = v.get(field) else { continue };
                    let digest = match (key_digest, load_defaults >= RailsVersion::V7_0) {
                        ("both", _) => "both",
                        (_, true) => "SHA256",
                        (_, false) => "SHA1",
                    };
                    let shared = SignedStreamsSection {
                        secret_key_base: secret.into(),
                        key_digest: digest.into(),
                        base64: base64.into(),
                    };
                    let turbo = TurboSection {
                        signed_stream_verifier_key: explicit.unwrap_or_default().into(),
                        ..TurboSection::default()
                    };
                    let keys =
                        SignedStreamsSettings::compile(&shared, &turbo, load_defaults).unwrap();
                    let spec = channel(verifier(preset), &keys);
                    let param = if preset == "cable_ready" {
                        "identifier"
                    } else {
                        "signed_stream_name"
                    };
                    let got = spec.decide(&anyone(), &params(&[(param, token.into())]));
                    match (
                        expect.get("ok").and_then(Value::as_str),
                        expect.get("error"),
                    ) {
                        (Some(name), _) => {
                            assert_eq!(got, Ok(vec![name.to_string()]), "{id} {field}")
                        }
                        (None, Some(Value::String(kind))) => assert_eq!(
                            got,
                            Err(Rejection::InvalidSignedName(ferrocable_rails_kind(kind))),
                            "{id} {field}"
                        ),
                        _ => panic!("{id}: {field} is neither ok nor error"),
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} vectors");
}

/// The `&'static str` kinds `ferrocable_rails::Error::kind` returns.
fn ferrocable_rails_kind(kind: &str) -> &'static str {
    [
        "bad_signature",
        "invalid_format",
        "unexpected_payload",
        "not_json",
        "too_large",
        "expired",
    ]
    .into_iter()
    .find(|k| *k == kind)
    .unwrap_or_else(|| panic!("unknown kind {kind}"))
}

#[test]
fn debug_output_shows_no_key() {
    let text = format!(
        "{:?}",
        keys(|_, t| t.signed_stream_verifier_key = "s3Krit-key".into())
    );
    assert!(
        !text.contains("s3Krit") && !text.contains(&SECRET[..16]),
        "{text}"
    );
    assert!(text.contains("redacted"), "{text}");
}

#[test]
fn turbo_tries_both_key_digests_unless_pinned() {
    let both = channel(verifier("turbo"), &keys(|_, _| {}));
    let room = "Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages".to_string();
    assert_eq!(
        both.decide(&anyone(), &turbo_params(ROOM_MESSAGES_SHA256)),
        Ok(vec![room.clone()])
    );
    assert_eq!(
        both.decide(&anyone(), &turbo_params(ROOM_MESSAGES_SHA1)),
        Ok(vec![room.clone()])
    );
    let pinned = channel(
        verifier("turbo"),
        &keys(|s, _| s.key_digest = "SHA1".into()),
    );
    assert_eq!(
        pinned.decide(&anyone(), &turbo_params(ROOM_MESSAGES_SHA1)),
        Ok(vec![room])
    );
    assert_eq!(
        pinned.decide(&anyone(), &turbo_params(ROOM_MESSAGES_SHA256)),
        Err(Rejection::InvalidSignedName("bad_signature"))
    );
}

#[test]
fn a_missing_forged_or_odd_name_is_rejected() {
    let spec = channel(verifier("turbo"), &keys(|_, _| {}));
    let mut tampered = ROOM_MESSAGES_SHA256.to_string();
    tampered.replace_range(1..2, "m");
    let cases = [
        (
            turbo_params(&tampered),
            Rejection::InvalidSignedName("bad_signature"),
        ),
        (
            turbo_params(""),
            Rejection::InvalidSignedName("invalid_format"),
        ),
        (
            turbo_params("garbage"),
            Rejection::InvalidSignedName("invalid_format"),
        ),
        (
            params(&[("signed_stream_name", Value::Integer(42.into()))]),
            Rejection::SignedNameNotAString("signed_stream_name".into()),
        ),
        (
            params(&[("signed_stream_name", Value::Array(vec![ROOM_SHA256.into()]))]),
            Rejection::SignedNameNotAString("signed_stream_name".into()),
        ),
        (
            params(&[("signed_stream_name", Value::Null)]),
            Rejection::NoSignedName("signed_stream_name".into()),
        ),
        (
            params(&[]),
            Rejection::NoSignedName("signed_stream_name".into()),
        ),
        (
            Value::Array(vec![]),
            Rejection::NoSignedName("signed_stream_name".into()),
        ),
        (
            turbo_params(&"A".repeat(20_000)),
            Rejection::InvalidSignedName("too_large"),
        ),
    ];
    for (p, want) in cases {
        assert_eq!(spec.decide(&anyone(), &p), Err(want));
    }
}

#[test]
fn extra_identifier_keys_are_ignored() {
    let spec = channel(verifier("turbo"), &keys(|_, _| {}));
    let with_data = params(&[
        ("channel", "Turbo::StreamsChannel".into()),
        ("signed_stream_name", ROOM_SHA256.into()),
        ("room_name", "<b>".into()),
        ("signed_stream_name_extra", "x".into()),
    ]);
    assert_eq!(
        spec.decide(&anyone(), &with_data),
        Ok(vec!["Z2lkOi8vbXktYXBwL1Jvb20vMQ".to_string()])
    );
}

#[test]
fn an_explicit_key_replaces_the_derived_one() {
    // anycable-go's vector: config.turbo.signed_stream_verifier_key = "s3Krit".
    let token =
        "ImNoYXQ6MjAyMSI=--f9ee45dbccb1da04d8ceb99cc820207804370ba0d06b46fc3b8b373af1315628";
    let explicit = keys(|_, t| t.signed_stream_verifier_key = "s3Krit".into());
    let spec = channel(verifier("turbo"), &explicit);
    assert_eq!(
        spec.decide(&anyone(), &turbo_params(token)),
        Ok(vec!["chat:2021".to_string()])
    );
    assert_eq!(
        spec.decide(&anyone(), &turbo_params(ROOM_SHA256)),
        Err(Rejection::InvalidSignedName("bad_signature")),
        "the derived key is no longer accepted"
    );
    // A channel's own key wins, and does not need SECRET_KEY_BASE.
    let no_secret = keys(|s, _| s.secret_key_base.clear());
    let own = channel(
        SignedStreamSection {
            param: "signed".into(),
            key: "s3Krit".into(),
            ..SignedStreamSection::default()
        },
        &no_secret,
    );
    assert_eq!(
        own.decide(&anyone(), &params(&[("signed", token.into())])),
        Ok(vec!["chat:2021".to_string()])
    );
}

#[test]
fn refused_names_stay_off_the_channel() {
    // Campfire: `…:messages` only through RoomMessagesChannel, which checks membership.
    let refusing = SignedStreamSection {
        refuse: vec!["/:messages$/".into(), "exact-name".into()],
        ..verifier("turbo")
    };
    let spec = channel(refusing, &keys(|_, _| {}));
    assert_eq!(
        spec.decide(&anyone(), &turbo_params(ROOM_MESSAGES_SHA256)),
        Err(Rejection::RefusedSignedName(
            "Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages".into()
        ))
    );
    assert!(spec.decide(&anyone(), &turbo_params(ROOM_SHA256)).is_ok());
}

#[test]
fn accepted_names_are_the_only_ones_a_channel_streams() {
    // Campfire's RoomMessagesChannel streams `<room>:messages` and nothing else.
    let accepting = SignedStreamSection {
        accept: vec!["/^[^:]*:messages$/".into()],
        ..verifier("turbo")
    };
    let spec = channel(accepting, &keys(|_, _| {}));
    assert_eq!(
        spec.decide(&anyone(), &turbo_params(ROOM_MESSAGES_SHA256)),
        Ok(vec!["Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages".to_string()])
    );
    assert_eq!(
        spec.decide(&anyone(), &turbo_params(ROOM_SHA256)),
        Err(Rejection::RefusedSignedName(
            "Z2lkOi8vbXktYXBwL1Jvb20vMQ".into()
        ))
    );
}

#[test]
fn an_authorize_bind_on_the_signed_name_needs_a_signed_stream() {
    let keys = keys(|_, _| {});
    let section = |signed_stream: Option<SignedStreamSection>| ChannelSection {
        signed_stream,
        authorize: Some(crate::channels::AuthorizeSection {
            query: "SELECT 1 FROM memberships WHERE room_id = $1".into(),
            bind: vec!["signed_stream.Room:integer".into()],
            recheck_secs: 0,
        }),
        ..ChannelSection::default()
    };
    let err = ChannelSpec::compile("C", &section(None), &bare(&keys)).unwrap_err();
    assert_eq!(err.key, "channels.C.authorize.bind[0]", "{err}");
    // With one, the bind is fine and only the (absent) database is missing.
    let err =
        ChannelSpec::compile("C", &section(Some(verifier("turbo"))), &bare(&keys)).unwrap_err();
    assert_eq!(err.key, "channels.C.authorize.query", "{err}");
}

#[test]
fn a_custom_turbo_channel_verifies_then_applies_its_rules() {
    let section = ChannelSection {
        signed_stream: Some(verifier("turbo")),
        require_params: vec!["room_id".into()],
        streams: vec!["room_{params.room_id}_presence".into()],
        ..ChannelSection::default()
    };
    let spec =
        ChannelSpec::compile("RoomMessagesChannel", &section, &bare(&keys(|_, _| {}))).unwrap();
    let mut p = turbo_params(ROOM_MESSAGES_SHA256);
    assert_eq!(
        spec.decide(&anyone(), &p),
        Err(Rejection::MissingParam("room_id".into()))
    );
    if let Value::Object(pairs) = &mut p {
        pairs.push(("room_id".into(), Value::Integer(1.into())));
    }
    assert_eq!(
        spec.decide(&anyone(), &p),
        Ok(vec![
            "Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages".to_string(),
            "room_1_presence".to_string()
        ])
    );
}

#[test]
fn the_stock_channel_is_built_in_when_a_key_exists() {
    let registry = |keys: &SignedStreamsSettings, sections: BTreeMap<String, ChannelSection>| {
        let mut warnings = Vec::new();
        let r = ChannelRegistry::compile(&sections, &bare(keys), false, &mut warnings).unwrap();
        (r.get(TURBO_STREAMS_CHANNEL).is_some(), warnings)
    };
    assert_eq!(registry(&keys(|_, _| {}), BTreeMap::new()), (true, vec![]));
    let explicit_only = keys(|s, t| {
        s.secret_key_base.clear();
        t.signed_stream_verifier_key = "k".into();
    });
    assert_eq!(registry(&explicit_only, BTreeMap::new()), (true, vec![]));
    let (on, warnings) = registry(&keys(|s, _| s.secret_key_base.clear()), BTreeMap::new());
    assert!(
        !on && warnings.len() == 1 && warnings[0].contains("SECRET_KEY_BASE"),
        "{warnings:?}"
    );
    assert_eq!(
        registry(
            &keys(|_, t| t.streams_channel = Some(false)),
            BTreeMap::new()
        ),
        (false, vec![])
    );
    // Declared explicitly: the declaration wins (here, a channel that only confirms).
    let declared = BTreeMap::from([(TURBO_STREAMS_CHANNEL.to_string(), ChannelSection::default())]);
    let no_key = keys(|s, _| s.secret_key_base.clear());
    let mut warnings = Vec::new();
    let r = ChannelRegistry::compile(&declared, &bare(&no_key), false, &mut warnings).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        r.get(TURBO_STREAMS_CHANNEL)
            .unwrap()
            .decide(&anyone(), &turbo_params("x")),
        Ok(vec![])
    );
    // Required but impossible.
    let required = SignedStreamsSettings::compile(
        &SignedStreamsSection::default(),
        &TurboSection {
            streams_channel: Some(true),
            ..TurboSection::default()
        },
        RailsVersion::V7_2,
    )
    .unwrap();
    let err = ChannelRegistry::compile(&BTreeMap::new(), &bare(&required), false, &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.key, "turbo.streams_channel");
}

#[test]
fn bad_signed_stream_settings_name_their_key() {
    let with_secret = keys(|_, _| {});
    let no_secret = keys(|s, _| s.secret_key_base.clear());
    let cases: Vec<(SignedStreamSection, &SignedStreamsSettings, &str)> = vec![
        (
            verifier("futurism"),
            &with_secret,
            "channels.C.signed_stream.verifier",
        ),
        (
            SignedStreamSection {
                salt: "x".into(),
                ..verifier("turbo")
            },
            &with_secret,
            "channels.C.signed_stream.salt",
        ),
        (
            SignedStreamSection {
                salt: "x".into(),
                ..SignedStreamSection::default()
            },
            &with_secret,
            "channels.C.signed_stream.param",
        ),
        (
            SignedStreamSection {
                param: "p".into(),
                ..SignedStreamSection::default()
            },
            &with_secret,
            "channels.C.signed_stream",
        ),
        (
            SignedStreamSection {
                digest: "MD5".into(),
                ..verifier("turbo")
            },
            &with_secret,
            "channels.C.signed_stream.digest",
        ),
        (
            SignedStreamSection {
                refuse: vec!["/(/".into()],
                ..verifier("turbo")
            },
            &with_secret,
            "channels.C.signed_stream.refuse[0]",
        ),
        (
            SignedStreamSection {
                accept: vec!["".into()],
                ..verifier("turbo")
            },
            &with_secret,
            "channels.C.signed_stream.accept[0]",
        ),
        (
            verifier("cable_ready"),
            &no_secret,
            "channels.C.signed_stream",
        ),
    ];
    for (signed, keys, key) in cases {
        let section = ChannelSection {
            signed_stream: Some(signed),
            ..ChannelSection::default()
        };
        let err = ChannelSpec::compile("C", &section, &bare(keys)).unwrap_err();
        assert_eq!(err.key, key, "{err}");
    }
    for (edit, key) in [
        (
            Box::new(|s: &mut SignedStreamsSection| s.key_digest = "MD5".into())
                as Box<dyn Fn(&mut SignedStreamsSection)>,
            "signed_streams.key_digest",
        ),
        (
            Box::new(|s: &mut SignedStreamsSection| s.base64 = "loose".into()),
            "signed_streams.base64",
        ),
    ] {
        let mut shared = SignedStreamsSection::default();
        edit(&mut shared);
        let err =
            SignedStreamsSettings::compile(&shared, &TurboSection::default(), RailsVersion::V7_2)
                .unwrap_err();
        assert_eq!(err.key, key);
    }
}

#[test]
fn an_internal_stream_name_is_never_streamed() {
    // Signed with the right key, but it names a remote-disconnect channel.
    let generator = KeyGenerator::new(SecretKeyBase::new(SECRET));
    let key = generator.generate_key(
        TURBO_SALT,
        ferrocable_rails::DEFAULT_KEY_SIZE,
        KeyDigest::Sha256,
    );
    let token = ferrocable_rails::MessageVerifier::new(key, HmacDigest::Sha256).generate(
        &serde_json::Value::String("action_cable/Z2lk".into()),
        &ferrocable_rails::Envelope::None,
    );
    let spec = channel(verifier("turbo"), &keys(|_, _| {}));
    assert_eq!(
        spec.decide(&anyone(), &turbo_params(&token)),
        Err(Rejection::InvalidSignedName("internal_stream"))
    );
}

/// Turbo streams a verified `""` (`if stream_name = ...` is true for it); CableReady checks
/// `present?` (both recorded: turbo_invalid_signed_names, cable_ready_stream).
#[test]
fn blank_names_follow_each_librarys_check() {
    let generator = KeyGenerator::new(SecretKeyBase::new(SECRET));
    let sign = |salt: &str, name: &str| {
        let key =
            generator.generate_key(salt, ferrocable_rails::DEFAULT_KEY_SIZE, KeyDigest::Sha256);
        ferrocable_rails::MessageVerifier::new(key, HmacDigest::Sha256).generate(
            &serde_json::Value::String(name.into()),
            &ferrocable_rails::Envelope::None,
        )
    };
    let keys = keys(|_, _| {});
    let turbo = channel(verifier("turbo"), &keys);
    assert_eq!(
        turbo.decide(&anyone(), &turbo_params(&sign(TURBO_SALT, ""))),
        Ok(vec![String::new()])
    );
    let cable_ready = channel(verifier("cable_ready"), &keys);
    for blank in ["", " \t"] {
        let p = params(&[("identifier", sign(CABLE_READY_SALT, blank).into())]);
        assert_eq!(
            cable_ready.decide(&anyone(), &p),
            Err(Rejection::InvalidSignedName("blank"))
        );
    }
    let strict_turbo = channel(
        SignedStreamSection {
            reject_blank_names: Some(true),
            ..verifier("turbo")
        },
        &keys,
    );
    assert_eq!(
        strict_turbo.decide(&anyone(), &turbo_params(&sign(TURBO_SALT, ""))),
        Err(Rejection::InvalidSignedName("blank"))
    );
}
