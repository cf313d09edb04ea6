//! The app's Active Record models, read statically from `app/models`: each class's table
//! (`self.table_name`, or Rails' naming: `Membership` → `memberships`, an STI subclass uses
//! its base class's table) and associations (`has_many`, `has_one`, `belongs_to`, with
//! `through:`, `source:`, `class_name:`, `foreign_key:`). The mapping builds SQL from them
//! (`current_user.rooms` → a join through `memberships`); where the app does not say, Rails'
//! conventions are used and the report lists that as an assumption.

use std::collections::BTreeMap;
use std::path::Path;

use ferrocable_rails::underscore;

use super::app_config::{read_ruby, ruby_files_under};
use super::ruby::Expr;

/// How two models are associated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `has_many`
    HasMany,
    /// `has_one`
    HasOne,
    /// `belongs_to`
    BelongsTo,
}

/// One association as declared (or as Rails' conventions would declare it).
#[derive(Debug, Clone, PartialEq)]
pub struct Association {
    /// Kind.
    pub kind: Kind,
    /// Its name (`rooms`).
    pub name: String,
    /// `class_name:`, else from the name (`rooms` → `Room`).
    pub class_name: String,
    /// `foreign_key:`, if given.
    pub foreign_key: Option<String>,
    /// `through:`
    pub through: Option<String>,
    /// `source:`
    pub source: Option<String>,
    /// `as:` or `polymorphic: true`: the reader does not follow these.
    pub polymorphic: bool,
    /// Whether it was declared in the app (else guessed from the name).
    pub declared: bool,
}

/// One model class.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Class name.
    pub name: String,
    /// `self.table_name = "..."`, if set.
    pub table_name: Option<String>,
    /// The superclass as written.
    pub superclass: Option<String>,
    /// Associations in declaration order.
    pub associations: Vec<Association>,
}

/// Every model read, and the tables of `db/schema.rb` when the app has one.
#[derive(Debug, Clone, Default)]
pub struct Models {
    by_name: BTreeMap<String, Model>,
    /// `create_table "rooms"`: column → type (`id` included).
    tables: BTreeMap<String, BTreeMap<String, String>>,
}

/// Superclasses that end an STI chain: the class below them owns the table.
const BASES: &[&str] = &[
    "ApplicationRecord",
    "ActiveRecord::Base",
    "::ActiveRecord::Base",
    "::ApplicationRecord",
];

impl Models {
    /// Reads `app/models/**/*.rb` under `root`.
    pub fn read(root: &Path) -> Models {
        let mut models = Models::default();
        for rel in ruby_files_under(root, "app/models") {
            let Some(file) = read_ruby(root, &rel) else {
                continue;
            };
            for ns in file.parsed.namespaces.iter().filter(|n| !n.is_module) {
                let mut model = Model {
                    name: ns.name.clone(),
                    superclass: ns.superclass.clone(),
                    ..Model::default()
                };
                for s in &ns.statements {
                    match &s.expr {
                        Expr::Assign(t, "=", v)
                            if t.dotted().as_deref() == Some("self.table_name") =>
                        {
                            model.table_name = v.literal_text();
                        }
                        Expr::Call(c) if c.recv.is_none() => {
                            if let Some(a) = association(c) {
                                model.associations.push(a);
                            }
                        }
                        _ => {}
                    }
                }
                models.by_name.insert(model.name.clone(), model);
            }
        }
        if let Ok(schema) = std::fs::read_to_string(root.join("db/schema.rb")) {
            models.tables = schema_tables(&schema);
        }
        models
    }

    /// Whether `db/schema.rb` was read.
    pub fn has_schema(&self) -> bool {
        !self.tables.is_empty()
    }

    /// A column's type in `db/schema.rb` (`integer`, `string`, `uuid`), if the schema has
    /// the table and the column.
    pub fn column_type(&self, table: &str, column: &str) -> Option<&str> {
        self.tables.get(table)?.get(column).map(String::as_str)
    }

    /// Whether the schema has the table.
    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// A model as read, if the app has it.
    pub fn get(&self, name: &str) -> Option<&Model> {
        self.by_name.get(name.trim_start_matches("::"))
    }

    /// The table of a model, and whether the app names it (`self.table_name`): an STI
    /// subclass uses its base's; otherwise Rails' naming (`Push::Subscription` →
    /// `subscriptions`, the module's table_name_prefix not being read).
    pub fn table(&self, class: &str) -> (String, bool) {
        let mut current = class.trim_start_matches("::").to_string();
        for _ in 0..8 {
            let Some(m) = self.get(&current) else { break };
            if let Some(t) = &m.table_name {
                return (t.clone(), true);
            }
            match &m.superclass {
                Some(s) if !BASES.contains(&s.as_str()) && self.get(s).is_some() => {
                    current = s.clone();
                }
                _ => break,
            }
        }
        let base = current.rsplit("::").next().unwrap_or(&current);
        (pluralize(&underscore(base)), false)
    }

    /// The association `name` of `class`: declared (through the class's superclasses), or
    /// `None`.
    pub fn association(&self, class: &str, name: &str) -> Option<Association> {
        let mut current = class.trim_start_matches("::").to_string();
        for _ in 0..8 {
            let m = self.get(&current)?;
            if let Some(a) = m.associations.iter().find(|a| a.name == name) {
                return Some(a.clone());
            }
            current = m.superclass.clone()?;
        }
        None
    }

    /// The association as declared, or as Rails would read `name` if it were declared
    /// plainly (`rooms` → `has_many :rooms`, `user` → `belongs_to :user`).
    pub fn association_or_convention(&self, class: &str, name: &str) -> Association {
        self.association(class, name).unwrap_or_else(|| {
            let singular = singularize(name);
            Association {
                kind: if singular == name {
                    Kind::BelongsTo
                } else {
                    Kind::HasMany
                },
                name: name.to_string(),
                class_name: camelize(&singular),
                foreign_key: None,
                through: None,
                source: None,
                polymorphic: false,
                declared: false,
            }
        })
    }
}

/// `has_many :rooms, through: :memberships` and friends.
fn association(c: &super::ruby::Call) -> Option<Association> {
    let kind = match c.name.as_str() {
        "has_many" | "has_and_belongs_to_many" => Kind::HasMany,
        "has_one" => Kind::HasOne,
        "belongs_to" => Kind::BelongsTo,
        _ => return None,
    };
    let name = c.args.first()?.literal_text()?;
    let mut a = Association {
        kind,
        class_name: camelize(&singularize(&name)),
        name,
        foreign_key: None,
        through: None,
        source: None,
        // has_and_belongs_to_many has a join table the reader does not name
        polymorphic: c.name == "has_and_belongs_to_many",
        declared: true,
    };
    for arg in &c.args {
        let Expr::Hash(pairs) = arg else { continue };
        for (k, v) in pairs {
            let text = v.literal_text().or_else(|| v.dotted());
            match (k.literal_text().as_deref(), text) {
                (Some("class_name"), Some(t)) => a.class_name = t.trim_start_matches("::").into(),
                (Some("foreign_key"), Some(t)) => a.foreign_key = Some(t),
                (Some("through"), Some(t)) => a.through = Some(t),
                (Some("source"), Some(t)) => a.source = Some(t),
                (Some("as"), _) => a.polymorphic = true,
                (Some("polymorphic"), Some(t)) if t == "true" => a.polymorphic = true,
                _ => {}
            }
        }
    }
    Some(a)
}

/// `create_table "rooms", id: :uuid do |t| ... t.integer "user_id" ...`: the tables and
/// their columns' types, read line by line (schema.rb is generated in one fixed shape).
fn schema_tables(schema: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let quoted = |s: &str| s.split('"').nth(1).map(String::from);
    let mut tables = BTreeMap::new();
    let mut current: Option<(String, BTreeMap<String, String>)> = None;
    for line in schema.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("create_table ") {
            if let Some((name, columns)) = current.take() {
                tables.insert(name, columns);
            }
            let Some(name) = quoted(rest) else { continue };
            let id = if rest.contains("id: false") {
                None
            } else if let Some(t) = rest.split("id: :").nth(1) {
                Some(t.split([',', ' ']).next().unwrap_or("").to_string())
            } else {
                Some("integer".to_string())
            };
            let mut columns = BTreeMap::new();
            if let Some(t) = id {
                columns.insert("id".to_string(), t);
            }
            current = Some((name, columns));
        } else if let Some(rest) = line.strip_prefix("t.") {
            if let (Some((kind, _)), Some(col), Some((_, columns))) =
                (rest.split_once(' '), quoted(rest), current.as_mut())
                && kind != "index"
            {
                columns.insert(col, kind.to_string());
            }
        } else if line == "end"
            && let Some((name, columns)) = current.take()
        {
            tables.insert(name, columns);
        }
    }
    tables
}

/// `user_session` → `UserSession`.
pub fn camelize(word: &str) -> String {
    word.split('/')
        .map(|seg| {
            seg.split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("::")
}

/// Words English does not inflect, and irregular pairs (singular, plural).
const UNCOUNTABLE: &[&str] = &[
    "equipment",
    "information",
    "rice",
    "money",
    "species",
    "series",
    "fish",
    "sheep",
    "jeans",
    "police",
    "news",
];
const IRREGULAR: &[(&str, &str)] = &[
    ("person", "people"),
    ("man", "men"),
    ("child", "children"),
    ("sex", "sexes"),
    ("move", "moves"),
    ("zombie", "zombies"),
    ("ox", "oxen"),
];

/// The last `_`-separated word and what comes before it.
fn split_last(word: &str) -> (&str, &str) {
    match word.rfind('_') {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word),
    }
}

/// English plural of a snake_case word (`membership` → `memberships`, `category` →
/// `categories`, `person` → `people`), as Rails' default inflections give for common words.
pub fn pluralize(word: &str) -> String {
    let (head, last) = split_last(word);
    if UNCOUNTABLE.contains(&last) {
        return word.to_string();
    }
    if let Some((_, p)) = IRREGULAR.iter().find(|(s, p)| *s == last || *p == last) {
        return format!("{head}{p}");
    }
    let w = last;
    let plural = if let Some(stem) = w.strip_suffix("quiz") {
        format!("{stem}quizzes")
    } else if w.ends_with("ss")
        || w.ends_with("sh")
        || w.ends_with("ch")
        || w.ends_with('x')
        || w.ends_with("status")
        || w.ends_with("alias")
        || w.ends_with("bus")
    {
        format!("{w}es")
    } else if let Some(stem) = w
        .strip_suffix('y')
        .filter(|s| s.ends_with("qu") || !s.ends_with(['a', 'e', 'i', 'o', 'u', 'y']))
    {
        format!("{stem}ies")
    } else if let Some(stem) = w.strip_suffix("sis") {
        format!("{stem}ses")
    } else if let Some(stem) = w.strip_suffix("fe").filter(|s| !s.ends_with('f')) {
        format!("{stem}ves")
    } else if let Some(stem) = w.strip_suffix('f').filter(|s| s.ends_with(['l', 'r'])) {
        format!("{stem}ves")
    } else if let Some(stem) = w.strip_suffix("um").filter(|s| s.ends_with(['t', 'i'])) {
        format!("{stem}a")
    } else if w.ends_with('s') {
        w.to_string()
    } else {
        format!("{w}s")
    };
    format!("{head}{plural}")
}

/// English singular of a snake_case word (`rooms` → `room`, `categories` → `category`).
pub fn singularize(word: &str) -> String {
    let (head, last) = split_last(word);
    if UNCOUNTABLE.contains(&last) {
        return word.to_string();
    }
    if let Some((s, _)) = IRREGULAR.iter().find(|(s, p)| *p == last || *s == last) {
        return format!("{head}{s}");
    }
    let w = last;
    let singular = if let Some(stem) = w.strip_suffix("quizzes") {
        format!("{stem}quiz")
    } else if let Some(stem) = w.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = w.strip_suffix("es").filter(|s| {
        s.ends_with("ss")
            || s.ends_with("sh")
            || s.ends_with("ch")
            || s.ends_with('x')
            || s.ends_with("status")
            || s.ends_with("alias")
            || s.ends_with("bus")
    }) {
        stem.to_string()
    } else if let Some(stem) = w.strip_suffix("ves") {
        if stem.ends_with(['l', 'r']) {
            format!("{stem}f")
        } else {
            format!("{stem}fe")
        }
    } else if let Some(stem) = w.strip_suffix("ses").filter(|s| {
        [
            "analy", "ba", "diagno", "parenthe", "progno", "synop", "the",
        ]
        .iter()
        .any(|e| s.ends_with(e))
    }) {
        format!("{stem}sis")
    } else if w.ends_with("ss") || w.ends_with("us") || w.ends_with("is") {
        w.to_string()
    } else if let Some(stem) = w.strip_suffix('s') {
        stem.to_string()
    } else {
        w.to_string()
    };
    format!("{head}{singular}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflections_of_common_model_names() {
        for (s, p) in [
            ("membership", "memberships"),
            ("category", "categories"),
            ("person", "people"),
            ("address", "addresses"),
            ("status", "statuses"),
            ("day", "days"),
            ("push_subscription", "push_subscriptions"),
            ("wife", "wives"),
            ("half", "halves"),
            ("box", "boxes"),
            ("match", "matches"),
            ("news", "news"),
            ("datum", "data"),
        ] {
            assert_eq!(pluralize(s), p, "plural of {s}");
            if s != "datum" {
                assert_eq!(singularize(p), s, "singular of {p}");
            }
        }
        assert_eq!(camelize("project_membership"), "ProjectMembership");
    }

    #[test]
    fn tables_and_associations_as_declared_or_by_convention() {
        let dir = std::env::temp_dir().join(format!("ferrocable-models-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("app/models/rooms")).unwrap();
        std::fs::write(
            dir.join("app/models/user.rb"),
            "class User < ApplicationRecord\n  has_many :memberships, dependent: :delete_all\n  \
             has_many :rooms, through: :memberships\n  has_many :messages, foreign_key: :creator_id\nend\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("app/models/room.rb"),
            "class Room < ApplicationRecord\n  self.table_name = \"chat_rooms\"\nend\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("app/models/rooms/open.rb"),
            "class Rooms::Open < Room\nend\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::write(
            dir.join("db/schema.rb"),
            "ActiveRecord::Schema[8.0].define(version: 1) do\n  create_table \"cards\", id: :uuid, force: :cascade do |t|\n    \
             t.uuid \"board_id\", null: false\n    t.string \"title\"\n    t.index [\"board_id\"], name: \"i\"\n  end\n\n  \
             create_table \"memberships\", force: :cascade do |t|\n    t.integer \"room_id\", null: false\n  end\nend\n",
        )
        .unwrap();
        let m = Models::read(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(m.column_type("cards", "id"), Some("uuid"));
        assert_eq!(m.column_type("cards", "board_id"), Some("uuid"));
        assert_eq!(m.column_type("memberships", "id"), Some("integer"));
        assert_eq!(m.column_type("memberships", "room_id"), Some("integer"));
        assert!(m.column_type("cards", "index").is_none());
        assert_eq!(m.table("Rooms::Open"), ("chat_rooms".to_string(), true));
        assert_eq!(m.table("Membership"), ("memberships".to_string(), false));
        let rooms = m.association("User", "rooms").unwrap();
        assert_eq!(rooms.through.as_deref(), Some("memberships"));
        assert_eq!(rooms.class_name, "Room");
        assert_eq!(
            m.association("User", "messages")
                .unwrap()
                .foreign_key
                .as_deref(),
            Some("creator_id")
        );
        let guessed = m.association_or_convention("Session", "user");
        assert_eq!((guessed.kind, guessed.declared), (Kind::BelongsTo, false));
        assert_eq!(guessed.class_name, "User");
    }
}
