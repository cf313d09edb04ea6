//! The expression level of the pattern reader: operators by precedence, calls with and
//! without parentheses, blocks, literals, and the block forms (`if`, `unless`, `case`,
//! `while`, `begin`). A construct it does not know makes the parse step fail ([`Stuck`]); the
//! statement level then keeps the whole statement as unknown.

use super::ast::{Block, Call, Expr, Stmt, StrPart};
use super::lexer::{Piece, Tok};
use super::parser::{P, Parser, Stuck, parse_tokens};

/// Binary operators by precedence, loosest first (Ruby's table, `..` and `?:` handled apart).
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["<=>", "==", "===", "!=", "=~", "!~"],
    &["<", "<=", ">", ">="],
    &["|", "^"],
    &["&"],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

const ASSIGN_OPS: &[&str] = &[
    "=", "||=", "&&=", "+=", "-=", "*=", "/=", "%=", "**=", "<<=", ">>=", "|=", "&=", "^=",
];

impl Parser<'_> {
    /// `not`, `and`, `or`: the loosest level.
    pub(super) fn expr_stmt(&mut self) -> P<Expr> {
        let mut left = if self.eat_kw("not") {
            Expr::Not(Box::new(self.expr_stmt()?))
        } else {
            self.expr()?
        };
        loop {
            if self.eat_kw("and") {
                let right = self.expr()?;
                left = Expr::And(Box::new(left), Box::new(right));
            } else if self.eat_kw("or") {
                let right = self.expr()?;
                left = Expr::Or(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    /// Assignment (right-associative), multiple assignment, or a ternary.
    pub(super) fn expr(&mut self) -> P<Expr> {
        if let Some(targets) = self.multi_assign_targets() {
            let first = self.ternary()?;
            let value = if self.is_op(",") {
                let mut items = vec![first];
                while self.eat_op(",") {
                    items.push(self.ternary()?);
                }
                Expr::Array(items)
            } else {
                first
            };
            return Ok(Expr::MultiAssign(targets, Box::new(value)));
        }
        let left = self.ternary()?;
        if let Some(Tok::Op(op)) = self.peek()
            && ASSIGN_OPS.contains(op)
            && assignable(&left)
        {
            self.at += 1;
            if let Expr::Name(n) = &left {
                self.declare_local(n);
            }
            let value = self.expr()?;
            return Ok(Expr::Assign(Box::new(left), op, Box::new(value)));
        }
        Ok(left)
    }

    /// `a, b = ...`: the targets, with the cursor after `=`; `None` (cursor unmoved) otherwise.
    fn multi_assign_targets(&mut self) -> Option<Vec<Expr>> {
        let start = self.at;
        let mut targets = Vec::new();
        loop {
            let _ = self.eat_op("*");
            match self.peek() {
                Some(Tok::Ident(n)) => targets.push(Expr::Name(n.clone())),
                Some(Tok::IVar(n)) => targets.push(Expr::IVar(n.clone())),
                _ => break,
            }
            self.at += 1;
            if !self.eat_op(",") {
                break;
            }
        }
        if targets.len() >= 2 && self.is_op("=") {
            self.at += 1;
            for t in &targets {
                if let Expr::Name(n) = t {
                    self.declare_local(n);
                }
            }
            return Some(targets);
        }
        self.at = start;
        None
    }

    pub(super) fn ternary(&mut self) -> P<Expr> {
        let cond = self.range()?;
        if !self.is_op("?") {
            return Ok(cond);
        }
        self.at += 1;
        self.skip_newlines();
        let line = self.line();
        let yes = self.ternary()?;
        self.skip_newlines();
        if !self.eat_op(":") {
            // `a ? b :c` lexes the last part as a symbol
            return Err(Stuck);
        }
        self.skip_newlines();
        let no = self.ternary()?;
        Ok(Expr::If(
            Box::new(cond),
            vec![Stmt { line, expr: yes }],
            vec![Stmt { line, expr: no }],
        ))
    }

    fn range(&mut self) -> P<Expr> {
        let left = self.binary(0)?;
        if self.eat_op("..") || self.eat_op("...") {
            if self.at_statement_end() || self.is_op(")") {
                return Ok(Expr::Range(Box::new(left), Box::new(Expr::Nil)));
            }
            let right = self.binary(0)?;
            return Ok(Expr::Range(Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    fn binary(&mut self, level: usize) -> P<Expr> {
        if level >= LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let Some(Tok::Op(op)) = self.peek() else {
                return Ok(left);
            };
            if !LEVELS[level].contains(op) {
                return Ok(left);
            }
            self.at += 1;
            self.skip_newlines();
            let mut right = self.binary(level + 1)?;
            // `a && b = c` is `a && (b = c)`
            if matches!(*op, "&&" | "||")
                && let Some(Tok::Op(assign)) = self.peek()
                && ASSIGN_OPS.contains(assign)
                && assignable(&right)
            {
                self.at += 1;
                if let Expr::Name(n) = &right {
                    self.declare_local(n);
                }
                let value = self.expr()?;
                right = Expr::Assign(Box::new(right), assign, Box::new(value));
            }
            left = match *op {
                "||" => Expr::Or(Box::new(left), Box::new(right)),
                "&&" => Expr::And(Box::new(left), Box::new(right)),
                op => Expr::Binary(op, Box::new(left), Box::new(right)),
            };
        }
    }

    fn unary(&mut self) -> P<Expr> {
        if self.eat_op("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_op("-") {
            let e = self.unary()?;
            return Ok(match e {
                Expr::Number(n) => Expr::Number(format!("-{n}")),
                e => Expr::Binary("-", Box::new(Expr::Number("0".into())), Box::new(e)),
            });
        }
        if self.eat_op("+") || self.eat_op("~") {
            return self.unary();
        }
        if self.eat_op("&") || self.eat_op("*") || self.eat_op("**") {
            if self.is_op(")") || self.is_op(",") || self.is_op("]") {
                // anonymous forwarding: `f(&)`, `f(*)`
                return Ok(Expr::Splat(Box::new(Expr::Nil)));
            }
            return Ok(Expr::Splat(Box::new(self.unary()?)));
        }
        if self.eat_kw("defined?") {
            let paren = self.eat_op("(");
            let e = self.expr()?;
            if paren {
                self.expect_op(")")?;
            }
            return Ok(Expr::Defined(Box::new(e)));
        }
        let base = self.postfix()?;
        if self.eat_op("**") {
            let exp = self.unary()?;
            return Ok(Expr::Binary("**", Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    /// A primary followed by `.call`, `&.call`, `::Const`, `[index]` and blocks.
    fn postfix(&mut self) -> P<Expr> {
        let mut expr = self.primary()?;
        loop {
            let spaced = self.token().is_some_and(|t| t.spaced);
            if self.is_op(".") || self.is_op("&.") {
                let safe = self.is_op("&.");
                self.at += 1;
                self.skip_newlines();
                let line = self.line();
                let name = match self.peek() {
                    Some(Tok::Ident(n) | Tok::Const(n)) => n.clone(),
                    Some(Tok::Keyword(k)) => k.to_string(),
                    Some(Tok::Op("(")) => "call".to_string(),
                    Some(Tok::Label(n)) => {
                        // `recv.name:` cannot be a label; undo the lexer's guess
                        n.clone()
                    }
                    _ => return Err(Stuck),
                };
                if !self.is_op("(") {
                    self.at += 1;
                }
                expr = self.call_rest(Some(expr), name, safe, line)?;
            } else if self.is_op("::") {
                self.at += 1;
                match self.peek() {
                    Some(Tok::Const(c)) => {
                        let c = c.clone();
                        self.at += 1;
                        expr = match expr {
                            Expr::Const(mut segs) if !self.is_op("(") => {
                                segs.push(c);
                                Expr::Const(segs)
                            }
                            other => {
                                let line = self.line();
                                self.call_rest(Some(other), c, false, line)?
                            }
                        };
                    }
                    Some(Tok::Ident(n)) => {
                        let n = n.clone();
                        self.at += 1;
                        let line = self.line();
                        expr = self.call_rest(Some(expr), n, false, line)?;
                    }
                    _ => return Err(Stuck),
                }
            } else if self.is_op("[") && !spaced {
                self.at += 1;
                let args = self.arg_list(&["]"])?;
                self.expect_op("]")?;
                expr = Expr::Index(Box::new(expr), args);
            } else if self.is_op("{") && callable(&expr, self) {
                let block = self.brace_block()?;
                expr = attach_block(expr, block);
            } else if self.is_kw("do") && !self.no_do && callable(&expr, self) {
                let block = self.do_block()?;
                expr = attach_block(expr, block);
            } else {
                return Ok(expr);
            }
        }
    }

    /// After a method name: `(args)`, command arguments, or nothing.
    fn call_rest(&mut self, recv: Option<Expr>, name: String, safe: bool, line: u32) -> P<Expr> {
        let args = if self.is_op("(") && !self.token().is_some_and(|t| t.spaced) {
            self.at += 1;
            let saved = std::mem::replace(&mut self.no_do, false);
            let args = self.arg_list(&[")"]);
            self.no_do = saved;
            let args = args?;
            self.expect_op(")")?;
            args
        } else if self.starts_command_arg() {
            self.command_args()?
        } else {
            Vec::new()
        };
        let mut call = Call {
            recv,
            name,
            args,
            block: None,
            safe,
            line,
        };
        if self.is_kw("do") && !self.no_do {
            call.block = Some(self.do_block()?);
        }
        Ok(Expr::Call(Box::new(call)))
    }

    /// Whether the next token, on this line and after a space, starts a command argument
    /// (`stream_from "x"`, `reject unless ...` is not one).
    fn starts_command_arg(&self) -> bool {
        let Some(t) = self.token() else { return false };
        if !t.spaced {
            return false;
        }
        let tight_next = self.toks.get(self.at + 1).is_some_and(|n| !n.spaced);
        match &t.tok {
            Tok::Str(_)
            | Tok::Symbol(_)
            | Tok::Number(_)
            | Tok::Ident(_)
            | Tok::Const(_)
            | Tok::IVar(_)
            | Tok::GVar(_)
            | Tok::Label(_)
            | Tok::Regex(..)
            | Tok::Words(..) => true,
            Tok::Keyword(k) => matches!(
                *k,
                "nil" | "true" | "false" | "self" | "not" | "defined?" | "super" | "__method__"
            ),
            Tok::Op("[" | "->" | "::" | "(") => true,
            Tok::Op("*" | "**" | "&" | "-" | "!" | ":") => tight_next,
            _ => false,
        }
    }

    fn command_args(&mut self) -> P<Vec<Expr>> {
        let saved = std::mem::replace(&mut self.no_do, true);
        let result = self.arg_list(&[]);
        self.no_do = saved;
        result
    }

    /// Comma-separated arguments up to a closer (or the end of the command when `closers` is
    /// empty). Keyword arguments and `key => value` pairs are gathered into one trailing hash.
    pub(super) fn arg_list(&mut self, closers: &[&str]) -> P<Vec<Expr>> {
        let mut args = Vec::new();
        let mut pairs = Vec::new();
        let bracketed = !closers.is_empty();
        loop {
            if bracketed {
                self.skip_newlines();
            }
            if let Some(Tok::Op(op)) = self.peek()
                && closers.contains(op)
            {
                break;
            }
            if !bracketed && self.at_statement_end() {
                break;
            }
            if let Some(Tok::Label(key)) = self.peek() {
                let key = key.clone();
                self.at += 1;
                self.skip_newlines();
                // `key:` alone is Ruby 3.1 shorthand for `key: key`
                let value = if self.is_op(",") || self.is_op(")") || self.at_statement_end() {
                    Expr::Name(key.clone())
                } else {
                    self.arg()?
                };
                pairs.push((Expr::Sym(key), value));
            } else if self.is_op("**") {
                self.at += 1;
                let value = self.arg()?;
                pairs.push((Expr::Splat(Box::new(Expr::Nil)), value));
            } else {
                let value = self.arg()?;
                if self.eat_op("=>") {
                    self.skip_newlines();
                    let v = self.arg()?;
                    pairs.push((value, v));
                } else if !pairs.is_empty() {
                    return Err(Stuck);
                } else {
                    args.push(value);
                }
            }
            if bracketed {
                self.skip_newlines();
            }
            if !self.eat_op(",") {
                break;
            }
        }
        if !pairs.is_empty() {
            args.push(Expr::Hash(pairs));
        }
        Ok(args)
    }

    fn arg(&mut self) -> P<Expr> {
        self.expr()
    }

    fn primary(&mut self) -> P<Expr> {
        let line = self.line();
        let Some(tok) = self.peek() else {
            return Err(Stuck);
        };
        self.at += 1;
        Ok(match tok {
            Tok::Number(n) => Expr::Number(n.clone()),
            Tok::Str(pieces) => {
                let mut parts = string_parts(pieces);
                // "a" "b": adjacent literals concatenate
                while let Some(Tok::Str(more)) = self.peek() {
                    self.at += 1;
                    parts.extend(string_parts(more));
                }
                Expr::Str(parts)
            }
            Tok::Symbol(s) => Expr::Sym(s.clone()),
            Tok::Regex(pieces, flags) => Expr::Regex(string_parts(pieces), flags.clone()),
            Tok::Words(words, symbols) => Expr::Array(
                words
                    .iter()
                    .map(|w| {
                        if *symbols {
                            Expr::Sym(w.clone())
                        } else {
                            Expr::Str(vec![StrPart::Text(w.clone())])
                        }
                    })
                    .collect(),
            ),
            Tok::IVar(n) => Expr::IVar(n.clone()),
            Tok::GVar(n) => Expr::GVar(n.clone()),
            Tok::Const(c) => {
                let c = c.clone();
                if self.is_op("(") && !self.token().is_some_and(|t| t.spaced) {
                    self.call_rest(None, c, false, line)?
                } else {
                    Expr::Const(vec![c])
                }
            }
            Tok::Ident(n) => {
                let n = n.clone();
                if self.is_local(&n) && !self.is_op("(") {
                    Expr::Name(n)
                } else if n == "lambda" || n == "proc" {
                    self.lambda_body(Vec::new())?
                } else if (self.is_op("(") && !self.token().is_some_and(|t| t.spaced))
                    || self.starts_command_arg()
                    || (self.is_kw("do") && !self.no_do)
                {
                    self.call_rest(None, n, false, line)?
                } else {
                    Expr::Name(n)
                }
            }
            Tok::Label(_) => return Err(Stuck),
            Tok::Op("::") => match self.peek() {
                Some(Tok::Const(c)) => {
                    let c = c.clone();
                    self.at += 1;
                    Expr::Const(vec![c])
                }
                _ => return Err(Stuck),
            },
            Tok::Op("(") => {
                self.skip_newlines();
                if self.eat_op(")") {
                    return Ok(Expr::Nil);
                }
                let saved = std::mem::replace(&mut self.no_do, false);
                let body = self.body();
                self.no_do = saved;
                self.expect_op(")")?;
                match body.len() {
                    1 => body.into_iter().next().map_or(Expr::Nil, |s| s.expr),
                    _ => Expr::Begin(body, Vec::new(), Vec::new()),
                }
            }
            Tok::Op("[") => {
                let items = self.arg_list(&["]"])?;
                self.expect_op("]")?;
                Expr::Array(items)
            }
            Tok::Op("{") => self.hash_literal()?,
            Tok::Op("->") => {
                let params = if self.eat_op("(") {
                    self.locals
                        .push(self.locals.last().cloned().unwrap_or_default());
                    let p = self.param_list(&[")"])?;
                    self.locals.pop();
                    self.expect_op(")")?;
                    p
                } else if matches!(self.peek(), Some(Tok::Ident(_))) {
                    self.param_list(&["{"])?
                } else {
                    Vec::new()
                };
                self.lambda_body(params)?
            }
            Tok::Keyword(k) => match *k {
                "nil" => Expr::Nil,
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "self" => Expr::SelfRef,
                "__method__" | "__FILE__" | "__LINE__" => Expr::Name(k.to_string()),
                "if" => self.if_rest(false)?,
                "unless" => self.if_rest(true)?,
                "while" | "until" => {
                    let saved = std::mem::replace(&mut self.no_do, true);
                    let cond = self.expr_stmt();
                    self.no_do = saved;
                    let mut cond = cond?;
                    if *k == "until" {
                        cond = Expr::Not(Box::new(cond));
                    }
                    let _ = self.eat_kw("do");
                    let body = self.body();
                    self.expect_kw("end")?;
                    Expr::Loop(Box::new(cond), body)
                }
                "case" => self.case_rest()?,
                "begin" => {
                    let mut body = self.body();
                    let (rescues, otherwise, ensure) = self.rescue_clauses()?;
                    body.extend(otherwise);
                    self.expect_kw("end")?;
                    Expr::Begin(body, rescues, ensure)
                }
                "return" | "yield" | "super" | "next" | "break" | "redo" | "retry" => {
                    let args = if self.is_op("(") && !self.token().is_some_and(|t| t.spaced) {
                        self.at += 1;
                        let a = self.arg_list(&[")"])?;
                        self.expect_op(")")?;
                        a
                    } else if self.starts_command_arg() {
                        self.command_args()?
                    } else {
                        Vec::new()
                    };
                    if *k == "return" {
                        let value = match args.len() {
                            0 => None,
                            1 => args.into_iter().next().map(Box::new),
                            _ => Some(Box::new(Expr::Array(args))),
                        };
                        Expr::Return(value)
                    } else {
                        Expr::Keyword(k, args)
                    }
                }
                _ => return Err(Stuck),
            },
            _ => return Err(Stuck),
        })
    }
}

fn string_parts(pieces: &[Piece]) -> Vec<StrPart> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => StrPart::Text(t.clone()),
            Piece::Code(tokens) => StrPart::Code(parse_tokens(tokens)),
        })
        .collect()
}

fn assignable(e: &Expr) -> bool {
    match e {
        Expr::Name(_) | Expr::IVar(_) | Expr::GVar(_) | Expr::Const(_) | Expr::Index(..) => true,
        Expr::Call(c) => c.recv.is_some() && c.args.is_empty() && c.block.is_none(),
        _ => false,
    }
}

/// Whether a block after this expression belongs to it (a method call, not a local).
fn callable(e: &Expr, p: &Parser<'_>) -> bool {
    match e {
        Expr::Call(c) => c.block.is_none(),
        Expr::Name(n) => !p.is_local(n),
        _ => false,
    }
}

fn attach_block(e: Expr, block: Block) -> Expr {
    match e {
        Expr::Call(mut c) => {
            c.block = Some(block);
            Expr::Call(c)
        }
        Expr::Name(name) => Expr::Call(Box::new(Call {
            recv: None,
            name,
            args: Vec::new(),
            block: Some(block),
            safe: false,
            line: 0,
        })),
        other => other,
    }
}
