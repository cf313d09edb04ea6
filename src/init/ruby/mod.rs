//! The Ruby pattern reader: a tokenizer that understands strings with interpolation,
//! comments, symbols, hashes and `def`/`end` nesting, and a small parser on top of it that
//! turns a file into classes, methods and expression trees. It is not a Ruby parser: what it
//! does not understand becomes an [`ast::Expr::Unknown`] with its line, which the mapping
//! reports instead of guessing.

pub mod ast;
mod expr;
mod forms;
mod heredoc;
pub mod lexer;
mod parser;
pub mod print;

pub use ast::{Body, Call, Def, Expr, Namespace, SourceFile, Stmt, StrPart, Visibility};
pub use parser::{parse_body, parse_file};

#[cfg(test)]
mod tests;
