//! Changing scenario keys from the command line (`--set`, `sweep --param`).
//!
//! A key is either a dotted path into the scenario (`server.behind`,
//! `fleet.typo_rate`, `brute_force.sessions`) or one of these aliases:
//!
//! | alias | sets |
//! |---|---|
//! | `window` | `server.behind` and `server.ahead` to the value |
//! | `tracking` | `server.drift_tracking` |
//! | `offset` | `fleet.clock_offset_s` to a fixed value (seconds) |
//! | `spread` | `fleet.clock_offset_s` to a normal with mean 0 and this sd |
//! | `drift` | `fleet.drift_s_per_day` to a fixed value |
//! | `delay` | `fleet.reaction_delay_s` to a fixed value |
//! | `typo` | `fleet.typo_rate` |
//!
//! Values are TOML values (`2`, `0.5`, `true`, `"SHA256"`); anything that
//! does not parse as one is taken as a string.
//!
//! ```
//! use totp_sim::overrides::{apply, parse_value};
//!
//! let mut table = toml::Table::new();
//! apply(&mut table, "window", parse_value("2")).unwrap();
//! apply(&mut table, "fleet.typo_rate", parse_value("0")).unwrap();
//! let s: totp_sim::scenario::Scenario = table.try_into().unwrap();
//! assert_eq!((s.server.behind, s.server.ahead), (2, 2));
//! ```

use toml::{Table, Value};

use crate::scenario_error::ScenarioError;

/// Parse a command-line value as a TOML value, or a string if it is not one.
pub fn parse_value(text: &str) -> Value {
    let doc = format!("v = {text}");
    toml::from_str::<Table>(&doc)
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

/// Split `KEY=VALUE` (for `--set`).
///
/// # Errors
///
/// [`ScenarioError::Override`] without `=`.
pub fn parse_assignment(text: &str) -> Result<(String, Value), ScenarioError> {
    let (key, value) = text.split_once('=').ok_or(ScenarioError::Override {
        key: text.to_owned(),
        reason: "expected KEY=VALUE",
    })?;
    Ok((key.trim().to_owned(), parse_value(value.trim())))
}

fn dist_table(pairs: &[(&str, Value)]) -> Value {
    let mut t = Table::new();
    for (k, v) in pairs {
        t.insert((*k).to_owned(), v.clone());
    }
    Value::Table(t)
}

/// Set `key` (a dotted path or an alias) to `value` in a scenario table.
///
/// # Errors
///
/// [`ScenarioError::Override`] when a path crosses a value that is not a
/// table. Unknown keys are caught when the table is parsed as a scenario.
pub fn apply(table: &mut Table, key: &str, value: Value) -> Result<(), ScenarioError> {
    let kind = |k: &str| Value::String(k.to_owned());
    match key {
        "window" => {
            set(table, "server.behind", value.clone())?;
            set(table, "server.ahead", value)
        }
        "tracking" => set(table, "server.drift_tracking", value),
        "typo" => set(table, "fleet.typo_rate", value),
        "offset" => set(
            table,
            "fleet.clock_offset_s",
            dist_table(&[("kind", kind("fixed")), ("value", value)]),
        ),
        "spread" => set(
            table,
            "fleet.clock_offset_s",
            dist_table(&[
                ("kind", kind("normal")),
                ("mean", Value::Float(0.0)),
                ("sd", value),
            ]),
        ),
        "drift" => set(
            table,
            "fleet.drift_s_per_day",
            dist_table(&[("kind", kind("fixed")), ("value", value)]),
        ),
        "delay" => set(
            table,
            "fleet.reaction_delay_s",
            dist_table(&[("kind", kind("fixed")), ("value", value)]),
        ),
        path => set(table, path, value),
    }
}

fn set(table: &mut Table, path: &str, value: Value) -> Result<(), ScenarioError> {
    let err = |reason| ScenarioError::Override {
        key: path.to_owned(),
        reason,
    };
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts
        .pop()
        .filter(|p| !p.is_empty())
        .ok_or(err("empty key"))?;
    let mut here = table;
    for part in parts {
        if part.is_empty() {
            return Err(err("empty key segment"));
        }
        let entry = here
            .entry(part.to_owned())
            .or_insert_with(|| Value::Table(Table::new()));
        here = match entry {
            Value::Table(t) => t,
            _ => return Err(err("a segment of the path is not a table")),
        };
    }
    here.insert(last.to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_parse_as_toml_or_strings() {
        assert_eq!(parse_value("2"), Value::Integer(2));
        assert_eq!(parse_value("0.5"), Value::Float(0.5));
        assert_eq!(parse_value("true"), Value::Boolean(true));
        assert_eq!(parse_value("SHA256"), Value::String("SHA256".into()));
    }

    #[test]
    fn aliases_and_paths_set_keys() {
        let mut t = Table::new();
        apply(&mut t, "spread", parse_value("5")).unwrap();
        apply(&mut t, "brute_force.sessions", parse_value("8")).unwrap();
        let s: crate::scenario::Scenario = t.try_into().unwrap();
        assert_eq!(s.fleet.clock_offset_s, crate::dist::Dist::normal(0.0, 5.0));
        assert_eq!(s.brute_force.unwrap().sessions, 8);
        let mut t = Table::new();
        t.insert("users".into(), Value::Integer(3));
        assert!(apply(&mut t, "users.x", Value::Integer(1)).is_err());
    }
}
