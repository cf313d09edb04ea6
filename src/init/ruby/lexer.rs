//! Ruby source → tokens: strings with their interpolations, symbols, labels, regexps, `%w`
//! lists, heredocs, comments dropped. Enough of Ruby's lexical grammar for the files a Rails
//! app keeps in `app/channels` and `config/`; what it cannot read becomes an [`Tok::Unknown`]
//! token that the parser reports instead of guessing.

/// One piece of a string or regexp literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Literal text, escapes already applied.
    Text(String),
    /// `#{...}`: the tokens of the interpolated code.
    Code(Vec<Token>),
}

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `name`, `name?`, `name!`
    Ident(String),
    /// `Name`
    Const(String),
    /// `@name` (and `@@name`)
    IVar(String),
    /// `$name`
    GVar(String),
    /// `name:` in a hash or keyword arguments.
    Label(String),
    /// `:name`, `:"name"`
    Symbol(String),
    /// A string literal.
    Str(Vec<Piece>),
    /// `%w[...]` (symbols: false) or `%i[...]` (symbols: true).
    Words(Vec<String>, bool),
    /// `/.../flags`, `%r{...}flags`
    Regex(Vec<Piece>, String),
    /// An integer or float literal, as written.
    Number(String),
    /// A reserved word.
    Keyword(&'static str),
    /// Punctuation or an operator.
    Op(&'static str),
    /// End of a line (where it ends a statement).
    Newline,
    /// Something this lexer does not read; the text, for the report.
    Unknown(String),
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// 1-based line.
    pub line: u32,
    /// Whether whitespace precedes it on its line (`foo [1]` vs `foo[1]`).
    pub spaced: bool,
}

const KEYWORDS: &[&str] = &[
    "alias",
    "and",
    "begin",
    "break",
    "case",
    "class",
    "def",
    "defined?",
    "do",
    "else",
    "elsif",
    "end",
    "ensure",
    "false",
    "for",
    "if",
    "in",
    "module",
    "next",
    "nil",
    "not",
    "or",
    "redo",
    "rescue",
    "retry",
    "return",
    "self",
    "super",
    "then",
    "true",
    "undef",
    "unless",
    "until",
    "when",
    "while",
    "yield",
    "__FILE__",
    "__LINE__",
    "__method__",
];

// Longest first, so that "**=" wins over "**" and "*".
const OPERATORS: &[&str] = &[
    "**=", "<=>", "===", "...", "<<=", ">>=", "&&=", "||=", "==", "!=", ">=", "<=", "&&", "||",
    "<<", ">>", "**", "=~", "!~", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "::", "..", "=>",
    "->", "&.", "(", ")", "[", "]", "{", "}", ",", ".", ";", "=", "<", ">", "+", "-", "*", "/",
    "%", "!", "&", "|", "^", "~", "?", ":",
];

/// Tokenizes Ruby source. Never fails: unreadable input becomes `Tok::Unknown`.
pub fn lex(src: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        at: 0,
        line: 1,
        out: Vec::new(),
        pending_heredocs: Vec::new(),
        regex: false,
    };
    lexer.run();
    join_continued_lines(lexer.out)
}

pub(super) struct PendingHeredoc {
    /// Index of the `Str` token to fill.
    pub(super) token: usize,
    pub(super) terminator: String,
    pub(super) squiggly: bool,
    pub(super) dash: bool,
    pub(super) interpolate: bool,
}

pub(super) struct Lexer {
    pub(super) chars: Vec<char>,
    pub(super) at: usize,
    pub(super) line: u32,
    pub(super) out: Vec<Token>,
    pub(super) pending_heredocs: Vec<PendingHeredoc>,
    /// Inside a `%r` literal: escapes are kept.
    pub(super) regex: bool,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn push(&mut self, tok: Tok, line: u32, spaced: bool) {
        self.out.push(Token { tok, line, spaced });
    }

    /// Whether the next token starts a value (so `/` opens a regexp and `%w` a list) rather
    /// than continuing an expression (division, modulo).
    fn value_expected(&self, spaced: bool) -> bool {
        match self.out.last().map(|t| &t.tok) {
            None | Some(Tok::Newline) => true,
            Some(Tok::Op(op)) => !matches!(*op, ")" | "]" | "}"),
            Some(Tok::Keyword(k)) => !matches!(*k, "end" | "self" | "nil" | "true" | "false"),
            Some(Tok::Label(_)) => true,
            // `stream_from /x/` is rare; `a / b` with spaces on both sides is division.
            Some(Tok::Ident(_)) => {
                spaced && self.peek(1).is_some_and(|c| !c.is_whitespace() && c != '=')
            }
            _ => false,
        }
    }

    fn run(&mut self) {
        let mut spaced = false;
        let mut line_start = true;
        while let Some(c) = self.peek(0) {
            if line_start && c == '=' && self.starts_with("=begin") {
                self.skip_block_comment();
                continue;
            }
            if line_start && self.starts_with("__END__") {
                break;
            }
            line_start = false;
            match c {
                '\n' => {
                    let line = self.line;
                    self.at += 1;
                    self.line += 1;
                    self.push(Tok::Newline, line, false);
                    self.read_heredoc_bodies();
                    spaced = false;
                    line_start = true;
                    continue;
                }
                '\\' if self.peek(1) == Some('\n') => {
                    self.at += 2;
                    self.line += 1;
                    spaced = true;
                    continue;
                }
                ' ' | '\t' | '\r' => {
                    self.at += 1;
                    spaced = true;
                    continue;
                }
                '#' => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.at += 1;
                    }
                    continue;
                }
                _ => {}
            }
            let line = self.line;
            let tok = self.token(c, spaced);
            self.push(tok, line, spaced);
            spaced = false;
        }
        let line = self.line;
        self.push(Tok::Newline, line, false);
    }

    pub(super) fn starts_with(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(i, c)| self.peek(i) == Some(c))
    }

    fn skip_block_comment(&mut self) {
        while self.peek(0).is_some() {
            let at_line_start = self.at == 0 || self.chars[self.at - 1] == '\n';
            if at_line_start && self.starts_with("=end") {
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.at += 1;
                }
                return;
            }
            if self.chars[self.at] == '\n' {
                self.line += 1;
            }
            self.at += 1;
        }
    }

    fn token(&mut self, c: char, spaced: bool) -> Tok {
        if c.is_ascii_digit() {
            return self.number();
        }
        if c == '_' || c.is_alphabetic() {
            return self.word();
        }
        match c {
            '"' | '`' => {
                self.at += 1;
                Tok::Str(self.quoted(c, c, true))
            }
            '\'' => {
                self.at += 1;
                Tok::Str(self.quoted('\'', '\'', false))
            }
            '@' => {
                let start = self.at;
                while self.peek(0) == Some('@') {
                    self.at += 1;
                }
                let name = self.ident_chars();
                if name.is_empty() {
                    return Tok::Unknown(self.chars[start..self.at].iter().collect());
                }
                Tok::IVar(name)
            }
            '$' => {
                self.at += 1;
                let name = self.ident_chars();
                if name.is_empty() {
                    // $!, $0, $~ ...
                    let special = self.peek(0).map(String::from).unwrap_or_default();
                    self.at += 1;
                    return Tok::GVar(special);
                }
                Tok::GVar(name)
            }
            ':' if self.peek(1) == Some('"') && self.peek(2).is_some() => {
                self.at += 2;
                Tok::Symbol(plain_text(&self.quoted('"', '"', true)))
            }
            ':' if self.peek(1).is_some_and(|n| n == '_' || n.is_alphabetic())
                && self.symbol_position(spaced) =>
            {
                self.at += 1;
                let mut name = self.ident_chars();
                if matches!(self.peek(0), Some('?' | '!' | '='))
                    && self.peek(1) != Some('=')
                    && self.peek(1) != Some('>')
                {
                    name.push(self.chars[self.at]);
                    self.at += 1;
                }
                Tok::Symbol(name)
            }
            '/' if self.value_expected(spaced) => {
                self.at += 1;
                let pieces = self.quoted('/', '/', true);
                Tok::Regex(pieces, self.regex_flags())
            }
            '%' if self.value_expected(spaced) => self.percent_literal(),
            '<' if self.starts_with("<<") && self.value_expected(spaced) => {
                self.heredoc_start().unwrap_or_else(|| {
                    self.at += 2;
                    Tok::Op("<<")
                })
            }
            '?' if self.value_expected(spaced)
                && self.peek(1).is_some_and(|n| !n.is_whitespace())
                && !self
                    .peek(2)
                    .is_some_and(|n| n == '_' || n.is_alphanumeric()) =>
            {
                // ?a: a one-character string.
                self.at += 2;
                Tok::Str(vec![Piece::Text(self.chars[self.at - 1].to_string())])
            }
            _ => self.operator(),
        }
    }

    /// `:name` is a symbol unless it is the `:` of a ternary written without spaces.
    fn symbol_position(&self, spaced: bool) -> bool {
        spaced
            || !matches!(
                self.out.last().map(|t| &t.tok),
                Some(Tok::Ident(_) | Tok::Const(_) | Tok::Number(_) | Tok::Str(_))
            )
    }

    fn operator(&mut self) -> Tok {
        for op in OPERATORS {
            if self.starts_with(op) {
                self.at += op.chars().count();
                return Tok::Op(op);
            }
        }
        let c = self.chars[self.at];
        self.at += 1;
        Tok::Unknown(c.to_string())
    }

    fn ident_chars(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek(0) {
            if c == '_' || c.is_alphanumeric() {
                name.push(c);
                self.at += 1;
            } else {
                break;
            }
        }
        name
    }

    fn word(&mut self) -> Tok {
        let mut name = self.ident_chars();
        // `present?`, `save!` (not `a != b`, not `a ?b :c` written without spaces)
        if let Some(c @ ('?' | '!')) = self.peek(0)
            && self.peek(1) != Some('=')
        {
            name.push(c);
            self.at += 1;
        }
        let after_dot = matches!(
            self.out.last().map(|t| &t.tok),
            Some(Tok::Op("." | "&.") | Tok::Keyword("def"))
        );
        // `name: value` (not `Name::Const`, not `a ? b : c`)
        if self.peek(0) == Some(':')
            && self.peek(1) != Some(':')
            && !after_dot
            && !name.ends_with(['?', '!'])
        {
            self.at += 1;
            return Tok::Label(name);
        }
        if name == "defined?" {
            return Tok::Keyword("defined?");
        }
        if !after_dot && let Some(k) = KEYWORDS.iter().find(|k| **k == name) {
            return Tok::Keyword(k);
        }
        if name.starts_with(|c: char| c.is_uppercase()) {
            Tok::Const(name)
        } else {
            Tok::Ident(name)
        }
    }

    fn number(&mut self) -> Tok {
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            let decimal_point =
                c == '.' && self.peek(1).is_some_and(|n| n.is_ascii_digit()) && !text.contains('.');
            if c.is_ascii_alphanumeric() || c == '_' || decimal_point {
                text.push(c);
                self.at += 1;
            } else {
                break;
            }
        }
        Tok::Number(text.replace('_', ""))
    }

    fn regex_flags(&mut self) -> String {
        let mut flags = String::new();
        while let Some(c @ ('i' | 'm' | 'x' | 'o' | 'u' | 'n' | 'e' | 's')) = self.peek(0) {
            flags.push(c);
            self.at += 1;
        }
        flags
    }

    /// The body of a quoted literal, after its opening delimiter, up to the closing one.
    /// Nested pairs of bracket delimiters are kept (`%w[a [b] c]`).
    pub(super) fn quoted(&mut self, open: char, close: char, interpolate: bool) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut depth = 0;
        while let Some(c) = self.peek(0) {
            self.at += 1;
            match c {
                '\n' => {
                    self.line += 1;
                    text.push(c);
                }
                '\\' => {
                    let Some(next) = self.peek(0) else { break };
                    self.at += 1;
                    if next == '\n' {
                        self.line += 1;
                        if interpolate {
                            continue;
                        }
                    }
                    text.push_str(&unescape(
                        next,
                        interpolate,
                        open,
                        close,
                        open == '/' || self.regex,
                    ));
                }
                '#' if interpolate && self.peek(0) == Some('{') => {
                    self.at += 1;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    let start = self.at;
                    let end = self.interpolation_end();
                    let inner: String = self.chars[start..end].iter().collect();
                    let first_line = self.line;
                    let mut tokens = lex(&inner);
                    for t in &mut tokens {
                        t.line += first_line - 1;
                    }
                    self.line += inner.matches('\n').count() as u32;
                    tokens.retain(|t| t.tok != Tok::Newline);
                    pieces.push(Piece::Code(tokens));
                    self.at = (end + 1).min(self.chars.len());
                }
                c if c == close && depth == 0 => {
                    if !text.is_empty() || pieces.is_empty() {
                        pieces.push(Piece::Text(text));
                    }
                    return pieces;
                }
                c if c == close => {
                    depth -= 1;
                    text.push(c);
                }
                c if c == open && open != close => {
                    depth += 1;
                    text.push(c);
                }
                c => text.push(c),
            }
        }
        // Unterminated: keep what we have; the parser will see an unknown token next.
        pieces.push(Piece::Text(text));
        pieces
    }

    /// Index of the `}` closing an interpolation that starts at `self.at`.
    fn interpolation_end(&self) -> usize {
        let mut depth = 0;
        let mut i = self.at;
        let mut quote: Option<char> = None;
        while let Some(&c) = self.chars.get(i) {
            match (quote, c) {
                (Some(_), '\\') => i += 1,
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '{') => depth += 1,
                (None, '}') if depth == 0 => return i,
                (None, '}') => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        self.chars.len()
    }

    fn percent_literal(&mut self) -> Tok {
        let kind = self.peek(1);
        let (kind, open_at) = match kind {
            Some(k @ ('w' | 'W' | 'i' | 'I' | 'q' | 'Q' | 'r' | 's')) => (Some(k), 2),
            Some(c) if !c.is_alphanumeric() && !c.is_whitespace() && c != '=' => (None, 1),
            _ => return self.operator(),
        };
        let Some(open) = self.peek(open_at) else {
            return self.operator();
        };
        let close = match open {
            '(' => ')',
            '[' => ']',
            '{' => '}',
            '<' => '>',
            c if !c.is_alphanumeric() && !c.is_whitespace() => c,
            _ => return self.operator(),
        };
        self.at += open_at + 1;
        match kind {
            Some('w' | 'W' | 'i' | 'I') => {
                let body = plain_text(&self.quoted(open, close, false));
                let words = body.split_whitespace().map(String::from).collect();
                Tok::Words(words, matches!(kind, Some('i' | 'I')))
            }
            Some('q') => Tok::Str(self.quoted(open, close, false)),
            Some('s') => Tok::Symbol(plain_text(&self.quoted(open, close, false))),
            Some('r') => {
                self.regex = true;
                let pieces = self.quoted(open, close, true);
                self.regex = false;
                Tok::Regex(pieces, self.regex_flags())
            }
            _ => Tok::Str(self.quoted(open, close, true)),
        }
    }
}

fn unescape(c: char, interpolate: bool, open: char, close: char, regex: bool) -> String {
    if regex {
        // A regexp keeps its escapes for the regexp engine; only the delimiter is unescaped.
        return if c == open || c == close {
            c.to_string()
        } else {
            format!("\\{c}")
        };
    }
    if !interpolate {
        return if c == '\\' || c == open || c == close {
            c.to_string()
        } else {
            format!("\\{c}")
        };
    }
    match c {
        'n' => "\n".into(),
        't' => "\t".into(),
        's' => " ".into(),
        'r' => "\r".into(),
        '0' => "\0".into(),
        'e' => "\u{1b}".into(),
        c => c.to_string(),
    }
}

/// The text of literal pieces (interpolations dropped).
pub fn plain_text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Text(t) => Some(t.as_str()),
            Piece::Code(_) => None,
        })
        .collect()
}

/// Drops the newlines that do not end a statement: after a binary operator, a comma or an
/// opening bracket, and before a line that starts with `.method` or `&.method`.
fn join_continued_lines(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if t.tok == Tok::Newline {
            let continues = match out.last().map(|prev| &prev.tok) {
                None | Some(Tok::Newline) => true,
                Some(Tok::Op(op)) => !matches!(*op, ")" | "]" | "}" | ";"),
                Some(Tok::Keyword(k)) => {
                    matches!(
                        *k,
                        "and" | "or" | "not" | "if" | "unless" | "while" | "until"
                    )
                }
                _ => false,
            };
            let next = tokens[i + 1..].iter().find(|n| n.tok != Tok::Newline);
            let leading_dot = next.is_some_and(|n| matches!(n.tok, Tok::Op("." | "&.")));
            if continues || leading_dot {
                continue;
            }
        }
        out.push(t.clone());
    }
    out
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
