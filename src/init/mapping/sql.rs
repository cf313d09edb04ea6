//! SQL for the database checks `init` writes: the connection's `[auth.lookup]`
//! (`Session.find_by(token: cookie).user`) and a channel's `[authorize]` predicate
//! (`current_user.rooms.find_by(id: params[:room_id])`). Tables and join columns come from
//! the app's models ([`Models`]) and Rails' naming; the query always binds its inputs
//! (`$1`, `$2`), never splices them, and every guess is returned as an assumption.

use super::super::models::{Kind, Models, camelize, singularize};

/// One join step: the table reached and the pair of columns that links it to the
/// previous one (`(this table's column, the previous table's column)`).
#[derive(Debug, Clone, PartialEq)]
struct Step {
    table: String,
    model: String,
    this_column: String,
    prev_column: String,
}

/// Tables reached from a model through associations, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The starting table and model.
    pub start: (String, String),
    steps: Vec<Step>,
    /// Conventions relied on (for the report).
    pub guesses: Vec<String>,
}

impl Chain {
    /// The model at the end of the chain.
    pub fn model(&self) -> &str {
        self.steps.last().map_or(&self.start.1, |s| &s.model)
    }

    /// The table at the end of the chain.
    pub fn table(&self) -> &str {
        self.steps.last().map_or(&self.start.0, |s| &s.table)
    }

    /// Every table the chain names.
    pub fn tables(&self) -> Vec<&str> {
        std::iter::once(self.start.0.as_str())
            .chain(self.steps.iter().map(|s| s.table.as_str()))
            .collect()
    }
}

/// Follows `associations` from `model` (`User` + `["rooms"]`, through `memberships`).
pub fn chain(models: &Models, model: &str, associations: &[String]) -> Result<Chain, String> {
    let (table, named) = models.table(model);
    let mut chain = Chain {
        start: (table.clone(), model.to_string()),
        steps: Vec::new(),
        guesses: Vec::new(),
    };
    if !named {
        chain.guesses.push(format!("{model}'s table is {table}"));
    }
    for name in associations {
        follow(models, &mut chain, name, 0)?;
    }
    let tables = chain.tables();
    if (1..tables.len()).any(|i| tables[..i].contains(&tables[i])) {
        return Err(format!(
            "the associations reach the table {} twice, which needs table aliases",
            chain.table()
        ));
    }
    Ok(chain)
}

fn follow(models: &Models, chain: &mut Chain, name: &str, depth: usize) -> Result<(), String> {
    if depth > 3 {
        return Err(format!("`{name}` goes through too many associations"));
    }
    let owner = chain.model().to_string();
    let owner_table = chain.table().to_string();
    let a = models.association_or_convention(&owner, name);
    if a.polymorphic {
        return Err(format!(
            "{owner}.{name} is polymorphic or has_and_belongs_to_many, which the reader does not follow"
        ));
    }
    if !a.declared {
        chain.guesses.push(format!(
            "{owner}.{name} is read as Rails would read an undeclared `{}` (the reader found no \
             declaration in app/models)",
            match a.kind {
                Kind::BelongsTo => format!("belongs_to :{name}"),
                _ => format!("has_many :{name}"),
            }
        ));
    }
    if let Some(through) = &a.through {
        follow(models, chain, through, depth + 1)?;
        // The source on the through model: `source:`, else the same name, singular or not.
        let via = chain.model().to_string();
        let source = match &a.source {
            Some(s) => s.clone(),
            None if models.association(&via, name).is_some() => name.to_string(),
            None => singularize(name),
        };
        return follow(models, chain, &source, depth + 1);
    }
    let target = a.class_name.clone();
    let (table, named) = models.table(&target);
    if !named {
        chain.guesses.push(format!("{target}'s table is {table}"));
    }
    let owner_key = || {
        let base = owner.rsplit("::").next().unwrap_or(&owner);
        format!("{}_id", ferrocable_rails::underscore(base))
    };
    let step = match a.kind {
        Kind::BelongsTo => Step {
            table,
            model: target,
            this_column: "id".into(),
            prev_column: a
                .foreign_key
                .clone()
                .unwrap_or_else(|| format!("{name}_id")),
        },
        Kind::HasMany | Kind::HasOne => Step {
            table,
            model: target,
            this_column: a.foreign_key.clone().unwrap_or_else(owner_key),
            prev_column: "id".into(),
        },
    };
    if a.foreign_key.is_none() {
        chain.guesses.push(format!(
            "{owner}.{name} joins on {}",
            if a.kind == Kind::BelongsTo {
                format!("{owner_table}.{}", step.prev_column)
            } else {
                format!("{}.{}", step.table, step.this_column)
            }
        ));
    }
    chain.steps.push(step);
    Ok(())
}

/// `FROM <start> JOIN ... WHERE <start>.<column> = $1`, selecting `columns` of the end:
/// the connection's lookup (`Session.find_by(token: $1).user`).
pub fn lookup_query(chain: &Chain, column: &str, columns: &[String]) -> String {
    let end = chain.table();
    let select: Vec<String> = columns.iter().map(|c| format!("{end}.{c}")).collect();
    let mut sql = format!("SELECT {} FROM {}", select.join(", "), chain.start.0);
    let mut prev = chain.start.0.clone();
    for s in &chain.steps {
        sql.push_str(&format!(
            " JOIN {t} ON {t}.{} = {prev}.{}",
            s.this_column,
            s.prev_column,
            t = s.table
        ));
        prev = s.table.clone();
    }
    sql.push_str(&format!(" WHERE {}.{column} = $1", chain.start.0));
    sql
}

/// `SELECT <end>.<columns> FROM <end> JOIN ... WHERE <owner link> = $1 AND <conditions>`:
/// the rows reached from one owner row (whose id is `$1`) that meet `conditions`
/// (`column`, already numbered placeholder or SQL literal). With no associations, there is
/// no owner and the conditions stand alone.
pub fn predicate_query(
    chain: &Chain,
    columns: &[String],
    conditions: &[(String, String)],
) -> String {
    let end = chain.table();
    let select: Vec<String> = columns.iter().map(|c| format!("{end}.{c}")).collect();
    let mut sql = format!("SELECT {} FROM {end}", select.join(", "));
    let mut wheres = Vec::new();
    // Walk back from the end; each earlier table is joined on its link to the later one.
    let mut later = end.to_string();
    for (i, s) in chain.steps.iter().enumerate().rev() {
        let earlier = if i == 0 {
            chain.start.0.clone()
        } else {
            chain.steps[i - 1].table.clone()
        };
        if i == 0 && s.prev_column == "id" {
            // The owner's own row is not needed: its id is $1.
            wheres.push(format!("{later}.{} = $1", s.this_column));
        } else {
            sql.push_str(&format!(
                " JOIN {earlier} ON {earlier}.{} = {later}.{}",
                s.prev_column, s.this_column
            ));
            if i == 0 {
                wheres.push(format!("{earlier}.id = $1"));
            }
        }
        later = earlier;
    }
    for (column, value) in conditions {
        wheres.push(format!("{end}.{column} = {value}"));
    }
    if !wheres.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&wheres.join(" AND "));
    }
    sql
}

/// How a value bound to `table.column` is cast: `:integer` for an integer column (or an
/// id when the schema does not say), `:text` otherwise; with an assumption when guessed.
pub fn cast_for(models: &Models, table: &str, column: &str) -> (&'static str, Option<String>) {
    match models.column_type(table, column) {
        Some("integer" | "bigint" | "primary_key") => (":integer", None),
        Some(_) => (":text", None),
        None if column == "id" || column.ends_with("_id") => (
            ":integer",
            Some(format!(
                "{table}.{column} is taken to be an integer column (Rails' default ids{})",
                if models.has_schema() {
                    "; db/schema.rb does not list it"
                } else {
                    "; no db/schema.rb was read"
                }
            )),
        ),
        None => (
            ":text",
            Some(format!(
                "{table}.{column} is taken to hold text (the value is bound as Ruby's to_s)"
            )),
        ),
    }
}

/// The association name that a `find_by(user: record)` key stands for, as its column
/// (`user` → `user_id` when the model belongs_to :user).
pub fn key_column(models: &Models, model: &str, key: &str) -> String {
    match models.association(model, key) {
        Some(a) if a.kind == Kind::BelongsTo => {
            a.foreign_key.unwrap_or_else(|| format!("{key}_id"))
        }
        _ => key.to_string(),
    }
}

/// The one-line assumption a query built here carries (the query itself is in the rules).
pub fn naming_assumption(models: &Models, what: &str, chain: &Chain) -> String {
    let missing: Vec<&str> = chain
        .tables()
        .into_iter()
        .filter(|t| models.has_schema() && !models.has_table(t))
        .collect();
    let checked = if !models.has_schema() {
        "no db/schema.rb was read to check them".to_string()
    } else if missing.is_empty() {
        "db/schema.rb has these tables".to_string()
    } else {
        format!("db/schema.rb lacks {}", missing.join(", "))
    };
    let guesses = if chain.guesses.is_empty() {
        String::new()
    } else {
        format!(" ({})", chain.guesses.join("; "))
    };
    format!("{what} names tables and columns as Rails names them{guesses}; {checked}")
}

/// `Room` for a has_many name (`rooms`), for messages.
pub fn model_for(name: &str) -> String {
    camelize(&singularize(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campfire() -> Models {
        let dir = std::env::temp_dir().join(format!("ferrocable-sql-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("app/models")).unwrap();
        for (f, text) in [
            (
                "user.rb",
                "class User < ApplicationRecord\n  has_many :memberships\n  has_many :rooms, through: :memberships\nend\n",
            ),
            (
                "membership.rb",
                "class Membership < ApplicationRecord\n  belongs_to :room\n  belongs_to :user\nend\n",
            ),
            (
                "session.rb",
                "class Session < ApplicationRecord\n  belongs_to :user\nend\n",
            ),
        ] {
            std::fs::write(dir.join("app/models").join(f), text).unwrap();
        }
        let m = Models::read(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        m
    }

    #[test]
    fn campfire_queries_as_chat_toml_writes_them() {
        let m = campfire();
        let session_user = chain(&m, "Session", &["user".into()]).unwrap();
        assert_eq!(
            lookup_query(&session_user, "token", &["id".into(), "name".into()]),
            "SELECT users.id, users.name FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token = $1"
        );
        let rooms = chain(&m, "User", &["rooms".into()]).unwrap();
        assert_eq!(rooms.model(), "Room");
        assert_eq!(
            predicate_query(&rooms, &["id".into()], &[("id".into(), "$2".into())]),
            "SELECT rooms.id FROM rooms JOIN memberships ON memberships.room_id = rooms.id WHERE memberships.user_id = $1 AND rooms.id = $2"
        );
        // A direct has_many, guessed; and a belongs_to from the owner keeps the owner's row.
        let projects = chain(&m, "User", &["projects".into()]).unwrap();
        assert_eq!(
            predicate_query(&projects, &["id".into()], &[("id".into(), "$2".into())]),
            "SELECT projects.id FROM projects WHERE projects.user_id = $1 AND projects.id = $2"
        );
        assert!(!projects.guesses.is_empty());
        let account = chain(&m, "User", &["account".into()]).unwrap();
        assert_eq!(
            predicate_query(&account, &["id".into()], &[]),
            "SELECT accounts.id FROM accounts JOIN users ON users.account_id = accounts.id WHERE users.id = $1"
        );
        let alone = chain(&m, "Room", &[]).unwrap();
        assert_eq!(
            predicate_query(&alone, &["id".into()], &[("id".into(), "$1".into())]),
            "SELECT rooms.id FROM rooms WHERE rooms.id = $1"
        );
    }
}
