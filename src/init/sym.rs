//! Symbolic values: what an expression in `connect` or `subscribed` stands for, in terms the
//! mapping understands (a subscription param, a connection identifier, a JWT claim, a signed
//! cookie, a database lookup) or, failing that, its source text.

use std::fmt;

/// Where a token is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `request.params[:name]`, `params[:name]`
    Query(String),
    /// `request.headers["Authorization"]` (usually after `Bearer `).
    AuthorizationHeader,
    /// `cookies[:name]`, `cookies.signed[:name]`, `cookies.encrypted[:name]`
    Cookie(String, CookieKind),
    /// Any other header.
    Header(String),
}

/// How a cookie is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieKind {
    /// `cookies[:name]`
    Plain,
    /// `cookies.signed[:name]`
    Signed,
    /// `cookies.encrypted[:name]`
    Encrypted,
}

/// A symbolic value.
#[derive(Debug, Clone, PartialEq)]
pub enum Sym {
    /// A literal (text as Ruby prints it; `None` for nil).
    Lit(Option<String>),
    /// A list of values (`%w[admin staff]`).
    List(Vec<Sym>),
    /// A hash literal (keys as text).
    Hash(Vec<(String, Sym)>),
    /// An interpolated string.
    Concat(Vec<Sym>),
    /// `params` (the subscription identifier's params)
    Params,
    /// `params[:name]`
    Param(String),
    /// A connection identifier (`identified_by :name`), read in a channel.
    Identifier(String),
    /// `record.attribute`, `identifier.id`
    Attr(Box<Sym>, String),
    /// The token as read from the request.
    Token(TokenSource),
    /// `JWT.decode(...)`: `[payload, header]`.
    JwtDecoded(Box<JwtCall>),
    /// The decoded JWT payload.
    Claims(Box<JwtCall>),
    /// A claim of the payload.
    Claim(String),
    /// `cookies.signed[:name]` etc. (a token or id read from a cookie).
    Cookie(String, CookieKind),
    /// `session[:key]`, `request.session[:key]`
    SessionValue(String),
    /// `request.session.id`
    SessionId,
    /// `env["warden"].user` (with a scope, if given).
    WardenUser(Option<String>),
    /// `Model.find_by(key: value)`, `Model.find(value)`, `Model.find_signed(value)`, and
    /// the same through an association (`current_user.rooms.find_by(id: ...)`).
    Record {
        /// The model (`Room`), or the receiver as written (`current_user.rooms`).
        model: String,
        /// The finder (`find_by`, `find`, `find_signed`, `exists?`, ...).
        finder: String,
        /// The column looked up (`id` for `find`).
        column: String,
        /// The value looked up.
        by: Box<Sym>,
        /// Every `column: value` of the lookup, the first being `column`/`by`.
        keys: Vec<(String, Sym)>,
        /// The receiver when it is not a constant (`current_user.rooms`).
        scope: Option<Box<Sym>>,
    },
    /// `Record.new(value)`: a plain object built from a value (the reference app's User).
    New(String, Box<Sym>),
    /// `a == b`, `a.to_s == b.to_s`
    Eq(Box<Sym>, Box<Sym>),
    /// `list.include?(item)`
    Includes(Box<Sym>, Box<Sym>),
    /// `x.present?` or a bare truthiness test.
    Present(Box<Sym>),
    /// `params.key?(:x)`
    HasKey(String),
    /// `!x`
    Not(Box<Sym>),
    /// `a && b`
    And(Box<Sym>, Box<Sym>),
    /// `a || b`
    Or(Box<Sym>, Box<Sym>),
    /// The channel's own `channel_name`-based broadcasting for a model (`broadcasting_for`).
    Broadcasting(Box<Sym>),
    /// An action's `data` argument (`None`), or one of its keys.
    Data(Option<String>),
    /// Turbo's `verified_stream_name_from_params` (a signed stream name from the identifier).
    SignedStreamName,
    /// A `:`-separated part of the verified signed name (`name.split(":", 2).first`).
    NamePart(NamePart),
    /// `text.end_with?(s)`, `start_with?`, `include?`: a test of a name against literal text.
    TextTest(Box<Sym>, TextTest, String),
    /// `GlobalID::Locator.locate(gid, only: Room)`: the record a GlobalID param names.
    Located {
        /// The GlobalID param.
        gid: Box<Sym>,
        /// The classes `only:` allows (empty: any).
        only: Vec<String>,
    },
    /// `record.slice(:id, :name)`: a hash of some of a record's attributes.
    Slice(Box<Sym>, Vec<String>),
    /// Not understood: the Ruby source.
    Unknown(String),
}

/// Which part of a signed stream name (Turbo joins the streamables with `:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamePart {
    /// What comes before the first `:` (`split(":").first`).
    First,
    /// What follows the first `:` (`split(":", 2).second`).
    Rest,
    /// What follows the last `:` (`split(":").last`).
    Last,
}

/// How a text is tested against literal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextTest {
    /// `end_with?`
    EndsWith,
    /// `start_with?`
    StartsWith,
    /// `include?`
    Contains,
}

/// A `JWT.decode(token, key, verify, options)` call.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtCall {
    /// The token argument.
    pub token: Sym,
    /// The key argument, as source.
    pub key: String,
    /// `true` unless the verify argument is literally `false`.
    pub verify: bool,
    /// `algorithm: "HS256"` or `algorithms: [...]`.
    pub algorithms: Vec<String>,
    /// Where the call is.
    pub line: u32,
}

impl Sym {
    /// Unknown from source text.
    pub fn unknown(text: impl Into<String>) -> Sym {
        Sym::Unknown(text.into())
    }

    /// The literal text, if this is one.
    pub fn lit(&self) -> Option<&str> {
        match self {
            Sym::Lit(Some(t)) => Some(t),
            _ => None,
        }
    }

    /// Whether anything inside is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Sym::Unknown(_) => true,
            Sym::List(items) | Sym::Concat(items) => items.iter().any(Sym::has_unknown),
            Sym::Hash(pairs) => pairs.iter().any(|(_, v)| v.has_unknown()),
            Sym::Attr(inner, _)
            | Sym::Present(inner)
            | Sym::Not(inner)
            | Sym::Broadcasting(inner)
            | Sym::TextTest(inner, ..)
            | Sym::Slice(inner, _)
            | Sym::Located { gid: inner, .. }
            | Sym::New(_, inner) => inner.has_unknown(),
            Sym::Eq(a, b) | Sym::Includes(a, b) | Sym::And(a, b) | Sym::Or(a, b) => {
                a.has_unknown() || b.has_unknown()
            }
            Sym::Record { keys, scope, .. } => {
                keys.iter().any(|(_, v)| v.has_unknown())
                    || scope.as_ref().is_some_and(|s| s.has_unknown())
            }
            _ => false,
        }
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sym::Lit(Some(t)) => write!(f, "{t:?}"),
            Sym::Lit(None) => f.write_str("nil"),
            Sym::List(items) => {
                f.write_str("[")?;
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                f.write_str("]")
            }
            Sym::Hash(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    f.write_str(if i > 0 { ", " } else { " " })?;
                    write!(f, "{k}: {v}")?;
                }
                f.write_str(" }")
            }
            Sym::Concat(parts) => {
                f.write_str("\"")?;
                for p in parts {
                    match p {
                        Sym::Lit(Some(t)) => f.write_str(t)?,
                        other => write!(f, "#{{{other}}}")?,
                    }
                }
                f.write_str("\"")
            }
            Sym::Params => f.write_str("params"),
            Sym::Param(p) => write!(f, "params[:{p}]"),
            Sym::Identifier(n) => f.write_str(n),
            Sym::Attr(inner, a) => write!(f, "{inner}.{a}"),
            Sym::Token(TokenSource::Query(q)) => write!(f, "request.params[:{q}]"),
            Sym::Token(TokenSource::AuthorizationHeader) => {
                f.write_str("the Authorization header's bearer token")
            }
            Sym::Token(TokenSource::Header(h)) => write!(f, "request.headers[{h:?}]"),
            Sym::Token(TokenSource::Cookie(c, kind)) | Sym::Cookie(c, kind) => match kind {
                CookieKind::Plain => write!(f, "cookies[:{c}]"),
                CookieKind::Signed => write!(f, "cookies.signed[:{c}]"),
                CookieKind::Encrypted => write!(f, "cookies.encrypted[:{c}]"),
            },
            Sym::JwtDecoded(_) => f.write_str("JWT.decode(...)"),
            Sym::Claims(_) => f.write_str("the JWT payload"),
            Sym::Claim(c) => write!(f, "claim {c:?}"),
            Sym::SessionValue(k) if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                write!(f, "session[:{k}]")
            }
            Sym::SessionValue(k) => write!(f, "session[{k:?}]"),
            Sym::SessionId => f.write_str("request.session.id"),
            Sym::WardenUser(None) => f.write_str("env[\"warden\"].user"),
            Sym::WardenUser(Some(s)) => write!(f, "env[\"warden\"].user(:{s})"),
            Sym::Record {
                model,
                finder,
                by,
                keys,
                ..
            } => {
                if finder == "find" || finder == "find_signed" || finder == "find_signed!" {
                    write!(f, "{model}.{finder}({by})")
                } else {
                    write!(f, "{model}.{finder}(")?;
                    for (i, (k, v)) in keys.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{k}: {v}")?;
                    }
                    f.write_str(")")
                }
            }
            Sym::New(model, by) => write!(f, "{model}.new({by})"),
            Sym::Eq(a, b) => write!(f, "{a} == {b}"),
            Sym::Includes(list, item) => write!(f, "{list}.include?({item})"),
            Sym::Present(inner) => write!(f, "{inner}.present?"),
            Sym::HasKey(k) => write!(f, "params.key?(:{k})"),
            Sym::Not(inner) => write!(f, "!({inner})"),
            Sym::And(a, b) => write!(f, "({a} && {b})"),
            Sym::Or(a, b) => write!(f, "({a} || {b})"),
            Sym::Broadcasting(model) => write!(f, "broadcasting_for({model})"),
            Sym::Data(None) => f.write_str("data"),
            Sym::Data(Some(k)) => write!(f, "data[{k:?}]"),
            Sym::SignedStreamName => f.write_str("verified_stream_name_from_params"),
            Sym::NamePart(NamePart::First) => {
                f.write_str("verified_stream_name_from_params.split(\":\").first")
            }
            Sym::NamePart(NamePart::Rest) => {
                f.write_str("verified_stream_name_from_params.split(\":\", 2).second")
            }
            Sym::NamePart(NamePart::Last) => {
                f.write_str("verified_stream_name_from_params.split(\":\").last")
            }
            Sym::TextTest(inner, test, s) => {
                let m = match test {
                    TextTest::EndsWith => "end_with?",
                    TextTest::StartsWith => "start_with?",
                    TextTest::Contains => "include?",
                };
                write!(f, "{inner}.{m}({s:?})")
            }
            Sym::Located { gid, only } if only.is_empty() => {
                write!(f, "GlobalID::Locator.locate({gid})")
            }
            Sym::Located { gid, only } => write!(
                f,
                "GlobalID::Locator.locate({gid}, only: {})",
                only.join(" | ")
            ),
            Sym::Slice(inner, attrs) => write!(f, "{inner}.slice(:{})", attrs.join(", :")),
            Sym::Unknown(src) => write!(f, "`{src}`"),
        }
    }
}
