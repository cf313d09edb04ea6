//! The block forms of the expression level: `if`/`unless`/`elsif`, `case`/`when`,
//! `begin`/`rescue`/`ensure`, hash literals, lambdas and blocks.

use super::ast::{Block, Expr, Rescue, Stmt};
use super::lexer::Tok;
use super::parser::{P, Parser, Stuck};

impl Parser<'_> {
    pub(super) fn lambda_body(&mut self, params: Vec<String>) -> P<Expr> {
        let mut scope = self.locals.last().cloned().unwrap_or_default();
        scope.extend(params.iter().cloned());
        self.locals.push(scope);
        let block = if self.is_op("{") {
            self.brace_block()
        } else if self.is_kw("do") {
            self.do_block()
        } else {
            Err(Stuck)
        };
        self.locals.pop();
        let block = block?;
        let mut all = params;
        all.extend(block.params);
        Ok(Expr::Lambda(all, block.body))
    }

    pub(super) fn hash_literal(&mut self) -> P<Expr> {
        let mut pairs = Vec::new();
        loop {
            self.skip_newlines();
            if self.eat_op("}") {
                break;
            }
            let (key, value) = match self.peek() {
                Some(Tok::Label(k)) => {
                    let k = k.clone();
                    self.at += 1;
                    self.skip_newlines();
                    let value = if self.is_op(",") || self.is_op("}") {
                        Expr::Name(k.clone())
                    } else {
                        self.expr()?
                    };
                    (Expr::Sym(k), value)
                }
                Some(Tok::Str(p)) if matches!(self.peek_at(1), Some(Tok::Op(":"))) => {
                    let k = super::lexer::plain_text(p);
                    self.at += 2;
                    self.skip_newlines();
                    (Expr::Sym(k), self.expr()?)
                }
                Some(Tok::Op("**")) => {
                    self.at += 1;
                    (Expr::Splat(Box::new(Expr::Nil)), self.expr()?)
                }
                _ => {
                    let key = self.expr()?;
                    self.skip_newlines();
                    self.expect_op("=>")?;
                    self.skip_newlines();
                    (key, self.expr()?)
                }
            };
            pairs.push((key, value));
            self.skip_newlines();
            if !self.eat_op(",") {
                self.skip_newlines();
                self.expect_op("}")?;
                break;
            }
        }
        Ok(Expr::Hash(pairs))
    }

    pub(super) fn if_rest(&mut self, negate: bool) -> P<Expr> {
        let saved = std::mem::replace(&mut self.no_do, false);
        let cond = self.expr_stmt();
        self.no_do = saved;
        let mut cond = cond?;
        if negate {
            cond = Expr::Not(Box::new(cond));
        }
        let _ = self.eat_kw("then");
        let then = self.body();
        let otherwise = if self.is_kw("elsif") {
            let line = self.line();
            self.at += 1;
            let nested = self.if_rest(false)?;
            return Ok(Expr::If(
                Box::new(cond),
                then,
                vec![Stmt { line, expr: nested }],
            ));
        } else if self.eat_kw("else") {
            self.body()
        } else {
            Vec::new()
        };
        self.expect_kw("end")?;
        Ok(Expr::If(Box::new(cond), then, otherwise))
    }

    pub(super) fn case_rest(&mut self) -> P<Expr> {
        let subject = if matches!(self.peek(), Some(Tok::Newline)) {
            Expr::Nil
        } else {
            self.expr_stmt()?
        };
        self.skip_newlines();
        let mut arms = Vec::new();
        while self.eat_kw("when") {
            let patterns = self.arg_list(&[])?;
            let _ = self.eat_kw("then");
            arms.push((patterns, self.body()));
        }
        if self.is_kw("in") {
            return Err(Stuck);
        }
        let otherwise = if self.eat_kw("else") {
            self.body()
        } else {
            Vec::new()
        };
        self.expect_kw("end")?;
        Ok(Expr::Case(Box::new(subject), arms, otherwise))
    }

    /// `rescue [Classes] [=> e]` clauses, an `else` and an `ensure`, before `end`.
    pub(super) fn rescue_clauses(&mut self) -> P<(Vec<Rescue>, Vec<Stmt>, Vec<Stmt>)> {
        let mut rescues = Vec::new();
        while self.eat_kw("rescue") {
            let mut classes = Vec::new();
            while !matches!(self.peek(), Some(Tok::Newline | Tok::Op("=>" | ";")) | None)
                && !self.is_kw("then")
            {
                classes.push(self.ternary()?);
                if !self.eat_op(",") {
                    break;
                }
            }
            if self.eat_op("=>") {
                match self.peek() {
                    Some(Tok::Ident(n)) => {
                        let n = n.clone();
                        self.declare_local(&n);
                        self.at += 1;
                    }
                    Some(Tok::IVar(_)) => self.at += 1,
                    _ => return Err(Stuck),
                }
            }
            let _ = self.eat_kw("then");
            rescues.push(Rescue {
                classes,
                body: self.body(),
            });
        }
        // `else` runs when nothing was raised: it continues the normal path.
        let otherwise = if self.eat_kw("else") {
            self.body()
        } else {
            Vec::new()
        };
        let ensure = if self.eat_kw("ensure") {
            self.body()
        } else {
            Vec::new()
        };
        Ok((rescues, otherwise, ensure))
    }

    pub(super) fn brace_block(&mut self) -> P<Block> {
        self.expect_op("{")?;
        self.locals
            .push(self.locals.last().cloned().unwrap_or_default());
        let params = self.block_params()?;
        let saved = std::mem::replace(&mut self.no_do, false);
        let body = self.body();
        self.no_do = saved;
        self.locals.pop();
        self.expect_op("}")?;
        Ok(Block { params, body })
    }

    pub(super) fn do_block(&mut self) -> P<Block> {
        self.expect_kw("do")?;
        self.locals
            .push(self.locals.last().cloned().unwrap_or_default());
        let params = self.block_params()?;
        let saved = std::mem::replace(&mut self.no_do, false);
        let body = self.body_with_rescue();
        self.no_do = saved;
        self.locals.pop();
        let body = body?;
        self.expect_kw("end")?;
        Ok(Block { params, body })
    }

    pub(super) fn block_params(&mut self) -> P<Vec<String>> {
        self.skip_newlines();
        if !self.eat_op("|") {
            return Ok(Vec::new());
        }
        let names = self.param_list(&["|"])?;
        self.expect_op("|")?;
        Ok(names)
    }
}
