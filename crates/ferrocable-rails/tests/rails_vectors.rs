//! Checks every vector file under `fixtures/rails/` (written by `bin/gen-rails-vectors` from
//! real Rails installations): each vector's `expect` must be what this crate does, and `expect`
//! may differ from what Rails did (`rails`) only where the vector names the reason
//! (`leniency`: we accept what that app would not; `deliberate`: we refuse what it accepts).
//! A regenerated file is re-checked with no change here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrocable_rails::{
    Base64Decoding, CookieConfig, CookieJar, CookieReader, DigestPolicy, Error, HmacDigest,
    KeyDigest, KeyGenerator, KeySource, RailsVersion, SecretKeyBase, Serializer, SignedIdVerifier,
    SignedStreamVerifier, Verified, channel_name, global_id, global_id_app_name, global_id_param,
    underscore, underscore_with_acronyms, warden_user_key,
};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rails")
}

fn vector_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for version_dir in std::fs::read_dir(fixtures_dir()).expect("fixtures/rails exists") {
        let version_dir = version_dir.unwrap().path();
        if !version_dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&version_dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "json") {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {value}"))
}

fn at_unix(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn key_digest(name: &str) -> KeyDigest {
    match name {
        "SHA1" => KeyDigest::Sha1,
        "SHA256" => KeyDigest::Sha256,
        other => panic!("unknown key digest {other}"),
    }
}

fn key_source(label: &str) -> KeySource {
    match label.split_once(':') {
        Some(("derived", digest)) => KeySource::Derived(key_digest(digest)),
        Some(("legacy_cbc", digest)) => KeySource::LegacyCbc(key_digest(digest)),
        None if label == "explicit" => KeySource::Explicit,
        _ => panic!("unknown key label {label}"),
    }
}

/// One vector file, with what every check needs.
struct VectorFile {
    name: String,
    doc: Value,
    generator: KeyGenerator,
    load_defaults: RailsVersion,
    rails: RailsVersion,
    app_digest: KeyDigest,
    now: SystemTime,
}

impl VectorFile {
    fn load(path: &Path) -> VectorFile {
        let text = std::fs::read_to_string(path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let name = path
            .strip_prefix(fixtures_dir())
            .unwrap_or(path)
            .display()
            .to_string();
        let load_defaults = RailsVersion::parse(str_of(&doc, "load_defaults")).unwrap();
        let rails = RailsVersion::parse(str_of(&doc, "rails")).unwrap();
        let app_digest = key_digest(str_of(&doc["config"], "key_generator_digest"));
        VectorFile {
            generator: KeyGenerator::new(SecretKeyBase::new(str_of(&doc, "secret_key_base"))),
            now: at_unix(doc["now_unix"].as_u64().unwrap()),
            name,
            doc,
            load_defaults,
            rails,
            app_digest,
        }
    }

    fn vector_now(&self, vector: &Value) -> SystemTime {
        vector["now_unix"].as_u64().map_or(self.now, at_unix)
    }

    /// The policies every vector is checked under: the default (both digests, the app's
    /// first), and the app's digest pinned.
    fn policies(&self) -> [(DigestPolicy, &'static str); 2] {
        [
            (
                DigestPolicy::for_load_defaults(self.load_defaults),
                "expect",
            ),
            (DigestPolicy::Pinned(self.app_digest), "pinned_expect"),
        ]
    }

    fn cookie_config(&self, policy: DigestPolicy, read: &Value) -> CookieConfig {
        let mut config = CookieConfig::for_load_defaults(self.load_defaults);
        config.key_digests = policy;
        let app = &self.doc["config"];
        config.use_authenticated_cookie_encryption = app["use_authenticated_cookie_encryption"]
            .as_bool()
            .unwrap();
        let digest = read["signed_cookie_digest"]
            .as_str()
            .or(app["signed_cookie_digest"].as_str())
            .unwrap_or("SHA1");
        config.signed_cookie_digest = HmacDigest::parse(digest).unwrap();
        let serializer = read["cookies_serializer"]
            .as_str()
            .unwrap_or(str_of(app, "cookies_serializer"));
        config.cookies_serializer = Serializer::parse(serializer).unwrap();
        config
    }
}

/// Compares an outcome with an expectation (`{"ok": v, "key": k}` or `{"error": kind}`).
fn outcome_matches(outcome: &Result<Verified<Value>, Error>, expect: &Value) -> Result<(), String> {
    match (outcome, expect.get("ok")) {
        (Ok(verified), Some(value)) => {
            let key = key_source(str_of(expect, "key"));
            if &verified.value != value || verified.key != key {
                return Err(format!(
                    "got {} with {:?}, expected {value} with {key:?}",
                    verified.value, verified.key
                ));
            }
            Ok(())
        }
        (Err(error), None) => {
            let kind = str_of(expect, "error");
            if error.kind() != kind {
                return Err(format!("got error {error:?}, expected {kind}"));
            }
            Ok(())
        }
        (Ok(verified), None) => Err(format!(
            "got {} with {:?}, expected error {}",
            verified.value, verified.key, expect["error"]
        )),
        (Err(error), Some(value)) => {
            Err(format!("got error {error:?} ({error}), expected {value}"))
        }
    }
}

/// `expect` may disagree with what Rails did only for a named reason.
fn rails_agreement(vector: &Value, rails_value: Option<&Value>) -> Result<(), String> {
    let expect = &vector["expect"];
    match (expect.get("ok"), rails_value) {
        (Some(ours), Some(theirs)) if ours != theirs => {
            Err(format!("expect {ours} but Rails read {theirs}"))
        }
        (Some(_), None) if vector.get("leniency").is_none() => {
            Err("we accept what Rails rejected, with no `leniency` named".into())
        }
        (None, Some(_)) if vector.get("deliberate").is_none() => {
            Err("we refuse what Rails accepted, with no `deliberate` reason named".into())
        }
        _ => Ok(()),
    }
}

#[derive(Default)]
struct Report {
    checks: usize,
    failures: String,
}

impl Report {
    fn check(&mut self, file: &str, id: &str, what: &str, result: Result<(), String>) {
        self.checks += 1;
        if let Err(message) = result {
            let _ = writeln!(self.failures, "{file} {id} [{what}]: {message}");
        }
    }
}

fn check_key_generator(file: &VectorFile, report: &mut Report) {
    // The load_defaults → digest rule must be what this Rails actually did.
    report.check(
        &file.name,
        "config",
        "key digest",
        (KeyDigest::for_load_defaults(file.load_defaults) == file.app_digest)
            .then_some(())
            .ok_or(format!("Rails used {:?}", file.app_digest)),
    );
    for entry in file.doc["key_generator"].as_array().unwrap() {
        let key = file.generator.generate_key(
            str_of(entry, "salt"),
            entry["key_size"].as_u64().unwrap() as usize,
            key_digest(str_of(entry, "digest")),
        );
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        report.check(
            &file.name,
            str_of(entry, "salt"),
            str_of(entry, "digest"),
            (hex == str_of(entry, "hex")).then_some(()).ok_or(hex),
        );
    }
}

fn check_cookies(file: &VectorFile, report: &mut Report) {
    let vectors = file.doc["cookies"].as_array().unwrap();
    assert!(!vectors.is_empty(), "{}: no cookie vectors", file.name);
    for vector in vectors {
        let id = str_of(vector, "id");
        let jar = CookieJar::parse(str_of(vector, "cookie_header")).unwrap();
        let name = str_of(vector, "name");
        let now = file.vector_now(vector);
        let read = |config: &CookieConfig| {
            let reader = CookieReader::new(&file.generator, config);
            match str_of(vector, "jar") {
                "signed" => reader.signed(&jar, name, now),
                "encrypted" => reader.encrypted(&jar, name, now),
                other => panic!("unknown jar {other}"),
            }
        };
        for (policy, expect_key) in file.policies() {
            let expect = vector.get(expect_key).unwrap_or(&vector["expect"]);
            let outcome = read(&file.cookie_config(policy, &vector["read_config"]));
            report.check(
                &file.name,
                id,
                expect_key,
                outcome_matches(&outcome, expect),
            );
            if let (Some(accepts), Err(error)) =
                (vector["marshal_rails_accepts"].as_bool(), &outcome)
            {
                report.check(
                    &file.name,
                    id,
                    "marshal wording",
                    (error
                        == &Error::MarshalPayload {
                            rails_accepts: accepts,
                        })
                        .then_some(())
                        .ok_or(format!("{error:?}")),
                );
            }
        }
        let mut strict = file.cookie_config(
            DigestPolicy::for_load_defaults(file.load_defaults),
            &vector["read_config"],
        );
        strict.require_purpose = true;
        let expect = vector
            .get("require_purpose_expect")
            .unwrap_or(&vector["expect"]);
        report.check(
            &file.name,
            id,
            "require_purpose",
            outcome_matches(&read(&strict), expect),
        );
        report.check(
            &file.name,
            id,
            "rails",
            rails_agreement(vector, vector["rails"].get("value")),
        );
    }
}

fn check_sessions(file: &VectorFile, report: &mut Report) {
    for vector in file.doc["sessions"].as_array().unwrap() {
        let id = str_of(vector, "id");
        let jar = CookieJar::parse(str_of(vector, "cookie_header")).unwrap();
        for (policy, expect_key) in file.policies() {
            let reader =
                CookieReader::new(&file.generator, &file.cookie_config(policy, &Value::Null));
            let outcome = reader.session(&jar, str_of(vector, "session_key"), file.now);
            if let (Ok(session), Some(expected_id)) = (&outcome, vector["warden_user_id"].as_u64())
            {
                let found = warden_user_key(&session.value, str_of(vector, "warden_scope"));
                report.check(
                    &file.name,
                    id,
                    "warden",
                    (found == Some(&Value::from(expected_id)))
                        .then_some(())
                        .ok_or(format!("{found:?}")),
                );
            }
            let outcome = outcome.map(|v| Verified {
                value: Value::Object(v.value),
                key: v.key,
            });
            let expect = vector.get(expect_key).unwrap_or(&vector["expect"]);
            report.check(
                &file.name,
                id,
                expect_key,
                outcome_matches(&outcome, expect),
            );
        }
        // Rails always "reads" a session (a fresh one when the cookie is bad): agreement means
        // our value is exactly Rails' session, and a refusal matches a session without login.
        let rails = &vector["rails"];
        let agreement = match vector["expect"].get("ok") {
            Some(ours) => (ours == rails)
                .then_some(())
                .ok_or(format!("Rails read {rails}")),
            None => (rails.get("user_id").is_none() && rails.get("warden.user.user.key").is_none())
                .then_some(())
                .ok_or(format!("Rails read a logged-in session {rails}")),
        };
        report.check(&file.name, id, "rails", agreement);
    }
}

fn check_signed_ids(file: &VectorFile, report: &mut Report) {
    for vector in file.doc["signed_ids"].as_array().unwrap() {
        let id = str_of(vector, "id");
        let now = file.vector_now(vector);
        let base_class = str_of(vector, "base_class");
        let purpose = vector["purpose"].as_str();
        for (policy, expect_key) in file.policies() {
            let verifier = SignedIdVerifier::new(&file.generator, policy, file.rails);
            let expect = vector.get(expect_key).unwrap_or(&vector["expect"]);
            let outcome = verifier.verify(str_of(vector, "token"), base_class, purpose, now);
            report.check(
                &file.name,
                id,
                expect_key,
                outcome_matches(&outcome, expect),
            );
        }
        if let Some(header) = vector["cookie_header"].as_str() {
            // Fizzy: Session.find_signed(cookies.signed[:session_token]).
            let config = file.cookie_config(
                DigestPolicy::for_load_defaults(file.load_defaults),
                &Value::Null,
            );
            let cookie = CookieReader::new(&file.generator, &config).signed(
                &CookieJar::parse(header).unwrap(),
                str_of(vector, "cookie_name"),
                now,
            );
            let chained = cookie.and_then(|token| {
                let token = token
                    .value
                    .as_str()
                    .ok_or(Error::UnexpectedPayload("not a string"))?
                    .to_owned();
                SignedIdVerifier::new(
                    &file.generator,
                    DigestPolicy::for_load_defaults(file.load_defaults),
                    file.rails,
                )
                .verify(&token, base_class, purpose, now)
            });
            report.check(
                &file.name,
                id,
                "cookie chain",
                outcome_matches(&chained, &vector["expect"]),
            );
        }
        report.check(
            &file.name,
            id,
            "rails",
            rails_agreement(vector, vector["rails"].get("value")),
        );
    }
}

fn check_streams(file: &VectorFile, report: &mut Report) {
    for vector in file.doc["streams"].as_array().unwrap() {
        let id = str_of(vector, "id");
        let make = |policy: DigestPolicy| match str_of(vector, "kind") {
            "turbo" => SignedStreamVerifier::turbo(&file.generator, policy),
            "cable_ready" => SignedStreamVerifier::cable_ready(&file.generator, policy),
            "explicit" => SignedStreamVerifier::explicit(
                str_of(vector, "explicit_key").as_bytes().to_vec(),
                HmacDigest::Sha256,
            ),
            other => panic!("unknown stream kind {other}"),
        };
        let run = |verifier: SignedStreamVerifier| {
            verifier
                .verify(str_of(vector, "token"), file.now)
                .map(|v| Verified {
                    value: Value::String(v.value),
                    key: v.key,
                })
        };
        for (policy, expect_key) in file.policies() {
            let expect = vector.get(expect_key).unwrap_or(&vector["expect"]);
            report.check(
                &file.name,
                id,
                expect_key,
                outcome_matches(&run(make(policy)), expect),
            );
        }
        let strict = make(DigestPolicy::for_load_defaults(file.load_defaults))
            .with_base64(Base64Decoding::Strict);
        let expect = vector.get("strict_expect").unwrap_or(&vector["expect"]);
        report.check(
            &file.name,
            id,
            "strict base64",
            outcome_matches(&run(strict), expect),
        );
        report.check(
            &file.name,
            id,
            "rails",
            rails_agreement(vector, vector["rails"].get("value")),
        );
    }
}

/// docs/rails-apps.md §1.6: with its secret, Room 1 of MyApp and `:messages`, real Rails must
/// have produced exactly the documented tokens.
fn check_documented_turbo_tokens(file: &VectorFile, report: &mut Report) {
    if str_of(&file.doc, "secret_key_base") != "0123456789abcdef".repeat(8) {
        return;
    }
    let documented = |name: &str, digest: KeyDigest| match (name, digest) {
        ("Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages", KeyDigest::Sha256) => Some(
            "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--280b6f6b8e1c2642a168d7dbdac207f45092e565ca0c120cf09051eca8a6e87a",
        ),
        ("Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages", KeyDigest::Sha1) => Some(
            "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--50f5571a843815c72805973a5c503c422e1558e80218b28dea4bc5f7b5f19cad",
        ),
        ("Z2lkOi8vbXktYXBwL1Jvb20vMQ", KeyDigest::Sha256) => Some(
            "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1RIg==--e72eae383cc939905fe6403fdffff36569a3f2e6d56e524dca1f7f4c64d43604",
        ),
        ("Z2lkOi8vbXktYXBwL1Jvb20vMQ", KeyDigest::Sha1) => Some(
            "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1RIg==--349f33aeea574b631e559cb19c41049a12211097b25f9cb665ee769a5c793f75",
        ),
        _ => None,
    };
    let mut compared = 0;
    for vector in file.doc["streams"].as_array().unwrap() {
        let (Some(name), Some(key)) = (
            vector["expect"]["ok"].as_str(),
            vector["expect"]["key"].as_str(),
        ) else {
            continue;
        };
        let KeySource::Derived(digest) = key_source(key) else {
            continue;
        };
        if vector["kind"] != "turbo" {
            continue;
        }
        if let Some(token) = documented(name, digest) {
            compared += 1;
            report.check(
                &file.name,
                str_of(vector, "id"),
                "rails-apps.md §1.6",
                (str_of(vector, "token") == token)
                    .then_some(())
                    .ok_or(format!("doc says {token}")),
            );
        }
    }
    // Each file has the app-digest token of both names, and the other-digest one of the first.
    report.check(
        &file.name,
        "turbo",
        "documented tokens compared",
        (compared == 3)
            .then_some(())
            .ok_or(format!("compared {compared}")),
    );
}

fn check_naming(file: &VectorFile, report: &mut Report) {
    let naming = &file.doc["naming"];
    let mut expect_eq = |what: &str, input: &str, ours: String, theirs: &str| {
        report.check(
            &file.name,
            input,
            what,
            (ours == theirs)
                .then_some(())
                .ok_or(format!("ours {ours:?}, Rails {theirs:?}")),
        )
    };
    for row in naming["channel_names"].as_array().unwrap() {
        let class = str_of(row, "class");
        expect_eq(
            "channel_name",
            class,
            channel_name(class),
            str_of(row, "channel_name"),
        );
    }
    for row in naming["broadcastings"].as_array().unwrap() {
        let class = str_of(row, "class");
        let ours = format!(
            "{}:{}",
            channel_name(class),
            global_id_param(str_of(row, "record"))
        );
        expect_eq("broadcasting_for", class, ours, str_of(row, "broadcasting"));
    }
    for row in naming["underscore"].as_array().unwrap() {
        let word = str_of(row, "word");
        expect_eq(
            "underscore",
            word,
            underscore(word),
            str_of(row, "underscore"),
        );
    }
    let with_acronyms = &naming["underscore_with_acronyms"];
    let acronyms: Vec<&str> = with_acronyms["acronyms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for row in with_acronyms["words"].as_array().unwrap() {
        let word = str_of(row, "word");
        expect_eq(
            "underscore with acronyms",
            word,
            underscore_with_acronyms(word, &acronyms),
            str_of(row, "underscore"),
        );
    }
    let app = str_of(&file.doc["app"], "global_id_app");
    expect_eq("app name", "MyApp", global_id_app_name("MyApp"), app);
    for row in naming["global_ids"].as_array().unwrap() {
        let gid = global_id(app, str_of(row, "model"), &[str_of(row, "id")]);
        expect_eq("gid", str_of(row, "id"), gid.clone(), str_of(row, "gid"));
        expect_eq(
            "gid param",
            str_of(row, "id"),
            global_id_param(&gid),
            str_of(row, "param"),
        );
    }
    for row in naming["app_names"].as_array().unwrap() {
        let module = str_of(row, "module");
        expect_eq(
            "app name",
            module,
            global_id_app_name(module),
            str_of(row, "global_id_app"),
        );
    }
}

#[test]
fn every_vector_file_from_real_rails() {
    let files = vector_files();
    assert!(
        !files.is_empty(),
        "no vector files under {} (bin/gen-rails-vectors writes them)",
        fixtures_dir().display()
    );
    let mut report = Report::default();
    let mut seen_rails = Vec::new();
    for path in &files {
        let file = VectorFile::load(path);
        seen_rails.push(format!(
            "{} (load_defaults {})",
            str_of(&file.doc, "rails"),
            file.load_defaults
        ));
        check_key_generator(&file, &mut report);
        check_cookies(&file, &mut report);
        check_sessions(&file, &mut report);
        check_signed_ids(&file, &mut report);
        check_streams(&file, &mut report);
        check_documented_turbo_tokens(&file, &mut report);
        check_naming(&file, &mut report);
    }
    eprintln!(
        "{} checks over {} files: {}",
        report.checks,
        files.len(),
        seen_rails.join(", ")
    );
    assert!(
        report.failures.is_empty(),
        "vector failures:\n{}",
        report.failures
    );
}
