//! A channel's database check → `[channels.<Name>.authorize]`: the record a channel finds
//! before it streams (`@room = current_user.rooms.find_by(id: params[:room_id])`, `reject`
//! without it) becomes one SELECT through the association, its inputs bound from the
//! subscription's params, the connection's claims or the verified signed name
//! (`GlobalID::Locator.locate(name.split(":").first)&.id` → `signed_stream.Room`). Streams
//! and relays named after that record read its row (`stream_for @room` →
//! `{channel_name}:{gid:Room/row.id}`).

use super::super::models::Models;
use super::super::sym::{NamePart, Sym};
use super::rules::IdentifierInfo;
use super::sql::{self, Chain};
use crate::channels::AuthorizeSection;

/// The record a channel authorizes with, and the query it becomes.
#[derive(Debug, Clone)]
pub struct Authorizer {
    /// The record as the walker saw it (what streams and conditions are compared with).
    pub record: Sym,
    /// Its model (`Room`).
    pub model: String,
    chain: Chain,
    conditions: Vec<(String, String)>,
    binds: Vec<String>,
    /// Row columns used (`id` first).
    pub columns: Vec<String>,
    /// What was guessed.
    pub assumptions: Vec<String>,
    /// The association it goes through (`User.rooms`), if any.
    through: Option<String>,
}

/// Whether a value is a record found in the database that `plan` could express: a finder
/// on a model or through an identifier's association.
pub fn is_lookup(s: &Sym) -> bool {
    matches!(s, Sym::Record { finder, .. } if finder != "find_signed" && finder != "find_signed!")
}

impl Authorizer {
    /// Builds the query for `record`; `signed`: the channel verifies a signed name (which
    /// `signed_stream.<Model>` binds read).
    pub fn plan(
        record: &Sym,
        models: &Models,
        info: &IdentifierInfo,
        signed: bool,
    ) -> Result<Authorizer, String> {
        let Sym::Record {
            model,
            finder,
            keys,
            scope,
            ..
        } = record
        else {
            return Err(format!("{record} is not a lookup"));
        };
        if !matches!(
            finder.as_str(),
            "find_by" | "find_by!" | "find" | "find_by_id" | "exists?"
        ) {
            return Err(format!("`{finder}` is not a lookup the reader translates"));
        }
        let mut assumptions = Vec::new();
        let mut binds = Vec::new();
        // The owner: `current_user.rooms` starts from the identifier's row.
        let (owner_model, associations) = match scope {
            None => (model.clone(), Vec::new()),
            Some(s) => {
                let mut assocs = Vec::new();
                let mut cur = &**s;
                while let Sym::Attr(inner, a) = cur {
                    assocs.insert(0, a.clone());
                    cur = inner;
                }
                let Sym::Identifier(n) = cur else {
                    return Err(
                        "it starts from another lookup, not from a connection identifier".into(),
                    );
                };
                let owner = info.model_of.get(n).ok_or_else(|| {
                    format!("{n} is not a record the connection's mapping knows the model of")
                })?;
                let claim = info
                    .id_claim
                    .get(n)
                    .ok_or_else(|| format!("{n}'s id is not a claim"))?;
                binds.push(format!("claims.{claim}"));
                (owner.clone(), assocs)
            }
        };
        if scope.is_some() && associations.is_empty() {
            return Err(format!("{record} has no association to look through"));
        }
        let chain = sql::chain(models, &owner_model, &associations)?;
        let target = chain.model().to_string();
        let table = chain.table().to_string();
        let mut conditions = Vec::new();
        for (key, value) in keys {
            let column = sql::key_column(models, &target, key);
            let placeholder = |binds: &Vec<String>| format!("${}", binds.len() + 1);
            match bind(value, models, info, &table, &column, &target, signed)? {
                Bound::Source(src, note) => {
                    conditions.push((column, placeholder(&binds)));
                    binds.push(src);
                    assumptions.extend(note);
                }
                Bound::Literal(sql) => conditions.push((column, sql)),
            }
        }
        if keys.is_empty() && scope.is_none() {
            return Err(format!("{record} has no condition"));
        }
        Ok(Authorizer {
            record: record.clone(),
            model: target,
            chain,
            conditions,
            binds,
            columns: vec!["id".into()],
            assumptions,
            through: (!associations.is_empty())
                .then(|| format!("{owner_model}.{}", associations.join("."))),
        })
    }

    /// A column of the row that a stream or a payload reads (`{row.slug}`).
    pub fn use_column(&mut self, column: &str) {
        if !self.columns.iter().any(|c| c == column) {
            self.columns.push(column.to_string());
        }
    }

    /// The `[authorize]` section, with the naming assumption for the report.
    pub fn section(&self, models: &Models) -> (AuthorizeSection, String) {
        let query = sql::predicate_query(&self.chain, &self.columns, &self.conditions);
        let what = match &self.through {
            Some(t) => format!("the predicate follows {t} and"),
            None => "the predicate".to_string(),
        };
        let note = sql::naming_assumption(models, &what, &self.chain);
        (
            AuthorizeSection {
                query,
                bind: self.binds.clone(),
                recheck_secs: 0,
            },
            note,
        )
    }
}

/// How the assumption about the GlobalID's place in the signed name begins.
pub const FIRST_PART: &str = "Rails reads the GlobalID from the signed name's first part";

enum Bound {
    /// A bind source (`params.room_id:integer`) and what it assumes.
    Source(String, Vec<String>),
    /// A literal written into the SQL (from the app's code, never from a client).
    Literal(String),
}

fn bind(
    value: &Sym,
    models: &Models,
    info: &IdentifierInfo,
    table: &str,
    column: &str,
    target: &str,
    signed: bool,
) -> Result<Bound, String> {
    let (cast, note) = sql::cast_for(models, table, column);
    Ok(match value {
        Sym::Param(p) => {
            let note = note.map(|n| format!("{n}; params[:{p}] is cast as Active Record casts it"));
            Bound::Source(format!("params.{p}{cast}"), note.into_iter().collect())
        }
        Sym::Claim(c) => Bound::Source(format!("claims.{c}"), Vec::new()),
        Sym::Identifier(n) => {
            let claim = info
                .id_claim
                .get(n)
                .ok_or_else(|| format!("the identifier {n} has no claim to bind"))?;
            Bound::Source(format!("claims.{claim}"), Vec::new())
        }
        Sym::Attr(inner, attr) => match &**inner {
            Sym::Identifier(n) => {
                let (src, note) = info.attribute(n, attr)?;
                Bound::Source(src, note.into_iter().collect())
            }
            Sym::Located { gid, only } if attr == "id" => {
                if !signed {
                    return Err(
                        "it reads a GlobalID from a name the channel does not verify".into(),
                    );
                }
                if **gid != Sym::NamePart(NamePart::First) {
                    return Err(format!(
                        "the GlobalID comes from {gid}, not from the signed name's first part"
                    ));
                }
                let (classes, note) = if only.is_empty() {
                    (
                        vec![target.to_string()],
                        Some(format!(
                            "GlobalID::Locator.locate without only: may return any model, whose \
                             id Rails then compares with {target} ids; signed_stream.{target} \
                             reads only a {target}'s GlobalID (stricter)"
                        )),
                    )
                } else {
                    (only.clone(), None)
                };
                let mut notes: Vec<String> = note.into_iter().collect();
                notes.push(format!(
                    "{FIRST_PART}; signed_stream.{} reads the first part that is one (the same \
                     for a name `turbo_stream_from` signs with the record first)",
                    classes.join("|")
                ));
                Bound::Source(format!("signed_stream.{}{cast}", classes.join("|")), notes)
            }
            _ => return Err(format!("{value} cannot be bound")),
        },
        Sym::Lit(Some(t)) => {
            if t.parse::<i64>().is_ok() {
                Bound::Literal(t.clone())
            } else {
                Bound::Literal(format!("'{}'", t.replace('\'', "''")))
            }
        }
        other => return Err(format!("the value {other} cannot be bound")),
    })
}
