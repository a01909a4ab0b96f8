//! The names a PostgreSQL store gives its schema and tables: checked so
//! that any name the workflow or a plugin gives can be quoted safely, and
//! kept apart from the store's own bookkeeping tables.

/// The longest name PostgreSQL keeps whole (longer ones are cut, so two
/// tables could end up one).
const MAX_NAME: usize = 63;

/// The store's own tables, which no logical table may be called.
pub const META_TABLE: &str = "switchyard_meta";
/// The registry of the tables the store made, and their layouts.
pub const TABLES_TABLE: &str = "switchyard_tables";

/// Whether `table` can name a table of this store.
pub fn check_table(table: &str) -> Result<(), String> {
    check("table", table)?;
    if table == META_TABLE || table == TABLES_TABLE {
        return Err(format!("table name `{table}` is the store's own"));
    }
    Ok(())
}

/// Whether `schema` can name a schema.
pub fn check_schema(schema: &str) -> Result<(), String> {
    check("schema", schema)
}

fn check(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "{what} name `{}` must be 1 to {MAX_NAME} letters, digits, `_`, `-` and `.`",
            crate::text::foreign(name)
        ));
    }
    Ok(())
}

/// `"schema"."name"`, for a name already checked.
pub fn quoted(schema: &str, name: &str) -> String {
    format!("\"{schema}\".\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_that_quote_safely_are_taken() {
        assert!(check_table("messages").is_ok());
        assert!(check_table("Chat-Rooms.v2").is_ok());
        assert!(check_table("a\"; DROP TABLE x; --").is_err());
        assert!(check_table(&"x".repeat(64)).is_err());
        assert!(check_table(META_TABLE).is_err());
        assert_eq!(quoted("public", "Messages"), "\"public\".\"Messages\"");
    }
}
