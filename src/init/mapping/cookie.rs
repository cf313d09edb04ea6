//! A connection that finds its user through the cookies the app set → `auth.mode = "cookie"`
//! with `[auth.cookie]` (which cookie, and what to take out of it) and `[auth.lookup]` (the
//! row it stands for). The shapes: `Session.find_by(token: cookies.signed[:x]).user`,
//! `User.find_by(id: cookies.encrypted[:user_id])`, `User.find(session[:user_id])`,
//! `env["warden"].user` (Devise), `Session.find_signed(cookies.signed[:x])`, and a cookie's
//! value on its own.

use super::super::app_config::AppConfig;
use super::super::models::{Models, camelize};
use super::super::sym::{CookieKind, Sym};
use super::Problem;
use super::sql::{self, Chain};
use crate::auth::{CookieKind as Kind, CookieSection};

/// What the connection's cookie mapping needs from the rest of the app.
#[derive(Debug, Clone, Copy)]
pub struct CookieContext<'a> {
    /// The app's configuration (session store, load_defaults, Devise's scope, module).
    pub config: &'a AppConfig,
    /// The models, for the lookup's SQL.
    pub models: &'a Models,
}

/// The connection's lookup, kept open so channels can add the columns they read
/// (`current_user.slice(:id, :name)` needs `users.name`).
#[derive(Debug, Clone, PartialEq)]
pub struct LookupPlan {
    /// From the credential's table to the identifier's record.
    pub chain: Chain,
    /// The column the credential is compared with (`token`).
    pub column: String,
    /// Columns selected; `id` first.
    pub columns: Vec<String>,
}

impl LookupPlan {
    /// The `[auth.lookup]` query.
    pub fn query(&self) -> String {
        sql::lookup_query(&self.chain, &self.column, &self.columns)
    }
}

/// One identifier read from a cookie.
#[derive(Debug, Clone)]
pub struct CookieIdentifier {
    /// `[auth.cookie]`
    pub cookie: CookieSection,
    /// The lookup, if the value is looked up.
    pub lookup: Option<LookupPlan>,
    /// The claim the identifier reads (`id`: the row's; `value`: the cookie's own).
    pub claim: String,
    /// The record's model, when the identifier is a record.
    pub model: Option<String>,
    /// What was applied, for the report.
    pub rule: String,
    /// What was guessed.
    pub assumptions: Vec<String>,
}

/// `Some` when `value` reads the app's cookies or session: mapped, or why it cannot be.
pub fn identify(value: &Sym, ctx: &CookieContext<'_>) -> Option<Result<CookieIdentifier, Problem>> {
    // Peel `.user.account` off the record they are read from.
    let mut attrs: Vec<String> = Vec::new();
    let mut cur = value;
    while let Sym::Attr(inner, a) = cur {
        attrs.insert(0, a.clone());
        cur = inner;
    }
    match cur {
        Sym::Cookie(..) | Sym::SessionValue(_) | Sym::SessionId if attrs.is_empty() => {
            Some(credential(cur, ctx).map(|(cookie, mut assumptions, what)| {
                assumptions.push(
                    "the identifier is the cookie's own value: Rails does not look it up either, \
                     so a deleted record's cookie keeps working in both"
                        .into(),
                );
                CookieIdentifier {
                    cookie,
                    lookup: None,
                    claim: "value".into(),
                    model: None,
                    rule: format!("{what}, its value as it is (claim = \"value\")"),
                    assumptions,
                }
            }))
        }
        Sym::WardenUser(scope) => Some(warden(scope.as_deref(), &attrs, ctx)),
        Sym::Record {
            model,
            finder,
            column,
            by,
            keys,
            scope: None,
        } if mentions_request_state(by) => {
            Some(record(model, finder, column, by, keys, &attrs, ctx))
        }
        Sym::Record { .. } if mentions_request_state(cur) => Some(Err(Problem {
            why: "the lookup needs more than the cookie's value (ferrocable's [auth.lookup] \
                  binds one value, $1)"
                .into(),
            remedy: "look the user up from the cookie alone (a view or a column that joins \
                     what the app adds from the request), or keep the connection on Rails"
                .into(),
        })),
        _ => None,
    }
}

/// Whether a value comes from the request's cookies or session.
pub fn mentions_request_state(s: &Sym) -> bool {
    match s {
        Sym::Cookie(..) | Sym::SessionValue(_) | Sym::SessionId | Sym::WardenUser(_) => true,
        Sym::Record { keys, scope, .. } => {
            keys.iter().any(|(_, v)| mentions_request_state(v))
                || scope.as_ref().is_some_and(|s| mentions_request_state(s))
        }
        Sym::Attr(by, _) | Sym::New(_, by) => mentions_request_state(by),
        Sym::Or(a, b) => mentions_request_state(a) || mentions_request_state(b),
        Sym::Unknown(src) => src.contains("cookies") || src.contains("session"),
        _ => false,
    }
}

fn record(
    model: &str,
    finder: &str,
    column: &str,
    by: &Sym,
    keys: &[(String, Sym)],
    attrs: &[String],
    ctx: &CookieContext<'_>,
) -> Result<CookieIdentifier, Problem> {
    if keys.len() > 1 {
        return Err(Problem {
            why: format!(
                "`{model}.{finder}` looks up {} columns; ferrocable's [auth.lookup] binds one \
                 value, the cookie's",
                keys.len()
            ),
            remedy: "look the record up by the cookie's value alone, or keep the connection on \
                     Rails"
                .into(),
        });
    }
    let (mut cookie, mut assumptions, what) = credential(by, ctx)?;
    let signed_id = matches!(finder, "find_signed" | "find_signed!");
    let lookup_column = if signed_id {
        cookie.signed_id_model = model.to_string();
        "id".to_string()
    } else {
        sql::key_column(ctx.models, model, column)
    };
    let found = lookup(
        ctx.models,
        model,
        lookup_column,
        attrs,
        model,
        &mut assumptions,
    )?;
    let query = found.plan.query();
    if finder == "find_by!" || finder == "find" {
        assumptions.push(format!(
            "`{model}.{finder}` raises when nothing is found, which Rails turns into a refused \
             connection; so does a lookup that finds no row"
        ));
    }
    let rule = format!(
        "{what}{} → [auth.lookup] `{query}`",
        if signed_id {
            format!(" holding a signed id of {model} (signed_id_model = \"{model}\")")
        } else {
            String::new()
        }
    );
    Ok(found.identifier(cookie, rule, assumptions))
}

/// The row a credential finds, and what the identifier reads from it.
struct Found {
    plan: LookupPlan,
    /// `id`, or the plain column `attrs` ended with.
    claim: String,
    /// The model at the end of the associations.
    model: String,
}

impl Found {
    fn identifier(
        self,
        cookie: CookieSection,
        rule: String,
        assumptions: Vec<String>,
    ) -> CookieIdentifier {
        CookieIdentifier {
            cookie,
            lookup: Some(self.plan),
            claim: self.claim,
            model: Some(self.model),
            rule,
            assumptions,
        }
    }
}

/// The lookup of `model`'s row whose `column` holds the credential, followed through `attrs`'
/// associations (`.user.account`); a trailing attribute that is not an association is a column
/// of the record, selected and read as the claim. `source` names the record in the problem
/// when an association cannot be followed; the tables' naming assumption is added.
fn lookup(
    models: &Models,
    model: &str,
    column: String,
    attrs: &[String],
    source: &str,
    assumptions: &mut Vec<String>,
) -> Result<Found, Problem> {
    let (associations, column_attr) = split_column(models, model, attrs);
    let chain = sql::chain(models, model, &associations).map_err(|why| Problem {
        why: format!("{source}.{}: {why}", associations.join(".")),
        remedy: "write [auth.lookup] by hand, or keep the connection on Rails".into(),
    })?;
    let end_model = chain.model().to_string();
    let mut plan = LookupPlan {
        chain,
        column,
        columns: vec!["id".into()],
    };
    let claim = match column_attr {
        Some(c) => {
            plan.columns.push(c.clone());
            c
        }
        None => "id".into(),
    };
    assumptions.push(sql::naming_assumption(models, "the lookup", &plan.chain));
    Ok(Found {
        plan,
        claim,
        model: end_model,
    })
}

/// Associations to follow and, if the last attribute is a plain column, that column.
fn split_column(models: &Models, model: &str, attrs: &[String]) -> (Vec<String>, Option<String>) {
    let Some((last, init)) = attrs.split_last() else {
        return (Vec::new(), None);
    };
    let owner = match sql::chain(models, model, init) {
        Ok(c) => c.model().to_string(),
        Err(_) => return (attrs.to_vec(), None),
    };
    let is_column = models.association(&owner, last).is_none()
        && (last == "id"
            || last.ends_with("_id")
            || models.column_type(&models.table(&owner).0, last).is_some());
    if is_column {
        (init.to_vec(), Some(last.clone()))
    } else {
        (attrs.to_vec(), None)
    }
}

fn warden(
    scope: Option<&str>,
    attrs: &[String],
    ctx: &CookieContext<'_>,
) -> Result<CookieIdentifier, Problem> {
    let (mut cookie, mut assumptions, what) = session_cookie(ctx)?;
    let scope = match scope {
        Some(s) => s.to_string(),
        None => match ctx
            .config
            .other("default_scope")
            .and_then(|s| s.value.text())
        {
            Some(s) => s.to_string(),
            None => {
                assumptions.push(
                    "env[\"warden\"].user names no scope and the reader found no Devise \
                     config.default_scope: Warden's scope `user` is assumed"
                        .into(),
                );
                "user".into()
            }
        },
    };
    cookie.warden_scope = scope.clone();
    let model = camelize(&scope);
    assumptions.push(format!(
        "Warden's scope {scope} serializes a {model} (Devise's `devise_for`): its id is looked \
         up in {model}'s table"
    ));
    assumptions.push(
        "Devise also checks the salt kept next to the id (authenticatable_salt) on every \
         request; ferrocable does not, so a password change ends the socket's access only when \
         the session cookie goes"
            .into(),
    );
    let found = lookup(
        ctx.models,
        &model,
        "id".into(),
        attrs,
        "env[\"warden\"].user",
        &mut assumptions,
    )?;
    let rule = format!(
        "{what}: Warden's session key warden.user.{scope}.key (warden_scope = \"{scope}\") \
         → [auth.lookup] `{}`",
        found.plan.query()
    );
    Ok(found.identifier(cookie, rule, assumptions))
}

/// The cookie a credential is read from: `[auth.cookie]`, assumptions, and a description.
fn credential(
    by: &Sym,
    ctx: &CookieContext<'_>,
) -> Result<(CookieSection, Vec<String>, String), Problem> {
    match by {
        // `session["user_id"] || session.dig("warden.user.user.key", 0, 0)`: one of them.
        Sym::Or(first, other) => {
            let (cookie, mut assumptions, what) = credential(first, ctx)?;
            assumptions.push(format!(
                "`connect` also accepts {other} when {first} is missing; ferrocable takes one \
                 value out of the cookie, {first}: for the other, write [auth.cookie] by hand \
                 (a second profile)"
            ));
            Ok((cookie, assumptions, what))
        }
        Sym::Cookie(name, kind) => {
            let kind = match kind {
                CookieKind::Signed => Kind::Signed,
                CookieKind::Encrypted => Kind::Encrypted,
                CookieKind::Plain => {
                    return Err(Problem {
                        why: format!(
                            "the credential is the plain cookie `{name}`, which anyone can set \
                             (Rails trusts it as it is)"
                        ),
                        remedy: "sign it (cookies.signed) or encrypt it in the app, or keep the \
                                 connection on Rails"
                            .into(),
                    });
                }
            };
            let words = if kind == Kind::Signed {
                "signed"
            } else {
                "encrypted"
            };
            Ok((
                section(name, kind, ctx),
                Vec::new(),
                format!("{by}: [auth.cookie] name = {name:?}, kind = \"{words}\""),
            ))
        }
        Sym::SessionValue(key) => {
            let (mut cookie, assumptions, what) = session_cookie(ctx)?;
            cookie.key = key.clone();
            Ok((
                cookie,
                assumptions,
                format!("{by} in {what}, key = {key:?}"),
            ))
        }
        Sym::SessionId => {
            let (mut cookie, assumptions, what) = session_cookie(ctx)?;
            // The cookie store keeps the session's public id under "session_id".
            cookie.key = "session_id".into();
            Ok((
                cookie,
                assumptions,
                format!("request.session.id in {what}, key = \"session_id\""),
            ))
        }
        other => Err(Problem {
            why: format!("the credential is {other}, which ferrocable cannot read"),
            remedy: "read it from a signed or encrypted cookie or the cookie-store session".into(),
        }),
    }
}

/// `[auth.cookie]` for the cookie-store session.
fn session_cookie(
    ctx: &CookieContext<'_>,
) -> Result<(CookieSection, Vec<String>, String), Problem> {
    let mut assumptions = Vec::new();
    let name = match &ctx.config.session_store {
        Some(store) if store.kind != "cookie_store" => {
            return Err(Problem {
                why: format!(
                    "{}: the session store is :{}: sessions live on the server, and ferrocable \
                     reads only the cookie store's session",
                    store.at, store.kind
                ),
                remedy: "keep the connection on Rails, or identify the socket with a signed \
                         cookie the app sets at login"
                    .into(),
            });
        }
        Some(store) => match &store.key {
            Some(v) => match v.text() {
                Some(k) => k.to_string(),
                None => {
                    return Err(Problem {
                        why: format!("{}: the session cookie's name is {v}", store.at),
                        remedy: "write auth.cookie.name by hand".into(),
                    });
                }
            },
            None => default_session_key(ctx, &mut assumptions)?,
        },
        None => default_session_key(ctx, &mut assumptions)?,
    };
    let words = format!("the cookie-store session {name:?} (kind = \"session\")");
    Ok((section(&name, Kind::Session, ctx), assumptions, words))
}

/// Rails' default session cookie: `_<app name>_session`.
fn default_session_key(
    ctx: &CookieContext<'_>,
    assumptions: &mut Vec<String>,
) -> Result<String, Problem> {
    let module = ctx.config.app_module.as_deref().ok_or_else(|| Problem {
        why: "the session cookie's name comes from the app's module, which the reader did not \
              find in config/application.rb"
            .into(),
        remedy: "write auth.cookie.name by hand (config.session_store's key:)".into(),
    })?;
    let app = ferrocable_rails::underscore(&format!("{module}::Application")).replace('/', "_");
    let name = format!(
        "_{}_session",
        app.strip_suffix("_application").unwrap_or(&app)
    );
    assumptions.push(format!(
        "no config.session_store key: Rails' default session cookie {name:?} (from the module \
         {module})"
    ));
    Ok(name)
}

fn section(name: &str, kind: Kind, ctx: &CookieContext<'_>) -> CookieSection {
    CookieSection {
        name: name.to_string(),
        kind,
        load_defaults: ctx.config.load_defaults.clone().unwrap_or_default(),
        ..CookieSection::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::app_config::SessionStore;
    use super::super::super::value::Value;
    use super::*;

    fn record(model: &str, finder: &str, column: &str, by: Sym) -> Sym {
        Sym::Record {
            model: model.into(),
            finder: finder.into(),
            column: column.into(),
            by: Box::new(by.clone()),
            keys: vec![(column.into(), by)],
            scope: None,
        }
    }

    fn config(store: Option<&str>) -> AppConfig {
        AppConfig {
            app_module: Some("FarmMarket".into()),
            load_defaults: Some("7.2".into()),
            session_store: store.map(|kind| SessionStore {
                kind: kind.into(),
                key: None,
                at: "config/initializers/session_store.rb:1".into(),
            }),
            ..AppConfig::default()
        }
    }

    #[test]
    fn the_shapes_of_cookie_connections() {
        let models = Models::default();
        let cfg = config(None);
        let ctx = CookieContext {
            config: &cfg,
            models: &models,
        };
        // Devise: the cookie-store session's Warden key, Rails' default session name.
        let w = identify(&Sym::WardenUser(None), &ctx).unwrap().unwrap();
        assert_eq!(
            (
                w.cookie.name.as_str(),
                w.cookie.kind,
                w.cookie.warden_scope.as_str()
            ),
            ("_farm_market_session", Kind::Session, "user")
        );
        assert_eq!(w.cookie.load_defaults, "7.2");
        assert_eq!(
            w.lookup.unwrap().query(),
            "SELECT users.id FROM users WHERE users.id = $1"
        );
        assert_eq!(w.model.as_deref(), Some("User"));
        // session[:user_id]
        let s = record("User", "find_by", "id", Sym::SessionValue("user_id".into()));
        let s = identify(&s, &ctx).unwrap().unwrap();
        assert_eq!(
            (s.cookie.kind, s.cookie.key.as_str()),
            (Kind::Session, "user_id")
        );
        // Fizzy: a signed id in a signed cookie, then the session's user.
        let f = Sym::Attr(
            Box::new(record(
                "Session",
                "find_signed",
                "signed id",
                Sym::Cookie("session_token".into(), CookieKind::Signed),
            )),
            "user".into(),
        );
        let f = identify(&f, &ctx).unwrap().unwrap();
        assert_eq!(f.cookie.signed_id_model, "Session");
        assert_eq!(
            f.lookup.unwrap().query(),
            "SELECT users.id FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.id = $1"
        );
        // A plain cookie is not a credential; a JWT claim is not a cookie at all.
        let plain = record(
            "User",
            "find_by",
            "id",
            Sym::Cookie("uid".into(), CookieKind::Plain),
        );
        assert!(identify(&plain, &ctx).unwrap().is_err());
        assert!(identify(&Sym::Claim("user_id".into()), &ctx).is_none());
        // Sessions kept on the server cannot be read.
        let db = config(Some("active_record_store"));
        let ctx = CookieContext {
            config: &db,
            models: &models,
        };
        let err = identify(&Sym::WardenUser(None), &ctx).unwrap().unwrap_err();
        assert!(err.why.contains("active_record_store"), "{}", err.why);
        let named = AppConfig {
            session_store: Some(SessionStore {
                kind: "cookie_store".into(),
                key: Some(Value::Text("_campfire_session".into())),
                at: String::new(),
            }),
            ..config(None)
        };
        let ctx = CookieContext {
            config: &named,
            models: &models,
        };
        let id = identify(&Sym::SessionId, &ctx).unwrap().unwrap();
        assert_eq!(
            (
                id.cookie.name.as_str(),
                id.cookie.key.as_str(),
                id.claim.as_str()
            ),
            ("_campfire_session", "session_id", "value")
        );
    }
}
