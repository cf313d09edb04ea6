//! Tokens → classes, modules, methods and statements. The statement level: bodies, `def`,
//! `class`/`module`, visibility, and recovery: a statement the expression parser cannot read
//! is skipped whole (brackets and `end`s balanced) and kept as an [`Expr::Unknown`] with its
//! text, so one strange line never derails the rest of the file.

use std::collections::HashSet;

use super::ast::{Body, Def, Expr, Namespace, SourceFile, Stmt, Visibility};
use super::lexer::{Tok, Token, lex};

/// The parser could not read what is at the current position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stuck;

/// Result of a parse step.
pub(super) type P<T> = Result<T, Stuck>;

/// The parser's state: the tokens, a cursor, and the local variables in scope (a bare name
/// that is a local is never a method call).
pub(super) struct Parser<'a> {
    pub(super) toks: &'a [Token],
    pub(super) at: usize,
    pub(super) locals: Vec<HashSet<String>>,
    /// Inside command arguments, `do` belongs to the outer call.
    pub(super) no_do: bool,
}

/// Reads a whole file.
pub fn parse_file(src: &str) -> SourceFile {
    let tokens = lex(src);
    let mut parser = Parser::new(&tokens);
    let mut file = SourceFile::default();
    let mut namespaces = Vec::new();
    file.statements = parser.items("", &mut namespaces, &mut Vec::new());
    file.namespaces = namespaces;
    file
}

/// Reads a sequence of statements (ERB code, a snippet).
pub fn parse_body(src: &str) -> Body {
    parse_file(src).statements
}

/// Reads the tokens of an interpolation as one expression.
pub(super) fn parse_tokens(tokens: &[Token]) -> Expr {
    let mut with_end = tokens.to_vec();
    let line = tokens.first().map_or(0, |t| t.line);
    with_end.push(Token {
        tok: Tok::Newline,
        line,
        spaced: false,
    });
    let mut parser = Parser::new(&with_end);
    let body = parser.items("", &mut Vec::new(), &mut Vec::new());
    match body.len() {
        1 => body.into_iter().next().map_or(Expr::Nil, |s| s.expr),
        0 => Expr::Nil,
        _ => Expr::Unknown(render(tokens), line),
    }
}

/// Keywords that end a body.
const BODY_ENDS: &[&str] = &[
    "end", "else", "elsif", "rescue", "ensure", "when", "in", "then",
];

impl<'a> Parser<'a> {
    pub(super) fn new(toks: &'a [Token]) -> Parser<'a> {
        Parser {
            toks,
            at: 0,
            locals: vec![HashSet::new()],
            no_do: false,
        }
    }

    pub(super) fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.at).map(|t| &t.tok)
    }

    pub(super) fn peek_at(&self, ahead: usize) -> Option<&'a Tok> {
        self.toks.get(self.at + ahead).map(|t| &t.tok)
    }

    pub(super) fn token(&self) -> Option<&'a Token> {
        self.toks.get(self.at)
    }

    pub(super) fn line(&self) -> u32 {
        self.toks
            .get(self.at)
            .or_else(|| self.toks.last())
            .map_or(0, |t| t.line)
    }

    pub(super) fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Keyword(k)) if *k == kw)
    }

    pub(super) fn eat_op(&mut self, op: &str) -> bool {
        let yes = self.is_op(op);
        if yes {
            self.at += 1;
        }
        yes
    }

    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.at += 1;
        }
        yes
    }

    pub(super) fn expect_op(&mut self, op: &str) -> P<()> {
        if self.eat_op(op) { Ok(()) } else { Err(Stuck) }
    }

    pub(super) fn expect_kw(&mut self, kw: &str) -> P<()> {
        if self.eat_kw(kw) { Ok(()) } else { Err(Stuck) }
    }

    pub(super) fn skip_newlines(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline | Tok::Op(";"))) {
            self.at += 1;
        }
    }

    pub(super) fn at_statement_end(&self) -> bool {
        match self.peek() {
            None | Some(Tok::Newline | Tok::Op(";" | ")" | "]" | "}")) => true,
            Some(Tok::Keyword(k)) => BODY_ENDS.contains(k) || *k == "do",
            _ => false,
        }
    }

    pub(super) fn declare_local(&mut self, name: &str) {
        if let Some(scope) = self.locals.last_mut() {
            scope.insert(name.to_string());
        }
    }

    pub(super) fn is_local(&self, name: &str) -> bool {
        self.locals.last().is_some_and(|s| s.contains(name))
    }

    /// A body up to (not including) one of `BODY_ENDS` or a closing `}`: statements only
    /// (methods or classes inside a block are kept as unknown statements).
    pub(super) fn body(&mut self) -> Body {
        let mut nested = Vec::new();
        let mut defs = Vec::new();
        let mut body = self.items("", &mut nested, &mut defs);
        for def in defs {
            body.push(Stmt {
                line: def.line,
                expr: Expr::Unknown(format!("def {} (inside a block)", def.name), def.line),
            });
        }
        for ns in nested {
            body.push(Stmt {
                line: ns.line,
                expr: Expr::Unknown(format!("class {} (inside a block)", ns.name), ns.line),
            });
        }
        body
    }

    /// Statements until a body end. Classes and modules go to `namespaces` (named under
    /// `prefix`); `def`s to `defs`, with the visibility `private`/`protected` set.
    fn items(
        &mut self,
        prefix: &str,
        namespaces: &mut Vec<Namespace>,
        defs: &mut Vec<Def>,
    ) -> Body {
        let mut body = Vec::new();
        let mut visibility = Visibility::Public;
        loop {
            self.skip_newlines();
            match self.peek() {
                None | Some(Tok::Op("}" | ")" | "]")) => break,
                Some(Tok::Keyword(k)) if BODY_ENDS.contains(k) => break,
                _ => {}
            }
            let line = self.line();
            let start = self.at;
            match self.peek() {
                Some(Tok::Keyword("class")) if matches!(self.peek_at(1), Some(Tok::Op("<<"))) => {
                    // class << self ... end: singleton methods
                    self.at += 2;
                    let _ = self.eat_kw("self");
                    let mut inner = Vec::new();
                    let mut inner_defs = Vec::new();
                    let stmts = self.items(prefix, &mut inner, &mut inner_defs);
                    namespaces.extend(inner);
                    for mut d in inner_defs {
                        d.singleton = true;
                        defs.push(d);
                    }
                    body.extend(stmts);
                    if !self.eat_kw("end") {
                        body.push(self.recover(start, line));
                    }
                    continue;
                }
                Some(Tok::Keyword(kw @ ("class" | "module"))) => {
                    let is_module = *kw == "module";
                    match self.namespace(prefix, is_module, namespaces) {
                        Ok(()) => {}
                        Err(Stuck) => body.push(self.recover(start, line)),
                    }
                    continue;
                }
                Some(Tok::Keyword("def")) => {
                    match self.def(visibility, false) {
                        Ok(d) => defs.push(d),
                        Err(Stuck) => body.push(self.recover(start, line)),
                    }
                    continue;
                }
                Some(Tok::Ident(v))
                    if is_visibility(v)
                        && matches!(self.peek_at(1), Some(Tok::Newline | Tok::Op(";")) | None) =>
                {
                    visibility = match v.as_str() {
                        "private" => Visibility::Private,
                        "protected" => Visibility::Protected,
                        _ => Visibility::Public,
                    };
                    self.at += 1;
                    continue;
                }
                Some(Tok::Ident(v))
                    if is_visibility(v) && matches!(self.peek_at(1), Some(Tok::Keyword("def"))) =>
                {
                    let vis = match v.as_str() {
                        "private" => Visibility::Private,
                        "protected" => Visibility::Protected,
                        _ => Visibility::Public,
                    };
                    self.at += 1;
                    match self.def(vis, false) {
                        Ok(d) => defs.push(d),
                        Err(Stuck) => body.push(self.recover(start, line)),
                    }
                    continue;
                }
                _ => {}
            }
            match self.statement() {
                Ok(expr) if self.at_statement_end() => {
                    if let Expr::Call(c) = &expr
                        && c.recv.is_none()
                        && matches!(c.name.as_str(), "private" | "protected")
                    {
                        // private :a, :b
                        let names: Vec<String> =
                            c.args.iter().filter_map(Expr::literal_text).collect();
                        let vis = if c.name == "private" {
                            Visibility::Private
                        } else {
                            Visibility::Protected
                        };
                        for d in defs.iter_mut().filter(|d| names.contains(&d.name)) {
                            d.visibility = vis;
                        }
                    }
                    body.push(Stmt { line, expr });
                }
                _ => body.push(self.recover(start, line)),
            }
        }
        body
    }

    /// Skips the statement that started at `start`, balancing brackets and `end`s, and
    /// returns it as an unknown statement.
    pub(super) fn recover(&mut self, start: usize, line: u32) -> Stmt {
        self.at = start;
        let mut brackets = 0i32;
        let mut blocks = 0i32;
        let mut first = true;
        while let Some(tok) = self.peek() {
            match tok {
                Tok::Newline | Tok::Op(";") if brackets == 0 && blocks == 0 && !first => break,
                Tok::Op("(" | "[" | "{") => brackets += 1,
                Tok::Op(")" | "]" | "}") => {
                    if brackets == 0 && blocks == 0 {
                        break;
                    }
                    brackets -= 1;
                }
                Tok::Keyword("class" | "module" | "def" | "do" | "begin" | "case" | "for") => {
                    blocks += 1
                }
                Tok::Keyword("if" | "unless" | "while" | "until") if self.opens_block() => {
                    blocks += 1
                }
                Tok::Keyword("end") => {
                    if blocks == 0 {
                        break;
                    }
                    blocks -= 1;
                }
                _ => {}
            }
            first = false;
            self.at += 1;
        }
        let end = self.at.max(start + 1).min(self.toks.len());
        self.at = end;
        Stmt {
            line,
            expr: Expr::Unknown(render(&self.toks[start..end]), line),
        }
    }

    /// Whether the `if`/`unless`/`while`/`until` at the cursor starts a block (rather than
    /// being a modifier of what precedes it).
    fn opens_block(&self) -> bool {
        match self
            .at
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map(|t| &t.tok)
        {
            None | Some(Tok::Newline) => true,
            Some(Tok::Op(op)) => !matches!(*op, ")" | "]" | "}"),
            Some(Tok::Keyword(k)) => {
                matches!(*k, "return" | "then" | "else" | "do" | "and" | "or" | "not")
            }
            _ => false,
        }
    }

    fn namespace(
        &mut self,
        prefix: &str,
        is_module: bool,
        namespaces: &mut Vec<Namespace>,
    ) -> P<()> {
        let line = self.line();
        self.at += 1;
        let name = self.const_path()?;
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}::{name}")
        };
        let superclass = if !is_module && self.eat_op("<") {
            Some(self.superclass_text()?)
        } else {
            None
        };
        self.locals.push(HashSet::new());
        let mut inner = Vec::new();
        let mut defs = Vec::new();
        let statements = self.items(&full, &mut inner, &mut defs);
        self.locals.pop();
        self.expect_kw("end")?;
        namespaces.push(Namespace {
            name: full,
            is_module,
            superclass,
            defs,
            statements,
            line,
        });
        namespaces.extend(inner);
        Ok(())
    }

    fn const_path(&mut self) -> P<String> {
        let mut segments = Vec::new();
        let _ = self.eat_op("::");
        loop {
            match self.peek() {
                Some(Tok::Const(c)) => {
                    segments.push(c.clone());
                    self.at += 1;
                }
                _ => return Err(Stuck),
            }
            if !self.eat_op("::") {
                break;
            }
        }
        Ok(segments.join("::"))
    }

    /// The superclass as written: a constant path, or the source of something else
    /// (`Struct.new(...)`), read up to the end of the line.
    fn superclass_text(&mut self) -> P<String> {
        let start = self.at;
        if let Ok(path) = self.const_path()
            && matches!(self.peek(), Some(Tok::Newline | Tok::Op(";")))
        {
            return Ok(path);
        }
        self.at = start;
        let expr = self.expr()?;
        Ok(match expr.dotted() {
            Some(text) => text,
            None => render(&self.toks[start..self.at]),
        })
    }

    fn def(&mut self, visibility: Visibility, singleton: bool) -> P<Def> {
        let line = self.line();
        self.at += 1;
        let mut singleton = singleton;
        let self_receiver = matches!(self.peek(), Some(Tok::Keyword("self")))
            || matches!(self.peek(), Some(Tok::Ident(n)) if n == "self");
        if self_receiver && matches!(self.peek_at(1), Some(Tok::Op("."))) {
            self.at += 2;
            singleton = true;
        }
        let mut name = match self.peek() {
            Some(Tok::Ident(n) | Tok::Const(n)) => n.clone(),
            Some(Tok::Keyword(k)) => k.to_string(),
            Some(Tok::Op(op)) => op.to_string(),
            Some(Tok::Label(n)) => {
                // `def name:` cannot happen; a label here is `def a=(x)` lexed oddly
                n.clone()
            }
            _ => return Err(Stuck),
        };
        self.at += 1;
        if name == "[" && self.eat_op("]") {
            name = "[]".into();
        }
        if self.is_op("=")
            && !self.toks.get(self.at).is_some_and(|t| t.spaced)
            && matches!(self.peek_at(1), Some(Tok::Op("(")))
        {
            self.at += 1;
            name.push('=');
        }
        self.locals.push(HashSet::new());
        let params = if self.eat_op("(") {
            let p = self.param_list(&[")"])?;
            self.expect_op(")")?;
            p
        } else if matches!(self.peek(), Some(Tok::Newline | Tok::Op(";" | "="))) {
            Vec::new()
        } else {
            self.param_list(&[])?
        };
        let body = if self.eat_op("=") {
            // endless def
            let l = self.line();
            let e = self.statement()?;
            vec![Stmt { line: l, expr: e }]
        } else {
            let b = self.body_with_rescue()?;
            self.expect_kw("end")?;
            b
        };
        self.locals.pop();
        Ok(Def {
            name,
            params,
            body,
            visibility,
            singleton,
            line,
        })
    }

    /// Parameter names up to a closing token (or the end of the line when `closers` is
    /// empty); defaults are parsed and dropped.
    pub(super) fn param_list(&mut self, closers: &[&str]) -> P<Vec<String>> {
        let mut names = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Op(op)) if closers.contains(op) => break,
                Some(Tok::Newline) | None if closers.is_empty() => break,
                Some(Tok::Newline) => {
                    self.at += 1;
                    continue;
                }
                _ => {}
            }
            while self.eat_op("*") || self.eat_op("**") || self.eat_op("&") {}
            match self.peek() {
                Some(Tok::Ident(n)) => {
                    names.push(n.clone());
                    self.declare_local(n);
                    self.at += 1;
                    if self.eat_op("=") {
                        self.ternary()?;
                    }
                }
                Some(Tok::Label(n)) => {
                    names.push(n.clone());
                    self.declare_local(n);
                    self.at += 1;
                    if !matches!(self.peek(), Some(Tok::Op(",")))
                        && !matches!(self.peek(), Some(Tok::Op(op)) if closers.contains(op))
                    {
                        self.ternary()?;
                    }
                }
                Some(Tok::Op("(")) => {
                    // destructuring |(a, b)|
                    self.at += 1;
                    names.extend(self.param_list(&[")"])?);
                    self.expect_op(")")?;
                }
                Some(Tok::Op(op)) if closers.contains(op) => break,
                // bare `*`, `**`, `&` (anonymous forwarding)
                Some(Tok::Op(",")) => {}
                _ => return Err(Stuck),
            }
            if !self.eat_op(",") {
                break;
            }
        }
        Ok(names)
    }

    /// A body that may carry `rescue`/`else`/`ensure` clauses (method bodies, `do` blocks,
    /// `begin`), not consuming the final `end`.
    pub(super) fn body_with_rescue(&mut self) -> P<Body> {
        let body = self.body();
        if !self.is_kw("rescue") && !self.is_kw("ensure") && !self.is_kw("else") {
            return Ok(body);
        }
        let line = self.line();
        let mut body = body;
        let (rescues, otherwise, ensure) = self.rescue_clauses()?;
        body.extend(otherwise);
        Ok(vec![Stmt {
            line,
            expr: Expr::Begin(body, rescues, ensure),
        }])
    }

    /// A statement: an expression with trailing modifiers (`if`, `unless`, `while`,
    /// `until`, `rescue`).
    pub(super) fn statement(&mut self) -> P<Expr> {
        let mut expr = self.expr_stmt()?;
        loop {
            if self.eat_kw("if") {
                let cond = self.expr_stmt()?;
                let line = self.line();
                expr = Expr::If(Box::new(cond), vec![Stmt { line, expr }], Vec::new());
            } else if self.eat_kw("unless") {
                let cond = self.expr_stmt()?;
                let line = self.line();
                expr = Expr::If(
                    Box::new(Expr::Not(Box::new(cond))),
                    vec![Stmt { line, expr }],
                    Vec::new(),
                );
            } else if self.eat_kw("while") || self.eat_kw("until") {
                let until = matches!(
                    self.toks.get(self.at - 1).map(|t| &t.tok),
                    Some(Tok::Keyword("until"))
                );
                let cond = self.expr_stmt()?;
                let cond = if until {
                    Expr::Not(Box::new(cond))
                } else {
                    cond
                };
                let line = self.line();
                expr = Expr::Loop(Box::new(cond), vec![Stmt { line, expr }]);
            } else if self.eat_kw("rescue") {
                let fallback = self.expr_stmt()?;
                let line = self.line();
                expr = Expr::Begin(
                    vec![Stmt { line, expr }],
                    vec![super::ast::Rescue {
                        classes: Vec::new(),
                        body: vec![Stmt {
                            line,
                            expr: fallback,
                        }],
                    }],
                    Vec::new(),
                );
            } else {
                return Ok(expr);
            }
        }
    }
}

fn is_visibility(word: &str) -> bool {
    matches!(word, "private" | "protected" | "public")
}

/// Source-like text of tokens, for reports.
pub(super) fn render(tokens: &[Token]) -> String {
    use super::lexer::Piece;
    fn pieces(p: &[Piece], out: &mut String) {
        for piece in p {
            match piece {
                Piece::Text(t) => out.push_str(&t.replace('\n', "\\n")),
                Piece::Code(code) => {
                    out.push_str("#{");
                    out.push_str(&render(code));
                    out.push('}');
                }
            }
        }
    }
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 && t.spaced {
            out.push(' ');
        }
        match &t.tok {
            Tok::Ident(s) | Tok::Const(s) | Tok::Number(s) => out.push_str(s),
            Tok::IVar(s) => {
                out.push('@');
                out.push_str(s);
            }
            Tok::GVar(s) => {
                out.push('$');
                out.push_str(s);
            }
            Tok::Label(s) => {
                out.push_str(s);
                out.push(':');
            }
            Tok::Symbol(s) => {
                out.push(':');
                out.push_str(s);
            }
            Tok::Str(p) => {
                out.push('"');
                pieces(p, &mut out);
                out.push('"');
            }
            Tok::Words(w, sym) => {
                out.push_str(if *sym { "%i[" } else { "%w[" });
                out.push_str(&w.join(" "));
                out.push(']');
            }
            Tok::Regex(p, flags) => {
                out.push('/');
                pieces(p, &mut out);
                out.push('/');
                out.push_str(flags);
            }
            Tok::Keyword(k) | Tok::Op(k) => out.push_str(k),
            Tok::Newline => out.push_str("; "),
            Tok::Unknown(s) => out.push_str(s),
        }
    }
    out.trim().to_string()
}
