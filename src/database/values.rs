//! Database values as JSON, and Active Record's integer cast.

use ferrocable_protocol::json::Value;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, TypeInfo, ValueRef};

use super::{DbError, Row};

fn unsupported(column: &str, type_name: &str) -> DbError {
    DbError::UnsupportedColumn {
        column: column.to_string(),
        type_name: type_name.to_string(),
    }
}

fn decode<'r, T, R>(row: &'r R, i: usize) -> Result<T, DbError>
where
    R: sqlx::Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    row.try_get::<T, usize>(i)
        .map_err(|e| DbError::Failed(e.to_string()))
}

/// A row, each non-null value turned into JSON by `value(index, column, type name)`.
fn typed_row<R>(
    row: &R,
    value: impl Fn(usize, &str, &str) -> Result<Value, DbError>,
) -> Result<Row, DbError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
{
    let mut out = Vec::with_capacity(row.columns().len());
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name().to_string();
        let raw = row
            .try_get_raw(i)
            .map_err(|e| DbError::Failed(e.to_string()))?;
        let typed = if raw.is_null() {
            Value::Null
        } else {
            let type_name = raw.type_info().name().to_string();
            value(i, &name, &type_name)?
        };
        out.push((name, typed));
    }
    Ok(out)
}

/// A PostgreSQL row as JSON values, typed as Rails renders them (`{id: user.id}` is a number).
pub(super) fn pg_row(row: &PgRow) -> Result<Row, DbError> {
    typed_row(row, |i, name, type_name| {
        Ok(match type_name {
            "INT2" => Value::from(i64::from(decode::<i16, _>(row, i)?)),
            "INT4" => Value::from(i64::from(decode::<i32, _>(row, i)?)),
            "INT8" => Value::from(decode::<i64, _>(row, i)?),
            "BOOL" => Value::Bool(decode::<bool, _>(row, i)?),
            "FLOAT4" => Value::Float(f64::from(decode::<f32, _>(row, i)?)),
            "FLOAT8" => Value::Float(decode::<f64, _>(row, i)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => {
                Value::String(decode::<String, _>(row, i)?)
            }
            _ => return Err(unsupported(name, type_name)),
        })
    })
}

/// A SQLite row: each value by its storage class (SQLite types values, not columns).
pub(super) fn sqlite_row(row: &SqliteRow) -> Result<Row, DbError> {
    typed_row(row, |i, name, storage| {
        Ok(match storage {
            "INTEGER" | "INT8" | "BIGINT" => Value::from(decode::<i64, _>(row, i)?),
            "BOOLEAN" => Value::Bool(decode::<bool, _>(row, i)?),
            "REAL" => Value::Float(decode::<f64, _>(row, i)?),
            "TEXT" | "DATETIME" | "DATE" | "TIME" => Value::String(decode::<String, _>(row, i)?),
            _ => return Err(unsupported(name, storage)),
        })
    })
}

/// Active Record's cast of a value for an integer column (`ActiveModel::Type::Integer`, as
/// `where(id: value)` serializes it; Rails 6.1-8.0): numbers are truncated, `true`/`false` are
/// 1/0, a string is read like Ruby's `String#to_i` when it starts (after spaces) with an
/// optional sign and a digit, so `"1 OR 1=1"` is 1 and `"12abc"` is 12. Anything else (blank,
/// `"abc"`, `null`, arrays, out of range) finds no row in Rails, and is `None` here.
pub fn active_record_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => i.as_i64(),
        Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Some(f.trunc() as i64),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => ruby_to_i(s),
        _ => None,
    }
}

/// `String#to_i` behind Active Record's `/\A\s*[+-]?\d/` check: leading whitespace, a sign,
/// digits with single underscores between them; `None` when no digit starts it or the value
/// overflows an `i64` (Rails: out of range for the column, no row).
fn ruby_to_i(text: &str) -> Option<i64> {
    let rest = text.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let (negative, rest) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    let mut previous_underscore = false;
    for c in rest.chars() {
        match c {
            '0'..='9' => {
                n = n.checked_mul(10)?.checked_add(i64::from(c as u8 - b'0'))?;
                previous_underscore = false;
            }
            '_' if !previous_underscore => previous_underscore = true,
            _ => break,
        }
    }
    Some(if negative { -n } else { n })
}
