//! Small operations on symbolic values for the walker: truth, negation, binding,
//! concatenation, indexing the request-side objects, and reading `JWT.decode`'s arguments.

use super::interp::Path;
use super::ruby::Expr;
use super::ruby::print::source;
use super::sym::{CookieKind, JwtCall, Sym, TokenSource};
use super::value::Value;

/// Literal truth of a symbolic value, when known.
pub(super) fn truth(v: &Sym) -> Option<bool> {
    match v {
        Sym::Lit(None) => Some(false),
        Sym::Lit(Some(t)) if t == "false" => Some(false),
        Sym::Lit(Some(_)) | Sym::List(_) => Some(true),
        _ => None,
    }
}

pub(super) fn negate(v: Sym) -> Sym {
    match v {
        Sym::Not(inner) => *inner,
        Sym::Lit(_) => match truth(&v) {
            Some(t) => Sym::Lit(Some((!t).to_string())),
            None => Sym::Not(Box::new(v)),
        },
        other => Sym::Not(Box::new(other)),
    }
}

pub(super) fn bind(path: &mut Path, target: &Expr, value: Sym) {
    match target {
        Expr::Name(n) => {
            path.env.insert(n.clone(), value);
        }
        Expr::IVar(n) => {
            path.env.insert(format!("@{n}"), value);
        }
        _ => {}
    }
}

pub(super) fn last_assigned(e: &Expr, path: &Path) -> Option<Sym> {
    match e {
        Expr::Assign(t, _, _) => match &**t {
            Expr::Name(n) => path.env.get(n).cloned(),
            Expr::IVar(n) => path.env.get(&format!("@{n}")).cloned(),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn concat(vals: Vec<Sym>) -> Sym {
    let mut parts: Vec<Sym> = Vec::new();
    for v in vals {
        match (parts.last_mut(), v) {
            (Some(Sym::Lit(Some(prev))), Sym::Lit(Some(t))) => prev.push_str(&t),
            (_, Sym::Lit(None)) => {}
            (_, Sym::Concat(inner)) => parts.extend(inner),
            (_, v) => parts.push(v),
        }
    }
    match parts.as_slice() {
        [Sym::Lit(Some(_))] => parts.into_iter().next().unwrap_or(Sym::Lit(None)),
        [] => Sym::Lit(Some(String::new())),
        _ => Sym::Concat(parts),
    }
}

/// A static value as a symbolic one.
pub(super) fn value_sym(v: &Value) -> Sym {
    match v {
        Value::Nil => Sym::Lit(None),
        Value::Text(t) => Sym::Lit(Some(t.clone())),
        Value::List(items) => Sym::List(items.iter().map(value_sym).collect()),
        other => Sym::unknown(other.to_string()),
    }
}

/// `recv[args]` for the objects the walker knows.
pub(super) fn index(recv: &Sym, args: &[Sym], whole: &Expr) -> Sym {
    let key = match args {
        [k] => k.lit().map(String::from),
        _ => None,
    };
    match (recv, key) {
        (Sym::Params, Some(k)) => Sym::Param(k),
        (Sym::Data(None), Some(k)) => Sym::Data(Some(k)),
        (Sym::Claims(_), Some(k)) => Sym::Claim(k),
        (Sym::JwtDecoded(call), Some(k)) if k == "0" => Sym::Claims(call.clone()),
        (r, Some(k)) if super::known::index(r, &k).is_some() => {
            super::known::index(r, &k).unwrap_or(Sym::Lit(None))
        }
        (Sym::Unknown(obj), Some(k)) => {
            object_key(obj, k).unwrap_or_else(|| Sym::unknown(source(whole)))
        }
        // `cookies.encrypted[Rails.application.config.session_options[:key]]`: the
        // cookie-store session, read by hand.
        (Sym::Unknown(obj), None)
            if obj == "cookies.encrypted"
                && args
                    .first()
                    .is_some_and(|a| a.to_string().contains("session_options[:key]")) =>
        {
            Sym::unknown("request.session")
        }
        _ => Sym::unknown(source(whole)),
    }
}

/// `object[key]` (or `.fetch(key)`) on the request-side objects: params, headers, cookies,
/// the session, the Rack env, the connection's JWT payload.
pub(super) fn object_key(obj: &str, k: String) -> Option<Sym> {
    Some(match obj {
        "request.params" => Sym::Token(TokenSource::Query(k)),
        "request.headers" if k.eq_ignore_ascii_case("authorization") => {
            Sym::Token(TokenSource::AuthorizationHeader)
        }
        "request.headers" => Sym::Token(TokenSource::Header(k)),
        "cookies" => Sym::Cookie(k, CookieKind::Plain),
        "cookies.signed" => Sym::Cookie(k, CookieKind::Signed),
        "cookies.encrypted" => Sym::Cookie(k, CookieKind::Encrypted),
        "session" | "request.session" => Sym::SessionValue(k),
        "env" | "request.env" if k == "warden" => Sym::unknown("warden"),
        "env" | "request.env" if k == "HTTP_AUTHORIZATION" => {
            Sym::Token(TokenSource::AuthorizationHeader)
        }
        "connection.claims" => Sym::Claim(k),
        _ => return None,
    })
}

/// Builds a [`JwtCall`] from `JWT.decode(token, key, verify, options)`.
pub(super) fn jwt_call(args: &[Sym], exprs: &[Expr], line: u32) -> JwtCall {
    let token = args.first().cloned().unwrap_or(Sym::Lit(None));
    let key = exprs.get(1).map(source).unwrap_or_default();
    let verify = !matches!(exprs.get(2), Some(Expr::Bool(false)));
    let mut algorithms = Vec::new();
    if let Some(Expr::Hash(pairs)) = exprs.last() {
        for (k, v) in pairs {
            if matches!(k, Expr::Sym(s) if s == "algorithm" || s == "algorithms") {
                match v {
                    Expr::Array(items) => {
                        algorithms.extend(items.iter().filter_map(Expr::literal_text))
                    }
                    v => algorithms.extend(v.literal_text()),
                }
            }
        }
    }
    JwtCall {
        token,
        key,
        verify,
        algorithms,
        line,
    }
}
