//! The app's cable code read into facts: the connection class (`identified_by`, every path
//! through `connect`) and each channel (every path through `subscribed` and its callbacks,
//! each action, `unsubscribed`, timers, and class-level statements the reader does not know).

use std::rc::Rc;

use super::classes::{ClassIndex, ClassInfo};
use super::interp::{Effect, Interp, Path, Role};
use super::ruby::print::source;
use super::ruby::{Expr, Visibility};
use super::sym::{JwtCall, Sym};
use super::value::Scope;

/// The connection class.
#[derive(Debug, Clone)]
pub struct ConnectionFacts {
    /// Class name.
    pub name: String,
    /// File.
    pub file: String,
    /// `identified_by` names in order.
    pub identifiers: Vec<String>,
    /// `None` when the class has no `connect` (Rails accepts everyone).
    pub connect: Option<Vec<Path>>,
    /// Line of `connect`.
    pub connect_line: u32,
    /// Line of the class.
    pub line: u32,
    /// Connection methods returning the decoded JWT payload (`attr_reader :claims`).
    pub claims_accessors: Vec<String>,
    /// The first `JWT.decode` on a path that connects.
    pub jwt: Option<JwtCall>,
}

/// A channel class.
#[derive(Debug, Clone)]
pub struct ChannelFacts {
    /// Class name, as clients send it.
    pub name: String,
    /// File and line of the class.
    pub file: String,
    /// Line of `class`.
    pub line: u32,
    /// Superclasses, nearest first.
    pub superclasses: Vec<String>,
    /// Paths through `subscribed` and the subscribe callbacks; `None` without `subscribed`.
    pub subscribe: Option<Vec<Path>>,
    /// Where `subscribed` is (`file:line`), if anywhere.
    pub subscribed_at: Option<String>,
    /// Public methods (actions), with their paths (started from the first accepting path).
    pub actions: Vec<ActionFacts>,
    /// Paths through `unsubscribed` and the unsubscribe callbacks.
    pub unsubscribe: Vec<Path>,
    /// `periodically` timers (their source and line).
    pub timers: Vec<(String, u32)>,
    /// Class-body statements the reader does not interpret (`rescue_from`, ...).
    pub unread: Vec<(String, u32)>,
}

/// One action.
#[derive(Debug, Clone)]
pub struct ActionFacts {
    /// Method name.
    pub name: String,
    /// `file:line`
    pub at: String,
    /// Whether it takes the `data` argument.
    pub takes_data: bool,
    /// Paths through it.
    pub paths: Vec<Path>,
}

/// Statements in a class body that are understood elsewhere or harmless.
const KNOWN_CLASS_CALLS: &[&str] = &[
    "identified_by",
    "include",
    "prepend",
    "extend",
    "attr_reader",
    "attr_accessor",
    "attr_writer",
    "private",
    "protected",
    "public",
    "on_subscribe",
    "after_subscribe",
    "before_subscribe",
    "on_unsubscribe",
    "after_unsubscribe",
    "before_unsubscribe",
    "periodically",
    "delegate",
    "private_constant",
    "module_function",
];

/// Reads the connection class (`ApplicationCable::Connection`), if the app has one.
pub fn connection(index: &ClassIndex, scope: &Scope) -> Option<ConnectionFacts> {
    let class = index.resolve("ApplicationCable::Connection", "")?;
    let ancestors = index.ancestors(&class);
    let mut identifiers = Vec::new();
    let mut accessors = Vec::new();
    for c in ancestors.iter().rev() {
        for s in c.statements() {
            let Some(call) = s.expr.as_call() else {
                continue;
            };
            let names = call.args.iter().filter_map(Expr::literal_text);
            match call.name.as_str() {
                "identified_by" => identifiers.extend(names),
                "attr_reader" | "attr_accessor" => accessors.extend(names),
                _ => {}
            }
        }
    }
    let mut interp = Interp::new(index, class.clone(), Role::Connection, scope);
    interp.identifiers = identifiers.clone();
    let found = index.method(&class, "connect", false);
    let connect_line = found.as_ref().map_or(0, |(d, _)| d.line);
    let connect = found.map(|(def, _)| interp.run(&def.body, Path::default()));
    let accepted: Vec<&Path> = connect.iter().flatten().filter(|p| !p.rejected).collect();
    let claims_accessors = accessors
        .into_iter()
        .filter(|a| {
            accepted
                .iter()
                .any(|p| matches!(p.env.get(&format!("@{a}")), Some(Sym::Claims(_))))
        })
        .collect();
    let jwt = accepted.iter().find_map(|p| {
        p.effects.iter().find_map(|e| match e {
            Effect::Decoded(call) => Some((**call).clone()),
            _ => None,
        })
    });
    Some(ConnectionFacts {
        name: class.ns.name.clone(),
        file: class.file.clone(),
        identifiers,
        connect,
        connect_line,
        line: class.ns.line,
        claims_accessors,
        jwt,
    })
}

/// Whether a class is a channel (it descends from Action Cable's channel base or Turbo's).
pub fn is_channel(index: &ClassIndex, class: &Rc<ClassInfo>) -> bool {
    !class.ns.is_module
        && index.superclass_names(class).iter().any(|s| {
            matches!(
                s.as_str(),
                "ActionCable::Channel::Base"
                    | "ApplicationCable::Channel"
                    | "Turbo::StreamsChannel"
            )
        })
}

/// Reads one channel.
pub fn channel(
    index: &ClassIndex,
    class: &Rc<ClassInfo>,
    connection: Option<&ConnectionFacts>,
    scope: &Scope,
) -> ChannelFacts {
    let mut interp = Interp::new(index, class.clone(), Role::Channel, scope);
    if let Some(conn) = connection {
        interp.identifiers = conn.identifiers.clone();
        interp.claims_accessors = conn.claims_accessors.clone();
    }
    let ancestors = index.ancestors(class);
    let mut callbacks: Vec<(String, Expr, u32)> = Vec::new();
    let mut timers = Vec::new();
    let mut unread = Vec::new();
    for c in ancestors.iter().rev() {
        for s in c.statements() {
            match &s.expr {
                Expr::Call(call) if call.recv.is_none() => {
                    let name = call.name.as_str();
                    if name.ends_with("_subscribe") {
                        callbacks.push((name.to_string(), s.expr.clone(), s.line));
                    } else if name == "periodically" {
                        timers.push((source(&s.expr), s.line));
                    } else if !KNOWN_CLASS_CALLS.contains(&name) {
                        unread.push((source(&s.expr), s.line));
                    }
                }
                Expr::Assign(t, _, _) if matches!(**t, Expr::Const(_)) => {}
                other => unread.push((source(other), s.line)),
            }
        }
    }
    let subscribed = index.method(class, "subscribed", false);
    let subscribed_at = subscribed
        .as_ref()
        .map(|(d, owner)| format!("{}:{}", owner.file, d.line));
    let before = run_callbacks(
        &interp,
        &callbacks,
        "before_subscribe",
        vec![Path::default()],
    );
    let subscribe = subscribed.map(|(def, _)| {
        let mut paths = Vec::new();
        for p in before.clone() {
            if p.rejected {
                paths.push(p);
            } else {
                paths.extend(interp.run(&def.body, p));
            }
        }
        let after = ["after_subscribe", "on_subscribe"];
        after.iter().fold(paths, |ps, kind| {
            run_callbacks(&interp, &callbacks, kind, ps)
        })
    });
    let start = subscribe
        .as_ref()
        .and_then(|paths| paths.iter().find(|p| !p.rejected).cloned())
        .map(|mut p| {
            p.effects.clear();
            p.conds.clear();
            p
        })
        .unwrap_or_default();
    let mut actions = Vec::new();
    let mut seen = Vec::new();
    for c in &ancestors {
        for def in &c.ns.defs {
            if def.singleton
                || def.visibility != Visibility::Public
                || matches!(
                    def.name.as_str(),
                    "subscribed" | "unsubscribed" | "initialize"
                )
                || seen.contains(&def.name)
            {
                continue;
            }
            seen.push(def.name.clone());
            let mut p = start.clone();
            if let Some(param) = def.params.first() {
                p.env.insert(param.clone(), Sym::Data(None));
            }
            actions.push(ActionFacts {
                name: def.name.clone(),
                at: format!("{}:{}", c.file, def.line),
                takes_data: !def.params.is_empty(),
                paths: interp.run(&def.body, p),
            });
        }
    }
    let mut unsubscribe = vec![start.clone()];
    if let Some((def, _)) = index.method(class, "unsubscribed", false) {
        unsubscribe = interp.run(&def.body, start);
    }
    for kind in ["before_unsubscribe", "after_unsubscribe", "on_unsubscribe"] {
        unsubscribe = run_callbacks(&interp, &callbacks, kind, unsubscribe);
    }
    ChannelFacts {
        name: class.ns.name.clone(),
        file: class.file.clone(),
        line: class.ns.line,
        superclasses: index.superclass_names(class),
        subscribe,
        subscribed_at,
        actions,
        unsubscribe,
        timers,
        unread,
    }
}

/// Runs the callbacks of one kind (`on_subscribe :present, unless: :subscription_rejected?`,
/// or a block) on every path; `unless: :subscription_rejected?` skips rejected paths.
fn run_callbacks(
    interp: &Interp<'_>,
    callbacks: &[(String, Expr, u32)],
    kind: &str,
    mut paths: Vec<Path>,
) -> Vec<Path> {
    for (name, expr, line) in callbacks {
        if name != kind {
            continue;
        }
        let Some(call) = expr.as_call() else { continue };
        let skip_rejected = call.args.iter().any(|a| {
            matches!(a, Expr::Hash(pairs) if pairs.iter().any(|(k, v)| {
                k.literal_text().as_deref() == Some("unless")
                    && v.literal_text().as_deref() == Some("subscription_rejected?")
            }))
        });
        let mut bodies = Vec::new();
        for a in &call.args {
            if let Some(method) = a.as_call().map(|c| c.name.clone()).or_else(|| match a {
                Expr::Sym(s) => Some(s.clone()),
                _ => None,
            }) {
                bodies.push(vec![super::ruby::Stmt {
                    line: *line,
                    expr: Expr::Name(method),
                }]);
            }
        }
        if let Some(block) = &call.block {
            bodies.push(block.body.clone());
        }
        let mut next = Vec::new();
        for p in paths {
            if p.rejected && skip_rejected {
                next.push(p);
                continue;
            }
            let mut ps = vec![p];
            for body in &bodies {
                ps = ps.into_iter().flat_map(|p| interp.run(body, p)).collect();
            }
            next.extend(ps);
        }
        paths = next;
    }
    paths
}

/// The paths through `subscribed` of a module the app prepends to (or includes in)
/// `Turbo::StreamsChannel`, walked as channel code; `None` when the reader cannot find it.
pub fn guard(index: &ClassIndex, module: &str, scope: &Scope) -> Option<Vec<Path>> {
    let class = index.resolve(module, "")?;
    let def = class
        .ns
        .defs
        .iter()
        .find(|d| d.name == "subscribed" && !d.singleton)?
        .clone();
    let interp = Interp::new(index, class, Role::Channel, scope);
    Some(interp.run(&def.body, Path::default()))
}
