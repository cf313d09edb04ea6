//! The names Rails derives from class names and records: `String#underscore`,
//! `ActionCable::Channel::Naming#channel_name`, `GlobalID#to_s` / `#to_param`, and the
//! GlobalID app name.

use crate::base64::url_safe_encode;

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
}
