//! Expression trees back to Ruby-like source, for the report: conditions, stream names and
//! statements are quoted as the reader understood them.

use super::ast::{Body, Expr, StrPart};

/// Ruby-like source for an expression.
pub fn source(e: &Expr) -> String {
    let mut out = String::new();
    write(e, &mut out);
    out
}

fn list(items: &[Expr], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write(item, out);
    }
}

fn body(b: &Body, out: &mut String) {
    for (i, s) in b.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        write(&s.expr, out);
    }
}

fn string(parts: &[StrPart], out: &mut String) {
    for p in parts {
        match p {
            StrPart::Text(t) => out.push_str(&t.replace('\\', "\\\\").replace('"', "\\\"")),
            StrPart::Code(e) => {
                out.push_str("#{");
                write(e, out);
                out.push('}');
            }
        }
    }
}

fn write(e: &Expr, out: &mut String) {
    match e {
        Expr::Nil => out.push_str("nil"),
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::Number(n) => out.push_str(n),
        Expr::Str(parts) => {
            out.push('"');
            string(parts, out);
            out.push('"');
        }
        Expr::Sym(s) => {
            out.push(':');
            out.push_str(s);
        }
        Expr::Regex(parts, flags) => {
            out.push('/');
            for p in parts {
                match p {
                    StrPart::Text(t) => out.push_str(t),
                    StrPart::Code(e) => {
                        out.push_str("#{");
                        write(e, out);
                        out.push('}');
                    }
                }
            }
            out.push('/');
            out.push_str(flags);
        }
        Expr::Array(items) => {
            out.push('[');
            list(items, out);
            out.push(']');
        }
        Expr::Hash(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                out.push_str(if i > 0 { ", " } else { " " });
                match k {
                    Expr::Sym(s) => {
                        out.push_str(s);
                        out.push_str(": ");
                    }
                    Expr::Splat(_) => out.push_str("**"),
                    k => {
                        write(k, out);
                        out.push_str(" => ");
                    }
                }
                write(v, out);
            }
            out.push_str(" }");
        }
        Expr::Name(n) => out.push_str(n),
        Expr::IVar(n) => {
            out.push('@');
            out.push_str(n);
        }
        Expr::GVar(n) => {
            out.push('$');
            out.push_str(n);
        }
        Expr::Const(segs) => out.push_str(&segs.join("::")),
        Expr::SelfRef => out.push_str("self"),
        Expr::Call(c) => {
            if let Some(r) = &c.recv {
                write(r, out);
                out.push_str(if c.safe { "&." } else { "." });
            }
            out.push_str(&c.name);
            if !c.args.is_empty() {
                out.push('(');
                list(&c.args, out);
                out.push(')');
            }
            if let Some(b) = &c.block {
                out.push_str(" { ");
                if !b.params.is_empty() {
                    out.push('|');
                    out.push_str(&b.params.join(", "));
                    out.push_str("| ");
                }
                body(&b.body, out);
                out.push_str(" }");
            }
        }
        Expr::Index(r, args) => {
            write(r, out);
            out.push('[');
            list(args, out);
            out.push(']');
        }
        Expr::Assign(t, op, v) => {
            write(t, out);
            out.push(' ');
            out.push_str(op);
            out.push(' ');
            write(v, out);
        }
        Expr::MultiAssign(ts, v) => {
            list(ts, out);
            out.push_str(" = ");
            write(v, out);
        }
        Expr::Not(inner) => {
            out.push('!');
            paren(inner, out);
        }
        Expr::And(a, b) => binary("&&", a, b, out),
        Expr::Or(a, b) => binary("||", a, b, out),
        Expr::Binary(op, a, b) => binary(op, a, b, out),
        Expr::If(c, yes, no) => {
            out.push_str("if ");
            write(c, out);
            out.push_str(" then ");
            body(yes, out);
            if !no.is_empty() {
                out.push_str(" else ");
                body(no, out);
            }
            out.push_str(" end");
        }
        Expr::Case(subject, arms, otherwise) => {
            out.push_str("case ");
            write(subject, out);
            for (patterns, b) in arms {
                out.push_str(" when ");
                list(patterns, out);
                out.push_str(" then ");
                body(b, out);
            }
            if !otherwise.is_empty() {
                out.push_str(" else ");
                body(otherwise, out);
            }
            out.push_str(" end");
        }
        Expr::Loop(c, b) => {
            out.push_str("while ");
            write(c, out);
            out.push_str(" do ");
            body(b, out);
            out.push_str(" end");
        }
        Expr::Begin(b, rescues, ensure) => {
            out.push_str("begin ");
            body(b, out);
            for r in rescues {
                out.push_str(" rescue ");
                list(&r.classes, out);
                out.push_str(if r.classes.is_empty() { "" } else { " " });
                out.push_str("then ");
                body(&r.body, out);
            }
            if !ensure.is_empty() {
                out.push_str(" ensure ");
                body(ensure, out);
            }
            out.push_str(" end");
        }
        Expr::Return(v) => {
            out.push_str("return");
            if let Some(v) = v {
                out.push(' ');
                write(v, out);
            }
        }
        Expr::Lambda(params, b) => {
            out.push_str("->(");
            out.push_str(&params.join(", "));
            out.push_str(") { ");
            body(b, out);
            out.push_str(" }");
        }
        Expr::Defined(inner) => {
            out.push_str("defined?(");
            write(inner, out);
            out.push(')');
        }
        Expr::Range(a, b) => binary("..", a, b, out),
        Expr::Splat(inner) => {
            out.push('*');
            write(inner, out);
        }
        Expr::Keyword(k, args) => {
            out.push_str(k);
            if !args.is_empty() {
                out.push(' ');
                list(args, out);
            }
        }
        Expr::Unknown(text, _) => out.push_str(text),
    }
}

fn paren(e: &Expr, out: &mut String) {
    let needs = matches!(e, Expr::And(..) | Expr::Or(..) | Expr::Binary(..));
    if needs {
        out.push('(');
    }
    write(e, out);
    if needs {
        out.push(')');
    }
}

fn binary(op: &str, a: &Expr, b: &Expr, out: &mut String) {
    paren(a, out);
    out.push(' ');
    out.push_str(op);
    out.push(' ');
    paren(b, out);
}

#[cfg(test)]
mod tests {
    use super::super::parse_body;
    use super::*;

    #[test]
    fn round_trips_the_common_shapes() {
        for src in [
            r#"stream_from("chat_#{params[:room]}")"#,
            r#"reject unless ROLES.include?(connection.claims["role"])"#,
            "current_user&.restaurant_id",
            r#"ActionCable.server.broadcast("x", { a: 1, "b" => 2 })"#,
        ] {
            let body = parse_body(src);
            let printed = source(&body[0].expr);
            let again = parse_body(&printed);
            assert_eq!(body[0].expr, again[0].expr, "{src} -> {printed}");
        }
    }
}
