//! What an action broadcasts → a relay action's `payload` template: Campfire's
//! `broadcast_to @room, action: :start, user: current_user.slice(:id, :name)` becomes
//! `{"action":"start","user":{"id":"{claims.id}","name":"{claims.name}"}}`, each
//! placeholder replaced by its typed value when the action runs.

use super::super::sym::Sym;
use super::rules::IdentifierInfo;

/// How a record attribute that the channel's `authorize` row holds is named (`room.id` →
/// `row.id`); `None` for anything else.
pub type RowColumn<'a> = dyn Fn(&Sym) -> Option<String> + 'a;

/// The payload template for `data`, with assumptions; `Ok(None)` when the action
/// broadcasts the client's data as it is (no template needed).
pub fn template(
    data: &Sym,
    info: &IdentifierInfo,
    row: &RowColumn<'_>,
) -> Result<Option<(String, Vec<String>)>, String> {
    if *data == Sym::Data(None) {
        return Ok(None);
    }
    let mut assumptions = Vec::new();
    let json = value(data, info, row, &mut assumptions)?;
    if !json.starts_with('{') {
        return Err(format!(
            "it broadcasts {data}, not a hash (Rails wraps other values differently)"
        ));
    }
    Ok(Some((json, assumptions)))
}

fn placeholder(name: &str) -> String {
    quote(&format!("{{{name}}}"))
}

fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn value(
    s: &Sym,
    info: &IdentifierInfo,
    row: &RowColumn<'_>,
    assumptions: &mut Vec<String>,
) -> Result<String, String> {
    Ok(match s {
        Sym::Hash(pairs) => {
            let mut items = Vec::new();
            for (k, v) in pairs {
                items.push(format!(
                    "{}:{}",
                    quote(k),
                    value(v, info, row, assumptions)?
                ));
            }
            format!("{{{}}}", items.join(","))
        }
        Sym::List(items) => {
            let items: Result<Vec<String>, String> = items
                .iter()
                .map(|i| value(i, info, row, assumptions))
                .collect();
            format!("[{}]", items?.join(","))
        }
        Sym::Lit(None) => "null".into(),
        // Numbers and booleans as written in the code, everything else (strings,
        // symbols) as a JSON string, as Rails' JSON encoding writes them.
        Sym::Lit(Some(t)) if t == "true" || t == "false" || t.parse::<i64>().is_ok() => t.clone(),
        Sym::Lit(Some(t)) => quote(t),
        Sym::Data(None) => placeholder("data"),
        Sym::Data(Some(k)) => placeholder(&format!("data.{k}")),
        Sym::Param(p) => placeholder(&format!("params.{p}")),
        Sym::Claim(c) => placeholder(&format!("claims.{c}")),
        Sym::Identifier(n) if !info.models.contains(n) && info.names.contains(n) => placeholder(n),
        Sym::Identifier(n) => {
            return Err(format!(
                "it sends the record {n} whole (all its attributes, as Rails' as_json writes \
                 them); list the attributes with slice(...) in the app, or keep it on Rails"
            ));
        }
        Sym::Slice(inner, attrs) => {
            let mut items = Vec::new();
            for a in attrs {
                let v = value(&Sym::Attr(inner.clone(), a.clone()), info, row, assumptions)?;
                items.push(format!("{}:{v}", quote(a)));
            }
            format!("{{{}}}", items.join(","))
        }
        Sym::Attr(inner, attr) => match &**inner {
            Sym::Identifier(n) => {
                let (src, note) = info.attribute(n, attr)?;
                assumptions.extend(note);
                placeholder(&src)
            }
            _ => match row(s) {
                Some(col) => placeholder(&format!("row.{col}")),
                None => return Err(format!("it sends {s}, which ferrocable cannot compute")),
            },
        },
        other => return Err(format!("it sends {other}, which ferrocable cannot compute")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campfire_typing_payload() {
        let info = IdentifierInfo {
            names: vec!["current_user".into()],
            models: vec!["current_user".into()],
            id_claim: [("current_user".to_string(), "id".to_string())].into(),
            model_of: [("current_user".to_string(), "User".to_string())].into(),
            from_row: true,
            ..IdentifierInfo::default()
        };
        let data = Sym::Hash(vec![
            ("action".into(), Sym::Lit(Some("start".into()))),
            (
                "user".into(),
                Sym::Slice(
                    Box::new(Sym::Identifier("current_user".into())),
                    vec!["id".into(), "name".into()],
                ),
            ),
        ]);
        let (json, assumptions) = template(&data, &info, &|_| None).unwrap().unwrap();
        assert_eq!(
            json,
            r#"{"action":"start","user":{"id":"{claims.id}","name":"{claims.name}"}}"#
        );
        assert_eq!(assumptions.len(), 1, "{assumptions:?}");
        let whole = Sym::Hash(vec![(
            "user".into(),
            Sym::Identifier("current_user".into()),
        )]);
        assert!(template(&whole, &info, &|_| None).is_err());
        assert_eq!(template(&Sym::Data(None), &info, &|_| None), Ok(None));
    }
}
