//! Heredocs (`<<~SQL`, `<<-EOS`, `<<EOS`, quoted terminators): the start is a token where it
//! appears, the body is read at the end of that line.

use super::lexer::{Lexer, PendingHeredoc, Piece, Tok};

impl Lexer {
    /// `<<~EOS`, `<<-EOS`, `<<EOS`, quoted terminators. The body is read at the next newline.
    pub(super) fn heredoc_start(&mut self) -> Option<Tok> {
        let mut i = self.at + 2;
        let mut squiggly = false;
        let mut dash = false;
        match self.chars.get(i) {
            Some('~') => {
                squiggly = true;
                i += 1;
            }
            Some('-') => {
                dash = true;
                i += 1;
            }
            _ => {}
        }
        let quote = match self.chars.get(i) {
            Some(q @ ('\'' | '"')) => {
                i += 1;
                Some(*q)
            }
            _ => None,
        };
        let start = i;
        while self
            .chars
            .get(i)
            .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
        {
            i += 1;
        }
        if i == start || !self.chars[start].is_ascii_uppercase() {
            return None;
        }
        let terminator: String = self.chars[start..i].iter().collect();
        if let Some(q) = quote {
            if self.chars.get(i) != Some(&q) {
                return None;
            }
            i += 1;
        }
        self.at = i;
        self.pending_heredocs.push(PendingHeredoc {
            token: self.out.len(),
            terminator,
            squiggly,
            dash,
            interpolate: quote != Some('\''),
        });
        Some(Tok::Str(Vec::new()))
    }

    pub(super) fn read_heredoc_bodies(&mut self) {
        for doc in std::mem::take(&mut self.pending_heredocs) {
            let mut lines: Vec<String> = Vec::new();
            loop {
                if self.at >= self.chars.len() {
                    break;
                }
                let end = (self.at..self.chars.len())
                    .find(|&i| self.chars[i] == '\n')
                    .unwrap_or(self.chars.len());
                let text: String = self.chars[self.at..end].iter().collect();
                self.at = (end + 1).min(self.chars.len());
                self.line += 1;
                let candidate = if doc.squiggly || doc.dash {
                    text.trim()
                } else {
                    text.as_str()
                };
                if candidate == doc.terminator {
                    break;
                }
                lines.push(text);
            }
            if doc.squiggly {
                let indent = lines
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .min()
                    .unwrap_or(0);
                for l in &mut lines {
                    *l = l.chars().skip(indent).collect();
                }
            }
            let mut body = lines.join("\n");
            body.push('\n');
            let pieces = if doc.interpolate {
                let mut sub = Lexer {
                    chars: body.chars().collect(),
                    at: 0,
                    line: 1,
                    out: Vec::new(),
                    pending_heredocs: Vec::new(),
                    regex: false,
                };
                sub.quoted('\u{0}', '\u{0}', true)
            } else {
                vec![Piece::Text(body)]
            };
            if let Some(t) = self.out.get_mut(doc.token) {
                t.tok = Tok::Str(pieces);
            }
        }
    }
}
