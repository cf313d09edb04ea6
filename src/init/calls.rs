//! What a method call means to the walker: Action Cable's own calls (`stream_from`,
//! `reject`, `transmit`, `broadcast`), the request's cookies, session, headers and params,
//! `JWT.decode`, Active Record finders, the app's own helper methods (followed), logging
//! (ignored), and everything else as an unknown value or an unreproduced side effect.

use super::interp::{Effect, Interp, Path, Role, StreamKind};
use super::ruby::print::source;
use super::ruby::{Call, Expr};
use super::sym::{Sym, TokenSource};
use super::symops::{jwt_call, object_key};

type Outcomes = Vec<(Path, Sym)>;

/// Methods that only read (never reported as side effects).
const PURE: &[&str] = &[
    "present?",
    "blank?",
    "nil?",
    "empty?",
    "any?",
    "presence",
    "to_s",
    "to_i",
    "to_param",
    "to_str",
    "to_sym",
    "itself",
    "strip",
    "freeze",
    "include?",
    "member?",
    "key?",
    "has_key?",
    "authenticated?",
    "id",
    "class",
    "name",
    "is_a?",
    "kind_of?",
    "respond_to?",
    "length",
    "size",
    "first",
    "last",
    "to_json",
    "as_json",
    "slice",
    "dup",
];

/// Active Record finders: `Model.<finder>(...)` is a database read.
const FINDERS: &[&str] = &[
    "find",
    "find_by",
    "find_by!",
    "find_signed",
    "find_signed!",
    "where",
    "find_by_token",
    "find_by_id",
    "exists?",
    "first",
    "take",
    "sole",
    "find_sole_by",
];

/// Method names that write somewhere whatever their receiver.
const WRITES: &[&str] = &[
    "update",
    "update!",
    "update_column",
    "update_columns",
    "update_all",
    "save",
    "save!",
    "create",
    "create!",
    "destroy",
    "destroy!",
    "delete",
    "touch",
    "increment!",
    "decrement!",
    "perform_later",
    "perform_now",
    "deliver_later",
    "deliver_now",
    "set",
    "incr",
    "hset",
    "sadd",
    "srem",
    "expire",
    "publish",
];

fn is_logging(c: &Call) -> bool {
    let recv = c.recv.as_ref().and_then(Expr::dotted);
    match recv.as_deref() {
        Some("Rails.logger" | "logger" | "ActionCable.server.logger" | "self.logger") => true,
        None => matches!(c.name.as_str(), "puts" | "p" | "pp" | "print"),
        _ => false,
    }
}

impl Interp<'_> {
    /// Evaluates a call on a path.
    pub(super) fn call(&self, c: &Call, path: Path, line: u32, statement: bool) -> Outcomes {
        let line = if c.line > 0 { c.line } else { line };
        if is_logging(c) {
            let mut p = path;
            p.effects.push(Effect::Logging(line));
            return vec![(p, Sym::Lit(None))];
        }
        let receivers: Vec<(Path, Option<Sym>)> = match &c.recv {
            None | Some(Expr::SelfRef) => vec![(path, None)],
            Some(r) => self
                .eval_pub(r, path, line, false)
                .into_iter()
                .map(|(p, v)| (p, Some(v)))
                .collect(),
        };
        let mut out = Vec::new();
        for (p, recv) in receivers {
            for (p2, args) in self.eval_all_pub(&c.args, p, line) {
                out.extend(self.dispatch(c, recv.as_ref(), &args, p2, line, statement));
            }
        }
        out
    }

    fn dispatch(
        &self,
        c: &Call,
        recv: Option<&Sym>,
        args: &[Sym],
        mut path: Path,
        line: u32,
        statement: bool,
    ) -> Outcomes {
        let name = c.name.as_str();
        let whole = Expr::Call(Box::new(c.clone()));
        if WRITES.contains(&name) {
            path.effects.push(Effect::SideEffect(source(&whole), line));
            return vec![(path, Sym::unknown(source(&whole)))];
        }
        let recv_text = c.recv.as_ref().and_then(Expr::dotted);
        if let Some(v) = self.constant_call(c, recv_text.as_deref(), args, &mut path, line) {
            return vec![(path, v)];
        }
        let value = match recv {
            None => return self.self_call(c, args, path, line, statement),
            Some(Sym::Unknown(obj)) if obj == "connection" => {
                Some(if self.identifiers.iter().any(|i| i == name) {
                    Sym::Identifier(name.to_string())
                } else if self.claims_accessors.iter().any(|a| a == name) {
                    Sym::unknown("connection.claims")
                } else {
                    Sym::unknown(format!("connection.{name}"))
                })
            }
            Some(r) => on_value(r, name, args, &whole),
        };
        match value {
            Some(v) => {
                // `membership.present` on its own line is a call made for its effect.
                if statement && matches!(v, Sym::Attr(..)) && !PURE.contains(&name) {
                    path.effects.push(Effect::SideEffect(source(&whole), line));
                }
                vec![(path, v)]
            }
            None => {
                if statement && !PURE.contains(&name) {
                    path.effects.push(Effect::SideEffect(source(&whole), line));
                }
                vec![(path, Sym::unknown(source(&whole)))]
            }
        }
    }

    /// Calls on constants: `JWT.decode`, `ActionCable.server.broadcast`, finders, `new`,
    /// `SomeChannel.broadcast_to`, and the app's own class methods (followed).
    fn constant_call(
        &self,
        c: &Call,
        recv: Option<&str>,
        args: &[Sym],
        path: &mut Path,
        line: u32,
    ) -> Option<Sym> {
        let recv = recv?;
        let name = c.name.as_str();
        if let Some(v) = super::known::constant_call(recv, c, args) {
            return Some(v);
        }
        if recv == "self.class" {
            let (def, owner) = self.index.method(&self.class, name, true)?;
            return Some(self.follow_class_method(def, owner, args, path));
        }
        let is_const = recv.starts_with(|ch: char| ch.is_ascii_uppercase());
        match (recv, name) {
            ("JWT", "decode") => {
                let call = Box::new(jwt_call(args, &c.args, line));
                path.effects.push(Effect::Decoded(call.clone()));
                return Some(Sym::JwtDecoded(call));
            }
            ("ActionCable.server", "broadcast") => {
                path.effects.push(Effect::Broadcast {
                    target: args.first().cloned().unwrap_or(Sym::Lit(None)),
                    data: args.get(1).cloned().unwrap_or(Sym::Lit(None)),
                    to_model_of: None,
                    line,
                });
                return Some(Sym::Lit(None));
            }
            (_, "broadcast_to") if is_const && recv.ends_with("Channel") => {
                path.effects.push(Effect::Broadcast {
                    target: args.first().cloned().unwrap_or(Sym::Lit(None)),
                    data: args
                        .get(1)
                        .cloned()
                        .unwrap_or(Sym::unknown("keyword arguments")),
                    to_model_of: Some(recv.to_string()),
                    line,
                });
                return Some(Sym::Lit(None));
            }
            _ => {}
        }
        if !is_const || recv.contains('.') {
            return None;
        }
        if FINDERS.contains(&name) {
            return Some(finder(recv, name, args, &c.args, None));
        }
        if name == "new" {
            return Some(Sym::New(
                recv.to_string(),
                Box::new(args.first().cloned().unwrap_or(Sym::Lit(None))),
            ));
        }
        // The app's own class method (`JsonWebToken.decode(token)`): follow it.
        let class = self.index.resolve(recv, &self.class.ns.name)?;
        let (def, owner) = self.index.method(&class, name, true)?;
        Some(self.follow_class_method(def, owner, args, path))
    }

    fn follow_class_method(
        &self,
        def: super::ruby::Def,
        owner: std::rc::Rc<super::classes::ClassInfo>,
        args: &[Sym],
        path: &mut Path,
    ) -> Sym {
        if !self.enter() {
            return Sym::unknown(format!("{}.{}(...)", owner.ns.name, def.name));
        }
        let mut inner = self.for_class(owner);
        inner.in_class_method = true;
        let mut start = path.clone();
        for (param, arg) in def.params.iter().zip(args) {
            start.env.insert(param.clone(), arg.clone());
        }
        let outcomes = inner.body_value_pub(&def.body, start, true);
        self.leave();
        let accepted: Vec<_> = outcomes.into_iter().filter(|(p, _)| !p.rejected).collect();
        let Some((p, v)) = accepted.into_iter().next() else {
            return Sym::unknown(format!("{}(...)", def.name));
        };
        // Keep the caller's variables; take what the callee did.
        path.effects = p.effects;
        path.conds = p.conds;
        v
    }

    /// A call without a receiver (or on `self`).
    fn self_call(
        &self,
        c: &Call,
        args: &[Sym],
        mut path: Path,
        line: u32,
        statement: bool,
    ) -> Outcomes {
        let name = c.name.as_str();
        let first = || args.first().cloned().unwrap_or(Sym::Lit(None));
        let nil = Sym::Lit(None);
        if self.role == Role::Channel {
            let stream = match name {
                "stream_from" => Some(StreamKind::From),
                "stream_for" => Some(StreamKind::For),
                "stream_or_reject_for" => Some(StreamKind::OrRejectFor),
                _ => None,
            };
            if let Some(kind) = stream {
                let callback = c
                    .block
                    .as_ref()
                    .map(|b| {
                        let body: Vec<String> = b.body.iter().map(|s| source(&s.expr)).collect();
                        format!("do |{}| {} end", b.params.join(", "), body.join("; "))
                    })
                    .or_else(|| {
                        c.args
                            .get(1)
                            .filter(|a| !matches!(a, Expr::Hash(_)))
                            .map(source)
                    });
                path.effects.push(Effect::Stream {
                    target: first(),
                    kind,
                    callback,
                    line,
                });
                return vec![(path, nil)];
            }
            match name {
                "reject" => {
                    path.effects.push(Effect::Reject(line));
                    path.rejected = true;
                    return vec![(path, nil)];
                }
                "transmit" => {
                    path.effects.push(Effect::Transmit(first(), line));
                    return vec![(path, nil)];
                }
                "broadcast_to" => {
                    path.effects.push(Effect::Broadcast {
                        target: first(),
                        data: args
                            .get(1)
                            .cloned()
                            .unwrap_or(Sym::unknown("keyword arguments")),
                        to_model_of: Some(self.class.ns.name.clone()),
                        line,
                    });
                    return vec![(path, nil)];
                }
                "stop_all_streams" | "stop_stream_from" | "stop_stream_for" => {
                    path.effects.push(Effect::StopStreams(line));
                    return vec![(path, nil)];
                }
                "params" => return vec![(path, Sym::Params)],
                "verified_stream_name_from_params" => return vec![(path, Sym::SignedStreamName)],
                "connection" => return vec![(path, Sym::unknown("connection"))],
                "subscription_rejected?" => return vec![(path, Sym::Lit(Some("false".into())))],
                n if self.identifiers.iter().any(|i| i == n) => {
                    return vec![(path, Sym::Identifier(n.to_string()))];
                }
                _ => {}
            }
        } else {
            match name {
                "reject_unauthorized_connection" => {
                    path.effects.push(Effect::Reject(line));
                    path.rejected = true;
                    return vec![(path, nil)];
                }
                "request" => return vec![(path, Sym::unknown("request"))],
                "cookies" => return vec![(path, Sym::unknown("cookies"))],
                "env" => return vec![(path, Sym::unknown("env"))],
                "session" => return vec![(path, Sym::unknown("request.session"))],
                "params" => return vec![(path, Sym::unknown("request.params"))],
                n if self.identifiers.iter().any(|i| i == n) => {
                    // the identifier's reader: what `self.<name> =` last assigned on this path
                    let v = path
                        .effects
                        .iter()
                        .rev()
                        .find_map(|e| match e {
                            Effect::Identify(i, v, _) if i == n => Some(v.clone()),
                            _ => None,
                        })
                        .unwrap_or(Sym::Lit(None));
                    return vec![(path, v)];
                }
                _ => {}
            }
        }
        // The class's own method: follow it.
        if let Some((def, owner)) = self.index.method(&self.class, name, self.in_class_method) {
            if !self.enter() {
                path.effects.push(Effect::Unknown(
                    format!("{name} (calls nest too deep)"),
                    line,
                ));
                return vec![(path, Sym::unknown(name))];
            }
            let inner = self.for_class(owner);
            let saved_env = path.env.clone();
            let mut start = path;
            for (param, arg) in def.params.iter().zip(args) {
                start.env.insert(param.clone(), arg.clone());
            }
            let outcomes = inner.body_value_pub(&def.body, start, !statement);
            self.leave();
            return outcomes
                .into_iter()
                .map(|(mut p, v)| {
                    // Locals do not leak out of a method; instance variables do.
                    let ivars: Vec<(String, Sym)> = p
                        .env
                        .iter()
                        .filter(|(k, _)| k.starts_with('@'))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    p.env = saved_env.clone();
                    p.env.extend(ivars);
                    p.returned = false;
                    p.return_value = None;
                    (p, v)
                })
                .collect();
        }
        match name {
            "raise" | "fail" => {
                path.effects.push(Effect::Unknown(
                    source(&Expr::Call(Box::new(c.clone()))),
                    line,
                ));
                path.rejected = true;
                vec![(path, nil)]
            }
            "logger" => vec![(path, Sym::unknown("logger"))],
            _ => {
                let text = source(&Expr::Call(Box::new(c.clone())));
                if statement {
                    path.effects.push(Effect::Unknown(
                        format!("{text} (a method the reader cannot find)"),
                        line,
                    ));
                }
                vec![(path, Sym::unknown(text))]
            }
        }
    }
}

/// `x.present?`, decided when `x` is a literal.
fn present(recv: &Sym) -> Sym {
    let known = match recv {
        Sym::Lit(None) => Some(false),
        Sym::Lit(Some(t)) => Some(t != "false" && !t.trim().is_empty()),
        Sym::List(items) => Some(!items.is_empty()),
        _ => None,
    };
    match known {
        Some(b) => Sym::Lit(Some(b.to_string())),
        None => Sym::Present(Box::new(recv.clone())),
    }
}

/// `Model.find_by(column: value)` and friends; `scope` is the receiver when it is not a
/// constant (`current_user.rooms`).
fn finder(model: &str, name: &str, args: &[Sym], exprs: &[Expr], scope: Option<&Sym>) -> Sym {
    let mut keys: Vec<(String, Sym)> = match (name, exprs.first()) {
        ("find" | "find_by_id", _) => vec![("id".into(), first_or_nil(args))],
        ("find_signed" | "find_signed!", _) => vec![("signed id".into(), first_or_nil(args))],
        ("find_by_token", _) => vec![("token".into(), first_or_nil(args))],
        (_, Some(Expr::Hash(pairs))) => {
            let values: Vec<Sym> = match args.first() {
                Some(Sym::Hash(entries)) => entries.iter().map(|(_, v)| v.clone()).collect(),
                // keyword arguments that came back as one unknown value: re-read each
                _ => pairs.iter().map(|(_, v)| Sym::unknown(source(v))).collect(),
            };
            pairs
                .iter()
                .zip(values)
                .map(|((k, _), v)| (k.literal_text().unwrap_or_else(|| source(k)), v))
                .collect()
        }
        _ => Vec::new(),
    };
    if keys.is_empty() && !args.is_empty() {
        keys.push((String::new(), first_or_nil(args)));
    }
    let (column, by) = keys
        .first()
        .cloned()
        .unwrap_or((String::new(), Sym::Lit(None)));
    keys.retain(|(k, _)| !k.is_empty());
    Sym::Record {
        model: model.to_string(),
        finder: name.to_string(),
        column,
        by: Box::new(by),
        keys,
        scope: scope.map(|s| Box::new(s.clone())),
    }
}

fn first_or_nil(args: &[Sym]) -> Sym {
    args.first().cloned().unwrap_or(Sym::Lit(None))
}

/// A method called on a known value; `None` when the walker does not know it.
fn on_value(recv: &Sym, name: &str, args: &[Sym], whole: &Expr) -> Option<Sym> {
    if let Some(v) = super::known::on_value(recv, name, args) {
        return Some(v);
    }
    let arg_text = args.first().and_then(Sym::lit).map(String::from);
    let same = || Some(recv.clone());
    match name {
        "present?" => return Some(present(recv)),
        "blank?" | "nil?" | "empty?" => {
            return Some(match present(recv) {
                Sym::Lit(Some(t)) => Sym::Lit(Some((t != "true").to_string())),
                other => Sym::Not(Box::new(other)),
            });
        }
        "presence" | "to_s" | "to_param" | "to_str" | "itself" | "freeze" | "to_sym" | "strip" => {
            return same();
        }
        "include?" | "member?" if !matches!(recv, Sym::Params) => {
            return Some(Sym::Includes(
                Box::new(recv.clone()),
                Box::new(args.first().cloned().unwrap_or(Sym::Lit(None))),
            ));
        }
        "==" | "eql?" => {
            return Some(Sym::Eq(
                Box::new(recv.clone()),
                Box::new(args.first().cloned().unwrap_or(Sym::Lit(None))),
            ));
        }
        _ => {}
    }
    match recv {
        Sym::Data(None) => match (name, arg_text) {
            ("fetch" | "dig" | "[]", Some(k)) => Some(Sym::Data(Some(k))),
            _ => None,
        },
        Sym::Params => match (name, arg_text) {
            ("fetch" | "dig" | "[]", Some(k)) => Some(Sym::Param(k)),
            ("key?" | "has_key?" | "include?", Some(k)) => Some(Sym::HasKey(k)),
            _ => None,
        },
        Sym::Claims(call) => match (name, arg_text) {
            ("fetch" | "dig" | "[]", Some(k)) => Some(Sym::Claim(k)),
            ("with_indifferent_access" | "symbolize_keys" | "deep_symbolize_keys" | "to_h", _) => {
                Some(Sym::Claims(call.clone()))
            }
            _ => None,
        },
        Sym::JwtDecoded(call) if name == "first" => Some(Sym::Claims(call.clone())),
        Sym::Token(TokenSource::AuthorizationHeader) => match name {
            "split" | "last" | "sub" | "gsub" | "delete_prefix" | "remove" | "match" => same(),
            _ => None,
        },
        Sym::Unknown(obj) => object_call(obj, name, args, arg_text),
        Sym::Record { .. }
        | Sym::New(..)
        | Sym::Identifier(_)
        | Sym::Attr(..)
        | Sym::WardenUser(_)
            if args.is_empty() && !name.ends_with(['?', '!']) =>
        {
            Some(Sym::Attr(Box::new(recv.clone()), name.to_string()))
        }
        Sym::Record { .. } if matches!(name, "first" | "take" | "sole" | "last") => same(),
        Sym::Record { .. } | Sym::Identifier(_) | Sym::Attr(..) if FINDERS.contains(&name) => {
            let Expr::Call(c) = whole else { return None };
            Some(finder(&recv.to_string(), name, args, &c.args, Some(recv)))
        }
        _ => None,
    }
}

/// Calls on the request-side objects (`request`, `cookies`, `env["warden"]`, `connection`).
fn object_call(obj: &str, name: &str, args: &[Sym], key: Option<String>) -> Option<Sym> {
    let o = |s: &str| Some(Sym::unknown(s));
    match (obj, name) {
        ("request", "params" | "query_parameters" | "GET") => o("request.params"),
        ("request", "headers") => o("request.headers"),
        ("request", "session") => o("request.session"),
        ("request", "env") => o("request.env"),
        ("request", "cookies" | "cookie_jar") => o("cookies"),
        ("request", "authorization") => Some(Sym::Token(TokenSource::AuthorizationHeader)),
        ("cookies", "signed") => o("cookies.signed"),
        ("cookies", "encrypted") => o("cookies.encrypted"),
        ("cookies", "permanent") => o("cookies"),
        ("request.session" | "session", "id") => Some(Sym::SessionId),
        ("warden", "user" | "authenticate" | "authenticate!") => Some(Sym::WardenUser(
            args.first().and_then(Sym::lit).map(String::from),
        )),
        ("warden", "authenticated?") => Some(Sym::unknown("warden.authenticated?")),
        (
            "request.params" | "request.headers" | "cookies" | "cookies.signed"
            | "cookies.encrypted" | "request.session" | "session" | "env" | "request.env"
            | "connection.claims",
            "fetch" | "[]" | "dig",
        ) => object_key(obj, key?),
        _ => None,
    }
}
