//! Reading a parsed TOML tree into values, collecting every problem instead of stopping
//! at the first: a wrong type, a value out of range, a key no section knows (with the
//! nearest known one). Each value read leaves its span under its key path, so that a
//! problem found later in the whole model still points at its line.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::config::diagnostic::{Diagnostic, nearest};
use crate::config::flags::{NumberFlag, Unit, Zero, number_flag};
use crate::config::model::{KeyPath, Listed};
use crate::config::values::parse_number;

type Value<'i> = toml::Spanned<DeValue<'i>>;

/// The problems found so far, and where each key path was written.
#[derive(Default)]
pub struct Doc {
    pub problems: Vec<Diagnostic>,
    /// A route or a backend could not be read: checks of the whole site would point at
    /// the wrong route, or miss a backend, so they wait until the file reads.
    pub dropped: bool,
    /// The file's directory: what file paths in it are relative to.
    pub dir: std::path::PathBuf,
    spans: HashMap<KeyPath, Range<usize>>,
    /// What each pool's `backends_file` lists, read to be checked.
    pub listed: Listed,
    /// Where each key read was written (the key, not its value).
    keys: HashMap<KeyPath, Range<usize>>,
    /// The file's name and where each of its lines starts: for `place`.
    file: String,
    line_starts: Vec<usize>,
}

/// One table of the file with the keys its section knows.
pub struct Table<'a, 'i> {
    pub path: KeyPath,
    pub span: Range<usize>,
    table: &'a DeTable<'i>,
}

impl Doc {
    /// The document `text`, of the file `file` (empty when it has no name) in `dir`.
    pub fn new(text: &str, file: &str, dir: &std::path::Path) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Doc {
            dir: dir.to_path_buf(),
            file: file.to_string(),
            line_starts,
            ..Doc::default()
        }
    }

    /// `FILE:LINE:COL` of `span`'s start, for messages told after the check (at run time);
    /// the column counts bytes.
    pub fn place(&self, span: &Range<usize>) -> String {
        let line = self.line_starts.partition_point(|&s| s <= span.start);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = span.start.saturating_sub(start) + 1;
        match self.file.as_str() {
            "" => format!("line {line}:{col}"),
            file => format!("{file}:{line}:{col}"),
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push(Diagnostic::error(span, message));
    }

    pub fn warning(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push(Diagnostic::warning(span, message));
    }

    /// Where `path` was written: its own span, or the nearest enclosing one that was read.
    pub fn span_of(&self, path: &KeyPath) -> Range<usize> {
        let mut p = path.0.as_str();
        loop {
            if let Some(s) = self.spans.get(&KeyPath(p.to_string())) {
                return s.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }

    pub fn note(&mut self, path: &KeyPath, span: Range<usize>) {
        self.spans.insert(path.clone(), span);
    }

    /// `value` as a table of a section that knows `known` keys; each other key is a problem.
    pub fn table<'a, 'i>(
        &mut self,
        value: &'a Value<'i>,
        path: KeyPath,
        what: &str,
        known: &[&str],
    ) -> Option<Table<'a, 'i>> {
        self.table_or(value, path, what, known, |_| None)
    }

    /// As `table`; `elsewhere` says where a key this section does not know belongs, if it
    /// is another section's.
    pub fn table_or<'a, 'i>(
        &mut self,
        value: &'a Value<'i>,
        path: KeyPath,
        what: &str,
        known: &[&str],
        elsewhere: impl Fn(&str) -> Option<String>,
    ) -> Option<Table<'a, 'i>> {
        self.note(&path, value.span());
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                value.span(),
                format!("{what} must be a table, not {}", kind(value.get_ref())),
            );
            return None;
        };
        for (key, _) in table.iter() {
            if known.contains(&key.get_ref().as_ref()) {
                continue;
            }
            let hint = match (elsewhere(key.get_ref()), nearest(key.get_ref(), known)) {
                (Some(there), _) => format!(" ({there})"),
                (None, Some(k)) => format!(" (did you mean `{k}`?)"),
                (None, None) => format!("; {what} takes {}", list(known, "or")),
            };
            self.error(
                key.span(),
                format!("unknown key `{}` in {what}{hint}", key.get_ref()),
            );
        }
        Some(Table {
            path,
            span: value.span(),
            table,
        })
    }

    /// The value under `key`, noted at its key path.
    pub fn get<'a, 'i>(&mut self, t: &Table<'a, 'i>, key: &str) -> Option<&'a Value<'i>> {
        let (k, v) = t.table.get_key_value(key)?;
        let path = t.path.key(key);
        self.keys.insert(path.clone(), k.span());
        self.note(&path, v.span());
        Some(v)
    }

    /// Where the key at `path` was written, if it was (and was read).
    pub fn key_at(&self, path: &KeyPath) -> Option<Range<usize>> {
        self.keys.get(path).cloned()
    }

    /// The span of `key` itself (not its value), for a problem with the key.
    pub fn key_span(&self, t: &Table, key: &str) -> Range<usize> {
        t.table
            .get_key_value(key)
            .map_or(t.span.clone(), |(k, _)| k.span())
    }

    pub fn string(&mut self, t: &Table, key: &str) -> Option<String> {
        let v = self.get(t, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    v.span(),
                    format!("`{key}` must be a string, not {}", kind(other)),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, t: &Table, key: &str) -> Option<bool> {
        let v = self.get(t, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    v.span(),
                    format!("`{key}` must be true or false, not {}", kind(other)),
                );
                None
            }
        }
    }

    /// A string or a list of strings, as a list; each with its span.
    pub fn strings(&mut self, t: &Table, key: &str) -> Option<Vec<(String, Range<usize>)>> {
        let v = self.get(t, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    self.note(&t.path.key(key).index(i), item.span());
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        other => self.error(
                            item.span(),
                            format!("`{key}` lists strings, not {}", kind(other)),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.error(
                    v.span(),
                    format!(
                        "`{key}` must be a string or a list of strings, not {}",
                        kind(other)
                    ),
                );
                None
            }
        }
    }

    /// A duration, size or count under `key`, within the bounds of the flag of the same
    /// name (`client_timeout` is `--client-timeout`): a string as the flag takes it
    /// (`"10s"`, `"64k"`), or an integer (seconds, bytes or a count).
    pub fn number(&mut self, t: &Table, key: &str, flag: &str) -> Option<u64> {
        let f = number_flag(flag);
        let v = self.get(t, key)?;
        let written = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(n) if n.as_str().starts_with('-') => {
                let zero = match f.zero {
                    Zero::Means(what) => format!(" (0 {what})"),
                    Zero::Refused => String::new(),
                };
                self.error(v.span(), format!("`{key}` cannot be negative{zero}"));
                return None;
            }
            DeValue::Integer(n) if n.radix() != 10 => {
                self.error(v.span(), format!("`{key}`: write the number in decimal"));
                return None;
            }
            DeValue::Integer(n) => n.as_str().replace('_', ""),
            other => {
                self.error(
                    v.span(),
                    format!("`{key}` must be {}, not {}", unit(f), kind(other)),
                );
                return None;
            }
        };
        match parse_number(f, &written) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(v.span(), format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// The entries of a table of named sections (`[pools.NAME]`), in file order.
    pub fn named<'a, 'i>(
        &mut self,
        value: &'a Value<'i>,
        path: KeyPath,
        what: &str,
    ) -> Vec<(String, &'a Value<'i>)> {
        self.note(&path, value.span());
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                value.span(),
                format!("{what} must be a table of named tables ([{path}.NAME])"),
            );
            return Vec::new();
        };
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
            .into_iter()
            .map(|(k, v)| (k.get_ref().to_string(), v))
            .collect()
    }

    /// The items of an array of tables (`[[routes]]`), in file order.
    pub fn array<'a, 'i>(&mut self, value: &'a Value<'i>, path: &KeyPath) -> Vec<&'a Value<'i>> {
        self.note(path, value.span());
        match value.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            other => {
                self.error(
                    value.span(),
                    format!(
                        "`{path}` must be a list of tables ([[{path}]]), not {}",
                        kind(other)
                    ),
                );
                Vec::new()
            }
        }
    }
}

impl Table<'_, '_> {
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }
}

fn unit(f: &NumberFlag) -> &'static str {
    match f.unit {
        Unit::Duration => "a duration (\"250ms\", \"10s\", \"1m\")",
        Unit::Size => "a size (\"64k\", \"1m\", or bytes)",
        Unit::Count => "a whole number",
    }
}

pub fn kind(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// `a`, `b` or `c` (or `and`, as `conjunction` says).
pub fn list(known: &[&str], conjunction: &str) -> String {
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} {conjunction} {last}", rest.join(", "))
        }
        _ => quoted.join(""),
    }
}
