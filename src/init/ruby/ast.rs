//! What the pattern reader makes of Ruby: a small expression tree, and the classes, modules
//! and methods around it. Anything the parser does not read is an [`Expr::Unknown`] carrying
//! its source line, so the report can quote it.

/// A piece of an interpolated string or regexp.
#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    /// Literal text.
    Text(String),
    /// `#{expr}`
    Code(Expr),
}

/// One statement of a body, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// 1-based line.
    pub line: u32,
    /// The expression.
    pub expr: Expr,
}

/// A sequence of statements.
pub type Body = Vec<Stmt>;

/// An expression (Ruby has no statements: a method body is a list of these).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `nil`
    Nil,
    /// `true`, `false`
    Bool(bool),
    /// A number as written.
    Number(String),
    /// A string, interpolations included.
    Str(Vec<StrPart>),
    /// `:name`
    Sym(String),
    /// `/source/flags`
    Regex(Vec<StrPart>, String),
    /// `[a, b]`, `%w[...]`
    Array(Vec<Expr>),
    /// `{ k => v, k: v }` and keyword arguments.
    Hash(Vec<(Expr, Expr)>),
    /// A bare name: a local variable or a method called without arguments.
    Name(String),
    /// `@name`
    IVar(String),
    /// `$name`
    GVar(String),
    /// `A::B` as its segments.
    Const(Vec<String>),
    /// `self`
    SelfRef,
    /// A method call.
    Call(Box<Call>),
    /// `recv[args]`
    Index(Box<Expr>, Vec<Expr>),
    /// `target = value`, `target ||= value`, ...
    Assign(Box<Expr>, &'static str, Box<Expr>),
    /// `a, b = value`
    MultiAssign(Vec<Expr>, Box<Expr>),
    /// `!x`, `not x`
    Not(Box<Expr>),
    /// `a && b`, `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a || b`, `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// Any other binary operator.
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// `if`/`unless`/modifiers/ternaries, `unless` already turned into a negated condition.
    If(Box<Expr>, Body, Body),
    /// `case subject when ...`: kept whole, not interpreted.
    Case(Box<Expr>, Vec<(Vec<Expr>, Body)>, Body),
    /// `while`/`until` loops.
    Loop(Box<Expr>, Body),
    /// `begin ... rescue ... ensure ... end` (and a method body with `rescue`).
    Begin(Body, Vec<Rescue>, Body),
    /// `return value`
    Return(Option<Box<Expr>>),
    /// `->(params) { body }`, `lambda { }`, `proc { }`
    Lambda(Vec<String>, Body),
    /// `defined?(x)`
    Defined(Box<Expr>),
    /// `a..b`
    Range(Box<Expr>, Box<Expr>),
    /// `*splat`, `**splat`, `&block` in an argument list.
    Splat(Box<Expr>),
    /// `yield`, `super`, `next`, `break`: kept as a name with arguments.
    Keyword(&'static str, Vec<Expr>),
    /// What the reader could not read, with its line.
    Unknown(String, u32),
}

/// A method call: `recv.name(args) { block }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Receiver, if any.
    pub recv: Option<Expr>,
    /// Method name.
    pub name: String,
    /// Positional and keyword arguments (keywords as a trailing `Expr::Hash`).
    pub args: Vec<Expr>,
    /// `do |params| ... end` or `{ |params| ... }`.
    pub block: Option<Block>,
    /// Called with `&.`.
    pub safe: bool,
    /// Source line.
    pub line: u32,
}

/// A block passed to a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Block parameter names.
    pub params: Vec<String>,
    /// Body.
    pub body: Body,
}

/// One `rescue` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescue {
    /// Exception classes (empty: StandardError).
    pub classes: Vec<Expr>,
    /// Body.
    pub body: Body,
}

/// Method visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Callable by clients as a channel action.
    Public,
    /// `private`
    Private,
    /// `protected`
    Protected,
}

/// A method definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Def {
    /// Name.
    pub name: String,
    /// Parameter names (without `*`, `&`, defaults).
    pub params: Vec<String>,
    /// Body statements.
    pub body: Body,
    /// Visibility at its definition.
    pub visibility: Visibility,
    /// `def self.name` or inside `class << self`.
    pub singleton: bool,
    /// Line of `def`.
    pub line: u32,
}

/// A class or module body.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Fully qualified name (`ApplicationCable::Connection`).
    pub name: String,
    /// Whether it is a module (else a class).
    pub is_module: bool,
    /// `< Superclass` as written (resolved by the caller).
    pub superclass: Option<String>,
    /// Methods, in order.
    pub defs: Vec<Def>,
    /// Other statements of the body (`identified_by`, `include`, `on_subscribe`, constants).
    pub statements: Body,
    /// Line of `class`/`module`.
    pub line: u32,
}

/// What one file declares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceFile {
    /// Every class and module, nested ones flattened with their full names.
    pub namespaces: Vec<Namespace>,
    /// Top-level statements outside any class (`Rails.application.configure do ... end`).
    pub statements: Body,
}

impl Expr {
    /// The call, if this is one.
    pub fn as_call(&self) -> Option<&Call> {
        match self {
            Expr::Call(c) => Some(c),
            _ => None,
        }
    }

    /// The call named `name`, receiver-less or not.
    pub fn call_named(&self, name: &str) -> Option<&Call> {
        self.as_call().filter(|c| c.name == name)
    }

    /// A string without interpolation, or a symbol: its text.
    pub fn literal_text(&self) -> Option<String> {
        match self {
            Expr::Str(parts) => parts
                .iter()
                .map(|p| match p {
                    StrPart::Text(t) => Some(t.as_str()),
                    StrPart::Code(_) => None,
                })
                .collect(),
            Expr::Sym(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The receiver chain as dotted text when it is made of names and constants only:
    /// `Rails.application.config` → `"Rails.application.config"`.
    pub fn dotted(&self) -> Option<String> {
        match self {
            Expr::Name(n) => Some(n.clone()),
            Expr::Const(segments) => Some(segments.join("::")),
            Expr::IVar(n) => Some(format!("@{n}")),
            Expr::SelfRef => Some("self".into()),
            Expr::Call(c) if c.args.is_empty() && c.block.is_none() => match &c.recv {
                None => Some(c.name.clone()),
                Some(r) => Some(format!("{}.{}", r.dotted()?, c.name)),
            },
            _ => None,
        }
    }
}
