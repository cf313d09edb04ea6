//! The tokenizer on the lexical shapes Rails apps use.
use super::*;

fn kinds(src: &str) -> Vec<Tok> {
    lex(src).into_iter().map(|t| t.tok).collect()
}

#[test]
fn strings_keep_their_interpolations() {
    let toks = kinds(r#"stream_from "chat_#{params[:room]}_x""#);
    assert_eq!(toks[0], Tok::Ident("stream_from".into()));
    let Tok::Str(pieces) = &toks[1] else {
        panic!("{toks:?}")
    };
    assert_eq!(pieces[0], Piece::Text("chat_".into()));
    let Piece::Code(code) = &pieces[1] else {
        panic!()
    };
    assert_eq!(code[0].tok, Tok::Ident("params".into()));
    assert_eq!(code[2].tok, Tok::Symbol("room".into()));
    assert_eq!(pieces[2], Piece::Text("_x".into()));
}

#[test]
fn symbols_labels_and_ternaries() {
    assert_eq!(
        kinds("identified_by :current_user, :restaurant_id"),
        vec![
            Tok::Ident("identified_by".into()),
            Tok::Symbol("current_user".into()),
            Tok::Op(","),
            Tok::Symbol("restaurant_id".into()),
            Tok::Newline
        ]
    );
    assert_eq!(
        kinds("find_by(token: t)"),
        vec![
            Tok::Ident("find_by".into()),
            Tok::Op("("),
            Tok::Label("token".into()),
            Tok::Ident("t".into()),
            Tok::Op(")"),
            Tok::Newline
        ]
    );
    let t = kinds("a ? b : c");
    assert!(
        t.contains(&Tok::Op("?")) && t.contains(&Tok::Op(":")),
        "{t:?}"
    );
    assert!(kinds("A::B").contains(&Tok::Op("::")));
    assert_eq!(kinds("x.present?")[2], Tok::Ident("present?".into()));
}

#[test]
fn regexps_versus_division() {
    let t = kinds(r"origins = [/https?:\/\/x\.com/i, %r{a/b}]");
    assert!(
        matches!(&t[3], Tok::Regex(p, f) if plain_text(p) == r"https?://x\.com" && f == "i"),
        "{t:?}"
    );
    assert!(
        matches!(&t[5], Tok::Regex(p, _) if plain_text(p) == "a/b"),
        "{t:?}"
    );
    assert_eq!(kinds("a / b")[1], Tok::Op("/"));
    assert_eq!(kinds("a/b")[1], Tok::Op("/"));
}

#[test]
fn comments_words_heredocs_and_continuations() {
    let t = kinds("x = %w[admin staff] # roles\n=begin\nignored\n=end\ny");
    assert_eq!(
        t[2],
        Tok::Words(vec!["admin".into(), "staff".into()], false)
    );
    assert_eq!(t[4], Tok::Ident("y".into()));
    let t = kinds("a = <<~SQL\n  select 1\n  from t\nSQL\nb");
    assert_eq!(
        t[2],
        Tok::Str(vec![Piece::Text("select 1\nfrom t\n".into())])
    );
    assert_eq!(t[4], Tok::Ident("b".into()));
    let t = kinds("foo(a,\n  b)\n  .bar");
    assert!(!t[..t.len() - 1].contains(&Tok::Newline), "{t:?}");
    let t = lex("a\n\nb");
    assert_eq!(t[2].line, 3);
}

#[test]
fn single_quotes_do_not_interpolate() {
    assert_eq!(
        kinds(r"'a#{b}\n'")[0],
        Tok::Str(vec![Piece::Text(r"a#{b}\n".into())])
    );
}
