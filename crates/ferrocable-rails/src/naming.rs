//! The names Rails derives from class names and records: `String#underscore`,
//! `ActionCable::Channel::Naming#channel_name`, `GlobalID#to_s` / `#to_param` (and reading a
//! param back), and the GlobalID app name.

use crate::base64::{Base64Decoding, url_safe_encode};

/// ActiveSupport's `underscore` with no acronyms defined (the default inflections):
/// `"Chats::AppearancesChannel"` → `"chats/appearances_channel"`, `"HTMLParser"` →
/// `"html_parser"`.
pub fn underscore(word: &str) -> String {
    underscore_with_acronyms(word, &[])
}

/// ActiveSupport's `underscore` with the app's acronyms (`inflect.acronym "API"`), in the order
/// they were defined: with `["GraphQL"]`, `"GraphQLChannel"` → `"graphql_channel"` instead of
/// `"graph_ql_channel"`.
///
/// Rules (activesupport `inflector/methods.rb`, 7.0+; the 6.1 regexes give the same results):
/// `::` → `/`; an acronym preceded by a letter or digit gets a `_` before it and is
/// lowercased; `_` goes between an uppercase letter and an uppercase-then-lowercase pair, and
/// between a lowercase letter or digit and an uppercase letter; `-` → `_`; then ASCII
/// lowercase.
pub fn underscore_with_acronyms(word: &str, acronyms: &[&str]) -> String {
    // Ruby returns the word untouched unless it has an uppercase letter, '-' or "::".
    if !word.contains(|c: char| c.is_ascii_uppercase() || c == '-') && !word.contains("::") {
        return word.to_owned();
    }
    let word: Vec<char> = word.replace("::", "/").chars().collect();
    let word = replace_acronyms(&word, acronyms);
    let mut out = String::with_capacity(word.len() + 8);
    for (i, &c) in word.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let previous = word[i - 1];
            let next_is_lower = word.get(i + 1).is_some_and(char::is_ascii_lowercase);
            let boundary = (previous.is_ascii_uppercase() && next_is_lower)
                || previous.is_ascii_lowercase()
                || previous.is_ascii_digit();
            if boundary {
                out.push('_');
            }
        }
        out.push(if c == '-' { '_' } else { c });
    }
    // Ruby's `downcase!` is Unicode-aware; class names are ASCII in practice, but follow it.
    out.to_lowercase()
}

/// Ruby's `\w` (ASCII letters, digits, underscore; Unicode letters and digits too, since the
/// strings are UTF-8).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `word.gsub!(acronyms_underscore_regex) { "#{$1 && '_' }#{$2.downcase}" }` with the regex
/// `(?:(?<=([A-Za-z\d]))|\b)(ACRONYM1|ACRONYM2…)(?=\b|[^a-z])`.
fn replace_acronyms(word: &[char], acronyms: &[&str]) -> Vec<char> {
    if acronyms.is_empty() {
        return word.to_vec();
    }
    let acronyms: Vec<Vec<char>> = acronyms
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| a.chars().collect())
        .collect();
    let boundary_at = |at: usize| {
        let before = at.checked_sub(1).map(|i| word[i]).is_some_and(is_word);
        let after = word.get(at).copied().is_some_and(is_word);
        before != after
    };
    let mut out = Vec::with_capacity(word.len() + 4);
    let mut at = 0;
    while at < word.len() {
        let preceded_by_alnum = at > 0 && word[at - 1].is_ascii_alphanumeric();
        let start_ok = preceded_by_alnum || boundary_at(at);
        let matched = start_ok
            .then(|| {
                acronyms.iter().find(|acronym| {
                    let end = at + acronym.len();
                    word.get(at..end) == Some(acronym.as_slice())
                        && (boundary_at(end)
                            || word.get(end).is_some_and(|c| !c.is_ascii_lowercase()))
                })
            })
            .flatten();
        match matched {
            Some(acronym) => {
                if preceded_by_alnum {
                    out.push('_');
                }
                out.extend(acronym.iter().flat_map(|c| c.to_lowercase()));
                at += acronym.len();
            }
            None => {
                out.push(word[at]);
                at += 1;
            }
        }
    }
    out
}

/// `ActionCable::Channel::Naming.channel_name`: the class name without a trailing `Channel`,
/// `::` → `:`, underscored. `"Chats::AppearancesChannel"` → `"chats:appearances"`.
pub fn channel_name(class_name: &str) -> String {
    channel_name_with_acronyms(class_name, &[])
}

/// [`channel_name`] with the app's acronyms (see [`underscore_with_acronyms`]).
pub fn channel_name_with_acronyms(class_name: &str, acronyms: &[&str]) -> String {
    let base = class_name.strip_suffix("Channel").unwrap_or(class_name);
    underscore_with_acronyms(&base.replace("::", ":"), acronyms)
}

/// Ruby's `CGI.escape`: everything but ASCII letters, digits and `_.-~` is percent-encoded
/// (uppercase hex), and a space becomes `+`.
pub fn cgi_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0xf)]));
            }
        }
    }
    out
}

/// `GlobalID#to_s` of a record: `gid://<app>/<Model>/<CGI.escape(id)>`; a composite key's
/// parts are escaped one by one and joined with `/` (globalid 1.2+).
pub fn global_id(app: &str, model_name: &str, id_parts: &[&str]) -> String {
    let id = id_parts
        .iter()
        .map(|part| cgi_escape(part))
        .collect::<Vec<_>>()
        .join("/");
    format!("gid://{app}/{model_name}/{id}")
}

/// `GlobalID#to_param`: the URL-safe base64 of the gid text, without padding. This is what
/// `to_gid_param`, `stream_for`, Turbo stream names and connection identifiers use.
pub fn global_id_param(gid: &str) -> String {
    url_safe_encode(gid.as_bytes())
}

/// A GlobalID read back from its param: what `GlobalID.parse(param)` finds in it before the
/// locator turns it into a record (`model_name.constantize.find(model_id)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalIdRef {
    /// The app (`gid://<app>/...`). Rails' default locator finds the record whatever it is.
    pub app: String,
    /// The model's class name, `::` included (`Rooms::Open`).
    pub model_name: String,
    /// The id, unescaped (`CGI.unescape`); several for a composite key.
    pub model_id: Vec<String>,
}

/// `GlobalID.parse` of a `to_param` (URL-safe base64 of `gid://<app>/<Model>/<id>`, padding
/// optional, the standard alphabet accepted too, as `Base64.urlsafe_decode64`). `None` where
/// Rails' parse gives `nil`: not base64, not UTF-8, not a `gid://` URI, or a blank app, model
/// or id. A query (`?expires_in=...`, GlobalID params) is not part of the id.
pub fn parse_global_id_param(param: &str) -> Option<GlobalIdRef> {
    let bytes = Base64Decoding::UrlSafe.decode(param)?;
    let text = String::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix("gid://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (app, path) = rest.split_once('/')?;
    let (model_name, model_id) = path.split_once('/')?;
    let blank = |s: &str| s.chars().all(char::is_whitespace);
    if blank(app) || blank(model_name) || blank(model_id) {
        return None;
    }
    let model_id = model_id
        .split('/')
        .map(cgi_unescape)
        .collect::<Option<Vec<_>>>()?;
    Some(GlobalIdRef {
        app: app.to_string(),
        model_name: model_name.to_string(),
        model_id,
    })
}

/// Ruby's `CGI.unescape`: `+` is a space, `%XX` a byte (a `%` not followed by two hex digits
/// stays as it is); `None` when the bytes are not UTF-8.
fn cgi_unescape(text: &str) -> Option<String> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some((high, low))) => {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (other, None) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The GlobalID app name Rails picks by default (`config.global_id.app` unset):
/// `app.railtie_name.remove("_application").dasherize` for the app class
/// `<app_module>::Application`. `"MyApp"` → `"my-app"`, `"Campfire"` → `"campfire"`.
pub fn global_id_app_name(app_module: &str) -> String {
    let railtie_name = underscore(&format!("{app_module}::Application")).replace('/', "_");
    railtie_name.replace("_application", "").replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscores_like_active_support() {
        for (word, expected) in [
            ("Room", "room"),
            ("Chats::AppearancesChannel", "chats/appearances_channel"),
            ("HTMLParser", "html_parser"),
            ("ABC1Def", "abc1_def"),
            ("A1BCd", "a1_b_cd"),
            ("AbCDeFGh", "ab_c_de_f_gh"),
            ("already_snake", "already_snake"),
            ("dash-ed", "dash_ed"),
            ("Version2Thing", "version2_thing"),
        ] {
            assert_eq!(underscore(word), expected, "{word}");
        }
    }

    #[test]
    fn acronyms_change_the_split() {
        assert_eq!(underscore("GraphQLChannel"), "graph_ql_channel");
        assert_eq!(
            underscore_with_acronyms("GraphQLChannel", &["GraphQL"]),
            "graphql_channel"
        );
        assert_eq!(
            underscore_with_acronyms("MyAPIClient", &["API"]),
            "my_api_client"
        );
        assert_eq!(
            underscore_with_acronyms("Api::Thing", &["API"]),
            "api/thing"
        );
    }

    #[test]
    fn channel_names() {
        assert_eq!(
            channel_name("Chats::AppearancesChannel"),
            "chats:appearances"
        );
        assert_eq!(channel_name("RoomChannel"), "room");
        assert_eq!(channel_name("Turbo::StreamsChannel"), "turbo:streams");
    }

    #[test]
    fn global_ids() {
        let gid = global_id("my-app", "Room", &["1"]);
        assert_eq!(gid, "gid://my-app/Room/1");
        assert_eq!(global_id_param(&gid), "Z2lkOi8vbXktYXBwL1Jvb20vMQ");
        assert_eq!(
            global_id("a", "M", &["a b/c", "ü"]),
            "gid://a/M/a+b%2Fc/%C3%BC"
        );
        assert_eq!(global_id_app_name("MyApp"), "my-app");
        assert_eq!(global_id_app_name("Campfire"), "campfire");
    }

    #[test]
    fn global_id_params_read_back() {
        let room = |app: &str, model: &str, id: &[&str]| {
            parse_global_id_param(&global_id_param(&global_id(app, model, id)))
        };
        assert_eq!(
            room("chat", "Room", &["1"]),
            Some(GlobalIdRef {
                app: "chat".into(),
                model_name: "Room".into(),
                model_id: vec!["1".into()],
            })
        );
        // Namespaced models, escaped and composite ids come back as they went in.
        let odd = room("chat", "Rooms::Open", &["a b/c", "ü", "%zz"]).unwrap();
        assert_eq!(odd.model_name, "Rooms::Open");
        assert_eq!(odd.model_id, ["a b/c", "ü", "%zz"]);
        // Padding and the standard alphabet are accepted, as Base64.urlsafe_decode64 does.
        assert_eq!(
            parse_global_id_param("Z2lkOi8vY2hhdC9Sb29tLzE=")
                .unwrap()
                .model_id,
            ["1"]
        );
        // A query is not part of the id.
        let with_query = global_id_param("gid://chat/Room/7?expires_in=60");
        assert_eq!(parse_global_id_param(&with_query).unwrap().model_id, ["7"]);
        // CGI.unescape leaves a '%' without two hex digits as it is.
        let raw = global_id_param("gid://a/M/%zz+%4");
        assert_eq!(parse_global_id_param(&raw).unwrap().model_id, ["%zz %4"]);
        // What GlobalID.parse gives nil for.
        for text in [
            "gid://chat/Room/",
            "gid://chat/Room",
            "gid:///Room/1",
            "gid://chat//1",
            "gid://chat/ /1",
            "http://chat/Room/1",
            "rooms",
        ] {
            assert_eq!(
                parse_global_id_param(&global_id_param(text)),
                None,
                "{text}"
            );
        }
        for param in ["rooms", "messages", "", "!!", "Z2lk:"] {
            assert_eq!(parse_global_id_param(param), None, "{param}");
        }
        assert_eq!(
            parse_global_id_param(&url_safe_encode(b"gid://a/M/\xff")),
            None
        );
    }
}
