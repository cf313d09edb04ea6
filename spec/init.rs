//! `ferrocable init` on the fixture apps (fixtures/rails-apps: our own files in the shapes of
//! Campfire, Fizzy, Chatwoot, Open Food Network and Hafaloha) and on the reference app: golden
//! profiles and reports, every profile through `config check`, and the reference app's
//! channels equal to the configs written by hand and verified against real Rails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferrocable::config::RawConfig;

use crate::support::{SECRET, TempDir, binary};

const APPS: &[&str] = &[
    "campfire",
    "chatwoot",
    "fizzy",
    "hafaloha",
    "openfoodnetwork",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ferrocable init` in `dir` (profile and report written there under fixed names).
fn init(dir: &Path, root: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir)
        .arg("init")
        .arg("--rails-root")
        .arg(root)
        .args([
            "--out",
            "ferrocable.toml",
            "--report",
            "ferrocable-init-report.md",
        ])
        .args(extra)
        .env_remove("SECRET_KEY_BASE")
        .env_remove("REDIS_URL");
    cmd.output().unwrap()
}

fn config_check(profile: &Path) -> Output {
    Command::new(binary())
        .args(["config", "check", "--config"])
        .arg(profile)
        .env("SECRET_KEY_BASE", SECRET)
        // Profiles with a lookup or a predicate need the app's database (never opened by
        // the check).
        .env("DATABASE_URL", "postgres://127.0.0.1:1/app_production")
        .env_remove("REDIS_URL")
        .env_remove("PORT")
        .output()
        .unwrap()
}

/// The golden text: the machine's path to the app replaced by a placeholder.
fn normalise(text: &str, root: &Path) -> String {
    text.replace(&root.display().to_string(), "<rails-root>")
}

#[test]
fn fixture_apps_match_their_golden_profiles_and_reports() {
    let update = std::env::var_os("INIT_UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for app in APPS {
        let root = repo().join("fixtures/rails-apps").join(app);
        let dir = TempDir::new("init");
        let out = init(&dir.0, &root, &[]);
        assert!(
            out.status.success(),
            "{app}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (file, golden) in [
            ("ferrocable.toml", format!("{app}.golden.toml")),
            ("ferrocable-init-report.md", format!("{app}.golden.md")),
        ] {
            let got = normalise(&std::fs::read_to_string(dir.0.join(file)).unwrap(), &root);
            let golden = repo().join("fixtures/rails-apps").join(golden);
            if update {
                std::fs::write(&golden, &got).unwrap();
            } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(got.as_str()) {
                stale.push(format!(
                    "{} differs from a fresh run:\n{got}",
                    golden.display()
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "regenerate with INIT_UPDATE_GOLDEN=1 cargo test --test spec init:: and review the diff\n{}",
        stale.join("\n\n")
    );
}

#[test]
fn every_generated_profile_passes_config_check() {
    let mut roots: Vec<(PathBuf, Vec<&str>)> = APPS
        .iter()
        .map(|a| (repo().join("fixtures/rails-apps").join(a), vec![]))
        .collect();
    for profile in ["generic", "hafaloha", "bench", "turbo"] {
        roots.push((repo().join("spec/reference"), vec![profile]));
    }
    for app in ["chat", "shop"] {
        roots.push((repo().join("spec/reference/apps").join(app), vec![]));
    }
    for (root, dirs) in roots {
        let dir = TempDir::new("init-check");
        let mut extra = Vec::new();
        for d in dirs.iter().filter(|d| !d.is_empty()) {
            extra.extend([
                "--channels".to_string(),
                "channels/application_cable".into(),
            ]);
            extra.extend(["--channels".to_string(), format!("channels/{d}")]);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = init(&dir.0, &root, &extra);
        assert!(
            out.status.success(),
            "{}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let check = config_check(&dir.0.join("ferrocable.toml"));
        let stdout = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success() && stdout.starts_with("configuration ok"),
            "{} {dirs:?}: {}{}",
            root.display(),
            stdout,
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

fn parse(path: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The reference app (spec/reference) runs real Rails for the conformance suite; its
/// hand-written ferrocable configs are what those recordings verify. `init` must arrive at
/// the same channels and identifiers from the Ruby source alone.
#[test]
fn reference_app_channels_and_identifiers_equal_the_verified_configs() {
    for profile in ["generic", "hafaloha"] {
        let dir = TempDir::new("init-ref");
        let channels = format!("channels/{profile}");
        let out = init(
            &dir.0,
            &repo().join("spec/reference"),
            &[
                "--channels",
                "channels/application_cable",
                "--channels",
                &channels,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let generated = parse(&dir.0.join("ferrocable.toml"));
        let expected = parse(&repo().join(format!("fixtures/configs/{profile}.toml")));
        assert_eq!(
            generated["channels"], expected["channels"],
            "{profile}: channels"
        );
        assert_eq!(
            generated["auth"]["identifiers"], expected["auth"]["identifiers"],
            "{profile}: identifiers"
        );
        for key in ["mode", "accept_bearer_header"] {
            assert_eq!(
                generated["auth"][key], expected["auth"][key],
                "{profile}: auth.{key}"
            );
        }
    }
}

#[test]
fn init_refuses_to_overwrite_and_names_a_missing_root() {
    let dir = TempDir::new("init-refuse");
    let root = repo().join("fixtures/rails-apps/hafaloha");
    assert!(init(&dir.0, &root, &[]).status.success());
    let again = init(&dir.0, &root, &[]);
    assert_eq!(again.status.code(), Some(73));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(init(&dir.0, &root, &["--force"]).status.success());
    let missing = init(&dir.0, &dir.0.join("no-such-app"), &["--force"]);
    assert_eq!(missing.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not a directory"));
}

/// `ferrocable init` on the cookie-authenticated reference app `app` (spec/reference/apps/<app>,
/// real Rails 7.2) and the profile written by hand and verified with recordings for it,
/// config/examples/<app>.toml: (generated, expected, init's report), with what every such app
/// must share already checked: auth mode, app module and `[auth.cookie]`. The cookie's
/// `load_defaults` is left out: the example pins it, the app sets it inside a shared helper the
/// reader does not follow (both are Rails 7.2's default).
fn init_reference_app(app: &str) -> (RawConfig, RawConfig, String) {
    let dir = TempDir::new(&format!("init-{app}"));
    let out = init(&dir.0, &repo().join("spec/reference/apps").join(app), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read =
        |p: &Path| -> RawConfig { toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let generated = read(&dir.0.join("ferrocable.toml"));
    let expected = read(&repo().join(format!("config/examples/{app}.toml")));
    let report = std::fs::read_to_string(dir.0.join("ferrocable-init-report.md")).unwrap();
    assert_eq!(generated.auth.mode, expected.auth.mode, "{report}");
    assert_eq!(generated.auth.app_module, expected.auth.app_module);
    let mut cookie = generated.auth.cookie.clone();
    cookie.load_defaults = expected.auth.cookie.load_defaults.clone();
    assert_eq!(cookie, expected.auth.cookie);
    (generated, expected, report)
}

/// The chat reference app (Campfire's connection and channels) against config/examples/chat.toml:
/// `init` must arrive at the same cookie, lookup, identifiers, channels (streams, authorize,
/// relays, the Turbo channel's accept) and Turbo refusal. Where they differ by design: chat.toml
/// sizes `[database]` to the app's pool.
#[test]
fn chat_reference_app_maps_to_the_verified_chat_profile() {
    let (generated, expected, report) = init_reference_app("chat");
    assert_eq!(generated.auth.lookup, expected.auth.lookup);
    assert_eq!(generated.auth.identifiers, expected.auth.identifiers);
    assert_eq!(
        generated.redis.channel_prefix,
        expected.redis.channel_prefix
    );
    assert_eq!(generated.turbo.refuse, expected.turbo.refuse);
    assert_eq!(
        generated.turbo.streams_channel,
        expected.turbo.streams_channel
    );
    let names: Vec<&String> = generated.channels.keys().collect();
    // ApplicationCable::Channel is declared by init (Rails confirms it); chat.toml leaves it
    // out, which only matters to a client that subscribes to the base class itself.
    let mut channels = generated.channels.clone();
    channels.remove("ApplicationCable::Channel");
    assert_eq!(channels, expected.channels, "channels {names:?}\n{report}");
}

/// The shop reference app (the cookie-store session read by hand, `session["user_id"]` or
/// Devise's key) against config/examples/shop.toml. Where they differ: shop.toml's queries use a
/// table alias and select `users.name`, which no channel reads (the generated ones are written
/// out below); and the Devise alternative is shop-devise.toml's, which the report names as an
/// assumption.
#[test]
fn shop_reference_app_maps_to_the_verified_shop_profile() {
    let (generated, mut expected, report) = init_reference_app("shop");
    assert!(report.contains("warden.user.user.key"), "{report}");
    assert_eq!(generated.auth.identifiers, expected.auth.identifiers);
    assert_eq!(
        generated.auth.lookup.query,
        "SELECT users.id FROM users WHERE users.id = $1"
    );
    let project = expected.channels.get_mut("ProjectChannel").unwrap();
    let authorize = project.authorize.as_mut().unwrap();
    authorize.query = "SELECT projects.id FROM projects JOIN project_memberships ON \
                       project_memberships.project_id = projects.id WHERE \
                       project_memberships.user_id = $1 AND projects.id = $2"
        .into();
    let mut channels = generated.channels;
    channels.remove("ApplicationCable::Channel");
    assert_eq!(channels, expected.channels, "{report}");
}
