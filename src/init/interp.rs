//! A symbolic walk through `connect`, `subscribed` and actions: every path through the
//! `if`s, with the conditions it took, the values it bound and what it did (stream, reject,
//! transmit, broadcast, identify, write somewhere). Private helper methods are followed;
//! whatever is not recognised is recorded with its source, never dropped.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::classes::{ClassIndex, ClassInfo};
use super::ruby::print::source;
use super::ruby::{Body, Call, Expr, Stmt, StrPart};
use super::sym::{JwtCall, Sym};
use super::symops::{bind, concat, index, last_assigned, negate, truth, value_sym};
use super::value::{Scope, Value};

/// How a stream was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `stream_from name`
    From,
    /// `stream_for model`
    For,
    /// `stream_or_reject_for model`
    OrRejectFor,
}

/// Something a path did.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A stream started.
    Stream {
        /// The name (or model, for `stream_for`).
        target: Sym,
        /// Which call.
        kind: StreamKind,
        /// A block, lambda or callback that runs per message (its source).
        callback: Option<String>,
        /// Line.
        line: u32,
    },
    /// `reject` / `reject_unauthorized_connection`
    Reject(u32),
    /// `transmit(data)`
    Transmit(Sym, u32),
    /// `ActionCable.server.broadcast(stream, data)` or `broadcast_to(model, data)`.
    Broadcast {
        /// Stream name, or the model for `broadcast_to`.
        target: Sym,
        /// Data.
        data: Sym,
        /// `Some(channel class)` for `broadcast_to`.
        to_model_of: Option<String>,
        /// Line.
        line: u32,
    },
    /// `self.name = value` in a connection.
    Identify(String, Sym, u32),
    /// A call made for its effect that the reader does not reproduce (a write, a job).
    SideEffect(String, u32),
    /// Logging (never reproduced, never a problem).
    Logging(u32),
    /// Something not understood.
    Unknown(String, u32),
    /// A `rescue` clause that was not followed (ferrocable does not raise where Ruby did).
    Rescue(String, u32),
    /// `stop_all_streams`, `stop_stream_from`.
    StopStreams(u32),
    /// `JWT.decode(...)` was called.
    Decoded(Box<JwtCall>),
}

/// One path through the code.
#[derive(Debug, Clone, Default)]
pub struct Path {
    /// Locals and instance variables (`@name`).
    pub env: BTreeMap<String, Sym>,
    /// Conditions taken, with their outcome and line.
    pub conds: Vec<(Sym, bool, u32)>,
    /// What it did, in order.
    pub effects: Vec<Effect>,
    /// Hit a reject.
    pub rejected: bool,
    /// Hit a `return` (the method is done).
    pub returned: bool,
    /// The value of the last `return`.
    pub return_value: Option<Sym>,
}

/// Whose code is walked: a connection or a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `ApplicationCable::Connection`
    Connection,
    /// A channel class.
    Channel,
}

/// The walker.
#[derive(Debug)]
pub struct Interp<'a> {
    /// Classes to follow calls into.
    pub index: &'a ClassIndex,
    /// The class whose methods `self` has.
    pub class: Rc<ClassInfo>,
    /// Connection or channel rules.
    pub role: Role,
    /// In a channel: the connection's `identified_by` names.
    pub identifiers: Vec<String>,
    /// In a channel: connection methods that return the JWT payload (`connection.claims`).
    pub claims_accessors: Vec<String>,
    /// Constants.
    pub scope: &'a Scope,
    /// Walking a class method: calls without a receiver find class methods.
    pub in_class_method: bool,
    depth: Rc<std::cell::Cell<usize>>,
}

const MAX_PATHS: usize = 64;
const MAX_DEPTH: usize = 8;

type Outcomes = Vec<(Path, Sym)>;

impl<'a> Interp<'a> {
    /// A walker over `class`'s methods.
    pub fn new(index: &'a ClassIndex, class: Rc<ClassInfo>, role: Role, scope: &'a Scope) -> Self {
        Interp {
            index,
            class,
            role,
            identifiers: Vec::new(),
            claims_accessors: Vec::new(),
            scope,
            in_class_method: false,
            depth: Rc::new(std::cell::Cell::new(0)),
        }
    }

    /// The same walker with `self` of another class (a method found in an ancestor or a
    /// class method of another class); the nesting depth is shared.
    pub(super) fn for_class(&self, class: Rc<ClassInfo>) -> Interp<'a> {
        Interp {
            index: self.index,
            class,
            role: self.role,
            identifiers: self.identifiers.clone(),
            claims_accessors: self.claims_accessors.clone(),
            scope: self.scope,
            in_class_method: self.in_class_method,
            depth: self.depth.clone(),
        }
    }

    /// Runs a body from one starting path; returns every path out of it.
    pub fn run(&self, body: &Body, start: Path) -> Vec<Path> {
        let mut paths = self.body(body, vec![start]);
        for p in &mut paths {
            p.returned = false;
        }
        paths
    }

    fn body(&self, body: &Body, mut paths: Vec<Path>) -> Vec<Path> {
        for stmt in body {
            let mut next = Vec::new();
            for p in paths {
                // reject_unauthorized_connection raises: nothing after it runs
                if p.returned || (p.rejected && self.role == Role::Connection) {
                    next.push(p);
                } else {
                    next.extend(self.stmt(stmt, p));
                }
            }
            if next.len() > MAX_PATHS {
                next.truncate(MAX_PATHS);
                if let Some(last) = next.last_mut() {
                    last.effects.push(Effect::Unknown(
                        "too many paths through this method".into(),
                        stmt.line,
                    ));
                }
            }
            paths = next;
        }
        paths
    }

    /// Runs a body and also yields the value of its last statement on each path.
    fn body_value(&self, body: &Body, path: Path, used: bool) -> Outcomes {
        let Some((last, init)) = body.split_last() else {
            return vec![(path, Sym::Lit(None))];
        };
        let mut out = Vec::new();
        for p in self.body(&init.to_vec(), vec![path]) {
            if p.returned {
                let v = p.return_value.clone().unwrap_or(Sym::Lit(None));
                out.push((p, v));
                continue;
            }
            match &last.expr {
                Expr::Return(_) => {
                    for p2 in self.stmt(last, p) {
                        let v = p2
                            .return_value
                            .clone()
                            .or_else(|| last_assigned(&last.expr, &p2))
                            .unwrap_or(Sym::Lit(None));
                        out.push((p2, v));
                    }
                }
                e => out.extend(self.eval(e, p, last.line, !used)),
            }
        }
        out
    }

    fn stmt(&self, stmt: &Stmt, path: Path) -> Vec<Path> {
        let line = stmt.line;
        match &stmt.expr {
            Expr::If(cond, yes, no) => {
                let mut out = Vec::new();
                for (p, c) in self.eval(cond, path, line, false) {
                    match truth(&c).or_else(|| decided(&p, &c)) {
                        Some(true) => out.extend(self.body(yes, vec![p])),
                        Some(false) => out.extend(self.body(no, vec![p])),
                        None => {
                            let mut taken = p.clone();
                            taken.conds.push((c.clone(), true, line));
                            out.extend(self.body(yes, vec![taken]));
                            let mut other = p;
                            other.conds.push((c, false, line));
                            out.extend(self.body(no, vec![other]));
                        }
                    }
                }
                out
            }
            Expr::Begin(..) => self
                .eval(&stmt.expr, path, line, true)
                .into_iter()
                .map(|(p, _)| p)
                .collect(),
            Expr::Return(value) => {
                let outcomes = match value {
                    Some(v) => self.eval(v, path, line, true),
                    None => vec![(path, Sym::Lit(None))],
                };
                outcomes
                    .into_iter()
                    .map(|(mut p, v)| {
                        p.returned = true;
                        p.return_value = Some(v);
                        p
                    })
                    .collect()
            }
            Expr::Unknown(text, l) => {
                let mut p = path;
                p.effects.push(Effect::Unknown(text.clone(), *l));
                vec![p]
            }
            Expr::Case(..) | Expr::Loop(..) => {
                let mut p = path;
                p.effects.push(Effect::Unknown(
                    source(&stmt.expr).chars().take(160).collect(),
                    line,
                ));
                vec![p]
            }
            e => self
                .eval(e, path, line, true)
                .into_iter()
                .map(|(p, _)| p)
                .collect(),
        }
    }

    /// Evaluates `e` on `path`; `statement` when its value is not used (an unknown call is
    /// then a side effect rather than an unknown value).
    fn eval(&self, e: &Expr, path: Path, line: u32, statement: bool) -> Outcomes {
        match e {
            Expr::Nil => vec![(path, Sym::Lit(None))],
            Expr::Bool(b) => vec![(path, Sym::Lit(Some(b.to_string())))],
            Expr::Number(n) => vec![(path, Sym::Lit(Some(n.clone())))],
            Expr::Sym(s) => vec![(path, Sym::Lit(Some(s.clone())))],
            Expr::Str(parts) => self.string(parts, path, line),
            Expr::Array(items) => self
                .eval_all(items, path, line)
                .into_iter()
                .map(|(p, v)| (p, Sym::List(v)))
                .collect(),
            Expr::Const(segs) => {
                let v = match self
                    .scope
                    .constants_of(&segs.join("::"), &self.class.ns.name)
                {
                    Some(v) => value_sym(v),
                    None => Sym::unknown(segs.join("::")),
                };
                vec![(path, v)]
            }
            Expr::Name(n) => self.name(n, path, line, statement),
            Expr::IVar(n) => {
                let v = path
                    .env
                    .get(&format!("@{n}"))
                    .cloned()
                    .unwrap_or(Sym::Lit(None));
                vec![(path, v)]
            }
            Expr::SelfRef => vec![(path, Sym::unknown("self"))],
            Expr::Index(recv, args) => {
                let mut out = Vec::new();
                for (p, r) in self.eval(recv, path, line, false) {
                    for (p2, a) in self.eval_all(args, p, line) {
                        out.push((p2, index(&r, &a, e)));
                    }
                }
                out
            }
            Expr::Call(c) => self.call(c, path, line, statement),
            Expr::Assign(target, op, value) => self.assign(target, op, value, path, line),
            Expr::MultiAssign(targets, value) => {
                let mut out = Vec::new();
                for (mut p, v) in self.eval(value, path, line, false) {
                    for (i, t) in targets.iter().enumerate() {
                        let item = match (&v, i) {
                            (Sym::JwtDecoded(call), 0) => Sym::Claims(call.clone()),
                            (Sym::List(items), i) => {
                                items.get(i).cloned().unwrap_or(Sym::Lit(None))
                            }
                            _ => Sym::unknown(source(value)),
                        };
                        bind(&mut p, t, item);
                    }
                    out.push((p, v));
                }
                out
            }
            Expr::Not(inner) => self
                .eval(inner, path, line, false)
                .into_iter()
                .map(|(p, v)| (p, negate(v)))
                .collect(),
            Expr::And(a, b) | Expr::Or(a, b) => self.logical(e, a, b, path, line),
            Expr::Binary(op, a, b) if matches!(*op, "==" | "!=" | "===") => {
                let mut out = Vec::new();
                for (p, l) in self.eval(a, path, line, false) {
                    for (p2, r) in self.eval(b, p, line, false) {
                        let eq = Sym::Eq(Box::new(l.clone()), Box::new(r));
                        out.push((p2, if *op == "!=" { negate(eq) } else { eq }));
                    }
                }
                out
            }
            Expr::If(cond, yes, no) => {
                let mut out = Vec::new();
                for (p, c) in self.eval(cond, path, line, false) {
                    match truth(&c).or_else(|| decided(&p, &c)) {
                        Some(true) => out.extend(self.body_value(yes, p, !statement)),
                        Some(false) => out.extend(self.body_value(no, p, !statement)),
                        None => {
                            let mut a = p.clone();
                            a.conds.push((c.clone(), true, line));
                            out.extend(self.body_value(yes, a, !statement));
                            let mut b = p;
                            b.conds.push((c, false, line));
                            out.extend(self.body_value(no, b, !statement));
                        }
                    }
                }
                out
            }
            Expr::Begin(body, rescues, ensure) => {
                let mut p = path;
                for r in rescues {
                    let what = r
                        .body
                        .iter()
                        .map(|s| source(&s.expr))
                        .collect::<Vec<_>>()
                        .join("; ");
                    p.effects.push(Effect::Rescue(what, line));
                }
                let mut out = Vec::new();
                for (p2, v) in self.body_value(body, p, !statement) {
                    for p3 in self.body(ensure, vec![p2]) {
                        out.push((p3, v.clone()));
                    }
                }
                out
            }
            Expr::Hash(pairs) => {
                let values: Vec<Expr> = pairs.iter().map(|(_, v)| v.clone()).collect();
                self.eval_all(&values, path, line)
                    .into_iter()
                    .map(|(p, vals)| {
                        let entries = pairs
                            .iter()
                            .zip(vals)
                            .map(|((k, _), v)| (k.literal_text().unwrap_or_else(|| source(k)), v))
                            .collect();
                        (p, Sym::Hash(entries))
                    })
                    .collect()
            }
            Expr::Return(_) => {
                let stmt = Stmt {
                    line,
                    expr: e.clone(),
                };
                self.stmt(&stmt, path)
                    .into_iter()
                    .map(|p| {
                        let v = p.return_value.clone().unwrap_or(Sym::Lit(None));
                        (p, v)
                    })
                    .collect()
            }
            Expr::Unknown(text, l) => {
                let mut p = path;
                p.effects.push(Effect::Unknown(text.clone(), *l));
                vec![(p, Sym::unknown(text.clone()))]
            }
            other => {
                let mut p = path;
                if statement {
                    p.effects.push(Effect::Unknown(source(other), line));
                }
                vec![(p, Sym::unknown(source(other)))]
            }
        }
    }

    fn eval_all(&self, items: &[Expr], path: Path, line: u32) -> Vec<(Path, Vec<Sym>)> {
        let mut acc = vec![(path, Vec::new())];
        for item in items {
            let mut next = Vec::new();
            for (p, vals) in acc {
                for (p2, v) in self.eval(item, p, line, false) {
                    let mut vals = vals.clone();
                    vals.push(v);
                    next.push((p2, vals));
                }
            }
            acc = next;
        }
        acc
    }

    fn string(&self, parts: &[StrPart], path: Path, line: u32) -> Outcomes {
        let exprs: Vec<Expr> = parts
            .iter()
            .map(|p| match p {
                StrPart::Text(t) => Expr::Str(vec![StrPart::Text(t.clone())]),
                StrPart::Code(e) => e.clone(),
            })
            .collect();
        if let [Expr::Str(only)] = exprs.as_slice()
            && let [StrPart::Text(t)] = only.as_slice()
        {
            return vec![(path, Sym::Lit(Some(t.clone())))];
        }
        self.eval_all(&exprs, path, line)
            .into_iter()
            .map(|(p, vals)| (p, concat(vals)))
            .collect()
    }

    fn logical(&self, whole: &Expr, a: &Expr, b: &Expr, path: Path, line: u32) -> Outcomes {
        let is_and = matches!(whole, Expr::And(..));
        let mut out = Vec::new();
        for (p, left) in self.eval(a, path, line, false) {
            match (truth(&left), is_and) {
                (Some(false), true) | (Some(true), false) => {
                    out.push((p, left));
                    continue;
                }
                (Some(_), _) => {
                    out.extend(self.eval(b, p, line, false));
                    continue;
                }
                _ => {}
            }
            // Does the right side do something (`x || reject_unauthorized_connection`)?
            let trial = self.eval(b, p.clone(), line, false);
            // A rescue clause or a log line on the right is not an action of its own.
            let acts = trial.iter().any(|(t, _)| {
                t.rejected
                    || t.returned
                    || t.effects[p.effects.len().min(t.effects.len())..]
                        .iter()
                        .any(|e| !matches!(e, Effect::Rescue(..) | Effect::Logging(_)))
            });
            if acts {
                let mut short = p.clone();
                short.conds.push((left.clone(), !is_and, line));
                out.push((short, left.clone()));
                for (mut t, v) in trial {
                    t.conds.insert(p.conds.len(), (left.clone(), is_and, line));
                    out.push((t, v));
                }
            } else {
                for (t, right) in trial {
                    let combined = match (is_and, &right) {
                        // `x || {}`: the empty default only stands in for a missing x, whose
                        // keys then read as nil, as x's own missing keys do.
                        (false, Sym::Hash(h)) if h.is_empty() => left.clone(),
                        (false, Sym::List(l)) if l.is_empty() => left.clone(),
                        (true, _) => Sym::And(Box::new(left.clone()), Box::new(right)),
                        (false, _) => Sym::Or(Box::new(left.clone()), Box::new(right)),
                    };
                    out.push((t, combined));
                }
            }
        }
        out
    }

    fn assign(&self, target: &Expr, op: &str, value: &Expr, path: Path, line: u32) -> Outcomes {
        if op == "||=" {
            let current = match target {
                Expr::Name(n) => path.env.get(n).cloned(),
                Expr::IVar(n) => path.env.get(&format!("@{n}")).cloned(),
                _ => None,
            };
            if let Some(v) = current.filter(|v| *v != Sym::Lit(None)) {
                return vec![(path, v)];
            }
        }
        let mut out = Vec::new();
        for (mut p, v) in self.eval(value, path, line, false) {
            let v = if matches!(op, "=" | "||=") {
                v
            } else {
                Sym::unknown(format!("{} {op} {}", source(target), source(value)))
            };
            match target {
                Expr::Call(c) if matches!(c.recv, Some(Expr::SelfRef)) => {
                    if self.role == Role::Connection {
                        p.effects
                            .push(Effect::Identify(c.name.clone(), v.clone(), line));
                    } else {
                        p.effects
                            .push(Effect::SideEffect(source(target) + " = ...", line));
                    }
                }
                Expr::Name(_) | Expr::IVar(_) => bind(&mut p, target, v.clone()),
                _ => p.effects.push(Effect::SideEffect(
                    format!("{} {op} {}", source(target), source(value)),
                    line,
                )),
            }
            out.push((p, v));
        }
        out
    }

    fn name(&self, n: &str, path: Path, line: u32, statement: bool) -> Outcomes {
        if let Some(v) = path.env.get(n) {
            let v = v.clone();
            return vec![(path, v)];
        }
        let call = Call {
            recv: None,
            name: n.to_string(),
            args: Vec::new(),
            block: None,
            safe: false,
            line,
        };
        self.call(&call, path, line, statement)
    }
}

/// A condition this path has already taken (`a && b` short-circuited on `a` being false,
/// then `if` on the same value): its outcome, so the path does not take both branches.
fn decided(path: &Path, cond: &Sym) -> Option<bool> {
    path.conds
        .iter()
        .rev()
        .find(|(c, _, _)| c == cond)
        .map(|(_, outcome, _)| *outcome)
}

impl Scope {
    /// A constant as seen from inside `class` (`ROLES` in `StaffChannel`).
    pub fn constants_of(&self, name: &str, class: &str) -> Option<&Value> {
        self.constants
            .get(&format!("{class}::{name}"))
            .or_else(|| self.constants.get(name))
    }
}

impl Interp<'_> {
    pub(super) fn enter(&self) -> bool {
        if self.depth.get() >= MAX_DEPTH {
            return false;
        }
        self.depth.set(self.depth.get() + 1);
        true
    }

    pub(super) fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    pub(super) fn eval_pub(&self, e: &Expr, path: Path, line: u32, statement: bool) -> Outcomes {
        self.eval(e, path, line, statement)
    }

    pub(super) fn eval_all_pub(
        &self,
        items: &[Expr],
        path: Path,
        line: u32,
    ) -> Vec<(Path, Vec<Sym>)> {
        self.eval_all(items, path, line)
    }

    pub(super) fn body_value_pub(&self, body: &Body, path: Path, used: bool) -> Outcomes {
        self.body_value(body, path, used)
    }
}
