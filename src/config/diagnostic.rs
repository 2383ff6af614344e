//! What `lb check` and a reload say about a config file: each problem as
//! `FILE:LINE:COL: message`, then the source line and a caret under the value, as Cargo
//! shows a bad manifest. Also the nearest known key, for a misspelt one.

use std::fmt::Write as _;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// One problem in a file: where (a byte range of the text) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub span: Range<usize>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Error,
            span,
            message: message.into(),
        }
    }

    pub fn warning(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Warning,
            span,
            message: message.into(),
        }
    }

    /// Line and column of the span's start, both from 1; the column counts characters.
    pub fn line_col(&self, text: &str) -> (usize, usize) {
        let start = floor_char_boundary(text, self.span.start);
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, text[line_start..start].chars().count() + 1)
    }

    /// `FILE:LINE:COL: message` alone, for a log line.
    pub fn one_line(&self, file: &str, text: &str) -> String {
        let (line, col) = self.line_col(text);
        let level = match self.level {
            Level::Error => "",
            Level::Warning => "warning: ",
        };
        format!("{file}:{line}:{col}: {level}{}", self.message)
    }

    /// The one line, then the source line with a caret under the span.
    pub fn render(&self, file: &str, text: &str) -> String {
        let mut out = self.one_line(file, text);
        out.push('\n');
        let (line, col) = self.line_col(text);
        let start = floor_char_boundary(text, self.span.start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let source = text[line_start..line_end].trim_end_matches('\r');
        let end = floor_char_boundary(text, self.span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        let gutter = line.to_string().len();
        let _ = writeln!(out, "{:gutter$} |", "");
        let _ = writeln!(out, "{line} | {source}");
        let pad: String = source
            .chars()
            .take(col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{:gutter$} | {pad}{}", "", "^".repeat(width));
        out
    }
}

fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The known word nearest to `word`, if it is near enough to be a slip of the keyboard.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (edit_distance(&word, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, with a swap of two neighbours counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_and_a_caret() {
        let text = "[pools.app]\nhelth = 1\n";
        let d = Diagnostic::error(12..17, "unknown key `helth`");
        assert_eq!(d.line_col(text), (2, 1));
        assert_eq!(
            d.render("lb.toml", text),
            "lb.toml:2:1: unknown key `helth`\n  |\n2 | helth = 1\n  | ^^^^^\n"
        );
        let w = Diagnostic::warning(20..21, "odd");
        assert_eq!(w.one_line("f", text), "f:2:9: warning: odd");
    }

    #[test]
    fn columns_count_characters_and_spans_stop_at_the_line_end() {
        let text = "name = \"é\" # x\nnext = 1";
        let d = Diagnostic::error(7..30, "m");
        assert_eq!(d.line_col(text), (1, 8));
        let shown = d.render("f", text);
        assert!(
            shown.ends_with("1 | name = \"é\" # x\n  |        ^^^^^^^\n"),
            "{shown}"
        );
    }

    #[test]
    fn suggests_the_nearest_key() {
        let known = ["health", "backends", "strategy", "pool_size"];
        assert_eq!(nearest("helth", &known), Some("health"));
        assert_eq!(nearest("backend", &known), Some("backends"));
        assert_eq!(nearest("stratgey", &known), Some("strategy"));
        assert_eq!(nearest("pool-size", &known), Some("pool_size"));
        assert_eq!(nearest("colour", &known), None);
    }
}
